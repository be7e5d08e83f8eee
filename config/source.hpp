// The raw layer under load_config: YAML files (with includes) and `--set` overrides merged into one
// flat map from dotted keys to YAML values, each remembering the file and line it came from. It knows
// nothing of the schema; load.cpp checks the result against Config. Internal to config/.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/load.hpp"

namespace torl::config {

struct SourceValue {
  YAML::Node node;  // a scalar, a sequence or null (mappings are split into their keys)
  Origin origin;
};

class Source {
 public:
  // Reads `file` and, first, the files it includes. Problems go to `errors`; what could be read is
  // kept so that one pass reports as much as possible.
  void read_file(const std::filesystem::path& file, std::vector<Problem>& errors);

  // Applies one "a.b=c" override; the value is parsed as YAML ("[a, b]" is a list, "" an empty string).
  void apply_override(const std::string& text, std::vector<Problem>& errors);

  const std::map<std::string, SourceValue>& values() const { return values_; }
  const std::map<std::string, Origin>& mappings() const { return mappings_; }
  const Origin& top() const { return top_; }

 private:
  void read_file(const std::filesystem::path& file, std::vector<std::string>& stack,
                 std::vector<Problem>& errors);
  void merge_mapping(const YAML::Node& mapping, const std::string& prefix, const Origin& origin,
                     std::vector<Problem>& errors);
  void set_value(const std::string& key, const YAML::Node& node, const Origin& origin,
                 std::vector<Problem>& errors);
  void erase_below(const std::string& key);

  std::map<std::string, SourceValue> values_;  // leaves: "tool.max_calls" -> 2
  std::map<std::string, Origin> mappings_;     // mapping nodes: "tool" -> where it was opened
  Origin top_{"(no config file)"};             // the file given to load_config
};

}  // namespace torl::config
