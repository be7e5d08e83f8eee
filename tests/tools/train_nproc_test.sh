#!/bin/sh
# torl train --nproc 2 (two learner processes, Gloo) ends two steps with the optimizer state of one
# process that trains on the same global batch (AdamW's moments of the summed gradients, within 1e-5),
# on the fixture with a real reward signal (rewards differ within groups); and the weights did move, so
# the comparison means something. The weights themselves are compared through that state: AdamW divides
# a gradient by its own magnitude, so a coordinate whose gradient is near 0 (~1e-8, AdamW's epsilon)
# moves by up to the learning rate either way on a rounding difference of the sum (seen: 3.8e-5 after
# one step while the moments agreed within 3e-8). In bfloat16 (float32 master weights and gradients,
# which Gloo sums): the first step's gradient moment within 5% of each tensor's largest value (bfloat16
# backward passes over 8 rows and over 4 differ by about 1%; a rank's gradient lost or counted twice is
# 50% or more), with 4 rows a decoding batch: a CPU bfloat16 matmul rounds a row differently in a batch
# of 8 than of 4, so one process decoding both groups at once samples other tokens than two decoding a
# group each (seen: "7 +t2" against "7 +t8" from the same seed). Usage (from the project root): train_nproc_test.sh TORL OUTPUT_DIR
set -u
torl=$1
out=$2/train-nproc
mkdir -p "$2" && rm -rf "$out"
sets="--set run.output_dir=$out --set train.steps=2 --set train.eval_every=0"
config=tests/tools/signal-train.yaml
"$torl" train $config $sets --set run.name=one 2>"$out.one.log" >/dev/null || { cat "$out.one.log"; exit 1; }
"$torl" train $config $sets --set run.name=two --nproc 2 2>"$out.two.log" >/dev/null || { cat "$out.two.log"; exit 1; }
weights=checkpoints/step-00000002/model.safetensors
/usr/bin/python3 tests/tools/compare_safetensors.py "$out/one/$weights" models/demo/model.safetensors 0 \
  >/dev/null && { echo "training did not change the weights: the test would prove nothing"; exit 1; }
state=checkpoints/step-00000002/optimizer.safetensors
/usr/bin/python3 tests/tools/compare_safetensors.py "$out/one/$state" "$out/two/$state" 1e-5 || exit 1
sets="$sets --set model.dtype=bfloat16 --set rollout.max_batch=4 --set train.steps=1"
"$torl" train $config $sets --set run.name=one-bf16 2>"$out.one-bf16.log" >/dev/null || { cat "$out.one-bf16.log"; exit 1; }
"$torl" train $config $sets --set run.name=two-bf16 --nproc 2 2>"$out.two-bf16.log" >/dev/null || { cat "$out.two-bf16.log"; exit 1; }
weights=checkpoints/step-00000001/model.safetensors
state=checkpoints/step-00000001/optimizer.safetensors
/usr/bin/python3 tests/tools/compare_safetensors.py "$out/one-bf16/$weights" models/demo/model.safetensors 0 \
  >/dev/null && { echo "bfloat16 training did not change the weights"; exit 1; }
/usr/bin/python3 tests/tools/compare_safetensors.py "$out/one-bf16/$state" "$out/two-bf16/$state" 5e-2 --relative --prefix exp_avg/ &&
  echo "--nproc 2 matches one process"
