// Writing a file so that a reader (or a crash) never sees half of it: the bytes go to FILE.tmp, which
// is then renamed over FILE. Any thread; two writers of one file must not race.
#pragma once

#include <filesystem>
#include <string_view>

#include "common/status.hpp"

namespace torl {

// Writes `bytes` to `file` (replacing it) or says what failed, naming the file; a full disk leaves the
// old file as it was and no FILE.tmp behind.
Status write_file_atomically(const std::filesystem::path& file, std::string_view bytes);

}  // namespace torl
