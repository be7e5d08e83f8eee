#include "common/png.hpp"

#include <zlib.h>

#include "common/files.hpp"

namespace torl {

Image::Image(int width, int height, Rgb fill) : width(width), height(height) {
  TORL_CHECK(width >= 0 && height >= 0, "image size must not be negative");
  rgb.resize(3 * static_cast<size_t>(width) * height);
  for (size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = fill.r;
    rgb[i + 1] = fill.g;
    rgb[i + 2] = fill.b;
  }
}

void Image::set(int x, int y, Rgb color) {
  if (!contains(x, y)) return;
  uint8_t* p = &rgb[3 * (static_cast<size_t>(y) * width + x)];
  p[0] = color.r;
  p[1] = color.g;
  p[2] = color.b;
}

Rgb Image::get(int x, int y) const {
  TORL_CHECK(contains(x, y), "pixel (" + std::to_string(x) + ", " + std::to_string(y) + ") is outside the " +
                                 std::to_string(width) + "x" + std::to_string(height) + " image");
  const uint8_t* p = &rgb[3 * (static_cast<size_t>(y) * width + x)];
  return {p[0], p[1], p[2]};
}

namespace {

void append_u32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xFF));
}

// A chunk is: length of data, type, data, CRC-32 of type and data (all integers big-endian).
void append_chunk(std::string& out, const char type[4], const std::string& data) {
  append_u32(out, static_cast<uint32_t>(data.size()));
  const size_t type_at = out.size();
  out.append(type, 4);
  out += data;
  const auto* crc_input = reinterpret_cast<const Bytef*>(out.data() + type_at);
  append_u32(out, static_cast<uint32_t>(crc32(0, crc_input, static_cast<uInt>(4 + data.size()))));
}

}  // namespace

std::string encode_png(const Image& image) {
  TORL_CHECK(image.width > 0 && image.height > 0, "cannot encode an empty image as PNG");
  TORL_CHECK(image.rgb.size() == 3 * static_cast<size_t>(image.width) * image.height,
             "image pixel buffer does not match its size");

  // Scanlines: a filter-type byte (0 = none) followed by the row's RGB bytes.
  const size_t row_bytes = 3 * static_cast<size_t>(image.width);
  std::string raw;
  raw.reserve(image.height * (1 + row_bytes));
  for (int y = 0; y < image.height; ++y) {
    raw.push_back(0);
    raw.append(reinterpret_cast<const char*>(&image.rgb[y * row_bytes]), row_bytes);
  }
  uLongf packed_size = compressBound(raw.size());
  std::string packed(packed_size, '\0');
  const int rc = compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
                           reinterpret_cast<const Bytef*>(raw.data()), raw.size(), Z_DEFAULT_COMPRESSION);
  TORL_CHECK(rc == Z_OK, "zlib compress2 failed with code " + std::to_string(rc));
  packed.resize(packed_size);

  std::string header;
  append_u32(header, static_cast<uint32_t>(image.width));
  append_u32(header, static_cast<uint32_t>(image.height));
  header += {8, 2, 0, 0, 0};  // bit depth 8, colour type 2 (RGB), deflate, filter method 0, no interlace

  std::string png = "\x89PNG\r\n\x1a\n";
  append_chunk(png, "IHDR", header);
  append_chunk(png, "IDAT", packed);
  append_chunk(png, "IEND", "");
  return png;
}

Status write_png(const std::filesystem::path& file, const Image& image) {
  return write_file_atomically(file, encode_png(image));
}

}  // namespace torl
