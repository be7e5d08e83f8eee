#!/usr/bin/env bash
# The demo's shipped files are what the project's commands make: data/demo byte for byte (torl demo
# data), and models/demo a loadable base model that answers in the corpus's form when greedy.
# usage: demo_shipped_test.sh TORL SOURCE_DIR SCRATCH_DIR
set -euo pipefail
torl=$1 root=$2 scratch=$3
rm -rf "$scratch" && mkdir -p "$scratch"
"$torl" demo data --out "$scratch" >/dev/null
for split in train eval; do
  cmp "$root/data/demo/$split.jsonl" "$scratch/$split.jsonl" ||
    { echo "data/demo/$split.jsonl differs from what 'torl demo data' makes now: remake it"; exit 1; }
done
prompt=$'A conversation between User and Assistant. The user asks a question, and the Assistant solves it.\nUser: Please integrate natural language reasoning with programs to solve the problem above, and put your final answer within \\boxed{}.\nWhat is 12 + 5?\nAssistant:\n'
"$torl" generate --model "$root/models/demo" --byte-level --prompt "$prompt" --max-new-tokens 80 --temperature 0 \
  >"$scratch/generated.txt" 2>&1 || { cat "$scratch/generated.txt"; exit 1; }
grep -q 'The answer is \\boxed{17}' "$scratch/generated.txt" ||
  { echo "models/demo did not answer 'What is 12 + 5?' with \\boxed{17}:"; cat "$scratch/generated.txt"; exit 1; }
echo "demo data and model: as made by the project"
