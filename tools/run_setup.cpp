#include "tools/run_setup.hpp"

#include "config/load.hpp"

namespace torl::tools {

Expected<config::Config> load_run_config(const std::string& file, const std::vector<std::string>& sets) {
  config::LoadOptions options;
  options.overrides = sets;
  return config::load_config_or_error(file, options);
}

Expected<model::Tokenizer> load_run_tokenizer(const config::Config& config) {
  if (config.model.byte_level_tokenizer) return model::Tokenizer::byte_level({});
  auto tokenizer = model::Tokenizer::load(config.model.tokenizer.empty() ? config.model.path : config.model.tokenizer);
  if (!tokenizer) return tokenizer.status().with_context("model.tokenizer");
  return tokenizer;
}

}  // namespace torl::tools
