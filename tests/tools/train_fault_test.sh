#!/bin/sh
# An actor that dies of an exception ends torl train with exit 1, naming the actor and the error,
# instead of leaving the run waiting for it; the last good checkpoint is kept and named. Faults are
# injected with TORL_TEST_FAULT: the learner after step 3 (checkpoints every 2 steps), a generator on
# its 5th forward pass (during step 1). And SIGTERM in the middle of a long step.
# Usage (from the project root): train_fault_test.sh TORL_HOOKED OUTPUT_DIR (tests/tools/torl_hooked.cpp)
set -u
torl=$1
out=$2/train-fault
mkdir -p "$2" && rm -rf "$out" "$out".*.log  # the long step's log is watched: a previous run's lines must not be seen
config=config/examples/fixture-train.yaml
sets="--set run.output_dir=$out --set train.steps=4 --set train.checkpoint_every=2 --set train.eval_every=0"

TORL_TEST_FAULT=learner:3 "$torl" train $config $sets --set run.name=learner 2>"$out.learner.log" >/dev/null
status=$?
[ $status -eq 1 ] || { echo "learner fault: expected exit 1, got $status"; cat "$out.learner.log"; exit 1; }
grep -q "torl train: the learner actor failed: injected fault (TORL_TEST_FAULT) after step 3" "$out.learner.log" &&
  grep -q "the last checkpoint, of step 2, is in" "$out.learner.log" ||
  { echo "learner fault: the error does not name the actor and the checkpoint:"; cat "$out.learner.log"; exit 1; }
[ -e "$out/learner/checkpoints/step-00000002/state.json" ] || { echo "learner fault: checkpoint 2 is gone"; exit 1; }
[ -e "$out/learner/checkpoints/step-00000004" ] && { echo "learner fault: the run went on"; exit 1; }

TORL_TEST_FAULT=generator:5 "$torl" train $config $sets --set run.name=generator 2>"$out.generator.log" >/dev/null
status=$?
[ $status -eq 1 ] || { echo "generator fault: expected exit 1, got $status"; cat "$out.generator.log"; exit 1; }
grep -q "torl train: the generator-0 actor failed: injected fault (TORL_TEST_FAULT) in forward pass 5" "$out.generator.log" ||
  { echo "generator fault: the error does not name the actor:"; cat "$out.generator.log"; exit 1; }
[ -e "$out/generator/metrics.jsonl" ] && [ -s "$out/generator/metrics.jsonl" ] &&
  { echo "generator fault: a step was trained after the generator died"; exit 1; }
# A stop during a step that would take hours (100000 samples a prompt) ends the run at once: the
# rollouts in flight are dropped, nothing is trained on them. Progress lines show the long step; the
# first one (after 30 s) is the moment to stop it.
"$torl" train $config $sets --set run.name=long --set rollout.samples_per_prompt=100000 2>"$out.long.log" >/dev/null &
pid=$!
tail -n +1 -f --pid=$pid "$out.long.log" | { grep -q -m1 "step 1 in flight: [0-9]* of 200000 rollouts finished"; kill -TERM $pid; }
wait $pid
status=$?
[ $status -eq 0 ] && grep -q "stopped by SIGTERM before its first step" "$out.long.log" ||
  { echo "a stop during a long step: expected a clean stop (exit 0), got $status:"; cat "$out.long.log"; exit 1; }
[ -s "$out/long/metrics.jsonl" ] && { echo "a stop during a long step: a step was trained"; exit 1; }
echo "faults end the run with the actor named; a stop ends a long step at once"
