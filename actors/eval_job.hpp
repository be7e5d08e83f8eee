// torl eval's run (tools/eval_command.cpp reads the arguments and calls it): every problem of
// data.eval_files, eval.samples times, rolled out with the tool loop through the actor pipeline over
// the configured model and sandbox; DIR/<data set>.jsonl (a line per sample), DIR/summary.json, and a
// table per data set. DIR: `output`, else eval.output_dir, else run.output_dir/run.name/eval.
#pragma once

#include <ostream>
#include <string>

#include "actors/run_setup.hpp"
#include "config/config.hpp"

namespace torl::actors {

struct EvalJobOptions {
  config::Config config;
  std::string config_file;  // named in messages
  std::string output;       // DIR; empty: from the config
};

// Progress (a redrawn line) and the closing numbers on `log`, the table on `out`.
JobOutcome run_eval(const EvalJobOptions& job, std::ostream& out, std::ostream& log);

}  // namespace torl::actors
