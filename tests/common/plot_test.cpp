#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <zlib.h>

#include "common/plot.hpp"
#include "common/png.hpp"
#include "tests/temp_dir.hpp"

namespace torl {
namespace {

uint32_t read_u32(const std::string& bytes, size_t at) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) value = value << 8 | static_cast<uint8_t>(bytes.at(at + i));
  return value;
}

struct Chunk {
  std::string type, data;
  bool crc_ok = false;
};

// Splits a PNG after its 8-byte signature into chunks, checking each CRC with zlib.
std::vector<Chunk> read_chunks(const std::string& png) {
  std::vector<Chunk> chunks;
  for (size_t at = 8; at + 12 <= png.size();) {
    const uint32_t length = read_u32(png, at);
    Chunk chunk{png.substr(at + 4, 4), png.substr(at + 8, length)};
    const auto* typed = reinterpret_cast<const Bytef*>(png.data() + at + 4);
    chunk.crc_ok = crc32(0, typed, 4 + length) == read_u32(png, at + 8 + length);
    chunks.push_back(chunk);
    at += 12 + length;
  }
  return chunks;
}

// Pixels of `color` in the columns [x0, x1) and rows [y0, y1).
int count_color(const Image& image, Rgb color, int x0, int x1, int y0, int y1) {
  int n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) n += image.get(x, y) == color;
  return n;
}
int count_color(const Image& image, Rgb color) {
  return count_color(image, color, 0, image.width, 0, image.height);
}

plot::Panel one_series(std::vector<double> x, std::vector<double> y) {
  return {.title = "reward", .x_label = "step", .series = {{"reward", std::move(x), std::move(y)}}};
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST_SUITE("common") {
  TEST_CASE("a PNG has the signature, an 8-bit RGB header and chunks whose CRCs verify") {
    const std::string png = encode_png(Image(7, 5));
    REQUIRE(png.size() > 8);
    CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
    const auto chunks = read_chunks(png);
    REQUIRE(chunks.size() == 3);
    CHECK(chunks[0].type == "IHDR");
    CHECK(chunks[1].type == "IDAT");
    CHECK(chunks[2].type == "IEND");
    for (const Chunk& chunk : chunks) CHECK_MESSAGE(chunk.crc_ok, chunk.type);
    const std::string& header = chunks[0].data;
    REQUIRE(header.size() == 13);
    CHECK(read_u32(header, 0) == 7);  // width
    CHECK(read_u32(header, 4) == 5);  // height
    CHECK(header[8] == 8);            // bit depth
    CHECK(header[9] == 2);            // colour type RGB
    CHECK(header.substr(10) == std::string(3, '\0'));  // deflate, filter method 0, no interlace
  }

  TEST_CASE("the IDAT inflates to the image's rows, each behind filter byte 0") {
    Image image(6, 4);
    for (int y = 0; y < image.height; ++y)
      for (int x = 0; x < image.width; ++x) {
        const auto byte = [](int v) { return static_cast<uint8_t>(v); };
        image.set(x, y, {byte(40 * x), byte(60 * y), byte(x ^ y)});
      }
    const auto chunks = read_chunks(encode_png(image));
    REQUIRE(chunks.size() == 3);
    const size_t row_bytes = 1 + 3 * image.width;
    std::string raw(image.height * row_bytes + 16, '\0');  // room to notice extra bytes
    uLongf raw_size = raw.size();
    REQUIRE(uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_size,
                       reinterpret_cast<const Bytef*>(chunks[1].data.data()), chunks[1].data.size()) == Z_OK);
    REQUIRE(raw_size == image.height * row_bytes);
    for (int y = 0; y < image.height; ++y) {
      CHECK(raw[y * row_bytes] == 0);
      CHECK(raw.compare(y * row_bytes + 1, row_bytes - 1,
                        std::string(image.rgb.begin() + y * (row_bytes - 1),
                                    image.rgb.begin() + (y + 1) * (row_bytes - 1))) == 0);
    }
    CHECK(image.get(5, 3) == Rgb{200, 180, 6});
  }

  TEST_CASE("write_png writes the encoded bytes and leaves no temporary file") {
    testing::TempDir dir;
    const Image image(3, 2, {1, 2, 3});
    REQUIRE(write_png(dir.path() / "a.png", image).ok());
    std::ifstream in(dir.path() / "a.png", std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    CHECK(bytes.str() == encode_png(image));
    CHECK_FALSE(std::filesystem::exists(dir.path() / "a.png.tmp"));
  }

  TEST_CASE("write_png to an unwritable path returns an error naming the path") {
    const Status status = write_png("/nonexistent-dir/chart.png", Image(2, 2));
    CHECK(status.code() == StatusCode::kIoError);
    CHECK(status.message().find("'/nonexistent-dir/chart.png'") != std::string::npos);
  }

  TEST_CASE("nice ticks step by 1, 2 or 5 times a power of ten") {
    const auto ticks = plot::nice_ticks(0, 1, 6);
    const std::vector<double> want = {0, 0.2, 0.4, 0.6, 0.8, 1};
    REQUIRE(ticks.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) CHECK(ticks[i] == doctest::Approx(want[i]).epsilon(1e-12));
    CHECK(plot::nice_ticks(3, 97, 5) == std::vector<double>{20, 40, 60, 80});
    CHECK(plot::nice_ticks(-0.3, 0.3, 10).size() == 7);  // step 0.1, both ends included
    CHECK(plot::nice_ticks(1, 1, 5).empty());
    CHECK(plot::nice_ticks(0, kNaN, 5).empty());
  }

  TEST_CASE("a rising series runs from the lower left to the upper right of the chart") {
    std::vector<double> x, y;
    for (int i = 0; i < 10; ++i) x.push_back(i), y.push_back(0.1 * i);
    const Image image = plot::render_chart({one_series(x, y)});
    REQUIRE(image.width == 900);
    REQUIRE(image.height == 300);
    const Rgb color = plot::series_color(0);
    const int w = image.width, h = image.height;
    CHECK(count_color(image, color, 0, w / 3, h / 2, h) > 0);
    CHECK(count_color(image, color, 0, w / 3, 0, h / 2) == 0);
    CHECK(count_color(image, color, 2 * w / 3, w, 0, h / 2) > 0);
    CHECK(count_color(image, color, 2 * w / 3, w, h / 2, h) == 0);
  }

  TEST_CASE("a non-finite value is a gap in the line") {
    std::vector<double> x, y;
    for (int i = 0; i <= 10; ++i) x.push_back(i), y.push_back(i >= 4 && i <= 6 ? kNaN : 0.5);
    const Image image = plot::render_chart({one_series(x, y)});
    const Rgb color = plot::series_color(0);
    CHECK(count_color(image, color, image.width / 2 - 20, image.width / 2 + 20, 0, image.height) == 0);
    CHECK(count_color(image, color, image.width / 5 - 20, image.width / 5 + 20, 0, image.height) > 0);
  }

  TEST_CASE("panels stack vertically and each series of a panel has its own colour") {
    plot::Panel both{.title = "compare", .x_label = "step",
                     .series = {{"a", {0, 1, 2}, {1, 2, 3}}, {"b", {0, 1, 2}, {3, 1, 2}}}};
    const Image image =
        plot::render_chart({one_series({0, 1}, {0, 1}), both}, {.width = 400, .panel_height = 200});
    REQUIRE(image.width == 400);
    REQUIRE(image.height == 400);
    CHECK(plot::series_color(0) != plot::series_color(1));
    CHECK(count_color(image, plot::series_color(0), 0, 400, 0, 200) > 0);
    CHECK(count_color(image, plot::series_color(1), 0, 400, 0, 200) == 0);
    CHECK(count_color(image, plot::series_color(1), 0, 400, 200, 400) > 0);
  }

  TEST_CASE("a single point is drawn as a dot") {
    const Image image = plot::render_chart({one_series({3}, {2})});
    CHECK(count_color(image, plot::series_color(0)) >= 9);
  }

  TEST_CASE("degenerate inputs render a chart") {
    const double big = std::numeric_limits<double>::max();
    plot::Panel bad_bounds = one_series({0, 1}, {0, 1});
    bad_bounds.y_min = 2, bad_bounds.y_max = -2;
    plot::Panel nan_bound = one_series({0, 1}, {0, 1});
    nan_bound.y_min = kNaN;
    const std::vector<plot::Panel> panels = {
        plot::Panel{},
        plot::Panel{.title = "empty series", .series = {{"none", {}, {}}}},
        one_series({0, 1, 2}, {5, 5, 5}),
        one_series({0, 1, 2}, {kNaN, kNaN, kNaN}),
        one_series({kInf, 1, 2}, {0, -kInf, 1}),
        one_series({0, 1, 2, 3}, {1, 2}),
        one_series({0, 1}, {-big, big}),
        one_series({0, 1}, {1e20, 1e20 + 1e5}),
        one_series({0, 1e-310}, {0, 1e-310}),
        bad_bounds,
        nan_bound,
        plot::Panel{.title = "tab\there, caf\xc3\xa9", .x_label = "~{}|`^"},
    };
    const Image image = plot::render_chart(panels, {.width = 200, .panel_height = 100});
    CHECK(image.width == 200);
    CHECK(image.height == 100 * static_cast<int>(panels.size()));
    CHECK(plot::render_chart({}).height == 300);  // no panels: one empty panel
  }

  TEST_CASE("write_chart writes a PNG of the rendered chart") {
    testing::TempDir dir;
    const std::vector<plot::Panel> panels = {one_series({0, 1, 2}, {0.2, 0.5, 0.4})};
    REQUIRE(plot::write_chart(dir.path() / "metrics.png", panels).ok());
    std::ifstream in(dir.path() / "metrics.png", std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    CHECK(bytes.str() == encode_png(plot::render_chart(panels)));
  }
}

}  // namespace
}  // namespace torl
