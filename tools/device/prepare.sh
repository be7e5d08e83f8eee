#!/usr/bin/env bash
# Makes gpu-carry/ (ignored by git) for tools/device/cuda_check.sh: what the GPU machine lacks, the
# nlohmann-json headers and the two tiny fixtures from ../shared.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf gpu-carry && mkdir -p gpu-carry/include gpu-carry/fixtures
cp -r /usr/include/nlohmann gpu-carry/include/
cp -r ../shared/fixtures/tiny-qwen2 ../shared/fixtures/tiny-qwen2-tied gpu-carry/fixtures/
