// An RGB raster and a minimal PNG encoder for it (8-bit RGB, no interlace), on zlib. Used for the
// charts that `torl train` and `torl sweep` write into run folders (common/plot.hpp). Plain values and
// pure functions: an Image is owned by whoever made it; everything here is safe from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace torl {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // [height][width][3], row-major, top row first

  Image() = default;
  // A width x height image filled with `fill`; width and height must be >= 0 (checked).
  Image(int width, int height, Rgb fill = {255, 255, 255});

  bool contains(int x, int y) const { return x >= 0 && y >= 0 && x < width && y < height; }
  // Sets one pixel; a pixel outside the image is ignored, so drawing code need not clip.
  void set(int x, int y, Rgb color);
  // The pixel at (x, y), which must be inside the image (checked).
  Rgb get(int x, int y) const;
};

// The PNG file bytes of `image`: colour type 2 (RGB), bit depth 8, filter type 0 on every row, one
// IDAT chunk. The image must be non-empty and rgb.size() == 3 * width * height (checked).
std::string encode_png(const Image& image);

// Writes encode_png(image) to `file` through `file`.tmp and a rename, so a reader never sees half a
// file. On failure returns an io_error that names `file` and leaves no .tmp behind.
Status write_png(const std::filesystem::path& file, const Image& image);

}  // namespace torl
