#!/bin/sh
# torl train --nproc 2 (two learner processes, Gloo) ends a step with the weights of one process that
# trains on the same global batch, within 1e-5; and the weights did move (entropy bonus), so the
# comparison means something. In bfloat16 (float32 master weights and gradients, which Gloo sums) too:
# the masters and AdamW state match one process within 1e-5. Usage (from the project root): train_nproc_test.sh TORL OUTPUT_DIR
set -u
torl=$1
out=$2/train-nproc
rm -rf "$out"
sets="--set run.output_dir=$out --set train.steps=2 --set algorithm.entropy_coef=0.05"
config=config/examples/fixture-train.yaml
"$torl" train $config $sets --set run.name=one 2>"$out.one.log" >/dev/null || { cat "$out.one.log"; exit 1; }
"$torl" train $config $sets --set run.name=two --nproc 2 2>"$out.two.log" >/dev/null || { cat "$out.two.log"; exit 1; }
weights=checkpoints/step-00000002/model.safetensors
/usr/bin/python3 tests/tools/compare_safetensors.py "$out/one/$weights" ../shared/fixtures/tiny-qwen2/model.safetensors 0 \
  >/dev/null && { echo "training did not change the weights: the test would prove nothing"; exit 1; }
/usr/bin/python3 tests/tools/compare_safetensors.py "$out/one/$weights" "$out/two/$weights" 1e-5 || exit 1
sets="$sets --set model.dtype=bfloat16"
"$torl" train $config $sets --set run.name=one-bf16 2>"$out.one-bf16.log" >/dev/null || { cat "$out.one-bf16.log"; exit 1; }
"$torl" train $config $sets --set run.name=two-bf16 --nproc 2 2>"$out.two-bf16.log" >/dev/null || { cat "$out.two-bf16.log"; exit 1; }
state=checkpoints/step-00000002/optimizer.safetensors
/usr/bin/python3 tests/tools/compare_safetensors.py "$out/one-bf16/$weights" ../shared/fixtures/tiny-qwen2/model.safetensors 0 \
  >/dev/null && { echo "bfloat16 training did not change the weights"; exit 1; }
/usr/bin/python3 tests/tools/compare_safetensors.py "$out/one-bf16/$state" "$out/two-bf16/$state" 1e-5 &&
  echo "--nproc 2 matches one process"
