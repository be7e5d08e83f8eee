#include "tools/sweep_plan.hpp"

#include <set>

#include <yaml-cpp/yaml.h>

#include "common/json.hpp"

namespace torl::tools {
namespace {

class Reader {
 public:
  explicit Reader(std::filesystem::path file) : file_(std::move(file)) {}

  Status error(const YAML::Node& node, const std::string& key, const std::string& message) const {
    const int line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
    return invalid_argument(file_.string() + (line > 0 ? ":" + std::to_string(line) : "") + ": " +
                            (key.empty() ? "" : key + ": ") + message);
  }

  // Flattens a map of overrides ("tool: {max_calls: 2}" or "tool.max_calls: 2") into "KEY=VALUE"s;
  // `skip` names a key of the map that is not an override ("name" in a run).
  Status overrides(const YAML::Node& map, const std::string& prefix, const std::string& where,
                   std::vector<std::string>& sets, const std::string& skip = "") const {
    if (!map.IsMap()) return error(map, where, "expected a map of config keys to values");
    for (const auto& item : map) {
      const std::string key = prefix + item.first.as<std::string>();
      if (prefix.empty() && key == skip) continue;
      if (item.second.IsMap()) {
        if (Status s = overrides(item.second, key + ".", where, sets); !s.ok()) return s;
      } else {
        sets.push_back(key + "=" + value_text(item.second));
      }
    }
    return Status();
  }

  static std::string value_text(const YAML::Node& value) {
    // a quoted scalar stays a string when --set parses it again ("a: b" must not become a map)
    if (value.IsScalar() && value.Tag() == "!") return Json(value.Scalar()).dump(-1, ' ', false, Json::error_handler_t::replace);
    if (value.IsScalar()) return value.Scalar();
    if (value.IsNull()) return "";
    YAML::Emitter out;
    out << YAML::Flow << value;
    return out.c_str();
  }

 private:
  std::filesystem::path file_;
};

std::string last_part(const std::string& key) { return key.substr(key.rfind('.') + 1); }

// {"tool.max_calls=2", "run.seed=1"} -> "max_calls=2,seed=1"; a key keeps its section when another
// key of the run ends the same way.
std::string label_of(const std::vector<std::string>& sets) {
  std::string label;
  for (const std::string& set : sets) {
    const size_t eq = set.find('=');
    std::string key = set.substr(0, eq);
    int same = 0;
    for (const std::string& other : sets) same += last_part(other.substr(0, other.find('='))) == last_part(key);
    if (same == 1) key = last_part(key);
    label += (label.empty() ? "" : ",") + key + "=" + set.substr(eq + 1);
  }
  for (char& c : label) {
    if (c == '/' || c == ' ' || c == '\\' || c == '"' || c == '\'') c = '_';
  }
  return label;
}

}  // namespace

bool metric_matches(const std::string& pattern, const std::string& key) {
  size_t p = 0, k = 0;
  while (p < pattern.size()) {
    if (pattern[p] == '*') {
      const size_t end = key.find('/', k);
      const std::string rest = pattern.substr(p + 1);
      for (size_t stop = k; stop <= (end == std::string::npos ? key.size() : end); ++stop) {
        if (metric_matches(rest, key.substr(stop))) return true;
      }
      return false;
    }
    if (k >= key.size() || pattern[p] != key[k]) return false;
    ++p, ++k;
  }
  return k == key.size();
}

Expected<SweepPlan> load_sweep(const std::filesystem::path& file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::BadFile&) {
    return not_found("cannot read sweep file '" + file.string() + "'");
  } catch (const YAML::Exception& e) {
    return invalid_argument(file.string() + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  const Reader reader(file);
  if (!root.IsMap()) return reader.error(root, "", "a sweep file is a map with base and grid or runs");
  SweepPlan plan;
  plan.name = file.stem().string();
  std::vector<std::vector<std::string>> grid_values;  // per key: "KEY=VALUE" choices
  bool has_grid = false, has_runs = false;
  try {
    for (const auto& item : root) {
      const std::string key = item.first.as<std::string>();
      const YAML::Node& value = item.second;
      if (key == "base") {
        if (!value.IsScalar() || value.Scalar().empty()) return reader.error(value, key, "expected a config file path");
        plan.base = file.parent_path() / value.Scalar();
      } else if (key == "name") {
        if (!value.IsScalar() || value.Scalar().empty() || value.Scalar().find('/') != std::string::npos) {
          return reader.error(value, key, "expected a folder name (no '/')");
        }
        plan.name = value.Scalar();
      } else if (key == "set") {
        if (Status s = reader.overrides(value, "", key, plan.sets); !s.ok()) return s;
      } else if (key == "grid") {
        has_grid = true;
        if (!value.IsMap() || value.size() == 0) return reader.error(value, key, "expected a map of config keys to lists of values");
        std::vector<std::string> flat;
        for (const auto& choice : value) {
          const std::string grid_key = choice.first.as<std::string>();
          if (!choice.second.IsSequence() || choice.second.size() == 0) {
            return reader.error(choice.second, "grid." + grid_key, "expected a non-empty list of values, e.g. [0, 1, 2]");
          }
          grid_values.emplace_back();
          for (const auto& v : choice.second) grid_values.back().push_back(grid_key + "=" + Reader::value_text(v));
        }
      } else if (key == "runs") {
        has_runs = true;
        if (!value.IsSequence() || value.size() == 0) return reader.error(value, key, "expected a non-empty list of runs");
        for (const auto& entry : value) {
          SweepRun run;
          if (Status s = reader.overrides(entry, "", "runs", run.sets, "name"); !s.ok()) return s;
          if (entry["name"]) {
            run.label = entry["name"].as<std::string>();
            if (run.label.empty() || run.label == "." || run.label == ".." || run.label.find('/') != std::string::npos) {
              return reader.error(entry["name"], "runs.name", "'" + run.label + "' is not a folder name");
            }
          }
          plan.runs.push_back(std::move(run));
        }
      } else if (key == "parallel") {
        plan.parallel = value.as<int>();
        if (plan.parallel < 1) return reader.error(value, key, "must be at least 1");
      } else if (key == "metrics") {
        if (!value.IsSequence()) return reader.error(value, key, "expected a list of summary keys, e.g. [eval/*/accuracy]");
        for (const auto& m : value) plan.metrics.push_back(m.as<std::string>());
      } else {
        return reader.error(item.first, key, "unknown key; a sweep file has base, name, set, grid, runs, parallel, metrics");
      }
    }
  } catch (const YAML::Exception& e) {
    return invalid_argument(file.string() + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (plan.base.empty()) return reader.error(root, "base", "missing: the config every run starts from");
  if (has_grid == has_runs) return reader.error(root, "", "give exactly one of grid (every combination) and runs (a list)");
  if (has_grid) {
    std::vector<size_t> at(grid_values.size(), 0);  // an odometer over the choices, last key fastest
    while (true) {
      SweepRun run;
      for (size_t k = 0; k < at.size(); ++k) run.sets.push_back(grid_values[k][at[k]]);
      plan.runs.push_back(std::move(run));
      size_t k = at.size();
      while (k > 0 && ++at[k - 1] == grid_values[k - 1].size()) at[--k] = 0;
      if (k == 0) break;
    }
  }
  std::set<std::string> labels;
  for (size_t i = 0; i < plan.runs.size(); ++i) {
    SweepRun& run = plan.runs[i];
    if (run.label.empty()) run.label = run.sets.empty() ? "run-" + std::to_string(i + 1) : label_of(run.sets);
    try {
      (void)Json(run.label).dump();
    } catch (const Json::exception&) {
      return reader.error(root, "runs", "run '" + run.label + "': a run name must be valid UTF-8");
    }
    if (!labels.insert(run.label).second) {
      return reader.error(root[has_grid ? "grid" : "runs"], has_grid ? "grid" : "runs",
                          "two runs are both named '" + run.label + "'; give each run its own name");
    }
  }
  return plan;
}

}  // namespace torl::tools
