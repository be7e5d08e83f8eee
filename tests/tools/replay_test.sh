#!/bin/sh
# torl replay on a recorded eval: the shipped demo model, sampled (so that some answers call the tool),
# traced; the replay reproduces every reward and observation, also with the sandbox run live; a recorded
# sandbox result altered by hand is reported as a difference; --timeline writes the trajectory's part
# of the trace; a traced training run replays as recorded. Usage (from the project root): replay_test.sh TORL OUTPUT_DIR
set -u
torl=$1
out=$2/replay
rm -rf "$out" && mkdir -p "$out"
fail() { echo "FAILED: $*"; cat "$out/log" 2>/dev/null | tail -20; exit 1; }
"$torl" eval config/examples/demo.yaml --set run.output_dir=$out --set run.name=eval --set trace.enabled=true \
  --set eval.temperature=1 --set eval.samples=4 --set eval.max_problems=16 >"$out/log" 2>&1 || fail "torl eval"
trace=$out/eval/trace
"$torl" replay "$trace" >"$out/same" 2>>"$out/log" || { cat "$out/same"; fail "the replay differs from the record"; }
grep -Eq '^replayed 64 trajectories: 64 as recorded, 0 different; rewards equal 64/64, observations equal ([1-9][0-9]*)/\1$' \
  "$out/same" || { cat "$out/same"; fail "expected every reward and every observation equal, with some calls"; }
"$torl" replay "$trace" --live-sandbox >"$out/live" 2>>"$out/log" || { cat "$out/live"; fail "the live replay differs"; }
# alter the first recorded sandbox result
mkdir -p "$out/altered" && cp "$trace/config.yaml" "$out/altered/"
/usr/bin/python3 - "$trace/trajectories.jsonl" "$out/altered/trajectories.jsonl" <<'PY' >"$out/altered/id" || fail "altering"
import json, sys
done = False
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as dst:
    for line in src:
        record = json.loads(line)
        if not done and record["tool_calls"]:
            record["tool_calls"][0]["stdout"] = "123456789\n"
            done = True
            print(record["id"])
        dst.write(json.dumps(record) + "\n")
PY
id=$(cat "$out/altered/id")
"$torl" replay "$out/altered" >"$out/diff" 2>>"$out/log" && fail "an altered result replayed without a difference"
grep -q "^trajectory $id (.*): [0-9]* difference" "$out/diff" || { cat "$out/diff"; fail "trajectory $id not reported"; }
grep -q 'call 1 observation: recorded ".*", replayed "123456789"' "$out/diff" || { cat "$out/diff"; fail "the observation difference"; }
grep -q "63 as recorded, 1 different" "$out/diff" || { cat "$out/diff"; fail "only the altered trajectory differs"; }
"$torl" replay "$trace" --trajectory "$id" --timeline "$out/timeline.json" >"$out/one" 2>>"$out/log" || fail "--timeline"
/usr/bin/python3 -c "
import json, sys
events = json.load(open('$out/timeline.json'))['traceEvents']
assert any(e.get('id') == 't$id' for e in events), 'no span of the trajectory'
assert any(str(e.get('id', '')).startswith('$id.') for e in events), 'no tool call of the trajectory'
" || fail "the timeline lacks the trajectory's events"
# a record torn by a kill (its last line cut) replays what is whole
mkdir -p "$out/torn" && cp "$trace/config.yaml" "$out/torn/"
head -c -200 "$trace/trajectories.jsonl" >"$out/torn/trajectories.jsonl"
"$torl" replay "$out/torn" >"$out/torn.out" 2>"$out/torn.err" || { cat "$out/torn.out" "$out/torn.err"; fail "torn record"; }
grep -q "a torn last line, skipped" "$out/torn.err" || fail "the torn line should be named"
grep -q "^replayed 63 trajectories: 63 as recorded" "$out/torn.out" || { cat "$out/torn.out"; fail "torn record"; }
# a traced training run replays too (its rollouts and evals)
"$torl" train config/examples/fixture-train.yaml --set run.output_dir=$out --set run.name=train --set trace.enabled=true \
  >>"$out/log" 2>&1 || fail "torl train with trace.enabled"
"$torl" replay "$out/train/trace" >"$out/train.replay" 2>>"$out/log" || { cat "$out/train.replay"; fail "the training replay"; }
grep -Eq '^replayed [1-9][0-9]* trajectories: ([0-9]+) as recorded, 0 different' "$out/train.replay" || fail "training trace"
echo "replay: rewards and observations reproduced; the altered result reported"
