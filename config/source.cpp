#include "config/source.hpp"

#include <algorithm>

namespace torl::config {
namespace fs = std::filesystem;

namespace {

Origin origin_of(const std::string& file, const YAML::Mark& mark) {
  return {file, mark.is_null() ? 0 : mark.line + 1};
}

bool is_valid_key(const std::string& key) {
  if (key.empty() || key.front() == '.' || key.back() == '.') return false;
  if (key.find("..") != std::string::npos) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

}  // namespace

void Source::read_file(const fs::path& file, std::vector<Problem>& errors) {
  top_ = {file.string(), 0};
  std::vector<std::string> stack;
  read_file(file, stack, errors);
}

void Source::read_file(const fs::path& file, std::vector<std::string>& stack,
                       std::vector<Problem>& errors) {
  const std::string name = file.string();
  std::error_code ec;
  const std::string identity = fs::weakly_canonical(file, ec).string();
  if (std::find(stack.begin(), stack.end(), identity) != stack.end()) {
    std::string chain;
    for (const auto& f : stack) chain += f + " -> ";
    errors.push_back({Origin{name, 0}, "include", "include cycle: " + chain + identity});
    return;
  }
  if (!fs::is_regular_file(file, ec)) {
    const char* what = fs::exists(file, ec) ? "is not a regular file" : "does not exist";
    errors.push_back({Origin{name, 0}, "", std::string("config file ") + what});
    return;
  }

  YAML::Node root;
  try {
    root = YAML::LoadFile(name);
  } catch (const YAML::ParserException& e) {
    errors.push_back({origin_of(name, e.mark), "", "invalid YAML: " + e.msg});
    return;
  } catch (const YAML::Exception& e) {
    errors.push_back({Origin{name, 0}, "", std::string("cannot read config: ") + e.what()});
    return;
  }
  if (root.IsNull()) return;  // an empty file sets nothing
  if (!root.IsMap()) {
    errors.push_back({origin_of(name, root.Mark()), "",
                      "the top level must be a mapping of sections (run:, model:, ...)"});
    return;
  }

  // Includes first, so that this file's own keys win.
  stack.push_back(identity);
  for (const auto& item : root) {
    const YAML::Node& key = item.first;
    if (key.IsScalar() && key.Scalar() == "include") {
      const Origin at = origin_of(name, key.Mark());
      std::vector<YAML::Node> files;
      if (item.second.IsScalar()) {
        files.push_back(item.second);
      } else if (item.second.IsSequence()) {
        for (const auto& f : item.second) files.push_back(f);
      }
      if (files.empty() || !std::all_of(files.begin(), files.end(),
                                        [](const YAML::Node& f) { return f.IsScalar(); })) {
        errors.push_back({at, "include", "must be a file name or a list of file names"});
        continue;
      }
      for (const auto& f : files) {
        fs::path included = f.Scalar();
        if (included.is_relative()) included = file.parent_path() / included;
        const size_t before = errors.size();
        read_file(included, stack, errors);
        // Tell where a broken include was requested from.
        for (size_t i = before; i < errors.size(); ++i) {
          if (errors[i].origin.file == included.string() && errors[i].origin.line == 0) {
            errors[i].message += " (included from " + at.where() + ")";
          }
        }
      }
    }
  }
  stack.pop_back();
  merge_mapping(root, "", {name, 0}, errors);
}

void Source::merge_mapping(const YAML::Node& mapping, const std::string& prefix,
                           const Origin& origin, std::vector<Problem>& errors) {
  std::map<std::string, int> seen;  // key -> line, to report duplicates
  for (const auto& item : mapping) {
    // Values of a --set flag all come from the flag; values of a file from their own lines.
    const Origin at = origin.is_override ? origin : origin_of(origin.file, item.first.Mark());
    if (!item.first.IsScalar()) {
      errors.push_back({at, prefix, "keys must be plain names"});
      continue;
    }
    const std::string& name = item.first.Scalar();
    if (prefix.empty() && name == "include") continue;  // handled by read_file
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    auto [it, inserted] = seen.emplace(name, at.line);
    if (!inserted) {
      errors.push_back({at, key,
                        "duplicate key (first given at line " + std::to_string(it->second) + ")"});
      continue;
    }
    set_value(key, item.second, at, errors);
  }
}

void Source::set_value(const std::string& key, const YAML::Node& node, const Origin& origin,
                       std::vector<Problem>& errors) {
  if (node.IsMap()) {
    values_.erase(key);
    mappings_[key] = origin;
    merge_mapping(node, key, origin, errors);
    return;
  }
  erase_below(key);
  mappings_.erase(key);
  values_[key] = {node, origin};
}

void Source::erase_below(const std::string& key) {
  const std::string prefix = key + ".";
  auto erase_prefixed = [&](auto& map) {
    for (auto it = map.lower_bound(prefix); it != map.end() && it->first.rfind(prefix, 0) == 0;) {
      it = map.erase(it);
    }
  };
  erase_prefixed(values_);
  erase_prefixed(mappings_);
}

void Source::apply_override(const std::string& text, std::vector<Problem>& errors) {
  const Origin origin{"--set " + text, 0, true};
  const auto eq = text.find('=');
  if (eq == std::string::npos) {
    errors.push_back({origin, "", "expected KEY=VALUE, e.g. --set tool.max_calls=2"});
    return;
  }
  const std::string key = text.substr(0, eq);
  const std::string value = text.substr(eq + 1);
  if (!is_valid_key(key)) {
    errors.push_back({origin, key, "not a dotted key such as tool.max_calls"});
    return;
  }
  YAML::Node node;
  if (value.empty()) {
    node = YAML::Node(std::string());
  } else {
    try {
      node = YAML::Load(value);
    } catch (const YAML::Exception& e) {
      errors.push_back({origin, key, "value is not valid YAML: " + e.msg});
      return;
    }
  }
  // Open the parent mappings so that `--set tool.max_calls=2` reads like `tool: {max_calls: 2}`.
  for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
    const std::string parent = key.substr(0, dot);
    if (values_.count(parent)) values_.erase(parent);
    mappings_.emplace(parent, origin);
  }
  set_value(key, node, origin, errors);
}

}  // namespace torl::config
