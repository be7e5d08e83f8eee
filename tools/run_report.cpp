#include "tools/run_report.hpp"

#include <fstream>
#include <iomanip>
#include <map>

#include "common/json.hpp"
#include "common/plot.hpp"

namespace torl::tools {
namespace {

// The records of a JSONL file that has a "step"; unreadable lines are skipped.
std::vector<Json> read_steps(const std::filesystem::path& file) {
  std::vector<Json> records;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    Json parsed = Json::parse(line, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("step")) records.push_back(std::move(parsed));
  }
  return records;
}

double number(const Json& record, const char* key) {
  const auto it = record.find(key);
  return it != record.end() && it->is_number() ? it->get<double>() : std::nan("");
}

plot::Series series_of(const std::vector<Json>& records, const std::string& name, const char* key) {
  plot::Series s{name, {}, {}};
  for (const Json& r : records) {
    s.x.push_back(number(r, "step"));
    s.y.push_back(number(r, key));
  }
  return s;
}

}  // namespace

void print_before_after(const std::filesystem::path& run_dir, std::ostream& out) {
  const std::vector<Json> evals = read_steps(run_dir / "eval.jsonl");
  if (evals.size() < 2) return;
  const Json &first = evals.front(), &last = evals.back();
  out << "| eval set | step | accuracy | tool-use rate | tool error rate | response tokens |\n"
      << "|---|---|---|---|---|---|\n";
  std::ostringstream ratios;
  for (const Json& before : first.value("datasets", Json::array())) {
    const std::string name = before.value("name", "?");
    for (const Json& after : last.value("datasets", Json::array())) {
      if (after.value("name", "") != name) continue;
      for (const auto& [record, row] : {std::pair{&first, &before}, std::pair{&last, &after}}) {
        out << "| " << name << " | " << record->value("step", int64_t{0}) << std::fixed << std::setprecision(3) << " | "
            << number(*row, "accuracy") << " | " << number(*row, "tool_use_rate") << " | "
            << number(*row, "tool_error_rate") << " | " << std::setprecision(1) << number(*row, "response_tokens")
            << " |\n";
      }
      const double a = number(before, "accuracy"), b = number(after, "accuracy");
      ratios << std::fixed << std::setprecision(3) << name << ": accuracy " << a << " -> " << b;
      if (a > 0) ratios << " (x" << std::setprecision(2) << b / a << ")";
      ratios << std::setprecision(3) << ", tool-use rate " << number(before, "tool_use_rate") << " -> "
             << number(after, "tool_use_rate") << "\n";
    }
  }
  out << ratios.str();
}

Status write_run_plot(const std::filesystem::path& run_dir) {
  const std::vector<Json> steps = read_steps(run_dir / "metrics.jsonl");
  if (steps.empty()) return invalid_argument("'" + (run_dir / "metrics.jsonl").string() + "' has no step to plot");
  std::vector<plot::Panel> panels;
  panels.push_back({"reward and accuracy per training step", "step",
                    {series_of(steps, "reward (mean)", "reward/mean"), series_of(steps, "accuracy", "reward/accuracy")},
                    std::nullopt, std::nullopt});
  panels.push_back({"tool-use rate per training step (trajectories with a call)", "step",
                    {series_of(steps, "tool-use rate", "tool/use_rate")}, 0.0, 1.0});
  const std::vector<Json> evals = read_steps(run_dir / "eval.jsonl");
  if (!evals.empty()) {
    std::map<std::string, std::pair<plot::Series, plot::Series>> by_set;  // name -> accuracy, tool use
    for (const Json& e : evals) {
      for (const Json& row : e.value("datasets", Json::array())) {
        const std::string name = row.value("name", "?");
        auto& [acc, tool] = by_set.try_emplace(name, plot::Series{name + " accuracy", {}, {}},
                                               plot::Series{name + " tool-use rate", {}, {}}).first->second;
        acc.x.push_back(number(e, "step")), acc.y.push_back(number(row, "accuracy"));
        tool.x.push_back(number(e, "step")), tool.y.push_back(number(row, "tool_use_rate"));
      }
    }
    plot::Panel panel{"evals", "step", {}, 0.0, 1.0};
    for (auto& [name, pair] : by_set) {
      panel.series.push_back(std::move(pair.first));
      panel.series.push_back(std::move(pair.second));
    }
    panels.push_back(std::move(panel));
  }
  return plot::write_chart(run_dir / "plot.png", panels);
}

}  // namespace torl::tools
