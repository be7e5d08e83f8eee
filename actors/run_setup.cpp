#include "actors/run_setup.hpp"

#include <algorithm>
#include <filesystem>
#include <iomanip>

#include "actors/dataset.hpp"
#include "config/load.hpp"

namespace torl::actors {

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

Expected<std::vector<actors::RolloutJob>> eval_jobs(const config::Config& config, const model::Tokenizer& tokenizer,
                                                    int64_t first_id, std::vector<DatasetRow>& rows) {
  std::vector<actors::RolloutJob> jobs;
  for (const auto& path : config.data.eval_files) {
    auto problems = actors::load_problems(path, config.data, config.eval.max_problems);
    if (!problems) return problems.status();
    DatasetRow row;
    row.name = std::filesystem::path(path).stem().string();
    for (const actors::Problem& problem : *problems) {
      const auto prompt = tokenizer.encode(actors::format_prompt(config.data.prompt_template, problem.problem));
      if (static_cast<int64_t>(prompt.size()) > config.data.max_prompt_tokens) {
        ++row.skipped;
        continue;
      }
      ++row.problems;
      for (int sample = 0; sample < config.eval.samples; ++sample) {
        actors::RolloutJob job;
        job.id = first_id + static_cast<int64_t>(jobs.size());
        job.dataset = row.name;
        job.problem = problem.index;
        job.problem_id = problem.id;
        job.sample = sample;
        job.seed = static_cast<uint64_t>(config.run.seed) * 1000003ULL + static_cast<uint64_t>(jobs.size());
        job.prompt = prompt;
        job.gold_answer = problem.answer;
        job.sampling = {config.eval.temperature, config.eval.top_p, 0};
        jobs.push_back(std::move(job));
      }
    }
    rows.push_back(row);
  }
  return jobs;
}

void count(std::vector<DatasetRow>& rows, const actors::Trajectory& t) {
  auto row = std::find_if(rows.begin(), rows.end(), [&](const DatasetRow& r) { return r.name == t.job.dataset; });
  if (row == rows.end()) return;
  ++row->samples;
  row->correct += t.score && t.score->outcome == rewards::Outcome::kCorrect;
  row->with_tool += !t.tool_calls.empty();
  row->tool_calls += static_cast<int64_t>(t.tool_calls.size());
  row->tool_errors += t.tool_errors();
  row->response_tokens += static_cast<int64_t>(t.response.size());
}

void print_table(const std::vector<DatasetRow>& rows, std::ostream& out) {
  out << "| data set | problems | samples | accuracy | tool calls / answer | tool error rate | response tokens |\n"
      << "|---|---|---|---|---|---|---|\n";
  for (const DatasetRow& r : rows) {
    const Json j = to_json(r);
    out << "| " << r.name << " | " << r.problems << (r.skipped ? " (+" + std::to_string(r.skipped) + " too long)" : "")
        << " | " << r.samples << " | " << std::fixed << std::setprecision(3) << j["accuracy"].get<double>() << " | "
        << std::setprecision(2) << j["tool_calls_per_answer"].get<double>() << " | " << std::setprecision(3)
        << j["tool_error_rate"].get<double>() << " | " << std::setprecision(1) << j["response_tokens"].get<double>()
        << " |\n";
  }
}

Json to_json(const DatasetRow& r) {
  const double n = std::max<double>(1, static_cast<double>(r.samples));
  return {{"name", r.name},
          {"problems", r.problems},
          {"samples", r.samples},
          {"skipped", r.skipped},
          {"accuracy", static_cast<double>(r.correct) / n},
          {"tool_use_rate", static_cast<double>(r.with_tool) / n},
          {"tool_calls_per_answer", static_cast<double>(r.tool_calls) / n},
          {"tool_error_rate", r.tool_calls ? static_cast<double>(r.tool_errors) / static_cast<double>(r.tool_calls) : 0.0},
          {"response_tokens", static_cast<double>(r.response_tokens) / n}};
}

}  // namespace torl::actors
