#include "common/files.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

namespace torl {

Status write_file_atomically(const std::filesystem::path& file, std::string_view bytes) {
  const std::filesystem::path temporary = file.string() + ".tmp";
  std::error_code ignored;
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      return io_error("writing '" + file.string() + "': cannot create '" + temporary.string() +
                      "': " + std::strerror(errno));
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::filesystem::remove(temporary, ignored);
      return io_error("writing '" + file.string() + "' failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temporary, file, ec);
  if (ec) {
    std::filesystem::remove(temporary, ignored);
    return io_error("writing '" + file.string() + "': " + ec.message());
  }
  return {};
}

}  // namespace torl
