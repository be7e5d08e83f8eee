#!/bin/sh
# torl sweep: two tiny runs (tests/tools/sweep_fixture.yaml) give the Markdown and CSV tables and the
# PNG plot; running the sweep again skips both and trains nothing; with other settings it refuses; a
# stopped sweep continues where it stopped. Usage (from the project root):
# sweep_test.sh TORL OUTPUT_DIR
set -u
torl=$1
root=$2/sweep
out=$root/sweep-fixture
rm -rf "$root" && mkdir -p "$root"
fail() { echo "FAILED: $*"; cat "$root.log" "$out"/*/train.log 2>/dev/null | tail -40; exit 1; }
"$torl" sweep tests/tools/sweep_fixture.yaml --set run.output_dir=$root >"$root.out" 2>"$root.log" || fail "first sweep"
grep -q '^| c0 | finished |' "$out/sweep.md" || fail "no finished row for c0 in sweep.md"
grep -q '^| c1 | finished |' "$out/sweep.md" || fail "no finished row for c1 in sweep.md"
[ "$(wc -l <"$out/sweep.csv")" -eq 3 ] || fail "sweep.csv should have a header and two rows"
head -1 "$out/sweep.csv" | grep -q '^run,state,eval/aime24/accuracy,' || fail "sweep.csv header"
grep -q '^c1,finished,[0-9]' "$out/sweep.csv" || fail "c1's numbers in sweep.csv"
[ "$(head -c 8 "$out/sweep.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "sweep.png is not a PNG"
# the runs got their own overrides
grep -q "C = 0" "$out/c0/train.log" && grep -q "C = 1" "$out/c1/train.log" || fail "each run's tool.max_calls"
before=$(cat "$out"/c0/metrics.jsonl "$out"/c1/metrics.jsonl | cksum)
"$torl" sweep tests/tools/sweep_fixture.yaml --set run.output_dir=$root >"$root.out2" 2>"$root.log" || fail "second sweep"
[ "$(grep -c 'finished earlier, skipped' "$root.log")" -eq 2 ] || fail "the second sweep did not skip both runs"
grep -q "started" "$root.log" && fail "the second sweep started a run"
[ "$(cat "$out"/c0/metrics.jsonl "$out"/c1/metrics.jsonl | cksum)" = "$before" ] || fail "a finished run was touched"
grep -q '^| c1 | finished earlier |' "$root.out2" || fail "the second table"
# the same folders with other settings are refused, not reported as finished
"$torl" sweep tests/tools/sweep_fixture.yaml --set run.output_dir=$root --set train.steps=3 >"$root.out3" 2>"$root.log"
[ $? -eq 2 ] || fail "a changed sweep should be refused with exit 2"
grep -q "holds a run made with other settings" "$root.log" || fail "the refusal should say why"
# a sweep stopped by SIGTERM (sent by its first run after step 1, a test hook) passes it on: the run
# stops after its step in flight with a checkpoint, the next run does not start, exit 0; the same
# command again continues the stopped run from its checkpoint and runs the other
stop=$2/sweep-stop
rm -rf "$stop"
sets="--set run.output_dir=$stop --set train.steps=4 --set train.checkpoint_every=100"
TORL_TEST_TERM_PARENT_AFTER_STEP=1 "$torl" sweep tests/tools/sweep_fixture.yaml --parallel 1 $sets \
  >"$stop.out" 2>"$stop.log" || fail "a stopped sweep should exit 0"
grep -q '^| c0 | stopped |' "$stop.out" || { cat "$stop.out" "$stop.log"; fail "c0 should be stopped"; }
grep -q '^| c1 | not run |' "$stop.out" || { cat "$stop.out"; fail "c1 should not have run"; }
[ "$(ls "$stop/sweep-fixture/c0/checkpoints")" = "step-00000001" ] || fail "the stop should checkpoint step 1 only"
"$torl" sweep tests/tools/sweep_fixture.yaml --parallel 1 $sets >"$stop.out2" 2>"$stop.log2" ||
  { cat "$stop.log2"; fail "the continued sweep"; }
grep -q '^| c0 | finished |' "$stop.out2" && grep -q '^| c1 | finished |' "$stop.out2" || { cat "$stop.out2"; fail "both should finish"; }
[ "$(grep -o '"step":[0-9]*' "$stop/sweep-fixture/c0/metrics.jsonl" | tr '\n' ' ')" = '"step":1 "step":2 "step":3 "step":4 ' ] ||
  fail "the continued run should have steps 1-4 once each: $(grep -o '"step":[0-9]*' "$stop/sweep-fixture/c0/metrics.jsonl" | tr '\n' ' ')"
echo "sweep: table, plot, and skipped on the second run"
