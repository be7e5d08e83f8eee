#!/bin/sh
# rollout.placement and rollout.cache_during_update on the training fixture, on the CPU (Gloo): with
# run.deterministic, generators that get each version through the weight broadcast (separate) and
# generators whose KV cache is freed between the steps (free) end with the weights of the plain
# colocated run, bit for bit; a generator that missed or garbled a version would sample other
# trajectories and end elsewhere. Separate placement with max_staleness 1 and with --nproc 2 runs through.
# Usage (from the project root): placement_test.sh TORL OUTPUT_DIR
set -u
torl=$1
out=$2/placement
mkdir -p "$2" && rm -rf "$out"
config=tests/tools/signal-train.yaml
sets="--set run.output_dir=$out --set run.deterministic=true --set train.steps=3 --set train.eval_every=0 --set train.checkpoint_every=1"
separate="--set rollout.placement=separate --set rollout.device=cpu"

run() {  # NAME SETTINGS...
  name=$1
  shift
  "$torl" train $config $sets --set run.name=$name "$@" 2>"$out.$name.log" >/dev/null || { cat "$out.$name.log"; exit 1; }
}
run colocated
run separate $separate
run freed --set rollout.cache_during_update=free
run stale $separate --set algorithm.max_staleness=1
run ranks $separate --nproc 2

weights() { echo "$out/$1/checkpoints/step-0000000$2/model.safetensors"; }
cmp -s "$(weights colocated 1)" "$(weights colocated 3)" && { echo "the weights did not change: the test would prove nothing"; exit 1; }
cmp -s "$(weights colocated 3)" "$(weights separate 3)" || { echo "separate placement ends with other weights than colocated"; exit 1; }
cmp -s "$(weights colocated 3)" "$(weights freed 3)" || { echo "freeing the KV cache between steps changed the weights"; exit 1; }
grep -q 'generators on cpu' "$out.separate.log" || { echo "the separate run did not say where its generators are"; cat "$out.separate.log"; exit 1; }
# step k's line counts the frees before it: at least those after steps 1 .. k-1 (each went before
# the next step's prompts reached the generator)
grep '"step":3,' "$out/freed/metrics.jsonl" | grep -q '"generator/cache_releases":[2-9]' ||
  { echo "the cache was not freed after every step"; grep -o '"generator/cache_releases":[0-9]*' "$out/freed/metrics.jsonl"; exit 1; }
grep -q '"generator/cache_releases":0[,}]' "$out/colocated/metrics.jsonl" || { echo "cache_during_update: keep freed the cache"; exit 1; }
for name in stale ranks; do
  [ -f "$(weights $name 3)" ] || { echo "the $name run did not reach step 3"; cat "$out.$name.log"; exit 1; }
done
echo "placement: separate and cache-freeing runs equal the colocated run bit for bit"
