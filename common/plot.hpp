// Line charts as PNG images, with no dependency beyond zlib: `torl train` plots reward and tool-use
// rate per step into the run folder, `torl sweep` compares runs. A chart is a stack of panels, each
// with a frame (the frames of all panels line up), "nice" ticks (1/2/5 x 10^k) and grid lines on both
// axes, a title, an x label and, when it holds more than one series, a legend (on the title line, or
// boxed at the top right of the frame when it does not fit there). Text uses a built-in 5x7 bitmap
// font (printable ASCII; other characters draw as a box). Pure functions; safe from any thread.
//
//   plot::Panel reward{.title = "reward (mean per step)", .x_label = "step",
//                      .series = {{"reward", steps, rewards}}};
//   TORL_RETURN_IF_ERROR(plot::write_chart(run_dir / "metrics.png", {reward, tool_rate}));
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/png.hpp"
#include "common/status.hpp"

namespace torl::plot {

// One line. Points are (x[i], y[i]) for i < min(x.size(), y.size()), joined in order; a point whose x
// or y is not finite is a gap that breaks the line. A point with no drawn neighbour is a small dot.
struct Series {
  std::string name;
  std::vector<double> x, y;
};

struct Panel {
  std::string title;
  std::string x_label;
  std::vector<Series> series;
  // The y-axis range; an unset (or non-finite) bound comes from the data, padded by 5% of its range.
  // Points outside the range are clipped at the frame.
  std::optional<double> y_min, y_max;
};

struct ChartOptions {
  int width = 900;         // pixels; at least 200 (checked)
  int panel_height = 300;  // pixels per panel; at least 100 (checked)
};

// Renders the panels stacked vertically into a width x (panel_height * panels.size()) image; no panels
// render as one empty panel. Any data renders (no series, empty series, one point, all-equal or
// non-finite values): an axis with no finite data spans [0, 1], one with a single value v spans v +- 1
// (or v +- 10% of |v| when that is wider).
Image render_chart(const std::vector<Panel>& panels, const ChartOptions& options = {});

// render_chart, written as a PNG to `file` with write_png (atomic; errors name the file).
Status write_chart(const std::filesystem::path& file, const std::vector<Panel>& panels,
                   const ChartOptions& options = {});

// The colour of the i-th series of a panel (a fixed palette of 8, repeating).
Rgb series_color(size_t index);

// Tick values in [lo, hi], both ends included: the multiples of the finest step 1, 2 or 5 x 10^k that
// gives at most max(max_count, 2) ticks. Empty when lo >= hi or either is not finite.
std::vector<double> nice_ticks(double lo, double hi, int max_count);

}  // namespace torl::plot
