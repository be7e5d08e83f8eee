#!/bin/sh
# run.deterministic on the training fixture with a real reward signal: two uninterrupted runs, and a run
# killed after step 1 and resumed, end with bit-identical weights, and the weights did change on the way
# (the demo model earns different rewards within a group).
# Usage (from the project root): deterministic_test.sh TORL_HOOKED OUTPUT_DIR (tests/tools/torl_hooked.cpp)
set -u
torl=$1
out=$2/deterministic
mkdir -p "$2" && rm -rf "$out"
config=tests/tools/signal-train.yaml
sets="--set run.output_dir=$out --set run.deterministic=true --set train.steps=2 --set train.eval_every=0 --set train.checkpoint_every=1"

for name in first second; do
  "$torl" train $config $sets --set run.name=$name 2>"$out.$name.log" >/dev/null || { cat "$out.$name.log"; exit 1; }
done
TORL_TEST_KILL_AFTER_STEP=1 "$torl" train $config $sets --set run.name=killed 2>"$out.killed.log" >/dev/null
[ $? -eq 137 ] || { echo "expected the run to die of SIGKILL (137)"; cat "$out.killed.log"; exit 1; }
"$torl" train $config $sets --set run.name=killed --resume 2>"$out.resumed.log" >/dev/null || { cat "$out.resumed.log"; exit 1; }

weights() { echo "$out/$1/checkpoints/step-0000000$2/model.safetensors"; }
cmp -s "$(weights first 1)" "$(weights first 2)" && { echo "the weights did not change in step 2: the test would prove nothing"; exit 1; }
cmp -s "$(weights first 2)" "$(weights second 2)" || { echo "two deterministic runs end with different weights"; exit 1; }
cmp -s "$(weights first 2)" "$(weights killed 2)" || { echo "the killed and resumed run ends with other weights"; exit 1; }
grep -q '"loss/pg":0[,}]' "$out/first/metrics.jsonl" && { echo "a step without a policy-gradient signal"; exit 1; }
echo "deterministic: two runs and a killed-and-resumed run are bit-identical"
