// What torl eval and torl train both do before their work starts: read the config with its --set
// overrides, and open the tokenizer the config names.
#pragma once

#include <string>
#include <vector>

#include "common/status.hpp"
#include "config/config.hpp"
#include "model/tokenizer.hpp"

namespace torl::tools {

Expected<config::Config> load_run_config(const std::string& file, const std::vector<std::string>& sets);

// model.byte_level_tokenizer, else model.tokenizer, else the tokenizer.json in model.path. Errors start
// with the key.
Expected<model::Tokenizer> load_run_tokenizer(const config::Config& config);

}  // namespace torl::tools
