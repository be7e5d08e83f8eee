#include "model/checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/log.hpp"

namespace torl::model {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCheckpointsFolder = "checkpoints";
constexpr std::string_view kStepPrefix = "step-";
constexpr std::string_view kTempPrefix = ".tmp-";  // folders being written (or left by a crash)
constexpr const char* kStateFile = "state.json";
constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kConfigFile = "config.json";
// Copied from the base model when present: what transformers needs besides the weights.
constexpr const char* kTokenizerFiles[] = {"tokenizer.json",          "tokenizer_config.json",
                                           "vocab.json",              "merges.txt",
                                           "special_tokens_map.json", "generation_config.json"};
// Files every checkpoint's state.json must list.
constexpr const char* kRequiredFiles[] = {kModelFile, kConfigFile, kOptimizerFile};
constexpr size_t kChunkBytes = size_t{1} << 20;

std::string errno_text() { return std::strerror(errno); }

std::string in_quotes(const fs::path& path) { return "'" + path.string() + "'"; }

// ---- CRC-32, slicing by 8 (about 8x the speed of the byte-wise table; checkpoints are gigabytes) ----

using Crc32Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Crc32Tables make_crc32_tables() {
  Crc32Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    t[0][i] = c;
  }
  for (size_t k = 1; k < 8; ++k) {
    for (size_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
  }
  return t;
}

constexpr Crc32Tables kCrc32 = make_crc32_tables();

// Continues a CRC over `size` bytes; `crc` is the raw register (complemented at start and end by the caller).
uint32_t crc32_raw(uint32_t crc, const uint8_t* p, size_t size) {
  while (size >= 8) {
    uint32_t one = 0, two = 0;
    std::memcpy(&one, p, 4);  // little-endian host (as safetensors.cpp asserts)
    std::memcpy(&two, p + 4, 4);
    one ^= crc;
    crc = kCrc32[7][one & 0xFF] ^ kCrc32[6][(one >> 8) & 0xFF] ^ kCrc32[5][(one >> 16) & 0xFF] ^
          kCrc32[4][one >> 24] ^ kCrc32[3][two & 0xFF] ^ kCrc32[2][(two >> 8) & 0xFF] ^
          kCrc32[1][(two >> 16) & 0xFF] ^ kCrc32[0][two >> 24];
    p += 8;
    size -= 8;
  }
  while (size-- > 0) crc = (crc >> 8) ^ kCrc32[0][(crc ^ *p++) & 0xFF];
  return crc;
}

std::string crc32_hex(uint32_t crc) {
  char text[9];
  std::snprintf(text, sizeof text, "%08x", crc);
  return text;
}

// ---- files ----

// What state.json records of a file.
struct FileRecord {
  uint64_t bytes = 0;
  uint32_t crc = 0;
};

Json to_json(const FileRecord& record) {
  return {{"bytes", record.bytes}, {"crc32", crc32_hex(record.crc)}};
}

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now; close errors matter after writes (NFS, quotas report there).
  bool close() {
    const int fd = std::exchange(fd_, -1);
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

Status write_all(int fd, const char* bytes, size_t count, const fs::path& file) {
  while (count > 0) {
    const ssize_t written = ::write(fd, bytes, count);
    if (written < 0) {
      if (errno == EINTR) continue;
      return io_error("writing " + in_quotes(file) + ": " + errno_text());
    }
    bytes += written;
    count -= static_cast<size_t>(written);
  }
  return {};
}

// Reads up to `count` bytes; 0 at the end of the file, -1 on error (errno set).
ssize_t read_some(int fd, char* bytes, size_t count) {
  while (true) {
    const ssize_t got = ::read(fd, bytes, count);
    if (got >= 0 || errno != EINTR) return got;
  }
}

Expected<Fd> open_for_reading(const fs::path& file) {
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const std::string message = "cannot open " + in_quotes(file) + ": " + errno_text();
    return errno == ENOENT ? not_found(message) : io_error(message);
  }
  return fd;
}

Expected<Fd> create_for_writing(const fs::path& file) {
  Fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return io_error("cannot create " + in_quotes(file) + ": " + errno_text());
  return fd;
}

// Syncs and closes a file written through `fd`.
Status finish_file(Fd& fd, const fs::path& file) {
  if (::fsync(fd.get()) != 0) return io_error("syncing " + in_quotes(file) + ": " + errno_text());
  if (!fd.close()) return io_error("closing " + in_quotes(file) + ": " + errno_text());
  return {};
}

// Makes the entries of `folder` (creations, renames) durable.
Status sync_folder(const fs::path& folder) {
  Fd fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return io_error("cannot open folder " + in_quotes(folder) + ": " + errno_text());
  // Some file systems cannot sync a folder (EINVAL); their renames are as durable as they get.
  if (::fsync(fd.get()) != 0 && errno != EINVAL) {
    return io_error("syncing folder " + in_quotes(folder) + ": " + errno_text());
  }
  return {};
}

// Size and CRC-32 of a file, streamed in chunks.
Expected<FileRecord> checksum_file(const fs::path& file) {
  auto fd = open_for_reading(file);
  if (!fd.ok()) return fd.status();
  ::posix_fadvise(fd->get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buffer(kChunkBytes);
  FileRecord record;
  uint32_t crc = 0xFFFFFFFFu;
  while (true) {
    const ssize_t got = read_some(fd->get(), buffer.data(), buffer.size());
    if (got < 0) return io_error("reading " + in_quotes(file) + ": " + errno_text());
    if (got == 0) break;
    crc = crc32_raw(crc, reinterpret_cast<const uint8_t*>(buffer.data()), static_cast<size_t>(got));
    record.bytes += static_cast<uint64_t>(got);
  }
  record.crc = ~crc;
  return record;
}

// Copies `from` to the new file `to` (synced) and returns what was written.
Expected<FileRecord> copy_file_synced(const fs::path& from, const fs::path& to) {
  auto in = open_for_reading(from);
  if (!in.ok()) return in.status();
  auto out = create_for_writing(to);
  if (!out.ok()) return out.status();
  std::vector<char> buffer(kChunkBytes);
  FileRecord record;
  uint32_t crc = 0xFFFFFFFFu;
  while (true) {
    const ssize_t got = read_some(in->get(), buffer.data(), buffer.size());
    if (got < 0) return io_error("reading " + in_quotes(from) + ": " + errno_text());
    if (got == 0) break;
    crc = crc32_raw(crc, reinterpret_cast<const uint8_t*>(buffer.data()), static_cast<size_t>(got));
    record.bytes += static_cast<uint64_t>(got);
    TORL_RETURN_IF_ERROR(write_all(out->get(), buffer.data(), static_cast<size_t>(got), to));
  }
  record.crc = ~crc;
  TORL_RETURN_IF_ERROR(finish_file(*out, to));
  return record;
}

Status write_text_synced(const fs::path& file, const std::string& text) {
  auto out = create_for_writing(file);
  if (!out.ok()) return out.status();
  TORL_RETURN_IF_ERROR(write_all(out->get(), text.data(), text.size(), file));
  return finish_file(*out, file);
}

// Writes tensors with write_safetensors (which syncs) and returns the record of the file on disk.
Expected<FileRecord> write_tensors(const fs::path& file, const TensorMap& tensors) {
  TORL_RETURN_IF_ERROR(write_safetensors(file, tensors, {{"format", "pt"}}));  // errors name the file
  return checksum_file(file);
}

// ---- folder names ----

std::string step_folder_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  return name;
}

// The step of a "step-<digits>" folder name, or nullopt for any other name.
std::optional<int64_t> parse_step_folder(std::string_view name) {
  if (!name.starts_with(kStepPrefix)) return std::nullopt;
  const std::string_view digits = name.substr(kStepPrefix.size());
  if (digits.empty() || digits.size() > 18) return std::nullopt;
  int64_t step = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    step = step * 10 + (c - '0');
  }
  return step;
}

// Every step-* folder in `folder` with its step, newest first. Other entries are skipped.
Expected<std::vector<std::pair<int64_t, fs::path>>> list_step_folders(const fs::path& folder) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code error;
  fs::directory_iterator it(folder, error);
  for (; !error && it != fs::directory_iterator(); it.increment(error)) {
    const auto step = parse_step_folder(it->path().filename().string());
    std::error_code ignored;
    if (step && it->is_directory(ignored)) found.emplace_back(*step, it->path());
  }
  if (error) return io_error("cannot list " + in_quotes(folder) + ": " + error.message());
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return found;
}

// Removes temporary folders of earlier writes that never reached their rename. Best effort: what
// cannot be removed is logged and tried again next time.
void remove_stale_temporaries(const fs::path& folder) {
  std::error_code error;
  fs::directory_iterator it(folder, error);
  for (; !error && it != fs::directory_iterator(); it.increment(error)) {
    if (!it->path().filename().string().starts_with(kTempPrefix)) continue;
    std::error_code removing;
    fs::remove_all(it->path(), removing);
    if (removing) {
      TORL_LOG(kWarn) << "cannot remove the stale checkpoint folder " << in_quotes(it->path()) << ": "
                      << removing.message();
    }
  }
}

// Removes every step-* folder but the newest `keep` and `written`. Best effort, logged.
void remove_old_checkpoints(const fs::path& folder, const fs::path& written, int keep) {
  auto steps = list_step_folders(folder);
  if (!steps.ok()) {
    TORL_LOG(kWarn) << "keeping old checkpoints: " << steps.status().message();
    return;
  }
  // Only complete checkpoints count towards `keep`: an empty or foreign step folder must not push a
  // good checkpoint out. Incomplete folders are left alone.
  int complete = 0;
  for (const auto& [step, old] : *steps) {
    std::error_code ignored;
    if (!fs::is_regular_file(old / kStateFile, ignored)) continue;
    if (++complete <= keep || old == written) continue;
    std::error_code error;
    fs::remove_all(old, error);
    if (error) {
      TORL_LOG(kWarn) << "cannot remove the old checkpoint " << in_quotes(old) << ": " << error.message();
    }
  }
}

// ---- config comparison ----

// "" when the configs agree, else every differing key with both values:
//   "hidden_size is 64 in <a_name>, 128 in <b_name>; ..."
std::string config_differences(const Qwen2Config& a, const std::string& a_name, const Qwen2Config& b,
                               const std::string& b_name) {
  const Json fa = a.to_json(), fb = b.to_json();
  std::string differences;
  for (const auto& [key, value] : fa.items()) {
    if (value == fb.at(key)) continue;
    if (!differences.empty()) differences += "; ";
    differences += key + " is " + value.dump() + " in " + a_name + ", " + fb.at(key).dump() + " in " + b_name;
  }
  return differences;
}

// ---- writing ----

// Writes the checkpoint's files into `temp` (an empty folder) and returns state.json's "files".
Expected<Json> write_files(const fs::path& temp, const CheckpointContents& contents) {
  Json files = Json::object();

  TensorMap weights;
  try {
    weights = contents.model->named_parameters();
  } catch (const std::exception& e) {
    return io_error(std::string("reading the model's parameters: ") + e.what());
  }
  auto model = write_tensors(temp / kModelFile, weights);
  if (!model.ok()) return model.status();
  files[kModelFile] = to_json(*model);

  auto optimizer = write_tensors(temp / kOptimizerFile, contents.optimizer);
  if (!optimizer.ok()) return optimizer.status();
  files[kOptimizerFile] = to_json(*optimizer);

  auto config = copy_file_synced(contents.model_source / kConfigFile, temp / kConfigFile);
  if (!config.ok()) return config.status();
  files[kConfigFile] = to_json(*config);

  for (const char* name : kTokenizerFiles) {
    const fs::path source = contents.model_source / name;
    std::error_code ignored;
    if (!fs::is_regular_file(source, ignored)) continue;
    auto copied = copy_file_synced(source, temp / name);
    if (!copied.ok()) return copied.status();
    files[name] = to_json(*copied);
  }
  return files;
}

// Writes the whole checkpoint into a fresh temporary folder in `folder` and renames it to `final_dir`
// (exchanging it with an existing checkpoint of the same step, which is then removed).
Status write_and_commit(const fs::path& folder, const fs::path& final_dir, const CheckpointContents& contents) {
  std::error_code error;
  const bool created = fs::create_directories(folder, error);
  if (error) return io_error("cannot create " + in_quotes(folder) + ": " + error.message());
  if (created && folder.has_parent_path()) TORL_RETURN_IF_ERROR(sync_folder(folder.parent_path()));
  remove_stale_temporaries(folder);

  std::string temp_name =
      (folder / (std::string(kTempPrefix) + final_dir.filename().string() + "-XXXXXX")).string();
  if (::mkdtemp(temp_name.data()) == nullptr) {
    return io_error("cannot create " + in_quotes(temp_name) + ": " + errno_text());
  }
  const fs::path temp = temp_name;
  // Until the rename, a failure removes what was written (the previous checkpoints are untouched).
  bool committed = false;
  struct RemoveUnlessCommitted {
    const fs::path& temp;
    const bool& committed;
    ~RemoveUnlessCommitted() {
      std::error_code ignored;
      if (!committed) fs::remove_all(temp, ignored);
    }
  } cleanup{temp, committed};
  ::chmod(temp.c_str(), 0755);  // mkdtemp makes it private; checkpoints are read by other users' tools

  auto files = write_files(temp, contents);
  if (!files.ok()) return files.status();
  std::string state_text;
  try {
    state_text = Json{{"step", contents.step}, {"state", contents.state}, {"files", *files}}.dump(2) + "\n";
  } catch (const Json::exception& e) {
    return invalid_argument(std::string("the trainer state cannot be written as JSON: ") + e.what());
  }
  TORL_RETURN_IF_ERROR(write_text_synced(temp / kStateFile, state_text));
  TORL_RETURN_IF_ERROR(sync_folder(temp));

  // The commit: one rename. A checkpoint of the same step is swapped out atomically, so there is no
  // moment without one.
  const bool replacing = fs::exists(final_dir, error);
  if (replacing) {
    if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) != 0) {
      return io_error("cannot exchange " + in_quotes(temp) + " with " + in_quotes(final_dir) + ": " + errno_text());
    }
    // `temp` now holds the replaced checkpoint: the cleanup removes it.
  } else {
    if (::rename(temp.c_str(), final_dir.c_str()) != 0) {
      return io_error("cannot rename " + in_quotes(temp) + " to " + in_quotes(final_dir) + ": " + errno_text());
    }
    committed = true;
  }
  return sync_folder(folder);
}

}  // namespace

uint32_t crc32(std::string_view bytes, uint32_t crc) {
  return ~crc32_raw(~crc, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

Status write_checkpoint(const fs::path& run_dir, const CheckpointContents& contents, int keep) {
  const fs::path folder = run_dir / kCheckpointsFolder;
  const fs::path final_dir = folder / step_folder_name(contents.step);
  const std::string context = "writing checkpoint " + in_quotes(final_dir);
  if (keep < 1) return invalid_argument(context + ": keep must be >= 1 (got " + std::to_string(keep) + ")");
  if (contents.step < 0) {
    return invalid_argument(context + ": step must be >= 0 (got " + std::to_string(contents.step) + ")");
  }
  if (contents.model == nullptr) return invalid_argument(context + ": no model given");

  // The copied config.json is what loads the saved weights: it must describe them.
  const fs::path source_config = contents.model_source / kConfigFile;
  auto config = Qwen2Config::load(source_config);
  if (!config.ok()) return config.status().with_context(context + ": the base model's config");
  const std::string differences =
      config_differences(*config, in_quotes(source_config), contents.model->config(), "the model being saved");
  if (!differences.empty()) return invalid_argument(context + ": config does not match: " + differences);

  Status written = write_and_commit(folder, final_dir, contents);
  if (!written.ok()) return written.with_context(context);
  remove_old_checkpoints(folder, final_dir, keep);
  return {};
}

Expected<std::vector<fs::path>> set_aside_incomplete_checkpoints(const fs::path& run_dir, int64_t after_step) {
  const fs::path folder = run_dir / kCheckpointsFolder;
  std::vector<fs::path> moved;
  std::error_code error;
  if (!fs::exists(folder, error)) return moved;
  auto steps = list_step_folders(folder);
  if (!steps.ok()) return steps.status();
  for (const auto& [step, dir] : *steps) {
    std::error_code ignored;
    if (step <= after_step || fs::is_regular_file(dir / kStateFile, ignored)) continue;
    fs::path aside = folder / ("incomplete-" + dir.filename().string());
    for (int n = 2; fs::exists(aside, ignored); ++n) aside = folder / ("incomplete-" + dir.filename().string() + "-" + std::to_string(n));
    fs::rename(dir, aside, error);
    if (error) return io_error("cannot move the incomplete checkpoint " + in_quotes(dir) + " aside: " + error.message());
    moved.push_back(aside);
  }
  return moved;
}

Expected<std::optional<fs::path>> latest_checkpoint(const fs::path& run_dir) {
  const fs::path folder = run_dir / kCheckpointsFolder;
  std::error_code error;
  if (!fs::exists(folder, error)) {
    if (error) return io_error("cannot read " + in_quotes(folder) + ": " + error.message());
    return std::optional<fs::path>();
  }
  auto steps = list_step_folders(folder);
  if (!steps.ok()) return steps.status();
  for (const auto& [step, dir] : *steps) {
    std::error_code ignored;
    // state.json is written last: without it the folder was not made by write_checkpoint.
    if (fs::is_regular_file(dir / kStateFile, ignored)) return std::optional<fs::path>(dir);
  }
  return std::optional<fs::path>();
}

Expected<LoadedCheckpoint> load_checkpoint(const fs::path& dir, const Qwen2Config& expected) {
  const std::string context = "checkpoint " + in_quotes(dir);
  const auto fail = [&](StatusCode code, const std::string& what) { return Status(code, context + ": " + what); };

  std::error_code error;
  if (!fs::is_directory(dir, error)) return fail(StatusCode::kNotFound, "no such folder");

  // ---- state.json ----
  auto state_text = read_json_file(dir / kStateFile);
  if (!state_text.ok()) {
    if (state_text.status().code() == StatusCode::kNotFound) {
      return fail(StatusCode::kNotFound, "state.json is missing (an incomplete or foreign folder)");
    }
    return fail(state_text.status().code(),
                "state.json is unreadable (" + state_text.status().message() + ")");
  }
  const Json& state = *state_text;
  const std::string origin = "state.json";
  auto step = required_field<int64_t>(state, "step", origin);
  if (!step.ok()) return step.status().with_context(context);
  if (*step < 0) return fail(StatusCode::kInvalidArgument, "state.json: step must be >= 0 (got " + std::to_string(*step) + ")");
  if (!state.contains("state")) return fail(StatusCode::kInvalidArgument, "state.json: missing field 'state'");
  const auto files = state.find("files");
  if (files == state.end() || !files->is_object()) {
    return fail(StatusCode::kInvalidArgument, "state.json: field 'files' must be an object of {bytes, crc32}");
  }
  for (const char* name : kRequiredFiles) {
    if (!files->contains(name)) {
      return fail(StatusCode::kInvalidArgument, std::string("state.json does not list ") + name);
    }
  }

  // ---- every listed file: present, same size, same checksum ----
  for (const auto& [name, entry] : files->items()) {
    const std::string where = "state.json: files." + name;
    if (name.empty() || name == "." || name == ".." || name == kStateFile ||
        name.find('/') != std::string::npos) {
      return fail(StatusCode::kInvalidArgument, where + ": not a file name inside the checkpoint");
    }
    auto bytes = required_field<int64_t>(entry, "bytes", where);
    if (!bytes.ok()) return bytes.status().with_context(context);
    auto crc_text = required_field<std::string>(entry, "crc32", where);
    if (!crc_text.ok()) return crc_text.status().with_context(context);

    auto actual = checksum_file(dir / name);
    if (!actual.ok()) {
      if (actual.status().code() == StatusCode::kNotFound) {
        return fail(StatusCode::kNotFound, name + " is missing");
      }
      return actual.status().with_context(context);
    }
    if (actual->bytes != static_cast<uint64_t>(*bytes)) {
      return fail(StatusCode::kInvalidArgument,
                  name + " is corrupt (" + std::to_string(actual->bytes) + " bytes, state.json says " +
                      std::to_string(*bytes) + ")");
    }
    if (crc32_hex(actual->crc) != *crc_text) {
      return fail(StatusCode::kInvalidArgument, name + " is corrupt (checksum mismatch: crc32 " +
                                                    crc32_hex(actual->crc) + ", state.json says " +
                                                    *crc_text + ")");
    }
  }

  // ---- the model it belongs to ----
  auto config = Qwen2Config::load(dir / kConfigFile);
  if (!config.ok()) return config.status().with_context(context);
  const std::string differences = config_differences(*config, "the checkpoint", expected, "the run's model");
  if (!differences.empty()) {
    return fail(StatusCode::kInvalidArgument, "config.json does not match the run's model: " + differences);
  }

  auto optimizer = read_safetensors(dir / kOptimizerFile);
  if (!optimizer.ok()) return optimizer.status().with_context(context + ": " + kOptimizerFile);

  LoadedCheckpoint loaded;
  loaded.dir = dir;
  loaded.step = *step;
  loaded.optimizer = std::move(optimizer).value();
  loaded.state = state.at("state");
  return loaded;
}

}  // namespace torl::model
