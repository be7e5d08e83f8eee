#include "actors/run_report.hpp"

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>

#include "common/files.hpp"
#include "common/json.hpp"
#include "common/plot.hpp"
#include "actors/train_metrics.hpp"

namespace torl::actors {
namespace {

plot::Series series_of(const std::vector<Json>& records, const std::string& name, const char* key) {
  plot::Series s{name, {}, {}};
  for (const Json& r : records) {
    s.x.push_back(json_number(r, "step"));
    s.y.push_back(json_number(r, key));
  }
  return s;
}

}  // namespace

void print_before_after(const std::filesystem::path& run_dir, std::ostream& out) {
  const std::vector<Json> evals = read_step_records(run_dir / "eval.jsonl");
  if (evals.size() < 2) return;
  const Json &first = evals.front(), &last = evals.back();
  out << "| eval set | step | accuracy | tool-use rate | tool error rate | response tokens |\n"
      << "|---|---|---|---|---|---|\n";
  std::ostringstream ratios;
  const auto row = [&](const Json& eval, const Json& set) {
    out << "| " << set.value("name", std::string("?")) << " | " << eval.value("step", int64_t{0}) << std::fixed
        << std::setprecision(3) << " | " << json_number(set, "accuracy") << " | " << json_number(set, "tool_use_rate") << " | "
        << json_number(set, "tool_error_rate") << " | " << std::setprecision(1) << json_number(set, "response_tokens") << " |\n";
  };
  const Json sets = last.value("datasets", Json::array());
  for (const Json& before : first.value("datasets", Json::array())) {
    const std::string name = before.value("name", std::string("?"));
    const auto after = std::find_if(sets.begin(), sets.end(),
                                    [&](const Json& s) { return s.value("name", std::string()) == name; });
    if (after == sets.end()) continue;
    row(first, before);
    row(last, *after);
    const double a = json_number(before, "accuracy"), b = json_number(*after, "accuracy");
    ratios << std::fixed << std::setprecision(3) << name << ": accuracy " << a << " -> " << b;
    if (a > 0) ratios << " (x" << std::setprecision(2) << b / a << ")";
    ratios << std::setprecision(3) << ", tool-use rate " << json_number(before, "tool_use_rate") << " -> "
           << json_number(*after, "tool_use_rate") << "\n";
  }
  out << ratios.str();
}

Json run_summary(const std::filesystem::path& run_dir, int64_t steps, double wall_s) {
  Json summary = {{"run/steps", steps}, {"run/wall_s", wall_s}};
  const std::vector<Json> records = read_step_records(run_dir / "metrics.jsonl");
  std::map<std::string, std::pair<double, int>> sums;  // key -> sum, count
  double step_s = 0;
  for (const Json& record : records) {
    for (const auto& [key, value] : record.items()) {
      if (key == "step" || !value.is_number()) continue;
      auto& [sum, n] = sums[key];
      sum += value.get<double>(), ++n;
    }
    step_s += json_number(record, "time/rollout_wait_s") + json_number(record, "time/train_s") + json_number(record, "time/publish_s");
  }
  if (!records.empty()) {
    summary["run/step_s_mean"] = step_s / static_cast<double>(records.size());
    for (const auto& [key, value] : records.back().items()) {
      if (key != "step" && value.is_number()) summary["train/" + key] = value;
    }
    for (const auto& [key, sum_n] : sums) summary["train_mean/" + key] = sum_n.first / sum_n.second;
  }
  const std::vector<Json> evals = read_step_records(run_dir / "eval.jsonl");
  if (!evals.empty()) {
    // evals may finish out of order (one can overlap the next steps): the last is the latest step's
    const Json& last = *std::max_element(evals.begin(), evals.end(), [](const Json& a, const Json& b) {
      return a["step"].get<int64_t>() < b["step"].get<int64_t>();
    });
    for (const Json& set : last.value("datasets", Json::array())) {
      const std::string name = set.value("name", std::string("?"));
      for (const auto& [field, value] : set.items()) {
        if (value.is_number()) summary["eval/" + name + "/" + field] = value;
      }
    }
  }
  return summary;
}

Status write_run_summary(const std::filesystem::path& run_dir, int64_t steps, double wall_s) {
  return write_file_atomically(run_dir / "summary.json", run_summary(run_dir, steps, wall_s).dump(2) + "\n");
}

Status write_run_plot(const std::filesystem::path& run_dir) {
  const std::vector<Json> steps = read_step_records(run_dir / "metrics.jsonl");
  if (steps.empty()) return invalid_argument("'" + (run_dir / "metrics.jsonl").string() + "' has no step to plot");
  std::vector<plot::Panel> panels;
  panels.push_back({"reward and accuracy per training step", "step",
                    {series_of(steps, "reward (mean)", "reward/mean"), series_of(steps, "accuracy", "reward/accuracy")},
                    std::nullopt, std::nullopt});
  panels.push_back({"tool-use rate per training step (trajectories with a call)", "step",
                    {series_of(steps, "tool-use rate", "tool/use_rate")}, 0.0, 1.0});
  const std::vector<Json> evals = read_step_records(run_dir / "eval.jsonl");
  if (!evals.empty()) {
    std::map<std::string, std::pair<plot::Series, plot::Series>> by_set;  // name -> accuracy, tool use
    for (const Json& e : evals) {
      for (const Json& row : e.value("datasets", Json::array())) {
        const std::string name = row.value("name", "?");
        auto& [acc, tool] = by_set.try_emplace(name, plot::Series{name + " accuracy", {}, {}},
                                               plot::Series{name + " tool-use rate", {}, {}}).first->second;
        acc.x.push_back(json_number(e, "step")), acc.y.push_back(json_number(row, "accuracy"));
        tool.x.push_back(json_number(e, "step")), tool.y.push_back(json_number(row, "tool_use_rate"));
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

}  // namespace torl::actors
