#!/usr/bin/env bash
# The GPU machine's checks and benchmarks (issue #19) in one run. On the dev machine first:
#   tools/device/prepare.sh        makes gpu-carry/ (build dependencies as Debian packages, fixtures)
# then with the device tool:      run  command: tools/device/check.sh [STAGE...]  carry: [gpu-carry]
# Stages run in the order given (default: build fixtures generate train cuda-tests):
#   build     configures and builds torl and its test binaries with CUDA and NCCL against the machine's
#             pip torch (-j of the CPU count); times it; the stages after it use what it built. Before
#             it (or without it) they use gpu-carry/bin (made here by prepare.sh --binaries), the CUDA
#             build of the dev machine, against the same torch.
#   fixtures  torl model check of the two tiny fixtures on cuda, float32 and bfloat16
#   generate  torl generate bench at the Qwen2.5-1.5B shape (random weights, bf16) beside HF
#             transformers' generate on the same card: batch 1/16/64, prompt 256, 256 new tokens
#   train     a random 1.5B-shape checkpoint; torl train --plan; two real GRPO steps with the sandbox
#             (tools/device/train-1.5b-random.yaml); the step-2 checkpoint loaded by transformers and
#             compared with torl's forward (hf_reference.py + torl model check, float32 and bfloat16);
#             the run is launched as one rank (WORLD_SIZE=1), so its gradients go through NCCL; torl's
#             bf16 error against HF float32 beside HF bf16's own
#   train-free  the two steps again with rollout.cache_during_update: free: the peak
#   cuda-tests  the test binaries' GPU cases: fixtures, updates equal to the CPU's, decoding through CUDA
#             graphs over a freed and reallocated cache, NCCL at world size 1 (and the weight broadcast
#             between two GPUs where there are two)
# Logs go to $OUT (one per stage); the summary ($OUT/summary.txt) is printed last.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/torl-device}
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }
stages=("$@")
((${#stages[@]})) || stages=(build fixtures generate train cuda-tests)
seconds() { date +%s%N; }
elapsed() { local ns=$(($(date +%s%N) - $1)); printf '%d.%d' $((ns / 1000000000)) $((ns / 100000000 % 10)); }

config_15b=../shared/fixtures/configs/qwen2.5-math-1.5b.json
torch_dir=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
deps=/tmp/deps
libs=$deps/usr/lib/x86_64-linux-gnu
build=/tmp/torl-build
torl=$PWD/gpu-carry/bin/torl tests=$PWD/gpu-carry/bin
export LD_LIBRARY_PATH=$torch_dir/lib:$(echo "$torch_dir"/../nvidia/cu*/lib | tr ' ' ':'):$libs

say "== stages: ${stages[*]}; $(nvidia-smi -L 2>/dev/null | head -1 | cut -d'(' -f1); driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null)"
say "== $(python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'); $(nproc) CPUs; $(g++ --version | head -1)"
[[ -e ../shared ]] || ln -s "$PWD/gpu-carry/shared" ../shared
for deb in gpu-carry/debs/*.deb; do dpkg -x "$deb" "$deps"; done
# -dev packages whose .so link points at a runtime library by an absolute path of Debian's (libz):
# point it at this machine's.
for link in "$libs"/*.so; do
  if [[ -L "$link" && ! -e "$link" ]]; then
    name=$(basename "$link")
    ln -sf "$(ls /usr/lib/x86_64-linux-gnu/"$name".* /lib/x86_64-linux-gnu/"$name".* 2>/dev/null | head -1)" "$link"
  fi
done

stage_build() {
  local start rc
  start=$(seconds)
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTORL_WITH_NCCL=ON -DTORL_TORCH_ROOT="$torch_dir" \
    -DTORL_PYTHON="$(command -v python3)" -DCMAKE_PREFIX_PATH="$deps/usr" -DCMAKE_CXX_FLAGS="-isystem $deps/usr/include" \
    -DCMAKE_EXE_LINKER_FLAGS="-L$libs -Wl,-rpath,$libs" >"$out/build.log" 2>&1 &&
    ninja -C "$build" -j"$(nproc)" >>"$out/build.log" 2>&1
  rc=$?
  say "build: exit $rc in $(elapsed "$start") s (cmake + ninja -j$(nproc): torl and the test binaries)"
  if ((rc)); then
    grep -m5 -B2 -A3 "error" "$out/build.log" | tail -30
    return 1
  fi
  torl=$build/torl tests=$build/tests
  "$torl" generate --help >/dev/null && say "build: $torl runs"
}

stage_fixtures() {
  local name dtype
  for name in tiny-qwen2 tiny-qwen2-tied; do
    for dtype in float32 bfloat16; do
      "$torl" model check --model ../shared/fixtures/$name --reference ../shared/fixtures/$name/reference.safetensors \
        --device cuda --dtype $dtype >/tmp/check.log 2>&1
      say "fixtures: $name cuda $dtype: exit $? | $(grep -E '^(PASS|FAIL)' /tmp/check.log | cut -c1-70 | paste -sd'|')"
      cat /tmp/check.log >>"$out/fixtures.log"
    done
  done
}

# torl's engine and HF generate on the same card, same shapes: batch 64, 16, 1 (64 also without graphs).
stage_generate() {
  local batch log=$out/generate.log
  for batch in 64 16 1; do
    timeout 200 "$torl" generate bench --random-config $config_15b --device cuda --dtype bfloat16 --batch $batch \
      --prompt-len 256 --new-tokens 256 --repeat 3 >/tmp/bench.log 2>&1
    say "generate: torl batch $batch: exit $? | $(grep -E '^(prefill|decode)' /tmp/bench.log | paste -sd'|')"
    cat /tmp/bench.log >>"$log"
    if ((batch == 64)); then
      timeout 200 "$torl" generate bench --random-config $config_15b --device cuda --dtype bfloat16 --batch $batch \
        --prompt-len 256 --new-tokens 256 --repeat 3 --no-cuda-graphs >/tmp/bench.log 2>&1
      say "generate: torl batch $batch --no-cuda-graphs: exit $? | $(grep -E '^(decode)' /tmp/bench.log | paste -sd'|')"
      cat /tmp/bench.log >>"$log"
    fi
    timeout 200 python3 tools/device/hf_generate_bench.py $config_15b --batch $batch --prompt-len 256 --new-tokens 256 \
      --repeat 3 >/tmp/bench.log 2>&1
    say "generate: $(tail -1 /tmp/bench.log)"
    cat /tmp/bench.log >>"$log"
  done
}

stage_train() {
  local model=/tmp/random-1.5b train_config=tools/device/train-1.5b-random.yaml start rc checkpoint dtype
  local python=(--set tool.python="$(command -v python3)")  # /usr/bin/python3 may lack numpy there
  [[ -d $model ]] || python3 tools/device/random_checkpoint.py $config_15b $model \
    --tokenizer ../shared/fixtures/qwen-tokenizer >"$out/train.log" 2>&1
  "$torl" train $train_config "${python[@]}" --plan --device-memory 141 >>"$out/train.log" 2>&1
  say "train: --plan: $(grep -E 'total|fits' "$out/train.log" | head -3 | paste -sd'|')"
  start=$(seconds)
  rm -rf /tmp/torl-runs
  # Launched as one rank (torchrun's variables): the gradients go through NCCL, the path of N GPUs.
  RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 timeout 300 "$torl" train $train_config "${python[@]}" >>"$out/train.log" 2>&1
  rc=$?
  say "train: 2 steps: exit $rc in $(elapsed "$start") s | $(grep -E '^step [0-9]' "$out/train.log" | paste -sd'|')"
  checkpoint=$(ls -d /tmp/torl-runs/device-1.5b/checkpoints/step-* 2>/dev/null | tail -1)
  [[ -n "$checkpoint" ]] || { say "checkpoint: none written"; return 1; }
  # HF's outputs in each dtype beside torl's in the same dtype (bf16 against a float32 reference drifts
  # past the fixtures' tolerance over 28 layers: RESULTS.md).
  for dtype in float32 bfloat16; do
    python3 tests/reference/hf_reference.py "$checkpoint" /tmp/checkpoint-$dtype.safetensors --dtype $dtype \
      --differs-from $model >>"$out/checkpoint.log" 2>&1
    say "checkpoint: transformers from_pretrained of $checkpoint in $dtype (weights differ from the initial ones): exit $?"
    "$torl" model check --model "$checkpoint" --reference /tmp/checkpoint-$dtype.safetensors --device cuda \
      --dtype $dtype >>"$out/checkpoint.log" 2>&1
    say "checkpoint: torl model check cuda $dtype: exit $? | $(grep -E '^(PASS|FAIL)' "$out/checkpoint.log" | tail -3 | cut -c1-70 | paste -sd'|')"
  done
  # bf16 against float32: torl's error beside HF's own (each bf16 forward against HF's float32 one)
  "$torl" model check --model "$checkpoint" --reference /tmp/checkpoint-float32.safetensors --device cuda \
    --dtype bfloat16 >>"$out/checkpoint.log" 2>&1
  say "checkpoint: torl bf16 against HF float32: $(grep -E '^(PASS|FAIL) (logits|token)' "$out/checkpoint.log" | tail -2 | cut -c1-40 | paste -sd'|')"
  python3 - /tmp/checkpoint-float32.safetensors /tmp/checkpoint-bfloat16.safetensors <<'PY' 2>&1 | tee -a "$out/checkpoint.log" "$summary"
import sys
from safetensors.torch import load_file
f32, b16 = load_file(sys.argv[1]), load_file(sys.argv[2])
real = f32["attention_mask"] != 0
logits = (b16["logits"] - f32["logits"]).abs()[real].max().item()
logprobs = (b16["token_logprobs"] - f32["token_logprobs"]).abs()[real[:, 1:] & real[:, :-1]].max().item()
print(f"checkpoint: HF bf16 against HF float32: logits error {logits:.3g}, token log-probs {logprobs:.3g}")
PY
}

# The two training steps again with the generators' KV cache freed while the update runs: the peak
# beside the train stage's, and the plan's.
stage_train-free() {
  local model=/tmp/random-1.5b train_config=tools/device/train-1.5b-random.yaml start
  local python=(--set tool.python="$(command -v python3)")
  [[ -d $model ]] || python3 tools/device/random_checkpoint.py $config_15b $model \
    --tokenizer ../shared/fixtures/qwen-tokenizer >"$out/train-free.log" 2>&1
  "$torl" train $train_config "${python[@]}" --set rollout.cache_during_update=free --plan --device-memory 141 >>"$out/train-free.log" 2>&1
  say "train free: --plan: $(grep -E 'KV cache|total' "$out/train-free.log" | head -2 | cut -c1-60 | paste -sd'|')"
  start=$(seconds)
  RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 timeout 300 "$torl" train $train_config "${python[@]}" --set run.name=device-1.5b-free \
    --set rollout.cache_during_update=free >>"$out/train-free.log" 2>&1
  say "train free: 2 steps: exit $? in $(elapsed "$start") s | $(grep -E '^step [0-9]' "$out/train-free.log" | paste -sd'|')"
  say "train free: $(grep -o '"generator/cache_releases":[0-9]*' /tmp/torl-runs/device-1.5b-free/metrics.jsonl | paste -sd' ')"
}

# The test cases that need a GPU (they skip on CPU machines): the fixtures, two updates against the
# CPU's, the NCCL group of one rank.
stage_cuda-tests() {
  "$tests/torl_torch_tests" -tc="on CUDA*,with NCCL*" >"$out/cuda-tests.log" 2>&1
  say "cuda-tests: exit $? | $(grep -E 'test cases:|assertions:' "$out/cuda-tests.log" | paste -sd' ')"
}

for stage in "${stages[@]}"; do
  if ! declare -F "stage_$stage" >/dev/null; then
    say "unknown stage '$stage' (build, fixtures, generate, train, train-free, cuda-tests)"
    exit 2
  fi
  "stage_$stage"
done
echo "==== summary"
cat "$summary"
