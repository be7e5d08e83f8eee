// Training checkpoints: everything needed to resume a run, in one folder per optimizer step.
//
//   run_dir/checkpoints/step-00000200/
//     model.safetensors      the policy weights under their HF names, metadata {"format": "pt"}:
//                            with config.json and the tokenizer files the folder loads in
//                            transformers (from_pretrained) and in Qwen2Model::load
//     config.json            copied from the base model folder, with whichever of tokenizer.json,
//                            tokenizer_config.json, vocab.json, merges.txt, special_tokens_map.json,
//                            generation_config.json it has
//     optimizer.safetensors  PolicyTrainer::optimizer_state()
//     state.json             {"step": N, "state": <the trainer's own state>,
//                             "files": {"model.safetensors": {"bytes": B, "crc32": "1a2b3c4d"}, ...}}
//
// A checkpoint is written into a temporary sibling folder (".tmp-step-...") and appears under its
// step-* name by one rename, after its files and the folder are synced: a crash leaves either the
// previous checkpoints or the complete new one (plus a temporary folder the next write removes).
// state.json is written last and lists every other file with its size and CRC-32 (zlib's, so
// `zlib.crc32(open(f, 'rb').read())` checks it), which load_checkpoint verifies.
//
// Called by the learner, one writer per run folder at a time (two processes writing checkpoints of
// the same run would remove each other's temporary folders). Reading is safe from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "common/json.hpp"
#include "common/status.hpp"
#include "model/qwen2.hpp"
#include "model/safetensors.hpp"

namespace torl::model {

// What one checkpoint holds. Borrowed for the duration of write_checkpoint only.
struct CheckpointContents {
  int64_t step = 0;                    // optimizer steps done; >= 0; names the folder
  const Qwen2Model* model = nullptr;   // the policy weights (any device and dtype; saved as they are)
  std::filesystem::path model_source;  // the base model folder: config.json (must match the model's
                                       // config) and the tokenizer files are copied from it
  TensorMap optimizer;                 // PolicyTrainer::optimizer_state()
  Json state;                          // the trainer's own state (data position, RNG, ...): opaque here
};

// Writes run_dir/checkpoints/step-<step, 8 digits>/ (see the top of this file), replacing a checkpoint
// of the same step, then removes every step-* folder but the newest `keep` (by step number; the one
// just written is always kept) and temporary folders left by crashed writes.
// Errors (keep < 1, no model, a source config.json that is missing or does not match the model, an
// unwritable folder, a full disk) name the checkpoint and the path that failed:
//   writing checkpoint 'runs/a/checkpoints/step-00000003': cannot create 'runs/a/checkpoints/.tmp-...':
//   Permission denied
// and leave the previous checkpoints as they were. A failure to remove old checkpoints after the new
// one is in place is logged as a warning, not returned: the checkpoint itself is good.
Status write_checkpoint(const std::filesystem::path& run_dir, const CheckpointContents& contents,
                        int keep);

// The newest complete checkpoint folder under run_dir/checkpoints (the highest step among step-*
// folders that hold a state.json), or nullopt when there is none (or no checkpoints folder). Its files
// are not verified here: load_checkpoint does that. Errors: the folder cannot be listed.
Expected<std::optional<std::filesystem::path>> latest_checkpoint(const std::filesystem::path& run_dir);

// Step folders newer than `after_step` without a state.json (a write that never finished, or not
// torl's) are renamed to incomplete-step-N, so that resuming neither reads nor overwrites them; the
// new names are returned for the user to be told. write_checkpoint's pruning counts only complete
// checkpoints towards `keep` and never removes incomplete ones.
Expected<std::vector<std::filesystem::path>> set_aside_incomplete_checkpoints(const std::filesystem::path& run_dir,
                                                                              int64_t after_step);

// What load_checkpoint returns; the weights are loaded by the caller with
// Qwen2Model::load(dir, device, dtype).
struct LoadedCheckpoint {
  std::filesystem::path dir;
  int64_t step = 0;
  TensorMap optimizer;  // CPU tensors viewing the read-only mapping of optimizer.safetensors (see
                        // safetensors.hpp); PolicyTrainer::load_optimizer_state copies them
  Json state;           // as given to write_checkpoint
};

// Reads a checkpoint folder written by write_checkpoint: parses state.json, checks that every file it
// lists is there with its size and CRC-32 (model.safetensors, config.json and optimizer.safetensors
// must be listed), that config.json describes the same model as `expected` (the run's model config),
// and reads optimizer.safetensors. Errors start with "checkpoint 'DIR': " and say what is wrong:
//   checkpoint 'runs/a/checkpoints/step-00000002': model.safetensors is corrupt (crc32 0c1d2e3f,
//   state.json says 9a8b7c6d)
// a missing file, a size that differs, a state.json that is missing or not valid, a config that
// differs (each key with both values).
Expected<LoadedCheckpoint> load_checkpoint(const std::filesystem::path& dir, const Qwen2Config& expected);

// CRC-32 as zlib computes it (polynomial 0xEDB88320, reflected); pass the previous result as `crc` to
// continue over more bytes: crc32("123456789") == 0xCBF43926.
uint32_t crc32(std::string_view bytes, uint32_t crc = 0);

}  // namespace torl::model
