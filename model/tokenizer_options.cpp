#include "model/tokenizer_options.hpp"

namespace torl::model::detail {
namespace {

std::string show(const Json& value) { return value.dump(); }

bool is_null_or(const Json& object, const char* key, const Json& allowed) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() || *it == allowed;
}

Status unsupported(const std::string& origin, const std::string& field, const Json& value,
                   const std::string& supported) {
  return invalid_argument(origin + ": " + field + " " + show(value) + " is not supported (" +
                          supported + ")");
}

Status check_model(const Json& model, const std::string& origin, TokenizerOptions& options) {
  if (!model.is_object()) return invalid_argument(origin + ": model is missing or not an object");
  if (model.contains("type") && model["type"] != "BPE") {
    return unsupported(origin, "model.type", model["type"], "only BPE");
  }
  if (!is_null_or(model, "dropout", nullptr)) {
    return unsupported(origin, "model.dropout", model["dropout"], "only null");
  }
  if (!is_null_or(model, "unk_token", nullptr)) {
    return unsupported(origin, "model.unk_token", model["unk_token"], "only null");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!is_null_or(model, key, "")) {
      return unsupported(origin, std::string("model.") + key, model[key], "only \"\" or null");
    }
  }
  if (!is_null_or(model, "byte_fallback", false)) {
    return unsupported(origin, "model.byte_fallback", model["byte_fallback"], "only false");
  }
  if (model.contains("ignore_merges") && !model["ignore_merges"].is_null()) {
    if (!model["ignore_merges"].is_boolean()) {
      return invalid_argument(origin + ": model.ignore_merges must be a boolean");
    }
    options.ignore_merges = model["ignore_merges"].get<bool>();
  }
  return {};
}

Status check_byte_level(const Json& node, const std::string& origin, const std::string& field,
                        bool use_regex_allowed, bool& use_regex) {
  if (!is_null_or(node, "add_prefix_space", false)) {
    return unsupported(origin, field + ".add_prefix_space", node["add_prefix_space"], "only false");
  }
  use_regex = !node.contains("use_regex") || node["use_regex"] != false;
  if (use_regex && !use_regex_allowed) {
    return unsupported(origin, field + ".use_regex", true, "only false after a Split");
  }
  return {};
}

Status check_pre_tokenizer(const Json& root, const std::string& origin, TokenizerOptions& options) {
  const auto it = root.find("pre_tokenizer");
  if (it == root.end() || it->is_null()) {
    return invalid_argument(origin +
                            ": pre_tokenizer null is not supported (only ByteLevel, or a Sequence "
                            "of a Split regex and ByteLevel)");
  }
  const Json& pre = *it;
  const Json type = pre.value("type", Json());
  if (type == "ByteLevel") {
    bool use_regex = false;
    TORL_RETURN_IF_ERROR(check_byte_level(pre, origin, "pre_tokenizer", true, use_regex));
    if (!use_regex) {
      return unsupported(origin, "pre_tokenizer.use_regex", false, "only true without a Split");
    }
    options.split = SplitPattern::kGpt2;
    return {};
  }
  if (type != "Sequence") {
    return unsupported(origin, "pre_tokenizer.type", type, "only ByteLevel or Sequence");
  }
  const Json steps = pre.value("pretokenizers", Json::array());
  if (steps.size() != 2 || steps[0].value("type", Json()) != "Split" ||
      steps[1].value("type", Json()) != "ByteLevel") {
    return unsupported(origin, "pre_tokenizer.pretokenizers", Json(steps.size()),
                       "only [Split, ByteLevel]");
  }
  const Json& split = steps[0];
  const std::string field = "pre_tokenizer.pretokenizers[0]";
  const Json pattern = split.value("pattern", Json());
  if (!pattern.is_object() || !pattern.contains("Regex") || !pattern["Regex"].is_string()) {
    return unsupported(origin, field + ".pattern", pattern, "only a Regex");
  }
  options.split = detail::find_split_pattern(pattern["Regex"].get<std::string>());
  if (!options.split) {
    return invalid_argument(origin + ": " + field + ".pattern.Regex " + show(pattern["Regex"]) +
                            " differs from the supported ones (Qwen2, Llama 3 and GPT-2 "
                            "byte-level BPE)");
  }
  if (split.value("behavior", Json()) != "Isolated") {
    return unsupported(origin, field + ".behavior", split.value("behavior", Json()),
                       "only Isolated");
  }
  if (!is_null_or(split, "invert", false)) {
    return unsupported(origin, field + ".invert", split["invert"], "only false");
  }
  bool use_regex = false;
  return check_byte_level(steps[1], origin, "pre_tokenizer.pretokenizers[1]", false, use_regex);
}

Status check_added_tokens(const Json& root, const std::string& origin) {
  const auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return {};
  if (!it->is_array()) return invalid_argument(origin + ": added_tokens must be an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& token = (*it)[i];
    const std::string field = "added_tokens[" + std::to_string(i) + "]";
    if (!token.is_object() || !token.contains("id") || !token["id"].is_number_integer() ||
        token["id"].get<int64_t>() < 0 || token["id"].get<int64_t>() > kMaxId) {
      return invalid_argument(origin + ": " + field + ".id must be an integer in 0.." +
                              std::to_string(kMaxId));
    }
    if (!token.contains("content") || !token["content"].is_string() ||
        token["content"].get<std::string>().empty()) {
      return invalid_argument(origin + ": " + field + ".content must be a non-empty string");
    }
    for (const char* flag : {"single_word", "lstrip", "rstrip"}) {
      if (!is_null_or(token, flag, false)) {
        return unsupported(origin, field + "." + flag, token[flag], "only false");
      }
    }
  }
  return {};
}

Status check_options(const Json& root, const std::string& origin, TokenizerOptions& options) {
  for (const char* key : {"truncation", "padding"}) {
    if (!is_null_or(root, key, nullptr)) return unsupported(origin, key, root[key], "only null");
  }
  const Json normalizer = root.value("normalizer", Json());
  if (!normalizer.is_null()) {
    const Json type = normalizer.value("type", Json());
    if (type != "NFC") return unsupported(origin, "normalizer.type", type, "only NFC or null");
    options.normalize_nfc = true;
  }
  TORL_RETURN_IF_ERROR(check_pre_tokenizer(root, origin, options));
  const Json post = root.value("post_processor", Json());
  if (!post.is_null() && post.value("type", Json()) != "ByteLevel") {
    return unsupported(origin, "post_processor.type", post.value("type", Json()),
                       "only ByteLevel or null");
  }
  const Json decoder = root.value("decoder", Json());
  if (decoder.value("type", Json()) != "ByteLevel") {
    return unsupported(origin, "decoder.type", decoder.value("type", Json()), "only ByteLevel");
  }
  TORL_RETURN_IF_ERROR(check_added_tokens(root, origin));
  return check_model(root.value("model", Json()), origin, options);
}

}  // namespace

Expected<TokenizerOptions> check_tokenizer_options(const Json& root, const std::string& origin) {
  TokenizerOptions options;
  TORL_RETURN_IF_ERROR(check_options(root, origin, options));
  return options;
}

}  // namespace torl::model::detail
