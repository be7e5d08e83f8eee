// torl sandbox exec|bench|serve: run one snippet as the model's tool call would, measure the pool
// against a fresh interpreter per call (and against the HTTP path), or serve the pool over the
// SandboxFusion HTTP API.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <mutex>
#include <thread>

#include "common/asio.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/stats.hpp"
#include "config/load.hpp"
#include "sandbox/executor.hpp"
#include "sandbox/fresh_interpreter.hpp"
#include "sandbox/protocol.hpp"
#include "sandbox/sandbox_fusion_client.hpp"
#include "sandbox/sandbox_fusion_server.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"

namespace torl::tools {
namespace {

using sandbox::ExecutionResult;
using sandbox::ExecutionStatus;
using Clock = std::chrono::steady_clock;

const std::string kUsage =
    "usage: torl sandbox exec  [--config FILE] [--set tool.KEY=VALUE]...   (code on stdin)\n"
    "       torl sandbox bench [--snippet trivial|numpy|sympy|mixed] [--calls N] [--concurrency N]\n"
    "                          [--baseline-calls N] [--http | --url URL] [--config FILE] [--set tool.KEY=VALUE]...\n"
    "       torl sandbox serve --listen HOST:PORT [--workers N] [--pod-name NAME] [--config FILE]\n"
    "                          [--set tool.KEY=VALUE]...\n"
    "\n"
    "exec runs the code on stdin in the sandbox and prints one JSON object: status, exit_code, signal,\n"
    "stdout, stderr, truncated, wall_ms, and observation (the text the model would see).\n"
    "bench measures executions/s and latency of the fork-server pool beside a fresh python3 process\n"
    "per call under the same isolation, in one run; --http adds the HTTP path (the SandboxFusion client\n"
    "against serve on a loopback port, in-process), --url measures a SandboxFusion server instead.\n"
    "\n"
    "serve answers the SandboxFusion API from the pool until SIGINT or SIGTERM; port 0 picks a free\n"
    "port, and the listening address is printed on stderr. Endpoints:\n"
    "  POST /run_code (or /run_code/)  python only: code, stdin, files (path -> base64, written into the\n"
    "        working directory), fetch_files (returned base64 in the answer's files), run_timeout,\n"
    "        memory_limit_MB; the code runs from a file in that directory (__file__, sys.argv[0]).\n"
    "        A bad request is HTTP 422 with FastAPI's {\"detail\": [...]} naming the field.\n"
    "  GET /v1/ping    \"pong\"\n"
    "  GET /v1/status  workers, running, queued, requests_in_flight, executions, latency p50/p99, limits\n"
    "Limits: a request's run_timeout and memory_limit_MB apply when they are tighter than the server's\n"
    "tool.timeout_ms and tool.memory_mb, which cap them (absent, or -1: the server's). Output past\n"
    "tool.max_output_bytes (each of stdout, stderr) is cut and the answer says \"truncated\": true; the\n"
    "program runs on to its end, and its own exit status is reported.\n"
    "--workers N: snippets run at once (default: the number of CPUs, here " +
    std::to_string(std::max(1u, std::thread::hardware_concurrency())) + "); tool.workers does not apply\n"
    "to serve. More requests wait in a queue of tool.max_queue, and their wait counts against the\n"
    "client's timeout (see sandbox/README.md on sizing a cluster). --pod-name NAME is each answer's\n"
    "executor_pod_name (default: $MY_POD_NAME, else the host name).\n";

// A benchmark snippet and the stdout it must produce.
struct Snippet {
  std::string_view name;
  std::string_view code;
  std::string_view expected;
};

constexpr Snippet kSnippets[] = {
    {"trivial", "print(1 + 1)\n", "2\n"},
    {"numpy", "import numpy as np\nm = np.arange(9.0).reshape(3, 3) + np.eye(3)\nprint(round(float(np.linalg.det(m)), 6))\n", "-5.0\n"},
    {"sympy", "import sympy as sp\nx = sp.symbols('x')\nprint(sp.solve(x**2 - 5*x + 6, x))\n", "[2, 3]\n"},
};

// Loads the config (when given) for the tool section only.
Expected<config::ToolConfig> load_tool_config(const std::string& file, const std::vector<std::string>& sets) {
  config::LoadOptions options;
  options.overrides = sets;
  options.only_section = "tool";
  auto loaded = config::load_config_or_error(file, options);
  if (!loaded) return loaded.status();
  return loaded->tool;
}

int exec_command(const Args& args, std::ostream& out, std::ostream& err) {
  std::string file;
  std::vector<std::string> sets;
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.value("--config", file) || reader.values("--set", sets)) continue;
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) {
    err << "torl sandbox exec: " << reader.error() << "\n" << kUsage;
    return kExitUsage;
  }
  auto tool = load_tool_config(file, sets);
  if (!tool) {
    err << "torl sandbox exec: " << tool.status().message() << "\n";
    return kExitUsage;
  }
  tool->workers = 1;
  const std::string code(std::istreambuf_iterator<char>(std::cin), {});

  auto executor = sandbox::Executor::start(*tool);
  if (!executor) {
    err << "torl sandbox exec: " << executor.status().message() << "\n";
    return kExitFailed;
  }
  const ExecutionResult result = (*executor)->run(code);
  const nlohmann::ordered_json line = {{"status", sandbox::status_name(result.status)},
                     {"exit_code", result.exit_code},
                     {"signal", result.signal},
                     {"stdout", result.stdout_text},
                     {"stderr", result.stderr_text},
                     {"truncated", result.truncated},
                     {"wall_ms", result.wall_ms},
                     {"observation", sandbox::format_observation(result, tool->feedback)}};
  out << line.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  return result.status == ExecutionStatus::kSandboxError ? kExitFailed : kExitOk;
}

// What one side of the benchmark measured.
struct BenchRun {
  std::vector<double> latency_ms;  // per call, queue wait included
  double seconds = 0;
  int correct = 0;                 // status ok and the expected stdout
  std::string first_wrong;         // what the first incorrect call gave, for the report

  void add(const ExecutionResult& result, const Snippet& snippet) {
    latency_ms.push_back(result.queue_ms + result.wall_ms);
    if (result.status == ExecutionStatus::kOk && result.stdout_text == snippet.expected) {
      ++correct;
    } else if (first_wrong.empty()) {
      first_wrong = std::string(snippet.name) + ": status " + sandbox::status_name(result.status) +
                    ", stdout '" + result.stdout_text + "', stderr '" + result.stderr_text + "'";
    }
  }
};

// Keeps `concurrency` snippets in flight on the runner until `calls` have completed.
BenchRun bench_pool(sandbox::CodeRunner& executor, const std::vector<Snippet>& plan, int concurrency) {
  BenchRun run;
  std::mutex mutex;
  std::condition_variable finished;
  size_t next = 0, completed = 0;
  std::function<void()> submit_next;
  submit_next = [&] {
    const size_t index = next++;  // called with `mutex` held
    const Snippet& snippet = plan[index];
    executor.submit(std::string(snippet.code), [&, index](ExecutionResult result) {
      std::lock_guard lock(mutex);
      run.add(result, plan[index]);
      if (++completed == plan.size()) finished.notify_one();
      if (next < plan.size()) submit_next();
    });
  };
  const auto start = Clock::now();
  {
    std::unique_lock lock(mutex);
    for (int i = 0; i < concurrency && next < plan.size(); ++i) submit_next();
    finished.wait(lock, [&] { return completed == plan.size(); });
  }
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return run;
}

// The same plan with a fresh interpreter per call, `concurrency` calls at a time.
BenchRun bench_fresh(const sandbox::Isolation& isolation, const std::vector<Snippet>& plan, int concurrency) {
  BenchRun run;
  std::mutex mutex;
  std::atomic<size_t> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      for (size_t index; (index = next++) < plan.size();) {
        const ExecutionResult result = sandbox::run_in_fresh_interpreter(isolation, std::string(plan[index].code));
        std::lock_guard lock(mutex);
        run.add(result, plan[index]);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return run;
}

void print_row(std::ostream& out, const std::string& name, const BenchRun& run) {
  out << std::left << std::setw(20) << name << std::right << std::fixed << std::setprecision(1)
      << std::setw(10) << static_cast<double>(run.latency_ms.size()) / run.seconds << std::setw(10)
      << percentile(run.latency_ms, 0.50) << std::setw(10) << percentile(run.latency_ms, 0.90)
      << std::setw(10) << percentile(run.latency_ms, 0.99) << std::setw(8) << run.correct << "/"
      << run.latency_ms.size() << "\n";
}

std::string describe_isolation(const config::ToolConfig& tool) {
  const auto& layers = tool.isolation;
  std::string text;
  text += layers.bubblewrap ? "bubblewrap" : "NO bubblewrap";
  text += layers.seccomp ? ", seccomp" : ", NO seccomp";
  text += layers.rlimits ? ", rlimits" : ", NO rlimits";
  text += layers.uid >= 0 ? ", uid " + std::to_string(layers.uid) + " when root" : ", uid unchanged";
  return text;
}

// The SandboxFusion client for `url`, at least `concurrency` requests in flight.
Expected<std::unique_ptr<sandbox::SandboxFusionClient>> start_http_client(config::ToolConfig tool, const std::string& url,
                                                                          long concurrency) {
  tool.backend = config::ToolBackend::kSandboxFusion;
  tool.sandbox_fusion.url = url;
  tool.sandbox_fusion.max_concurrency = std::max<int>(tool.sandbox_fusion.max_concurrency, static_cast<int>(concurrency));
  return sandbox::SandboxFusionClient::start(tool);
}

void print_header(std::ostream& out) {
  out << std::left << std::setw(20) << "" << std::right << std::setw(10) << "exec/s" << std::setw(10)
      << "p50 ms" << std::setw(10) << "p90 ms" << std::setw(10) << "p99 ms" << std::setw(12) << "correct\n";
}

// bench --url: the same benchmark against a SandboxFusion server, through our client.
int bench_url(const config::ToolConfig& tool, const std::string& url, const std::string& snippet_name,
              const std::vector<Snippet>& plan, long concurrency, std::ostream& out, std::ostream& err) {
  auto client = start_http_client(tool, url, concurrency);
  if (!client) {
    err << "torl sandbox bench: " << client.status().message() << "\n";
    return kExitFailed;
  }
  const std::vector<Snippet> warm_up(plan.begin(), plan.begin() + static_cast<long>(std::min<size_t>(plan.size(), 20)));
  bench_pool(**client, warm_up, static_cast<int>(concurrency));
  err << "SandboxFusion " << url << ": " << plan.size() << " calls...\n";
  const BenchRun http = bench_pool(**client, plan, static_cast<int>(concurrency));
  out << "torl sandbox bench: snippet " << snippet_name << ", concurrency " << concurrency
      << ", SandboxFusion server " << url << "\n\n";
  print_header(out);
  print_row(out, "SandboxFusion HTTP", http);
  if (!http.first_wrong.empty()) err << "torl sandbox bench: wrong result: " << http.first_wrong << "\n";
  return http.correct == static_cast<int>(http.latency_ms.size()) ? kExitOk : kExitFailed;
}

int bench_command(const Args& args, std::ostream& out, std::ostream& err) {
  std::string file, snippet_name = "trivial", url;
  std::vector<std::string> sets;
  long calls = 2000, concurrency = -1, baseline_calls = -1;
  bool http = false;
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.flag("--http")) {
      http = true;
      continue;
    }
    if (reader.value("--config", file) || reader.values("--set", sets) || reader.value("--url", url) ||
        reader.value("--snippet", snippet_name) || reader.integer("--calls", calls) ||
        reader.integer("--concurrency", concurrency) || reader.integer("--baseline-calls", baseline_calls)) {
      continue;
    }
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  std::vector<Snippet> kinds;
  for (const auto& snippet : kSnippets) {
    if (snippet_name == "mixed" || snippet.name == snippet_name) kinds.push_back(snippet);
  }
  if (reader.error().empty() && kinds.empty()) reader.fail("--snippet must be trivial, numpy, sympy or mixed");
  if (reader.error().empty() && calls < 1) reader.fail("--calls must be >= 1");
  if (reader.error().empty() && http && !url.empty()) reader.fail("--http and --url exclude each other");
  if (!reader.error().empty()) {
    err << "torl sandbox bench: " << reader.error() << "\n" << kUsage;
    return kExitUsage;
  }
  auto tool = load_tool_config(file, sets);
  if (!tool) {
    err << "torl sandbox bench: " << tool.status().message() << "\n";
    return kExitUsage;
  }
  if (concurrency < 1) concurrency = tool->workers;
  if (baseline_calls < 0) baseline_calls = std::min<long>(calls, 60);

  auto make_plan = [&](long count) {
    std::vector<Snippet> plan;
    for (long i = 0; i < count; ++i) plan.push_back(kinds[static_cast<size_t>(i) % kinds.size()]);
    return plan;
  };
  if (!url.empty()) return bench_url(*tool, url, snippet_name, make_plan(calls), concurrency, out, err);

  err << "starting " << tool->workers << " sandbox workers...\n";
  const auto start = Clock::now();
  auto executor = sandbox::Executor::start(*tool);
  if (!executor) {
    err << "torl sandbox bench: " << executor.status().message() << "\n";
    return kExitFailed;
  }
  const double startup_s = std::chrono::duration<double>(Clock::now() - start).count();
  bench_pool(**executor, make_plan(std::min<long>(calls, 20)), static_cast<int>(concurrency));  // warm-up

  err << "fork-server pool: " << calls << " calls...\n";
  const BenchRun pool = bench_pool(**executor, make_plan(calls), static_cast<int>(concurrency));

  // The HTTP path: the SandboxFusion client -> serve on a loopback port -> the same pool.
  BenchRun over_http;
  if (http) {
    auto server = sandbox::SandboxFusionServer::start("127.0.0.1:0", **executor);
    if (!server) {
      err << "torl sandbox bench: " << server.status().message() << "\n";
      return kExitFailed;
    }
    auto client = start_http_client(*tool, "http://" + (*server)->address(), concurrency);
    if (!client) {
      err << "torl sandbox bench: " << client.status().message() << "\n";
      return kExitFailed;
    }
    bench_pool(**client, make_plan(std::min<long>(calls, 20)), static_cast<int>(concurrency));  // warm-up
    err << "HTTP via serve on " << (*server)->address() << ": " << calls << " calls...\n";
    over_http = bench_pool(**client, make_plan(calls), static_cast<int>(concurrency));
  }
  executor->reset();  // the baseline gets the machine to itself

  auto isolation = sandbox::Isolation::create(*tool);
  if (!isolation) {
    err << "torl sandbox bench: " << isolation.status().message() << "\n";
    return kExitFailed;
  }
  err << "fresh interpreter: " << baseline_calls << " calls...\n";
  const BenchRun fresh = baseline_calls > 0 ? bench_fresh(*isolation, make_plan(baseline_calls), static_cast<int>(concurrency))
                                            : BenchRun{};

  out << "torl sandbox bench: snippet " << snippet_name << ", concurrency " << concurrency << ", "
      << tool->workers << " workers (started in " << std::fixed << std::setprecision(2) << startup_s
      << " s), " << describe_isolation(*tool) << "\n\n";
  print_header(out);
  print_row(out, "fork-server pool", pool);
  if (http) print_row(out, "pool via HTTP serve", over_http);
  if (!fresh.latency_ms.empty()) {
    print_row(out, "fresh interpreter", fresh);
    const double pool_rate = static_cast<double>(pool.latency_ms.size()) / pool.seconds;
    const double fresh_rate = static_cast<double>(fresh.latency_ms.size()) / fresh.seconds;
    out << "\nthroughput ratio (pool / fresh): " << std::setprecision(1) << pool_rate / fresh_rate
        << "x; p50 latency ratio (fresh / pool): "
        << percentile(fresh.latency_ms, 0.5) / percentile(pool.latency_ms, 0.5) << "x\n";
  }
  if (http) {
    out << "HTTP cost over the in-process pool: p50 " << std::showpos << std::setprecision(2)
        << percentile(over_http.latency_ms, 0.5) - percentile(pool.latency_ms, 0.5) << " ms, p99 "
        << percentile(over_http.latency_ms, 0.99) - percentile(pool.latency_ms, 0.99) << std::noshowpos << " ms\n";
  }
  const bool all_correct = pool.correct == static_cast<int>(pool.latency_ms.size()) &&
                           fresh.correct == static_cast<int>(fresh.latency_ms.size()) &&
                           over_http.correct == static_cast<int>(over_http.latency_ms.size());
  const BenchRun* runs[] = {&pool, &over_http, &fresh};
  for (const BenchRun* run : runs) {
    if (!run->first_wrong.empty()) err << "torl sandbox bench: wrong result: " << run->first_wrong << "\n";
  }
  return all_correct ? kExitOk : kExitFailed;
}

// executor_pod_name when --pod-name is not given: $MY_POD_NAME (as SandboxFusion), else the host name.
std::string default_pod_name() {
  if (const char* pod = std::getenv("MY_POD_NAME"); pod != nullptr && *pod != '\0') return pod;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "";
  return host;
}

// serve: the pool behind the SandboxFusion HTTP API until SIGINT or SIGTERM.
int serve_command(const Args& args, std::ostream& err) {
  std::string file, listen, pod_name;
  std::vector<std::string> sets;
  long workers = std::max(1u, std::thread::hardware_concurrency());
  ArgReader reader(args);
  while (!reader.done()) {
    if (reader.value("--listen", listen) || reader.value("--config", file) || reader.values("--set", sets) ||
        reader.integer("--workers", workers) || reader.value("--pod-name", pod_name)) {
      continue;
    }
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (reader.error().empty() && listen.empty()) reader.fail("--listen HOST:PORT is required (port 0 picks a free one)");
  if (reader.error().empty() && (workers < 1 || workers > 1024)) reader.fail("--workers must be 1..1024");
  for (const auto& set : sets) {
    if (reader.error().empty() && set.rfind("tool.workers=", 0) == 0) {
      reader.fail("serve sizes its pool with --workers N, not --set tool.workers");
    }
  }
  if (!reader.error().empty()) {
    err << "torl sandbox serve: " << reader.error() << "\n" << kUsage;
    return kExitUsage;
  }
  auto tool = load_tool_config(file, sets);
  if (!tool) {
    err << "torl sandbox serve: " << tool.status().message() << "\n";
    return kExitUsage;
  }
  tool->workers = static_cast<int>(workers);
  if (pod_name.empty()) pod_name = default_pod_name();
  // Signals are caught from here on, so a stop that arrives while the workers start is not lost.
  boost::asio::io_context signal_io;
  boost::asio::signal_set signals(signal_io, SIGINT, SIGTERM);
  int stop_signal = 0;
  signals.async_wait([&stop_signal](boost::system::error_code ec, int signal) {
    if (!ec) stop_signal = signal;
  });

  err << "starting " << tool->workers << " sandbox workers...\n";
  auto executor = sandbox::Executor::start(*tool);
  if (!executor) {
    err << "torl sandbox serve: " << executor.status().message() << "\n";
    return kExitFailed;
  }
  auto server = sandbox::SandboxFusionServer::start(listen, **executor, pod_name);
  if (!server) {
    err << "torl sandbox serve: " << server.status().message() << "\n";
    return kExitFailed;
  }
  err << "torl sandbox serve: listening on http://" << (*server)->address() << " (" << tool->workers
      << " workers, timeout " << tool->timeout_ms << " ms, memory " << tool->memory_mb << " MB, output cap "
      << tool->max_output_bytes << " bytes, " << describe_isolation(*tool)
      << "); POST /run_code, GET /v1/ping, GET /v1/status" << std::endl;
  signal_io.run();
  err << "torl sandbox serve: signal " << stop_signal << ", shutting down" << std::endl;
  server->reset();    // stops accepting and waits for the snippets it handed to the pool
  executor->reset();
  return kExitOk;
}

}  // namespace

int sandbox_command(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? err : out) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  const Args rest(args.begin() + 1, args.end());
  if (std::find_if(rest.begin(), rest.end(), [](const std::string& a) { return a == "--help" || a == "-h"; }) != rest.end()) {
    out << kUsage;
    return kExitOk;
  }
  if (args[0] == "exec") return exec_command(rest, out, err);
  if (args[0] == "bench") return bench_command(rest, out, err);
  if (args[0] == "serve") return serve_command(rest, err);
  err << "torl sandbox: unknown action '" << args[0] << "'\n" << kUsage;
  return kExitUsage;
}

}  // namespace torl::tools
