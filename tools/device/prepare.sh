#!/usr/bin/env bash
# Makes gpu-carry/ (ignored by git) on the dev machine: what tools/device/check.sh needs on the GPU
# machine and does not find there (it has pip torch with CUDA, nvcc, CMake, ninja and transformers, but
# no network and no CAF, yaml-cpp, Boost, ...):
#   debs/     Debian 12's packages of torl's build dependencies, unpacked there with dpkg -x (about 17 MB)
#   shared/   the parts of ../shared the checks read: the tiny fixtures, the model configs, the Qwen
#             tokenizer and one data file
#   bin/      with --binaries: build/torl and build/tests/torl_torch_tests as built here (a CUDA build
#             against the same torch as the GPU machine's), so that a run there can skip its build
# Then, with the device tool:  run  command: tools/device/check.sh  carry: [gpu-carry]
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(libcaf-dev libcaf-core0.17 libcaf-io0.17 libcaf-openssl0.17 libyaml-cpp-dev libyaml-cpp0.7
          libboost1.74-dev libboost-system1.74-dev libboost-system1.74.0 libboost-filesystem1.74-dev
          libboost-filesystem1.74.0 libseccomp-dev libseccomp2 libgloo-dev libgloo0 doctest-dev
          nlohmann-json3-dev zlib1g-dev)
rm -rf gpu-carry && mkdir -p gpu-carry/debs gpu-carry/shared/fixtures/qwen-tokenizer gpu-carry/shared/data
(cd gpu-carry/debs && apt-get download -q "${packages[@]}" >/dev/null)
cp -r ../shared/fixtures/tiny-qwen2 ../shared/fixtures/tiny-qwen2-tied ../shared/fixtures/configs gpu-carry/shared/fixtures/
cp ../shared/fixtures/qwen-tokenizer/tokenizer.json ../shared/fixtures/qwen-tokenizer/tokenizer_config.json \
  gpu-carry/shared/fixtures/qwen-tokenizer/
cp ../shared/data/torl_val.jsonl gpu-carry/shared/data/
if [[ "${1:-}" == "--binaries" ]]; then
  mkdir -p gpu-carry/bin
  cp build/torl build/tests/torl_torch_tests gpu-carry/bin/
fi
echo "gpu-carry: $(du -sh gpu-carry | cut -f1)"
