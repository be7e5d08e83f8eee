#include "common/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

namespace torl::plot {
namespace {

// ---- A 5x7 bitmap font ----
// Printable ASCII 32..126. A glyph is its 7 rows packed into one integer, top row in the highest byte,
// bit 4 of a row = leftmost pixel; so every two hex digits are one row, e.g. 'A' = 0E 11 11 1F 11 11 11:
// .###. #...# #...# ##### #...# #...# #...#. Letters in kDescenders start at the x-height and draw two
// rows lower, so a line of text is 9 rows tall.
constexpr uint64_t kGlyphs[95] = {
    0x00000000000000, 0x04040404040004, 0x0A0A0000000000, 0x0A0A1F0A1F0A0A, 0x040F140E051E04,  //  !"#$
    0x18190204081303, 0x0C12140815120D, 0x04040000000000, 0x02040808080402, 0x08040202020408,  // %&'()
    0x0004150E150400, 0x0004041F040400, 0x000000000C0408, 0x0000001F000000, 0x00000000000C0C,  // *+,-.
    0x00010204081000, 0x0E11111111110E, 0x040C040404040E, 0x0E11010204081F, 0x1F02040201110E,  // /0123
    0x02060A121F0202, 0x1F101E0101110E, 0x0608101E11110E, 0x1F010204080808, 0x0E11110E11110E,  // 45678
    0x0E11110F01020C, 0x000C0C000C0C00, 0x000C0C000C0408, 0x02040810080402, 0x00001F001F0000,  // 9:;<=
    0x08040201020408, 0x0E110102040004, 0x0E11171517100E, 0x0E11111F111111, 0x1E11111E11111E,  // >?@AB
    0x0E11101010110E, 0x1E11111111111E, 0x1F10101E10101F, 0x1F10101E101010, 0x0E11101711110F,  // CDEFG
    0x1111111F111111, 0x0E04040404040E, 0x0702020202120C, 0x11121418141211, 0x1010101010101F,  // HIJKL
    0x111B1515111111, 0x11111915131111, 0x0E11111111110E, 0x1E11111E101010, 0x0E11111115120D,  // MNOPQ
    0x1E11111E141211, 0x0F10100E01011E, 0x1F040404040404, 0x1111111111110E, 0x11111111110A04,  // RSTUV
    0x1111111515150A, 0x11110A040A1111, 0x11110A04040404, 0x1F01020408101F, 0x0E08080808080E,  // WXYZ[
    0x00100804020100, 0x0E02020202020E, 0x040A1100000000, 0x0000000000001F, 0x08040000000000,  // \]^_`
    0x00000E010F110F, 0x1010161911111E, 0x00000E1010110E, 0x01010D1311110F, 0x00000E111F100E,  // abcde
    0x0609081C080808, 0x0F1111110F010E, 0x10101619111111, 0x04000C0404040E, 0x0200060202120C,  // fghij
    0x10101214181412, 0x0C04040404040E, 0x00001A15151515, 0x00001619111111, 0x00000E1111110E,  // klmno
    0x1E1111111E1010, 0x0F1111110F0101, 0x00001619101010, 0x00000F100E011E, 0x08081C08080906,  // pqrst
    0x0000111111130D, 0x00001111110A04, 0x0000111115150A, 0x0000110A040A11, 0x111111130D010E,  // uvwxy
    0x00001F0204081F, 0x02040408040402, 0x04040404040404, 0x08040402040408, 0x00000815020000,  // z{|}~
};
constexpr uint64_t kUnknownGlyph = 0x1F11111111111F;  // a box
constexpr std::string_view kDescenders = "gpqy";
constexpr int kGlyphWidth = 5, kGlyphHeight = 7, kAdvance = 6, kLineHeight = 9;

// ---- Colours and layout (pixels) ----
constexpr Rgb kBackground{255, 255, 255}, kInk{35, 35, 35}, kFrame{110, 110, 110}, kGrid{226, 226, 226};
constexpr Rgb kPalette[] = {{31, 96, 196},  {230, 114, 16}, {36, 150, 60},  {204, 40, 48},
                            {128, 78, 184}, {20, 160, 172}, {208, 70, 160}, {130, 90, 56}};
constexpr int kTitleScale = 2;
constexpr int kTitleTop = 8, kFrameTop = 36, kFrameBottomGap = 36, kFrameRightGap = 16;
constexpr int kInset = 5;  // data stays this far inside the frame

struct Rect {
  int left, top, right, bottom;  // inclusive
};

void fill_rect(Image& image, int x, int y, int w, int h, Rgb color) {
  for (int j = y; j < y + h; ++j)
    for (int i = x; i < x + w; ++i) image.set(i, j, color);
}

void fill(Image& image, const Rect& r, Rgb color) {
  fill_rect(image, r.left, r.top, r.right - r.left + 1, r.bottom - r.top + 1, color);
}

int text_width(std::string_view text, int scale = 1) {
  return text.empty() ? 0 : (kAdvance * static_cast<int>(text.size()) - 1) * scale;
}

// Draws `text` with the top-left corner of its first glyph at (x, y).
void draw_text(Image& image, int x, int y, std::string_view text, Rgb color, int scale = 1) {
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool known = c >= 32 && c <= 126;
    const uint64_t glyph = known ? kGlyphs[c - 32] : kUnknownGlyph;
    const int drop = known && kDescenders.find(ch) != std::string_view::npos ? 2 : 0;
    for (int row = 0; row < kGlyphHeight; ++row) {
      const auto bits = (glyph >> (8 * (kGlyphHeight - 1 - row))) & 0x1F;
      for (int col = 0; col < kGlyphWidth; ++col) {
        if ((bits >> (kGlyphWidth - 1 - col)) & 1) {
          fill_rect(image, x + col * scale, y + (row + drop) * scale, scale, scale, color);
        }
      }
    }
    x += kAdvance * scale;
  }
}

// Clips the segment (x0, y0)-(x1, y1) to `box` (Liang-Barsky); false when nothing of it is inside.
bool clip_segment(double& x0, double& y0, double& x1, double& y1, const Rect& box) {
  const double dx = x1 - x0, dy = y1 - y0;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {x0 - box.left, box.right - x0, y0 - box.top, box.bottom - y0};
  double t0 = 0, t1 = 1;
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0) {
      if (q[i] < 0) return false;
    } else if (p[i] < 0) {
      t0 = std::max(t0, q[i] / p[i]);
    } else {
      t1 = std::min(t1, q[i] / p[i]);
    }
  }
  if (t0 > t1) return false;
  x1 = x0 + t1 * dx, y1 = y0 + t1 * dy;
  x0 += t0 * dx, y0 += t0 * dy;
  return true;
}

// A 2-px-wide line (Bresenham, stamping 2x2 squares), clipped so that the stamps stay inside `box`.
void draw_line(Image& image, double x0, double y0, double x1, double y1, Rect box, Rgb color) {
  box.right -= 1, box.bottom -= 1;
  if (!std::isfinite(x0 + y0 + x1 + y1) || !clip_segment(x0, y0, x1, y1, box)) return;
  int x = static_cast<int>(std::lround(x0)), y = static_cast<int>(std::lround(y0));
  const int to_x = static_cast<int>(std::lround(x1)), to_y = static_cast<int>(std::lround(y1));
  const int dx = std::abs(to_x - x), dy = -std::abs(to_y - y);
  const int sx = x < to_x ? 1 : -1, sy = y < to_y ? 1 : -1;
  for (int err = dx + dy;;) {
    fill_rect(image, x, y, 2, 2, color);
    if (x == to_x && y == to_y) break;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x += sx;
    if (e2 <= dx) err += dx, y += sy;
  }
}

void draw_dot(Image& image, double cx, double cy, const Rect& box, Rgb color) {
  if (!std::isfinite(cx + cy)) return;
  const int x = static_cast<int>(std::lround(std::clamp(cx, -1e6, 1e6)));
  const int y = static_cast<int>(std::lround(std::clamp(cy, -1e6, 1e6)));
  for (int j = y - 3; j <= y + 3; ++j)
    for (int i = x - 3; i <= x + 3; ++i) {
      const bool inside = i >= box.left && i <= box.right && j >= box.top && j <= box.bottom;
      if (inside && (i - x) * (i - x) + (j - y) * (j - y) <= 7) image.set(i, j, color);
    }
}

struct Ticks {
  double step = 0;
  std::vector<double> values;
};

// The finest step 1, 2 or 5 x 10^k with at most `max_count` multiples in [lo, hi].
Ticks compute_ticks(double lo, double hi, int max_count) {
  Ticks ticks;
  if (!std::isfinite(lo) || !std::isfinite(hi) || !std::isfinite(hi - lo) || lo >= hi) return ticks;
  max_count = std::max(max_count, 2);
  double decade = std::pow(10.0, std::floor(std::log10((hi - lo) / max_count)));
  if (!(decade > 0)) return ticks;  // a range too small for doubles
  constexpr double kMultiples[3] = {1, 2, 5};
  constexpr double kSlack = 1e-9;  // so that lo and hi themselves count despite rounding
  for (int i = 0; ticks.step == 0; ++i) {
    if (i == 3) i = 0, decade *= 10;
    const double step = kMultiples[i] * decade;
    const double first = std::ceil(lo / step - kSlack), last = std::floor(hi / step + kSlack);
    if (last - first + 1 > max_count) continue;
    ticks.step = step;
    for (int k = 0; k <= static_cast<int>(last - first); ++k) ticks.values.push_back((first + k) * step);
  }
  return ticks;
}

std::string format_tick(double value, double step) {
  if (std::abs(value) < step * 1e-6) value = 0;  // not "-0.00" or "5.6e-17"
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  char text[32];
  if (decimals > 4 || std::abs(value) >= 1e6) {
    std::snprintf(text, sizeof text, "%g", value);
  } else {
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
  }
  return text;
}

// Makes an empty or inverted range drawable: centred on its middle, +-1 or +-10% of the middle.
void widen_if_empty(double& lo, double& hi) {
  if (hi > lo && std::isfinite(hi - lo)) return;
  const double mid = std::isfinite(lo + hi) ? (lo + hi) / 2 : 0;
  const double half = std::max(1.0, 0.1 * std::abs(mid));
  lo = mid - half, hi = mid + half;
}

// Maps data values to pixel coordinates: lo -> from, hi -> to.
struct Axis {
  double lo, hi;
  int from, to;
  double map(double v) const { return from + (v - lo) / (hi - lo) * (to - from); }
};

bool drawn(const Series& s, size_t i) {
  return i < std::min(s.x.size(), s.y.size()) && std::isfinite(s.x[i]) && std::isfinite(s.y[i]);
}

// A panel's data ranges and y ticks: what decides its left margin, which stacked panels share.
struct Scales {
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  bool has_data = false;
  Ticks y_ticks;
  std::vector<std::string> y_labels;
  int label_width = 0;  // of the widest y label
};

Scales compute_scales(const Panel& panel, const ChartOptions& options) {
  Scales c;
  for (const Series& s : panel.series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!drawn(s, i)) continue;
      c.x_lo = std::min(c.x_lo, s.x[i]), c.x_hi = std::max(c.x_hi, s.x[i]);
      c.y_lo = std::min(c.y_lo, s.y[i]), c.y_hi = std::max(c.y_hi, s.y[i]);
    }
  }
  c.has_data = c.x_lo <= c.x_hi;
  if (!c.has_data) c.x_lo = c.y_lo = 0, c.x_hi = c.y_hi = 1;
  widen_if_empty(c.x_lo, c.x_hi);
  widen_if_empty(c.y_lo, c.y_hi);
  const double pad = 0.05 * (c.y_hi - c.y_lo);
  c.y_lo = panel.y_min && std::isfinite(*panel.y_min) ? *panel.y_min : c.y_lo - pad;
  c.y_hi = panel.y_max && std::isfinite(*panel.y_max) ? *panel.y_max : c.y_hi + pad;
  widen_if_empty(c.y_lo, c.y_hi);
  const int plot_height = options.panel_height - kFrameTop - kFrameBottomGap;
  c.y_ticks = compute_ticks(c.y_lo, c.y_hi, std::max(2, plot_height / 32));
  for (const double v : c.y_ticks.values) {
    c.y_labels.push_back(format_tick(v, c.y_ticks.step));
    c.label_width = std::max(c.label_width, text_width(c.y_labels.back()));
  }
  return c;
}

// A short line in each series' colour, then its name: right-aligned on the title line when that fits,
// else one entry per row (as many as fit) in a box at the top right inside the frame.
void draw_legend(Image& image, const Panel& panel, const Rect& frame, int title_top) {
  constexpr int kSwatch = 14, kGap = 4, kSpacing = 14, kRowHeight = 12;
  int line_width = 0, name_width = 0;
  for (const Series& s : panel.series) {
    line_width += kSpacing + kSwatch + kGap + text_width(s.name);
    name_width = std::max(name_width, text_width(s.name));
  }
  const auto draw_entry = [&](int x, int y, size_t k) {
    fill_rect(image, x, y + 3, kSwatch, 2, series_color(k));
    draw_text(image, x + kSwatch + kGap, y, panel.series[k].name, kInk);
  };
  if (frame.left + text_width(panel.title, kTitleScale) + 24 + line_width <= frame.right) {
    const int y = title_top + (kTitleScale - 1) * kGlyphHeight;  // text bottoms in line with the title's
    int x = frame.right - line_width;
    for (size_t k = 0; k < panel.series.size(); ++k) {
      draw_entry(x + kSpacing, y, k);
      x += kSpacing + kSwatch + kGap + text_width(panel.series[k].name);
    }
    return;
  }
  const int fitting_rows = (frame.bottom - frame.top - 16) / kRowHeight;
  const int rows = std::min(static_cast<int>(panel.series.size()), fitting_rows);
  const Rect box{frame.right - 5 - (name_width + kSwatch + kGap + 12), frame.top + 5, frame.right - 5,
                 frame.top + 10 + kRowHeight * rows};
  fill(image, box, kFrame);
  fill(image, {box.left + 1, box.top + 1, box.right - 1, box.bottom - 1}, kBackground);
  for (int k = 0; k < rows; ++k) draw_entry(box.left + 6, box.top + 5 + kRowHeight * k, k);
}

// Draws one panel into the rows [top, top + panel_height) with the frame's left edge at `left`.
void draw_panel(Image& image, const Panel& panel, const Scales& c, int top, int left,
                const ChartOptions& options) {
  const Rect frame{left, top + kFrameTop, options.width - kFrameRightGap,
                   top + options.panel_height - kFrameBottomGap};
  const Ticks x_ticks = compute_ticks(c.x_lo, c.x_hi, std::max(2, (frame.right - frame.left) / 80));
  const Axis x_axis{c.x_lo, c.x_hi, frame.left + kInset, frame.right - kInset};
  const Axis y_axis{c.y_lo, c.y_hi, frame.bottom - kInset, frame.top + kInset};
  const Rect inside{frame.left + 1, frame.top + 1, frame.right - 1, frame.bottom - 1};

  // Title, grid lines, ticks and their labels, x label.
  draw_text(image, frame.left, top + kTitleTop, panel.title, kInk, kTitleScale);
  for (size_t i = 0; i < c.y_ticks.values.size(); ++i) {
    const int y = static_cast<int>(std::lround(y_axis.map(c.y_ticks.values[i])));
    if (y <= frame.top || y >= frame.bottom) continue;
    fill(image, {inside.left, y, inside.right, y}, kGrid);
    fill_rect(image, frame.left - 4, y, 4, 1, kFrame);
    const std::string& label = c.y_labels[i];
    draw_text(image, frame.left - 8 - text_width(label), y - kGlyphHeight / 2, label, kInk);
  }
  for (const double v : x_ticks.values) {
    const int x = static_cast<int>(std::lround(x_axis.map(v)));
    if (x <= frame.left || x >= frame.right) continue;
    fill(image, {x, inside.top, x, inside.bottom}, kGrid);
    fill_rect(image, x, frame.bottom + 1, 1, 4, kFrame);
    const std::string label = format_tick(v, x_ticks.step);
    draw_text(image, x - text_width(label) / 2, frame.bottom + 8, label, kInk);
  }
  draw_text(image, (frame.left + frame.right - text_width(panel.x_label)) / 2, frame.bottom + 21,
            panel.x_label, kInk);
  if (!c.has_data) {
    const std::string_view text = "no data";
    draw_text(image, (frame.left + frame.right - text_width(text)) / 2, (frame.top + frame.bottom) / 2 - 4,
              text, kFrame);
  }

  // The series, then the frame over their clipped ends.
  for (size_t k = 0; k < panel.series.size(); ++k) {
    const Series& s = panel.series[k];
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!drawn(s, i)) continue;
      const double x = x_axis.map(s.x[i]), y = y_axis.map(s.y[i]);
      if (drawn(s, i + 1)) {
        draw_line(image, x, y, x_axis.map(s.x[i + 1]), y_axis.map(s.y[i + 1]), inside, series_color(k));
      } else if (i == 0 || !drawn(s, i - 1)) {
        draw_dot(image, x, y, inside, series_color(k));
      }
    }
  }
  fill(image, {frame.left, frame.top, frame.right, frame.top}, kFrame);
  fill(image, {frame.left, frame.bottom, frame.right, frame.bottom}, kFrame);
  fill(image, {frame.left, frame.top, frame.left, frame.bottom}, kFrame);
  fill(image, {frame.right, frame.top, frame.right, frame.bottom}, kFrame);

  if (panel.series.size() > 1) draw_legend(image, panel, frame, top + kTitleTop);
}

}  // namespace

Rgb series_color(size_t index) { return kPalette[index % std::size(kPalette)]; }

std::vector<double> nice_ticks(double lo, double hi, int max_count) {
  return compute_ticks(lo, hi, max_count).values;
}

Image render_chart(const std::vector<Panel>& panels, const ChartOptions& options) {
  TORL_CHECK(options.width >= 200 && options.panel_height >= 100,
             "chart too small: width " + std::to_string(options.width) + ", panel_height " +
                 std::to_string(options.panel_height));
  const std::vector<Panel> empty(1);
  const auto& drawn_panels = panels.empty() ? empty : panels;
  Image image(options.width, options.panel_height * static_cast<int>(drawn_panels.size()), kBackground);
  std::vector<Scales> scales;
  int left = 40;  // one left margin for all panels, so that their frames line up
  for (const Panel& panel : drawn_panels) {
    scales.push_back(compute_scales(panel, options));
    left = std::max(left, scales.back().label_width + 18);
  }
  for (size_t i = 0; i < drawn_panels.size(); ++i) {
    const int top = static_cast<int>(i) * options.panel_height;
    draw_panel(image, drawn_panels[i], scales[i], top, left, options);
  }
  return image;
}

Status write_chart(const std::filesystem::path& file, const std::vector<Panel>& panels,
                   const ChartOptions& options) {
  return write_png(file, render_chart(panels, options));
}

}  // namespace torl::plot
