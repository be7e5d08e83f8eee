#!/bin/sh
# HF transformers as an independent reference (tests/reference/hf_reference.py, the project's .venv):
#   1. checkpoints written by torl train (the tiny fixture, untied and tied embeddings; 2 GRPO steps)
#      load with AutoModelForCausalLM.from_pretrained, and torl model check finds transformers' logits,
#      token log-probs and greedy ids equal to torl's (float32; the weights must differ from the
#      fixture's, so that the test cannot pass on untrained weights);
#   2. HF generate, greedy, on the shipped demo model gives the text `torl generate --temperature 0` prints
#      (which ends it with a newline), both stopping at the model's EOS.
# usage (from the project root): hf_test.sh TORL PYTHON SCRATCH_DIR
set -u
torl=$1 python=$2 out=$3
rm -rf "$out" && mkdir -p "$out"
fail() { echo "$1"; [ -n "${2:-}" ] && cat "$2"; exit 1; }

for fixture in tiny-qwen2 tiny-qwen2-tied; do
  "$torl" train config/examples/fixture-train.yaml --set run.output_dir="$out" --set run.name="$fixture" \
    --set model.path="../shared/fixtures/$fixture" --set train.steps=2 --set train.checkpoint_every=2 \
    --set train.eval_every=0 --set algorithm.entropy_coef=0.05 >"$out/$fixture.train.log" 2>&1 ||
    fail "torl train on $fixture failed:" "$out/$fixture.train.log"
  checkpoint="$out/$fixture/checkpoints/step-00000002"
  "$python" tests/reference/hf_reference.py "$checkpoint" "$out/$fixture.reference.safetensors" \
    --differs-from "../shared/fixtures/$fixture" >"$out/$fixture.hf.log" 2>&1 ||
    fail "transformers could not load or run the checkpoint torl wrote ($checkpoint):" "$out/$fixture.hf.log"
  "$torl" model check --model "$checkpoint" --reference "$out/$fixture.reference.safetensors" >"$out/$fixture.check.log" 2>&1 ||
    fail "the checkpoint computes differently in torl and transformers:" "$out/$fixture.check.log"
  cat "$out/$fixture.check.log"
done

prompt=$(printf 'A conversation between User and Assistant. The user asks a question, and the Assistant solves it.\nUser: Please integrate natural language reasoning with programs to solve the problem above, and put your final answer within \\boxed{}.\nWhat is 12 + 5?\nAssistant:\n')
"$python" tests/reference/hf_reference.py models/demo --generate "$prompt" --max-new-tokens 120 >"$out/hf.txt" 2>"$out/hf.log" ||
  fail "HF generate on models/demo failed:" "$out/hf.log"
"$torl" generate --model models/demo --byte-level --prompt "$prompt" --max-new-tokens 120 --temperature 0 \
  >"$out/torl.txt" 2>"$out/torl.log" || fail "torl generate on models/demo failed:" "$out/torl.log"
[ -s "$out/hf.txt" ] || fail "HF generate wrote nothing"
[ "$(cat "$out/hf.txt")" = "$(cat "$out/torl.txt")" ] ||
  { echo "greedy text differs: HF generate"; cat "$out/hf.txt"; echo; echo "torl generate"; cat "$out/torl.txt"; exit 1; }
echo "greedy on models/demo: HF generate and torl generate wrote the same $(wc -c <"$out/hf.txt") bytes"
echo "hf reference: torl's checkpoints and greedy decoding agree with transformers"
