#!/bin/sh
# kill -9 during torl train, then --resume: the metrics continue from the last checkpoint (each step
# once), and every step trains on the same problems as an uninterrupted run, with the same rewards, and
# ends with the same weights, with staleness 0 on every step (the generators' policy version continues
# from the checkpoint's step). The same for SIGTERM, which must end the run cleanly (exit 0) with a
# checkpoint of the last finished step. On the fixture with a real reward signal: rewards differ within
# groups, so what the runs must agree on includes rewards, advantages and the policy gradient.
# Usage (from the project root): train_resume_test.sh TORL_HOOKED OUTPUT_DIR (tests/tools/torl_hooked.cpp)
set -u
torl=$1
out=$2/train-resume
mkdir -p "$2" && rm -rf "$out"
config=tests/tools/signal-train.yaml
sets="--set run.output_dir=$out --set train.steps=4 --set train.checkpoint_every=2 --set train.eval_every=0"

"$torl" train $config $sets --set run.name=straight 2>"$out.straight.log" >/dev/null || { cat "$out.straight.log"; exit 1; }

TORL_TEST_KILL_AFTER_STEP=3 "$torl" train $config $sets --set run.name=killed 2>"$out.killed.log" >/dev/null
status=$?
[ $status -eq 137 ] || { echo "expected the run to die of SIGKILL (137), got $status"; cat "$out.killed.log"; exit 1; }
"$torl" train $config $sets --set run.name=killed 2>"$out.refused.log" >/dev/null
[ $? -eq 2 ] && grep -q "pass --resume" "$out.refused.log" || { echo "a run folder with checkpoints was reused without --resume"; exit 1; }
"$torl" train $config $sets --set run.name=killed --resume 2>"$out.resumed.log" >/dev/null || { cat "$out.resumed.log"; exit 1; }

cmp -s "$out/straight/checkpoints/step-00000004/model.safetensors" "$out/killed/checkpoints/step-00000004/model.safetensors" ||
  { echo "the resumed run ends with other weights than the uninterrupted one"; exit 1; }
cmp -s "$out/straight/checkpoints/step-00000002/model.safetensors" "$out/straight/checkpoints/step-00000004/model.safetensors" &&
  { echo "the weights did not change between steps 2 and 4: the test would prove nothing"; exit 1; }

# the hook sends SIGTERM twice (a supervisor and a launcher both deliver it): still a clean stop
TORL_TEST_TERM_AFTER_STEP=2 "$torl" train $config $sets --set run.name=stopped 2>"$out.stopped.log" >/dev/null ||
  { echo "SIGTERM did not end the run with exit 0:"; cat "$out.stopped.log"; exit 1; }
grep -Eq "stopped by SIGTERM after step [23]; the checkpoint of step [23] is in" "$out.stopped.log" ||
  { echo "SIGTERM: no clean stop before the end:"; cat "$out.stopped.log"; exit 1; }
[ -e "$out/stopped/checkpoints/step-00000004" ] && { echo "SIGTERM: the run went on to the end"; exit 1; }
"$torl" train $config $sets --set run.name=stopped --resume 2>"$out.stopped-resumed.log" >/dev/null ||
  { cat "$out.stopped-resumed.log"; exit 1; }
cmp -s "$out/straight/checkpoints/step-00000004/model.safetensors" "$out/stopped/checkpoints/step-00000004/model.safetensors" ||
  { echo "the run stopped by SIGTERM and resumed ends with other weights than the uninterrupted one"; exit 1; }

# another run.seed would give another data order: refused, naming both seeds
"$torl" train $config $sets --set run.name=stopped --set run.seed=8 --resume 2>"$out.seed.log" >/dev/null
[ $? -eq 2 ] && grep -q "was written with run.seed 1, the config has 8: the data order would differ" "$out.seed.log" ||
  { echo "a resume with another seed was not refused:"; cat "$out.seed.log"; exit 1; }

# train.steps below the checkpoint: refused with both numbers, not "steps 4 -> 2"
"$torl" train $config $sets --set run.name=stopped --set train.steps=2 --resume 2>"$out.fewer.log" >/dev/null
[ $? -eq 2 ] && grep -q "the checkpoint is at step 4, past train.steps (2)" "$out.fewer.log" ||
  { echo "train.steps below the checkpoint was not refused:"; cat "$out.fewer.log"; exit 1; }

# a newer step folder without state.json (a write that never finished) is named and set aside, not
# overwritten; the resume says which checkpoint it uses (on a copy: the metrics below compare "stopped")
cp -r "$out/stopped" "$out/extra"
mkdir -p "$out/extra/checkpoints/step-00000005" && echo keep >"$out/extra/checkpoints/step-00000005/model.safetensors"
"$torl" train $config $sets --set run.name=extra --set train.steps=5 --resume 2>"$out.incomplete.log" >/dev/null ||
  { cat "$out.incomplete.log"; exit 1; }
grep -q "from $out/extra/checkpoints/step-00000004 (step 4)" "$out.incomplete.log" &&
  grep -q "kept as $out/extra/checkpoints/incomplete-step-00000005" "$out.incomplete.log" &&
  [ "$(cat "$out/extra/checkpoints/incomplete-step-00000005/model.safetensors")" = keep ] &&
  [ -e "$out/extra/checkpoints/step-00000005/state.json" ] ||
  { echo "the incomplete newer folder was not named and kept:"; cat "$out.incomplete.log"; ls "$out/extra/checkpoints"; exit 1; }

# a corrupt checkpoint is refused with the file named, and nothing is trained on it
printf 'X' | dd of="$out/killed/checkpoints/step-00000004/model.safetensors" bs=1 seek=200 conv=notrunc 2>/dev/null
"$torl" train $config $sets --set run.name=killed --set train.steps=5 --resume 2>"$out.corrupt.log" >/dev/null
[ $? -eq 1 ] && grep -q "step-00000004': model.safetensors is corrupt" "$out.corrupt.log" ||
  { echo "a corrupt checkpoint was not refused:"; cat "$out.corrupt.log"; exit 1; }

/usr/bin/python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
def steps(name):
    return [json.loads(line) for line in open(f"{out}/{name}/metrics.jsonl")]
a = steps("straight")
assert [s["step"] for s in a] == [1, 2, 3, 4], [s["step"] for s in a]
for name in ("killed", "stopped"):
    b = steps(name)
    assert [s["step"] for s in b] == [1, 2, 3, 4], f"{name}: resumed metrics steps: {[s['step'] for s in b]}"
    for x, y in zip(a, b):
        assert x["data/problems"] == y["data/problems"], (name, x["step"], x["data/problems"], y["data/problems"])
        assert x["reward/mean"] == y["reward/mean"], (name, x["step"], x["reward/mean"], y["reward/mean"])
        assert x["response/length_mean"] == y["response/length_mean"], (name, x["step"], x["response/length_mean"], y["response/length_mean"])
        # the policy version is the optimizer step, also after --resume: on-policy data is never stale
        assert y["staleness/max"] == 0, (name, y["step"], "staleness/max", y["staleness/max"])
        assert y["loss/pg"] != 0, (name, y["step"], "no policy-gradient signal: the test would prove less")
print("resumed run matches:", [s["data/problems"] for s in b])
PY
