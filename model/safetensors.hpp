// Reading and writing HuggingFace safetensors checkpoints.
//
// A file is an 8-byte little-endian header length, a JSON header {"name": {"dtype", "shape",
// "data_offsets": [begin, end]}, "__metadata__": {...}}, then the raw tensor bytes. Reading maps the
// file (mmap) and returns CPU tensors that view the mapping (kept alive by the tensors); sharded
// checkpoints are read through model.safetensors.index.json. Writing produces files that
// transformers and vLLM load. Any thread; no shared state.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <torch/torch.h>

#include "common/status.hpp"

namespace torl::model {

// Tensors by name. CPU tensors; those read from a file view its read-only mapping: writing to one in
// place faults (SIGSEGV), so clone (or .to(device)) before modifying.
using TensorMap = std::map<std::string, torch::Tensor>;

// Reads one .safetensors file. Supported dtypes: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL.
// Errors name the file and, where it applies, the tensor: a truncated file, a header that is not
// JSON or overlaps the data, offsets outside the file or not matching dtype x shape, an unsupported
// dtype.
Expected<TensorMap> read_safetensors(const std::filesystem::path& file);

// Reads a checkpoint folder: model.safetensors, or every shard named by
// model.safetensors.index.json (every name in its weight_map must be in its shard, no tensor in two
// shards; a shard's tensor that the index does not list is returned too).
Expected<TensorMap> read_checkpoint(const std::filesystem::path& folder);

// Writes `tensors` (any device, contiguous or not; copied to CPU) to `file` with the given
// metadata (string values; transformers expects {"format": "pt"}). Written to a temporary file in
// the same folder and renamed, so a crash never leaves a half-written file under `file`.
Status write_safetensors(const std::filesystem::path& file, const TensorMap& tensors,
                         const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace torl::model
