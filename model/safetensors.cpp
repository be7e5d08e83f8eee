#include "model/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "common/json.hpp"

namespace torl::model {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swapping");

namespace fs = std::filesystem;

// ---- dtypes ----

struct DtypeInfo {
  const char* name;  // as written in the header
  torch::ScalarType type;
  size_t size_bytes;
};

constexpr DtypeInfo kDtypes[] = {
    {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2}, {"BF16", torch::kBFloat16, 2},
    {"F64", torch::kFloat64, 8}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* find_dtype(std::string_view name) {
  for (const auto& info : kDtypes) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

const DtypeInfo* find_dtype(torch::ScalarType type) {
  for (const auto& info : kDtypes) {
    if (type == info.type) return &info;
  }
  return nullptr;
}

std::string supported_dtype_names() {
  std::string names;
  for (const auto& info : kDtypes) {
    if (!names.empty()) names += ' ';
    names += info.name;
  }
  return names;
}

std::string format_shape(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string errno_text() { return std::strerror(errno); }

// ---- the mapping ----

// A read-only private mapping of a whole file; unmapped when the last tensor viewing it is freed.
class FileMapping {
 public:
  static Expected<std::shared_ptr<FileMapping>> open(const fs::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const bool missing = errno == ENOENT;
      const std::string message = "cannot open: " + errno_text();
      return missing ? not_found(message) : io_error(message);
    }
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      const std::string message = "cannot stat: " + errno_text();
      ::close(fd);
      return io_error(message);
    }
    if (!S_ISREG(info.st_mode)) {
      ::close(fd);
      return invalid_argument("not a regular file");
    }
    auto mapping = std::shared_ptr<FileMapping>(new FileMapping());
    mapping->size_ = static_cast<size_t>(info.st_size);
    if (mapping->size_ > 0) {
      void* data = ::mmap(nullptr, mapping->size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (data == MAP_FAILED) {
        const std::string message = "cannot mmap: " + errno_text();
        ::close(fd);
        return io_error(message);
      }
      mapping->data_ = static_cast<const uint8_t*>(data);
    }
    ::close(fd);  // the mapping stays valid without the descriptor
    return mapping;
  }

  ~FileMapping() {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  FileMapping() = default;

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// ---- header validation ----

// One header entry, validated against the data area.
struct Entry {
  std::string name;
  const DtypeInfo* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data area (after the header)
  uint64_t end = 0;
};

// A non-negative integer that fits in int64_t, or nullopt.
std::optional<uint64_t> as_count(const Json& value) {
  if (!value.is_number_integer()) return std::nullopt;
  if (value.is_number_unsigned()) {
    const auto count = value.get<uint64_t>();
    if (count > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return count;
  }
  const auto count = value.get<int64_t>();
  if (count < 0) return std::nullopt;
  return static_cast<uint64_t>(count);
}

Expected<Entry> parse_entry(const std::string& name, const Json& value, uint64_t data_size) {
  const std::string where = "tensor '" + name + "'";
  if (!value.is_object()) {
    return invalid_argument(where + ": expected a JSON object (got " + json_type_name(value) + ")");
  }
  Entry entry;
  entry.name = name;

  auto dtype = required_field<std::string>(value, "dtype", where);
  if (!dtype) return dtype.status();
  entry.dtype = find_dtype(*dtype);
  if (entry.dtype == nullptr) {
    return invalid_argument(where + ": unsupported dtype '" + *dtype +
                            "' (supported: " + supported_dtype_names() + ")");
  }

  const auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) {
    return invalid_argument(where + ": field 'shape' must be an array of non-negative integers");
  }
  // The byte count in 128 bits: a hostile shape cannot overflow it before we compare with the file.
  unsigned __int128 bytes = entry.dtype->size_bytes;
  for (const auto& dim : *shape) {
    const auto count = as_count(dim);
    if (!count) {
      return invalid_argument(where + ": field 'shape' must be an array of non-negative integers (got " +
                              shape->dump() + ")");
    }
    entry.shape.push_back(static_cast<int64_t>(*count));
    bytes *= *count;
    if (bytes > data_size) bytes = static_cast<unsigned __int128>(data_size) + 1;  // saturate
  }

  const auto offsets = value.find("data_offsets");
  std::optional<uint64_t> begin, end;
  if (offsets != value.end() && offsets->is_array() && offsets->size() == 2) {
    begin = as_count((*offsets)[0]);
    end = as_count((*offsets)[1]);
  }
  if (!begin || !end) {
    return invalid_argument(where + ": field 'data_offsets' must be [begin, end] with non-negative integers" +
                            (offsets == value.end() ? std::string(" (missing)") : " (got " + offsets->dump() + ")"));
  }
  entry.begin = *begin;
  entry.end = *end;
  const std::string offsets_text =
      "data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) + "]";
  if (entry.begin > entry.end || entry.end > data_size) {
    return invalid_argument(where + ": " + offsets_text + " lie outside the data area (" +
                            std::to_string(data_size) + " bytes)");
  }
  if (bytes != entry.end - entry.begin) {
    const std::string expected =
        bytes > data_size ? "more bytes than the file holds" : std::to_string(static_cast<uint64_t>(bytes)) + " bytes";
    return invalid_argument(where + ": " + offsets_text + " do not match " + entry.dtype->name + " " +
                            format_shape(entry.shape) + " (" + expected + ")");
  }
  return entry;
}

// A tensor over the mapping; the deleter holds the mapping until the last view is gone. Data that
// is not aligned to its element size (a header not padded to 8 bytes) is copied instead.
torch::Tensor make_tensor(const std::shared_ptr<FileMapping>& mapping, uint64_t data_start,
                          const Entry& entry) {
  const auto options = torch::TensorOptions().dtype(entry.dtype->type).device(torch::kCPU);
  const uint8_t* bytes = mapping->data() + data_start + entry.begin;
  const size_t count = entry.end - entry.begin;
  if (count == 0) return torch::empty(entry.shape, options);
  if (reinterpret_cast<uintptr_t>(bytes) % entry.dtype->size_bytes != 0) {
    auto tensor = torch::empty(entry.shape, options);
    std::memcpy(tensor.data_ptr(), bytes, count);
    return tensor;
  }
  return torch::from_blob(const_cast<uint8_t*>(bytes), entry.shape,
                          [mapping](void*) { /* the capture holds the mapping */ }, options);
}

Expected<TensorMap> read_mapped(const fs::path& file) {
  auto opened = FileMapping::open(file);
  if (!opened) return opened.status();
  const std::shared_ptr<FileMapping> mapping = std::move(opened).value();
  const size_t file_size = mapping->size();

  if (file_size < 8) {
    return invalid_argument("truncated file: " + std::to_string(file_size) +
                            " bytes, but the 8-byte header length alone needs 8");
  }
  uint64_t header_size = 0;
  std::memcpy(&header_size, mapping->data(), 8);
  if (header_size > file_size - 8) {
    return invalid_argument("header length " + std::to_string(header_size) +
                            " runs past the end of the file (" + std::to_string(file_size) +
                            " bytes); the file is truncated or not safetensors");
  }
  const std::string_view header_text(reinterpret_cast<const char*>(mapping->data()) + 8, header_size);
  auto header = parse_json(header_text, "header");
  if (!header) return header.status();
  if (!header->is_object()) {
    return invalid_argument("header: expected a JSON object (got " + json_type_name(*header) + ")");
  }

  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = file_size - data_start;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header->items()) {
    if (name == "__metadata__") continue;
    auto entry = parse_entry(name, value, data_size);
    if (!entry) return entry.status();
    entries.push_back(std::move(entry).value());
  }

  // No two tensors may share bytes (empty tensors occupy none).
  std::vector<const Entry*> by_offset;
  for (const auto& entry : entries) {
    if (entry.end > entry.begin) by_offset.push_back(&entry);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const Entry& before = *by_offset[i - 1];
    const Entry& after = *by_offset[i];
    if (after.begin < before.end) {
      return invalid_argument("tensors '" + before.name + "' and '" + after.name +
                              "' overlap: data_offsets [" + std::to_string(before.begin) + ", " +
                              std::to_string(before.end) + "] and [" + std::to_string(after.begin) +
                              ", " + std::to_string(after.end) + "]");
    }
  }

  TensorMap tensors;
  for (const auto& entry : entries) tensors.emplace(entry.name, make_tensor(mapping, data_start, entry));
  return tensors;
}

// ---- writing ----

// Writes all of `bytes` to `fd`, retrying short writes.
bool write_all(int fd, const void* bytes, size_t count) {
  const auto* next = static_cast<const uint8_t*>(bytes);
  while (count > 0) {
    const ssize_t written = ::write(fd, next, count);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    next += written;
    count -= static_cast<size_t>(written);
  }
  return true;
}

// One tensor to write, with its place in the data area.
struct Pending {
  const std::string* name;
  const torch::Tensor* tensor;  // any device and layout; copied to the CPU only when written
  const DtypeInfo* dtype;
  uint64_t bytes;
};

// Writes the prefix (length + header) and each tensor's bytes to a temporary file next to `file`,
// syncs it and renames it over `file`.
Status write_file(const fs::path& file, const std::string& prefix, const std::vector<Pending>& layout) {
  std::string temp = file.string() + ".tmp-XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) return io_error("cannot create a temporary file next to it: " + errno_text());
  ::fchmod(fd, 0644);  // mkstemp creates 0600; checkpoints are read by other tools and users
  auto discard = [&](Status status) {
    ::close(fd);
    ::unlink(temp.c_str());
    return status;
  };
  auto fail = [&](const std::string& what) {
    return discard(io_error(what + " '" + temp + "': " + errno_text()));
  };
  if (!write_all(fd, prefix.data(), prefix.size())) return fail("writing");
  for (const auto& item : layout) {
    // One tensor at a time on the CPU, so that saving a GPU model needs little host memory.
    torch::Tensor cpu;
    try {
      cpu = item.tensor->detach().to(torch::kCPU).contiguous();
    } catch (const std::exception& e) {
      return discard(io_error("tensor '" + *item.name + "': copying to the CPU failed: " + e.what()));
    }
    if (item.bytes > 0 && !write_all(fd, cpu.data_ptr(), item.bytes)) return fail("writing");
  }
  if (::fsync(fd) != 0) return fail("syncing");
  if (::close(fd) != 0) {
    const std::string message = "closing '" + temp + "': " + errno_text();
    ::unlink(temp.c_str());
    return io_error(message);
  }
  if (::rename(temp.c_str(), file.c_str()) != 0) {
    const std::string message = "renaming '" + temp + "': " + errno_text();
    ::unlink(temp.c_str());
    return io_error(message);
  }
  // Make the rename itself durable.
  const fs::path folder = file.has_parent_path() ? file.parent_path() : fs::path(".");
  const int dir_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return {};
}

Status write_checked(const fs::path& file, const TensorMap& tensors,
                     const std::map<std::string, std::string>& metadata) {
  std::vector<Pending> layout;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") return invalid_argument("a tensor may not be named '__metadata__'");
    if (!tensor.defined()) return invalid_argument("tensor '" + name + "' is undefined");
    const DtypeInfo* dtype = find_dtype(tensor.scalar_type());
    if (dtype == nullptr) {
      return invalid_argument("tensor '" + name + "': unsupported dtype " +
                              std::string(c10::toString(tensor.scalar_type())) +
                              " (supported: " + supported_dtype_names() + ")");
    }
    layout.push_back({&name, &tensor, dtype, static_cast<uint64_t>(tensor.numel()) * dtype->size_bytes});
  }
  // Data as the reference writer lays it out: largest element size first, then by name, without
  // gaps; with the 8-byte aligned data start every tensor is aligned to its element size, so
  // readers can view it in place.
  std::stable_sort(layout.begin(), layout.end(), [](const Pending& a, const Pending& b) {
    return a.dtype->size_bytes > b.dtype->size_bytes;
  });

  Json header = Json::object();  // keys are kept sorted by name
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& item : layout) {
    header[*item.name] = {{"dtype", item.dtype->name},
                          {"shape", item.tensor->sizes().vec()},
                          {"data_offsets", {offset, offset + item.bytes}}};
    offset += item.bytes;
  }

  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const Json::exception& e) {
    return invalid_argument(std::string("a tensor name or metadata value is not valid UTF-8: ") + e.what());
  }
  // The reference writer pads the header with spaces so that the data starts 8-byte aligned.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  std::string prefix(8, '\0');
  const uint64_t header_size = header_text.size();
  std::memcpy(prefix.data(), &header_size, 8);
  prefix += header_text;
  return write_file(file, prefix, layout);
}

}  // namespace

Expected<TensorMap> read_safetensors(const fs::path& file) {
  try {
    auto tensors = read_mapped(file);
    if (!tensors) return tensors.status().with_context("reading '" + file.string() + "'");
    return tensors;
  } catch (const std::exception& e) {
    return io_error("reading '" + file.string() + "': " + e.what());
  }
}

Expected<TensorMap> read_checkpoint(const fs::path& folder) {
  const fs::path single = folder / "model.safetensors";
  const fs::path index_file = folder / "model.safetensors.index.json";
  std::error_code error;
  if (fs::exists(single, error)) return read_safetensors(single);
  if (!fs::exists(index_file, error)) {
    return not_found("loading checkpoint '" + folder.string() +
                     "': neither model.safetensors nor model.safetensors.index.json is there");
  }
  const std::string context = "loading checkpoint '" + folder.string() + "'";

  auto index = read_json_file(index_file);
  if (!index) return index.status().with_context(context);
  const std::string index_name = index_file.string();
  if (!index->is_object() || !index->contains("weight_map") || !(*index)["weight_map"].is_object()) {
    return invalid_argument(context + ": " + index_name + ": expected an object with a 'weight_map' object");
  }
  // shard file -> names the index places there
  std::map<std::string, std::vector<std::string>> shards;
  for (const auto& [name, shard] : (*index)["weight_map"].items()) {
    if (!shard.is_string()) {
      return invalid_argument(context + ": " + index_name + ": weight_map['" + name +
                              "'] must be a file name (got " + json_type_name(shard) + ")");
    }
    const auto shard_name = shard.get<std::string>();
    const fs::path shard_path(shard_name);
    if (shard_name.empty() || shard_path.is_absolute() || shard_path.has_parent_path()) {
      return invalid_argument(context + ": " + index_name + ": weight_map['" + name + "'] = '" +
                              shard_name + "' is not a file name in the checkpoint folder");
    }
    shards[shard_name].push_back(name);
  }
  if (shards.empty()) return invalid_argument(context + ": " + index_name + ": weight_map is empty");

  TensorMap tensors;
  for (const auto& [shard_name, names] : shards) {
    auto shard = read_safetensors(folder / shard_name);
    if (!shard) return shard.status().with_context(context);
    for (const auto& name : names) {
      if (!shard->count(name)) {
        return not_found(context + ": tensor '" + name + "' is listed in " + index_name + " under '" +
                         shard_name + "' but that shard does not hold it");
      }
    }
    for (auto& [name, tensor] : *shard) {
      if (tensors.count(name)) {
        return invalid_argument(context + ": tensor '" + name + "' appears in more than one shard (again in '" +
                                shard_name + "')");
      }
      tensors.emplace(name, std::move(tensor));
    }
  }
  return tensors;
}

Status write_safetensors(const fs::path& file, const TensorMap& tensors,
                         const std::map<std::string, std::string>& metadata) {
  try {
    return write_checked(file, tensors, metadata).with_context("writing '" + file.string() + "'");
  } catch (const std::exception& e) {
    return io_error("writing '" + file.string() + "': " + e.what());
  }
}

}  // namespace torl::model
