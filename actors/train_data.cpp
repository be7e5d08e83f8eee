#include "actors/train_data.hpp"

#include <numeric>

#include "common/random.hpp"

namespace torl::actors {

Expected<TrainData> TrainData::load(const config::Config& config, const model::Tokenizer& tokenizer) {
  if (config.data.train_files.empty()) return invalid_argument("data.train_files is empty: nothing to train on");
  TrainData data;
  for (const auto& path : config.data.train_files) {
    auto problems = load_problems(path, config.data, 0);
    if (!problems) return problems.status();
    for (Problem& problem : *problems) {
      const auto prompt = tokenizer.encode(format_prompt(config.data.prompt_template, problem.problem));
      if (static_cast<int64_t>(prompt.size()) > config.data.max_prompt_tokens) {
        ++data.skipped_;
        continue;
      }
      data.prompts_.push_back(prompt);
      data.problems_.push_back(std::move(problem));
    }
  }
  if (data.problems_.empty()) {
    std::string files;
    for (const auto& path : config.data.train_files) files += (files.empty() ? "" : ", ") + path.string();
    return invalid_argument("data.train_files (" + files + "): none of the " + std::to_string(data.skipped_) +
                            " problems has a prompt within data.max_prompt_tokens (" +
                            std::to_string(config.data.max_prompt_tokens) + " tokens)");
  }
  data.seed_ = static_cast<uint64_t>(config.run.seed);
  data.shuffle_ = config.data.shuffle;
  data.prompts_per_step_ = config.rollout.prompts_per_step;
  data.samples_ = config.rollout.samples_per_prompt;
  data.sampling_ = {config.rollout.temperature, config.rollout.top_p, config.rollout.top_k};
  return data;
}

std::vector<int64_t> TrainData::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(problems_.size());
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle_) return order;
  uint64_t state = splitmix64(seed_ ^ splitmix64(static_cast<uint64_t>(epoch) + 1));
  for (size_t i = order.size(); i > 1; --i) {
    state = splitmix64(state);
    std::swap(order[i - 1], order[state % i]);
  }
  return order;
}

std::vector<int64_t> TrainData::problems_of_step(int64_t step) const {
  const int64_t n = static_cast<int64_t>(problems_.size());
  std::vector<int64_t> picked;
  int64_t epoch = -1;
  std::vector<int64_t> order;
  for (int64_t position = step * prompts_per_step_; position < (step + 1) * prompts_per_step_; ++position) {
    if (position / n != epoch) order = epoch_order(epoch = position / n);
    picked.push_back(order[static_cast<size_t>(position % n)]);
  }
  return picked;
}

std::vector<RolloutJob> TrainData::jobs_of_step(int64_t step, int rank, int world) const {
  std::vector<RolloutJob> jobs;
  const std::vector<int64_t> picked = problems_of_step(step);
  for (size_t group = static_cast<size_t>(rank); group < picked.size(); group += static_cast<size_t>(world)) {
    const Problem& problem = problems_[static_cast<size_t>(picked[group])];
    for (int sample = 0; sample < samples_; ++sample) {
      RolloutJob job;
      job.id = (step * prompts_per_step_ + static_cast<int64_t>(group)) * samples_ + sample;
      job.dataset = problem.dataset;
      job.problem = problem.index;
      job.problem_id = problem.id;
      job.sample = sample;
      job.seed = splitmix64(seed_ * 0x100000001b3ULL ^ static_cast<uint64_t>(job.id));
      job.prompt = prompts_[static_cast<size_t>(picked[group])];
      job.gold_answer = problem.answer;
      job.sampling = sampling_;
      jobs.push_back(std::move(job));
    }
  }
  return jobs;
}

}  // namespace torl::actors
