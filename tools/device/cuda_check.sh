#!/usr/bin/env bash
# Builds and runs tools/device/cuda_check.cpp on the GPU machine, against the LibTorch that ships
# with pip's torch there. Expects gpu-carry/ (made by tools/device/prepare.sh on the dev machine:
# nlohmann-json headers and the two tiny fixtures, which are not on the GPU machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
torch_dir=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
sources="model/qwen2.cpp model/decoder_layer.cpp model/attention.cpp model/logprobs.cpp model/safetensors.cpp model/qwen2_causal_lm.cpp
  model/generation_engine.cpp model/sampling.cpp model/stop_strings.cpp model/tokenizer.cpp model/tokenizer_json.cpp
  model/tokenizer_options.cpp model/tokenizer_split.cpp model/unicode.cpp common/status.cpp common/check.cpp
  common/json.cpp common/log.cpp tools/device/cuda_check.cpp"
mkdir -p "${OUT:-/tmp}/obj"
pids=()
for source in $sources; do
  g++ -std=c++20 -O2 -w -I. -Igpu-carry/include -isystem "$torch_dir/include" \
    -isystem "$torch_dir/include/torch/csrc/api/include" -D_GLIBCXX_USE_CXX11_ABI=$abi \
    -c "$source" -o "${OUT:-/tmp}/obj/$(echo "$source" | tr / _).o" & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
g++ "${OUT:-/tmp}"/obj/*.o -o "${OUT:-/tmp}/cuda_check" -L"$torch_dir/lib" -Wl,-rpath,"$torch_dir/lib" \
  -Wl,--no-as-needed -ltorch -ltorch_cuda -ltorch_cpu -lc10_cuda -lc10 -lpthread
rm -rf "${OUT:-/tmp}/obj"
"${OUT:-/tmp}/cuda_check" gpu-carry/fixtures
