#!/bin/sh
# torl train on the training fixture with a real reward signal (tests/tools/signal-train.yaml): the run
# ends with exit 0, evals at steps 0, 2 and 4, a plot and a summary; rewards differ within groups, so
# every step's policy-gradient loss is non-zero and the weights move; and the generators sample with the
# weights the learner published (the gap between the sampler's and the trainer's log-probs of the same
# tokens stays at rounding level: generators left on old weights would show the update there). The test
# hooks' variables are set and must do nothing: only tests/tools/torl_hooked.cpp reads them.
# With algorithm.max_staleness 1 the next step's rollouts start before the update: a run ends cleanly
# with every step's tokens at most one version old (which ones are is timing; the learner's ordering of
# early batches is tested deterministically in tests/actors/learner_test.cpp).
# Usage (from the project root): train_fixture_test.sh TORL OUTPUT_DIR
set -u
torl=$1
out=$2/train-fixture
mkdir -p "$2" && rm -rf "$out"
TORL_TEST_KILL_AFTER_STEP=1 TORL_TEST_TERM_AFTER_STEP=1 TORL_TEST_TERM_PARENT_AFTER_STEP=1 TORL_TEST_FAULT=learner:1 \
  "$torl" train tests/tools/signal-train.yaml --set run.output_dir="$out" >"$out.out" 2>"$out.log" ||
  { echo "torl train exited with $?:"; cat "$out.log" "$out.out"; exit 1; }
for step in 0 2 4; do
  grep -q "^eval at step $step:  signal-train acc [01]\.[0-9]*" "$out.log" || { echo "no eval at step $step:"; cat "$out.log"; exit 1; }
done
[ -s "$out/signal/plot.png" ] && [ -s "$out/signal/summary.json" ] || { echo "no plot or summary"; cat "$out.out"; exit 1; }
/usr/bin/python3 tests/tools/compare_safetensors.py "$out/signal/checkpoints/step-00000004/model.safetensors" \
  models/demo/model.safetensors 0 >/dev/null && { echo "training did not change the weights"; exit 1; }
/usr/bin/python3 - "$out/signal/metrics.jsonl" <<'PY' || exit 1
import json, sys
steps = [json.loads(line) for line in open(sys.argv[1])]
assert [s["step"] for s in steps] == [1, 2, 3, 4], [s["step"] for s in steps]
for s in steps:
    assert s["updated"] and s["loss/pg"] != 0, f"step {s['step']}: no policy-gradient signal: {s}"
    assert s["groups/all_equal"] < 2, f"step {s['step']}: every group had equal rewards"
    assert s["policy/sampler_gap"] < 1e-5, f"step {s['step']}: the generators sampled with other weights (gap {s['policy/sampler_gap']})"
    assert s["staleness/max"] == 0, f"step {s['step']}: stale tokens at max_staleness 0"
PY
"$torl" train tests/tools/signal-train.yaml --set run.output_dir="$out" --set run.name=stale --set algorithm.max_staleness=1 \
  --set train.eval_every=0 --set train.steps=3 2>"$out.stale.log" >/dev/null || { echo "max_staleness 1:"; cat "$out.stale.log"; exit 1; }
/usr/bin/python3 - "$out/stale/metrics.jsonl" <<'PY' || exit 1
import json, sys
steps = [json.loads(line) for line in open(sys.argv[1])]
assert [s["step"] for s in steps] == [1, 2, 3], [s["step"] for s in steps]
for s in steps:
    assert s["staleness/max"] <= 1, f"step {s['step']}: tokens {s['staleness/max']} versions old at max_staleness 1"
    assert s["updated"], f"step {s['step']} was not trained"
PY
echo "training fixture: rewards differ within groups, the weights moved, the run ended cleanly"
