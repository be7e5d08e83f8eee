#!/bin/sh
# An actor that dies of an exception ends torl train with exit 1, naming the actor and the error,
# instead of leaving the run waiting for it; the last good checkpoint is kept and named. Faults are
# injected with TORL_TEST_FAULT: the learner after step 3 (checkpoints every 2 steps), a generator on
# its 5th forward pass (during step 1). Usage (from the project root): train_fault_test.sh TORL OUTPUT_DIR
set -u
torl=$1
out=$2/train-fault
rm -rf "$out"
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
echo "faults end the run with the actor named"
