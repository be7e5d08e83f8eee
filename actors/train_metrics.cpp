#include "actors/train_metrics.hpp"

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "common/files.hpp"

namespace torl::actors {

BatchSums batch_sums(const actors::StepReport& r, model::GradientSync* sync, bool stop_requested) {
  BatchSums b;
  for (const actors::Trajectory& t : r.trajectories) {
    b.reward += t.score ? t.score->reward : 0.0;
    b.correct += t.score && t.score->outcome == rewards::Outcome::kCorrect;
    b.tool_calls += static_cast<double>(t.tool_calls.size());
    b.tool_errors += t.tool_errors();
    b.response_tokens += static_cast<double>(t.response.size());
    b.with_tool += !t.tool_calls.empty();
    b.trajectories += 1;
  }
  b.infra_failed = static_cast<double>(r.infra_failed);
  b.groups_too_small = static_cast<double>(r.groups_too_small);
  b.stop_requests = stop_requested ? 1 : 0;
  if (sync) {
    double* fields[] = {&b.reward, &b.correct, &b.tool_calls, &b.tool_errors, &b.response_tokens, &b.with_tool,
                        &b.trajectories, &b.infra_failed, &b.groups_too_small, &b.stop_requests};
    std::vector<double> values;
    for (double* f : fields) values.push_back(*f);
    torch::Tensor all = torch::tensor(values, torch::kFloat64);
    if (sync->all_reduce({all}).ok()) {
      for (size_t i = 0; i < values.size(); ++i) *fields[i] = all.data_ptr<double>()[i];
    }
  }
  return b;
}

Json step_line(const actors::StepReport& r, const BatchSums& b, const std::vector<int64_t>& problems,
               const actors::MetricsSnapshot& pipeline) {
  const double n = std::max(1.0, b.trajectories);
  Json line = {{"step", r.step},
          {"updated", r.updated},
          {"skipped_because", r.skipped_because},
          {"reward/mean", b.reward / n},
          {"reward/accuracy", b.correct / n},
          {"tool/calls_per_trajectory", b.tool_calls / n},
          {"tool/use_rate", b.with_tool / n},
          {"tool/error_rate", b.tool_calls > 0 ? b.tool_errors / b.tool_calls : 0.0},
          {"response/length_mean", b.response_tokens / n},
          {"policy/entropy", r.stats.entropy},
          {"policy/clip_fraction", r.stats.clip_fraction},
          {"policy/ppo_kl", r.stats.ppo_kl},
          {"policy/sampler_gap", r.stats.sampler_gap},
          {"policy/kl", r.stats.kl},
          {"loss/total", r.stats.loss},
          {"loss/pg", r.stats.pg_loss},
          {"optim/grad_norm", r.stats.grad_norm},
          {"optim/lr", r.stats.lr},
          {"optim/micro_batches", r.stats.micro_batches},
          {"optim/padding_fraction",
           r.stats.padded_tokens > 0 ? 1.0 - static_cast<double>(r.stats.total_tokens) / r.stats.padded_tokens : 0.0},
          {"groups/all_equal", r.groups_equal},
          {"groups/filtered", r.groups_filtered},
          {"groups/too_small", b.groups_too_small},
          {"trajectories/infra_failed", b.infra_failed},
          {"staleness/max", r.max_staleness},
          {"staleness/mean", r.mean_staleness},
          {"time/rollout_wait_s", r.wait_ms / 1000.0},
          {"time/train_s", r.train_ms / 1000.0},
          {"time/publish_s", r.publish_ms / 1000.0},
          {"generator/busy_fraction", pipeline.generator_busy_fraction},
          {"generator/tokens_per_s", pipeline.tokens_per_s},
          {"generator/cache_releases", pipeline.cache_releases},
          {"tool/latency_p50_ms", pipeline.tool_latency_p50_ms},
          {"tool/latency_p99_ms", pipeline.tool_latency_p99_ms},
          {"data/problems", problems}};
  if (r.peak_device_bytes >= 0) line["memory/device_peak_gib"] = r.peak_device_bytes / 1073741824.0;
  return line;
}

std::string step_text(const Json& line, int64_t steps) {
  std::ostringstream text;
  text << std::fixed << "step " << line["step"].get<int64_t>() << "/" << steps << std::setprecision(3)
       << "  reward " << line["reward/mean"].get<double>() << "  acc " << line["reward/accuracy"].get<double>()
       << "  tools " << std::setprecision(2) << line["tool/calls_per_trajectory"].get<double>() << "/traj (err "
       << line["tool/error_rate"].get<double>() << ")  len " << std::setprecision(0)
       << line["response/length_mean"].get<double>() << std::setprecision(3) << "  ent "
       << line["policy/entropy"].get<double>() << "  clip " << line["policy/clip_fraction"].get<double>()
       << "  gnorm " << line["optim/grad_norm"].get<double>() << std::scientific << std::setprecision(1) << "  lr "
       << line["optim/lr"].get<double>() << std::fixed << std::setprecision(1) << "  "
       << line["time/rollout_wait_s"].get<double>() + line["time/train_s"].get<double>() << " s (rollout "
       << line["time/rollout_wait_s"].get<double>() << ", train " << line["time/train_s"].get<double>() << ")";
  if (line.contains("memory/device_peak_gib")) {
    text << "  gpu peak " << std::setprecision(1) << line["memory/device_peak_gib"].get<double>() << " GiB";
  }
  if (const double failed = line["trajectories/infra_failed"].get<double>(); failed > 0) {
    text << "  " << std::setprecision(0) << failed << " trajectories failed by the infrastructure, left out";
  }
  if (!line["updated"].get<bool>()) text << "  NO UPDATE: " << line["skipped_because"].get<std::string>();
  return text.str();
}

std::vector<Json> read_step_records(const std::filesystem::path& file) {
  std::vector<Json> records;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    Json parsed = Json::parse(line, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("step") && parsed["step"].is_number_integer()) records.push_back(std::move(parsed));
  }
  return records;
}

Status keep_metrics_until(const std::filesystem::path& file, int64_t step) {
  if (!std::filesystem::exists(file)) return {};
  std::string kept;
  for (const Json& record : read_step_records(file)) {
    if (record["step"].get<int64_t>() <= step) kept += record.dump() + "\n";
  }
  return write_file_atomically(file, kept);
}

}  // namespace torl::actors
