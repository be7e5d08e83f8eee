// load_config: walks the Config schema (each section's `visit`) over the merged Source, converting and
// checking every field, then reports keys that the schema does not know.
#include "config/load.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <regex>
#include <set>
#include <sstream>

#include "common/log.hpp"
#include "config/source.hpp"
#include "config/suggest.hpp"

namespace torl::config {
namespace fs = std::filesystem;

namespace {

std::string join_key(const std::string& prefix, const char* key) {
  return prefix.empty() ? std::string(key) : prefix + "." + key;
}

// How a YAML value reads in an error message.
std::string describe(const YAML::Node& node) {
  if (node.IsNull()) return "nothing";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  const bool quoted = node.Tag() == "!";
  return quoted ? "the string \"" + node.Scalar() + "\"" : "'" + node.Scalar() + "'";
}

bool is_plain_scalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() != "!"; }

template <class T>
constexpr bool kIsList = false;
template <class T>
constexpr bool kIsList<std::vector<T>> = true;

// ---- conversion of one YAML value to a field type; on failure, the text after "must be " ----

template <class T>
std::optional<std::string> convert(const YAML::Node& node, T& out);

template <>
std::optional<std::string> convert(const YAML::Node& node, bool& out) {
  static const std::set<std::string> kTrue = {"true", "True", "TRUE"};
  static const std::set<std::string> kFalse = {"false", "False", "FALSE"};
  if (is_plain_scalar(node) && kTrue.count(node.Scalar())) return out = true, std::nullopt;
  if (is_plain_scalar(node) && kFalse.count(node.Scalar())) return out = false, std::nullopt;
  return "true or false";
}

template <class T>
  requires std::is_integral_v<T>
std::optional<std::string> convert_integer(const YAML::Node& node, T& out) {
  if (!is_plain_scalar(node)) return "an integer";
  std::string text = node.Scalar();
  if (!text.empty() && text.front() == '+') text.erase(0, 1);
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) return "an integer that fits in " + std::to_string(sizeof(T) * 8) + " bits";
  if (ec != std::errc() || end != text.data() + text.size()) return "an integer";
  out = value;
  return std::nullopt;
}
template <>
std::optional<std::string> convert(const YAML::Node& node, int& out) { return convert_integer(node, out); }
template <>
std::optional<std::string> convert(const YAML::Node& node, int64_t& out) {
  return convert_integer(node, out);
}

template <>
std::optional<std::string> convert(const YAML::Node& node, double& out) {
  if (!is_plain_scalar(node)) return "a number";
  std::string text = node.Scalar();
  if (!text.empty() && text.front() == '+') text.erase(0, 1);
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return "a number";
  if (!std::isfinite(value)) return "a finite number";
  out = value;
  return std::nullopt;
}

template <>
std::optional<std::string> convert(const YAML::Node& node, std::string& out) {
  if (node.IsNull()) return out.clear(), std::nullopt;
  if (!node.IsScalar()) return "a string";
  out = node.Scalar();
  return std::nullopt;
}

template <>
std::optional<std::string> convert(const YAML::Node& node, Path& out) {
  std::string text;
  if (auto error = convert(node, text)) return "a path";
  out = text;
  return std::nullopt;
}

template <class Enum>
  requires std::is_enum_v<Enum>
std::optional<std::string> convert_enum(const YAML::Node& node, Enum& out) {
  std::string names;
  for (const auto& [value, name] : enum_names(Enum{})) {
    if (node.IsScalar() && node.Scalar() == name) return out = value, std::nullopt;
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  return "one of " + names;
}

// A list field also takes a single value, read as a list of one.
template <class T>
std::optional<std::string> convert_list(const YAML::Node& node, std::vector<T>& out) {
  std::vector<T> items;
  if (node.IsNull()) return out.clear(), std::nullopt;
  if (node.IsScalar()) {
    items.emplace_back();
    if (auto error = convert(node, items.back())) return "a list of " + *error + "s";
  } else if (node.IsSequence()) {
    for (const auto& element : node) {
      items.emplace_back();
      if (auto error = convert(element, items.back())) return "a list of " + *error + "s";
    }
  } else {
    return "a list";
  }
  out = std::move(items);
  return std::nullopt;
}

// The shortest text that reads back as the same double ("0.2", "1e-06", "3").
std::string format_number(double value) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, end);
}

// A double field as printed: like format_number, but "1.0" rather than "1" so it reads as a number.
std::string format_double(double value) {
  std::string text = format_number(value);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string describe_bounds(const Rule& rule) {
  std::string low, high;
  if (rule.min) low = std::string(rule.min_open ? "> " : ">= ") + format_number(*rule.min);
  if (rule.max) high = std::string(rule.max_open ? "< " : "<= ") + format_number(*rule.max);
  if (!low.empty() && !high.empty()) return low + " and " + high;
  return low.empty() ? high : low;
}

bool within(double value, const Rule& rule) {
  if (rule.min && (rule.min_open ? value <= *rule.min : value < *rule.min)) return false;
  if (rule.max && (rule.max_open ? value >= *rule.max : value > *rule.max)) return false;
  return true;
}

// Empty when `path` satisfies `kind`, else what is wrong with it.
std::string check_path(const Path& path, PathKind kind) {
  if (kind == PathKind::kAny || path.empty()) return {};
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  const std::string shown = "'" + path.string() + "'" +
                            (path.is_relative() ? " (looked in " + fs::current_path(ec).string() + ")" : "");
  if (!fs::exists(status)) return "path does not exist: " + shown;
  if (kind == PathKind::kFile && !fs::is_regular_file(status)) return "must be a file, but " + shown + " is not";
  if (kind == PathKind::kDir && !fs::is_directory(status)) return "must be a folder, but " + shown + " is not";
  return {};
}

// ---- the visitors ----

// Lists the schema's keys: every field, and every section.
class KeyLister {
 public:
  template <class Section>
  void section(const char* name, Section& section) {
    const std::string saved = prefix_;
    prefix_ = join_key(prefix_, name);
    sections.push_back(prefix_);
    section.visit(*this);
    prefix_ = saved;
  }
  template <class T>
  void operator()(const char* key, T&, Rule = {}) {
    fields.push_back(join_key(prefix_, key));
  }

  std::vector<std::string> fields;
  std::vector<std::string> sections;

 private:
  std::string prefix_;
};

// Reads each field from the Source and checks its rules.
class Loader {
 public:
  // `complete` is false when a file could not be read: missing keys are then a consequence, not news.
  Loader(const Source& source, bool complete, const LoadOptions& options, LoadResult& result)
      : source_(source), complete_(complete), require_paths_(options.require_paths),
        scope_(options.only_section.empty() ? "" : options.only_section + "."), result_(result) {}

  template <class Section>
  void section(const char* name, Section& section) {
    const std::string saved = prefix_;
    prefix_ = join_key(prefix_, name);
    used_.insert(prefix_);
    const auto leaf = source_.values().find(prefix_);
    if (leaf != source_.values().end() && !leaf->second.node.IsNull()) {
      error(leaf->second.origin, prefix_,
            "must be a mapping of keys (got " + describe(leaf->second.node) + ")");
    }
    section.visit(*this);
    prefix_ = saved;
  }

  template <class T>
  void operator()(const char* name, T& field, Rule rule = {}) {
    const std::string key = join_key(prefix_, name);
    used_.insert(key);
    if (key.rfind(scope_, 0) != 0) {
      rule.required = false;
      rule.path = PathKind::kAny;
    }
    const auto mapping = source_.mappings().find(key);
    if (mapping != source_.mappings().end()) {
      used_below_.insert(key);
      error(mapping->second, key, "must be " + expected_type<T>() + " (got a mapping)");
      return;
    }
    const auto found = source_.values().find(key);
    if (found == source_.values().end()) {
      if (rule.required && complete_) error(where_to_add(key), key, "required key is missing");
      return;
    }
    const SourceValue& value = found->second;
    T parsed{};
    if (auto expected = convert_field(value.node, parsed)) {
      error(value.origin, key, "must be " + *expected + " (got " + describe(value.node) + ")" +
                                   enum_hint<T>(value.node));
      return;
    }
    check_rule(parsed, rule, key, value);
    field = std::move(parsed);
  }

  // Keys present in the source that the schema did not use, reported once at their top-most level.
  void report_unknown_keys(const KeyLister& schema) {
    std::vector<std::string> candidates = schema.fields;
    candidates.insert(candidates.end(), schema.sections.begin(), schema.sections.end());
    std::vector<std::pair<std::string, Origin>> present;
    for (const auto& [key, origin] : source_.mappings()) present.emplace_back(key, origin);
    for (const auto& [key, value] : source_.values()) present.emplace_back(key, value.origin);
    std::sort(present.begin(), present.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::set<std::string> reported;
    for (const auto& [key, origin] : present) {
      if (used_.count(key) || under_any(key, reported) || under_any(key, used_below_)) continue;
      reported.insert(key);
      std::string message = "unknown key";
      if (auto suggestion = suggest_key(key, candidates)) message += " (did you mean " + *suggestion + "?)";
      error(origin, key, message);
    }
  }

  Origin origin_of(const std::string& key) const {
    if (auto it = source_.values().find(key); it != source_.values().end()) return it->second.origin;
    return where_to_add(key);
  }

  void error(const Origin& origin, const std::string& key, const std::string& message) {
    result_.errors.push_back({origin, key, message});
  }

 private:
  template <class T>
  static std::optional<std::string> convert_field(const YAML::Node& node, T& out) {
    if constexpr (std::is_enum_v<T>) return convert_enum(node, out);
    else if constexpr (kIsList<T>) return convert_list(node, out);
    else return convert(node, out);
  }

  template <class T>
  static std::string expected_type() {
    YAML::Node map(YAML::NodeType::Map);
    T unused{};
    return convert_field(map, unused).value_or("a value");
  }

  template <class T>
  static std::string enum_hint(const YAML::Node& node) {
    if constexpr (std::is_enum_v<T>) {
      if (node.IsScalar()) {
        std::vector<std::string> names;
        for (const auto& [value, name] : enum_names(T{})) names.emplace_back(name);
        if (auto near = suggest_word(node.Scalar(), names)) return "; did you mean " + *near + "?";
      }
    }
    return {};
  }

  template <class T>
  void check_rule(const T& value, const Rule& rule, const std::string& key, const SourceValue& given) {
    const Origin& origin = given.origin;
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      if (!within(static_cast<double>(value), rule)) {
        std::ostringstream got;
        got << value;
        error(origin, key, "must be " + describe_bounds(rule) + " (got " + got.str() + ")");
      }
    } else if constexpr (std::is_same_v<T, Path>) {
      check_path_rule(value, rule, key, origin);
    } else if constexpr (std::is_same_v<T, std::vector<Path>>) {
      if (rule.required && value.empty()) error(origin, key, "must list at least one file");
      for (size_t i = 0; i < value.size(); ++i) {
        check_path_rule(value[i], rule, key, element_origin(given, i));
      }
    }
  }

  void check_path_rule(const Path& path, const Rule& rule, const std::string& key,
                       const Origin& origin) {
    if (rule.required && path.empty()) {
      error(origin, key, "must not be empty");
      return;
    }
    const std::string problem = check_path(path, rule.path);
    if (problem.empty()) return;
    if (require_paths_) {
      error(origin, key, problem);
    } else {
      result_.warnings.push_back({origin, key, problem});
    }
  }

  // Where the i-th element of a list was written: its own line in a block list.
  static Origin element_origin(const SourceValue& list, size_t i) {
    if (list.origin.is_override || !list.node.IsSequence()) return list.origin;
    const YAML::Mark mark = list.node[i].Mark();
    if (mark.is_null()) return list.origin;
    return {list.origin.file, mark.line + 1};
  }

  // A missing key is reported where its section starts, or at the top of the main file.
  Origin where_to_add(const std::string& key) const {
    const auto dot = key.rfind('.');
    if (dot != std::string::npos) {
      auto it = source_.mappings().find(key.substr(0, dot));
      if (it != source_.mappings().end()) return it->second;
    }
    return source_.top();
  }

  static bool under_any(const std::string& key, const std::set<std::string>& parents) {
    for (const auto& parent : parents) {
      if (key.size() > parent.size() && key.compare(0, parent.size(), parent) == 0 &&
          key[parent.size()] == '.') {
        return true;
      }
    }
    return false;
  }

  const Source& source_;
  const bool complete_;
  const bool require_paths_;
  const std::string scope_;  // "tool." when only that section's requirements apply; "" for all
  LoadResult& result_;
  std::string prefix_;
  std::set<std::string> used_;        // keys the schema read
  std::set<std::string> used_below_;  // fields given as mappings: their sub-keys are not reported
};

// Rules that involve more than one field.
void check_consistency(const Config& config, Loader& loader) {
  // The run folder is run.output_dir/run.name: the name must stay one folder inside it.
  const std::string& name = config.run.name;
  const bool control = std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  if (name.empty() || name == "." || name == ".." || name.find_first_of("/\\") != std::string::npos || control) {
    loader.error(loader.origin_of("run.name"), "run.name",
                 "must name one folder inside run.output_dir: not empty, not '.' or '..', no '/' or '\\' (got '" +
                     name + "')");
  }
  static const std::regex kDevice(R"(cpu|cuda(:[0-9]+)?)");
  if (!std::regex_match(config.model.device, kDevice)) {
    loader.error(loader.origin_of("model.device"), "model.device",
                 "must be cpu, cuda or cuda:N (got '" + config.model.device + "')");
  }
  if (config.rollout.placement == Placement::kSeparate && !std::regex_match(config.rollout.device, kDevice)) {
    loader.error(loader.origin_of("rollout.device"), "rollout.device",
                 "placement separate needs the generators' device: cpu, cuda or cuda:N (got '" + config.rollout.device + "')");
  }
  if (config.rollout.placement == Placement::kColocated && !config.rollout.device.empty()) {
    loader.error(loader.origin_of("rollout.device"), "rollout.device",
                 "is for rollout.placement: separate; colocated generators run on model.device (got '" +
                     config.rollout.device + "')");
  }
  if (config.rollout.placement == Placement::kSeparate && config.rollout.cache_during_update == CacheDuringUpdate::kFree) {
    loader.error(loader.origin_of("rollout.cache_during_update"), "rollout.cache_during_update",
                 "free is for colocated placement: separate generators share no memory with the learner");
  }
  if (config.model.dtype == DType::kFloat16 && config.model.device == "cpu") {
    loader.error(loader.origin_of("model.dtype"), "model.dtype",
                 "float16 needs a CUDA device; use float32 or bfloat16 on cpu");
  }
  const auto dtype_name = [](DType dtype) -> std::string {
    for (const auto& [value, name] : enum_names(DType{})) {
      if (value == dtype) return name;
    }
    return "?";
  };
  if (config.train.master_dtype != DType::kFloat32 && config.train.master_dtype != config.model.dtype) {
    loader.error(loader.origin_of("train.master_dtype"), "train.master_dtype",
                 "must be float32 or model.dtype (got " + dtype_name(config.train.master_dtype) +
                     " with model.dtype " + dtype_name(config.model.dtype) + ")");
  }
  if (config.tool.backend == ToolBackend::kSandboxFusion &&
      config.tool.sandbox_fusion.url.rfind("http://", 0) != 0) {
    loader.error(loader.origin_of("tool.backend"), "tool.backend",
                 "sandbox_fusion needs tool.sandbox_fusion.url, an http:// URL (got '" +
                     config.tool.sandbox_fusion.url + "')");
  }
}

// ---- printing ----

std::string quote(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

class Printer {
 public:
  template <class Section>
  void section(const char* name, Section& section) {
    out_ << std::string(indent_, ' ') << name << ":\n";
    indent_ += 2;
    section.visit(*this);
    indent_ -= 2;
  }

  template <class T>
  void operator()(const char* key, const T& value, Rule = {}) {
    out_ << std::string(indent_, ' ') << key << ": " << format(value) << "\n";
  }

  std::string str() const { return out_.str(); }

 private:
  static std::string format(bool value) { return value ? "true" : "false"; }
  static std::string format(int value) { return std::to_string(value); }
  static std::string format(int64_t value) { return std::to_string(value); }
  static std::string format(double value) { return format_double(value); }
  static std::string format(const std::string& value) { return quote(value); }
  static std::string format(const Path& value) { return quote(value.string()); }
  template <class Enum>
    requires std::is_enum_v<Enum>
  static std::string format(Enum value) {
    for (const auto& [candidate, name] : enum_names(Enum{})) {
      if (candidate == value) return name;
    }
    return "?";
  }
  template <class T>
  static std::string format(const std::vector<T>& values) {
    std::string out = "[";
    for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + format(values[i]);
    return out + "]";
  }

  std::ostringstream out_;
  int indent_ = 0;
};

}  // namespace

std::string Problem::to_string() const {
  return where() + ": " + (key.empty() ? "" : key + ": ") + message;
}

Status LoadResult::status() const {
  if (errors.empty()) return Status();
  std::string message = std::to_string(errors.size()) + " problem" +
                        (errors.size() == 1 ? "" : "s") + " in the config:";
  for (const auto& problem : errors) message += "\n  " + problem.to_string();
  return invalid_argument(message);
}

LoadResult load_config(const fs::path& file, const LoadOptions& options) {
  LoadResult result;
  Source source;
  if (!file.empty()) source.read_file(file, result.errors);
  const bool complete = result.errors.empty();
  for (const auto& text : options.overrides) source.apply_override(text, result.errors);

  Config config;
  KeyLister schema;
  config.visit(schema);
  Loader loader(source, complete, options, result);
  config.visit(loader);
  loader.report_unknown_keys(schema);
  check_consistency(config, loader);

  auto by_place = [](const Problem& a, const Problem& b) {
    return std::tie(a.origin.is_override, a.origin.file, a.origin.line) <
           std::tie(b.origin.is_override, b.origin.file, b.origin.line);
  };
  std::stable_sort(result.errors.begin(), result.errors.end(), by_place);
  std::stable_sort(result.warnings.begin(), result.warnings.end(), by_place);
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

Expected<Config> load_config_or_error(const fs::path& file, const LoadOptions& options) {
  LoadResult result = load_config(file, options);
  for (const auto& warning : result.warnings) TORL_LOG(kWarn) << warning.to_string();
  if (!result.config) {
    // no file: the defaults and the --set overrides were checked
    return result.status().with_context(file.empty() ? std::string("the settings") : "loading config '" + file.string() + "'");
  }
  return std::move(*result.config);
}

std::string to_yaml(const Config& config) {
  Printer printer;
  Config copy = config;  // visit is shared with the loader and so not const
  copy.visit(printer);
  return printer.str();
}

std::vector<std::string> known_keys() {
  Config config;
  KeyLister lister;
  config.visit(lister);
  return lister.fields;
}

}  // namespace torl::config
