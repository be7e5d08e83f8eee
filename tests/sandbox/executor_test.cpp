// The sandbox against hostile and broken snippets: each must end with a clear status within its
// timeout, leave nothing running, and leave the pool able to run the next call.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <cerrno>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>

#include "config/config.hpp"
#include "sandbox/executor.hpp"
#include "tests/temp_dir.hpp"

namespace torl::sandbox {
namespace {

constexpr int kTimeoutMs = 2000;

config::ToolConfig test_tool_config() {
  config::ToolConfig tool;
  tool.workers = 2;
  tool.timeout_ms = kTimeoutMs;
  tool.memory_mb = 768;
  tool.max_output_bytes = 4096;
  return tool;
}

// One pool for the whole suite: starting workers costs about a second.
Executor& pool() {
  static std::unique_ptr<Executor> executor = [] {
    auto started = Executor::start(test_tool_config());
    REQUIRE_MESSAGE(started.ok(), started.status().message());
    return std::move(started).value();
  }();
  return *executor;
}

// Processes visible inside the sandbox now, besides the lister and its ancestors (the zygotes and
// bubblewrap's init): must be none.
void check_nothing_left_running() {
  const ExecutionResult result = pool().run(
      "import os\n"
      "ancestors, pid = set(), os.getpid()\n"
      "while pid > 0:\n"
      "    ancestors.add(pid)\n"
      "    pid = int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])\n"
      "print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) not in ancestors))\n");
  CHECK(result.status == ExecutionStatus::kOk);
  CHECK(result.stdout_text == "[]\n");
}

// The pool still answers correctly.
void check_next_call_works() {
  const ExecutionResult result = pool().run("print(sum(range(10)))");
  CHECK_MESSAGE(result.status == ExecutionStatus::kOk, result.stderr_text);
  CHECK(result.stdout_text == "45\n");
}

// The sandbox ended the call, not the snippet: the snippets checked with this would run for 1000 s or
// forever. The bound is the timeout, the 2 s a worker has to confirm a kill before it is replaced,
// and ample time to report on a loaded machine (kill and report take milliseconds when idle).
void check_bounded(const ExecutionResult& result) {
  CHECK(result.wall_ms < kTimeoutMs + 2000 + 60000);
}

TEST_SUITE("sandbox") {
  TEST_CASE("a snippet's output, exit code and timing are reported") {
    const ExecutionResult result = pool().run("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)");
    CHECK(result.status == ExecutionStatus::kError);
    CHECK(result.exit_code == 3);
    CHECK(result.signal == 0);
    CHECK(result.stdout_text == "out\n");
    CHECK(result.stderr_text == "err\n");
    CHECK_FALSE(result.truncated);
    CHECK(result.wall_ms > 0);
  }

  TEST_CASE("snippets run at tool.worker_nice, below torl's own threads") {
    const ExecutionResult result = pool().run("import os\nprint(os.nice(0))");
    REQUIRE(result.status == ExecutionStatus::kOk);
    errno = 0;
    const int own = getpriority(PRIO_PROCESS, 0);
    REQUIRE(errno == 0);
    REQUIRE(test_tool_config().worker_nice == 10);
    CHECK(result.stdout_text == std::to_string(std::min(19, own + 10)) + "\n");
  }

  TEST_CASE("an exception ends as an error with the traceback of the snippet only") {
    const ExecutionResult result = pool().run("def f():\n    return 1 / 0\nf()\n");
    CHECK(result.status == ExecutionStatus::kError);
    CHECK(result.exit_code == 1);
    CHECK(result.stderr_text ==
          "Traceback (most recent call last):\n"
          "  File \"<string>\", line 3, in <module>\n"
          "  File \"<string>\", line 2, in f\n"
          "ZeroDivisionError: division by zero\n");
  }

  TEST_CASE("numpy and sympy are importable and no state passes between calls") {
    const ExecutionResult first = pool().run(
        "import numpy as np, sympy as sp\n"
        "x = sp.symbols('x')\n"
        "print(sp.factor(x**2 - 1), int(np.arange(5).sum()))\n"
        "import builtins; builtins.leak = 1\n"
        "open('/tmp/leak.txt', 'w').write('x')\n");
    CHECK(first.status == ExecutionStatus::kOk);
    CHECK(first.stdout_text == "(x - 1)*(x + 1) 10\n");
    for (int i = 0; i < 4; ++i) {  // whichever worker runs it
      const ExecutionResult next = pool().run(
          "import builtins, os\nprint(hasattr(builtins, 'leak'), os.path.exists('/tmp/leak.txt'))\n");
      CHECK(next.stdout_text == "False False\n");
    }
  }

  TEST_CASE("random numbers differ from call to call, as in fresh interpreters") {
    const std::string code = "import random, numpy\nprint(random.random(), numpy.random.rand())";
    const ExecutionResult a = pool().run(code);
    const ExecutionResult b = pool().run(code);
    REQUIRE(a.status == ExecutionStatus::kOk);
    CHECK(a.stdout_text != b.stdout_text);
  }

  TEST_CASE("an infinite loop, a sleep and a SIGTERM-proof loop end as timeouts") {
    for (const char* code : {"while True: pass",
                             "import time\ntime.sleep(10**6)",
                             "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                             "print('started', flush=True)\nwhile True: time.sleep(0.01)"}) {
      const ExecutionResult result = pool().run(code);
      CHECK_MESSAGE(result.status == ExecutionStatus::kTimeout, code);
      CHECK(result.wall_ms >= kTimeoutMs);
      check_bounded(result);
    }
    check_nothing_left_running();
  }

  TEST_CASE("output printed before a timeout is kept") {
    const ExecutionResult result = pool().run("print('partial', flush=True)\nwhile True: pass");
    CHECK(result.status == ExecutionStatus::kTimeout);
    CHECK(result.stdout_text == "partial\n");
  }

  TEST_CASE("a fork bomb ends within its timeout and leaves no process behind") {
    const ExecutionResult result = pool().run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n");
    CHECK((result.status == ExecutionStatus::kTimeout || result.status == ExecutionStatus::kError));
    check_bounded(result);
    check_nothing_left_running();
    check_next_call_works();
  }

  TEST_CASE("a memory bomb ends as a memory error") {
    // Each reaches the limit in milliseconds: bytes(n) leaves its pages untouched, where bytearray(n)
    // would spend a loaded machine's seconds zeroing 768 MB, and so end as a timeout.
    for (const char* code : {"x = bytearray(4 * 1024**3)",
                             "import numpy\nx = numpy.ones((1024, 1024, 1024))",
                             "chunks = []\nwhile True: chunks.append(bytes(64 * 1024**2))"}) {
      const ExecutionResult result = pool().run(code);
      CHECK_MESSAGE(result.status == ExecutionStatus::kMemory, code);
      CHECK(result.stderr_text.find("MemoryError") != std::string::npos);
    }
    check_next_call_works();
  }

  TEST_CASE("a MemoryError stays a memory error when the snippet ends only after its timeout") {
    // The MemoryError comes at once; an exit handler then outlasts the timeout, as a slow exit (freeing
    // the memory) does on a loaded machine.
    const ExecutionResult result =
        pool().run("import atexit, time\natexit.register(time.sleep, 1000)\nx = bytearray(4 * 1024**3)");
    CHECK(result.status == ExecutionStatus::kMemory);
    CHECK(result.stderr_text.find("MemoryError") != std::string::npos);
    CHECK(result.wall_ms >= kTimeoutMs);  // the timer fired, and the snippet was killed
    check_bounded(result);
    check_next_call_works();
  }

  TEST_CASE("deep recursion is an error; a crash through ctypes is reported as killed") {
    const ExecutionResult recursion = pool().run("def f(n): return f(n + 1)\nf(0)");
    CHECK(recursion.status == ExecutionStatus::kError);
    CHECK(recursion.stderr_text.find("RecursionError") != std::string::npos);

    const ExecutionResult crash = pool().run("import ctypes\nctypes.string_at(0)");
    CHECK(crash.status == ExecutionStatus::kKilled);
    CHECK(crash.signal == SIGSEGV);
    check_next_call_works();
  }

  TEST_CASE("a flood of output is cut at the cap and ended") {
    const ExecutionResult result = pool().run("import sys\nwhile True: sys.stdout.write('x' * 65536)");
    CHECK(result.status == ExecutionStatus::kOutputLimit);
    CHECK(result.truncated);
    CHECK(result.stdout_text == std::string(4096, 'x'));
    check_bounded(result);

    const ExecutionResult gigabyte = pool().run("import os\nblock = b'y' * 2**20\nfor _ in range(1024): os.write(1, block)");
    CHECK(gigabyte.status == ExecutionStatus::kOutputLimit);
    CHECK(gigabyte.stdout_text.size() == 4096);
    check_next_call_works();
  }

  TEST_CASE("invalid UTF-8 output is passed through as bytes") {
    const ExecutionResult result = pool().run("import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe end\\n')");
    CHECK(result.status == ExecutionStatus::kOk);
    CHECK(result.stdout_text == "ok \xff\xfe end\n");
  }

  TEST_CASE("a snippet that closes its stdout still ends normally") {
    const ExecutionResult result = pool().run("import os, sys\nprint('before', flush=True)\nos.close(1)\nprint('to stderr', file=sys.stderr)");
    CHECK(result.stdout_text == "before\n");
    CHECK(result.stderr_text.find("to stderr") != std::string::npos);
    check_next_call_works();
  }

  TEST_CASE("the network is unreachable, also the host's loopback") {
    const int server = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    REQUIRE(server >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(server, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(listen(server, 4) == 0);
    socklen_t length = sizeof address;
    getsockname(server, reinterpret_cast<sockaddr*>(&address), &length);
    const int port = ntohs(address.sin_port);

    const ExecutionResult result = pool().run(
        "import socket\n"
        "try:\n"
        "    s = socket.create_connection(('127.0.0.1', " + std::to_string(port) + "), timeout=1)\n"
        "    print('connected')\n"
        "except OSError as e:\n"
        "    print('refused', type(e).__name__)\n");
    CHECK(result.status == ExecutionStatus::kOk);
    CHECK(result.stdout_text.rfind("refused", 0) == 0);
    CHECK(accept(server, nullptr, nullptr) < 0);  // nobody knocked
    close(server);
  }

  TEST_CASE("the host's environment and files are out of sight, and only /tmp is writable") {
    setenv("TORL_TEST_SECRET", "hunter2", 1);
    testing::TempDir dir;
    const auto secret = dir.write("secret.txt", "top secret");
    const ExecutionResult result = pool().run(
        "import os\n"
        "print('TORL_TEST_SECRET' in os.environ, sorted(os.environ))\n"
        "print(os.path.exists(" + std::string("'") + secret.string() + "'), os.path.exists('/root'), os.path.exists('/home'))\n"
        "for path in ['/usr/evil', '/etc/evil', '/evil']:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as e:\n"
        "        print('denied', path)\n"
        "open('/tmp/fine', 'w').write('x')\n"
        "print('tmp ok')\n");
    unsetenv("TORL_TEST_SECRET");
    CHECK(result.status == ExecutionStatus::kOk);
    CHECK(result.stdout_text ==
          "False ['HOME', 'LANG', 'LC_ALL', 'MKL_NUM_THREADS', 'MPLBACKEND', 'OMP_NUM_THREADS', "
          "'OPENBLAS_NUM_THREADS', 'PATH', 'PWD']\n"
          "False False False\n"
          "denied /usr/evil\ndenied /etc/evil\ndenied /evil\ntmp ok\n");
    CHECK_FALSE(std::filesystem::exists("/usr/evil"));
    CHECK_FALSE(std::filesystem::exists("/evil"));
  }

  TEST_CASE("a snippet that kills its worker ends with a status and the worker is replaced") {
    const uint64_t restarts = pool().metrics().worker_restarts;
    const ExecutionResult result = pool().run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\ntime.sleep(1000)");
    CHECK(result.status == ExecutionStatus::kSandboxError);
    CHECK(result.stderr_text.find("worker process died") != std::string::npos);
    check_bounded(result);
    // The replacement is counted when the worker's exit is seen, which can trail its last report:
    // keep the pool busy (no sleeping) until it shows, within a bounded number of calls.
    for (int i = 0; i < 200 && pool().metrics().worker_restarts == restarts; ++i) check_next_call_works();
    CHECK(pool().metrics().worker_restarts == restarts + 1);
    for (int i = 0; i < 4; ++i) check_next_call_works();
  }

  TEST_CASE("a snippet cannot reach into the zygote it was forked from") {
    const ExecutionResult result = pool().run(
        "import ctypes, os, signal\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "parent = os.getppid()\n"
        "try:\n"
        "    open(f'/proc/{parent}/mem', 'r+b')\n"
        "    print('mem open')\n"
        "except OSError as e:\n"
        "    print('mem', type(e).__name__)\n"
        "pidfd = os.pidfd_open(parent)\n"
        "print('getfd', libc.syscall(438, pidfd, 3, 0), ctypes.get_errno())\n"  // pidfd_getfd
        "import resource\n"
        "try:\n"
        "    resource.prlimit(parent, resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
        "    print('prlimit done')\n"
        "except OSError as e:\n"
        "    print('prlimit', type(e).__name__)\n"
        "os.kill(1, signal.SIGINT)\n"
        "print('pid 1 signalled')\n");
    CHECK(result.status == ExecutionStatus::kOk);
    CHECK(result.stdout_text == "mem PermissionError\ngetfd -1 1\nprlimit PermissionError\npid 1 signalled\n");
    // The zygotes are as they were: numpy and sympy work, files can be written.
    const ExecutionResult after = pool().run("import numpy, sympy\nopen('/tmp/x', 'w').write('x' * 100000)\nprint(sympy.Integer(2)**10)");
    CHECK(after.status == ExecutionStatus::kOk);
    CHECK(after.stdout_text == "1024\n");
  }

  TEST_CASE("a snippet that kills or stops the lean zygote breaks only its own call") {
    for (const char* sig : {"SIGKILL", "SIGSTOP"}) {
      // Heavy snippets run in the main zygote (pid 1); the lean zygote is its first child.
      const ExecutionResult result = pool().run(
          std::string("import numpy, os, signal\n") +
          "lean = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, os.getpid())][0]\n"
          "os.kill(lean, signal." + sig + ")\n");
      CHECK_MESSAGE(result.status == ExecutionStatus::kSandboxError, sig);
      for (int i = 0; i < 4; ++i) check_next_call_works();
    }
  }

  TEST_CASE("/dev is read-only, /dev/shm and locked-down folders do not outlive their call") {
    const ExecutionResult result = pool().run(
        "import os\n"
        "try:\n"
        "    open('/dev/leak', 'w')\n"
        "    print('dev writable')\n"
        "except OSError:\n"
        "    print('dev read-only')\n"
        "open('/dev/shm/leak', 'w').write('x')\n"
        "os.makedirs('/tmp/d/e')\n"
        "open('/tmp/d/e/secret', 'w').write('x')\n"
        "os.chmod('/tmp/d/e', 0)\n"
        "os.chmod('/tmp/d', 0)\n"
        "os.chmod('/tmp', 0)\n"
        "print('locked')\n");
    CHECK(result.stdout_text == "dev read-only\nlocked\n");
    for (int i = 0; i < 4; ++i) {
      const ExecutionResult next = pool().run("import os\nprint(os.listdir('/tmp'), os.listdir('/dev/shm'))");
      CHECK(next.status == ExecutionStatus::kOk);
      CHECK(next.stdout_text == "[] []\n");
    }
  }

  TEST_CASE("10000 threads, raised rlimits and ptrace are refused") {
    const ExecutionResult threads = pool().run(
        "import threading, time\n"
        "started = 0\n"
        "try:\n"
        "    for _ in range(10000):\n"
        "        threading.Thread(target=time.sleep, args=(0.5,), daemon=True).start()\n"
        "        started += 1\n"
        "except RuntimeError as e:\n"
        "    print('stopped at', started < 10000)\n");
    CHECK(threads.status == ExecutionStatus::kOk);
    CHECK(threads.stdout_text == "stopped at True\n");

    const ExecutionResult rlimit = pool().run(
        "import resource\nresource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))");
    CHECK(rlimit.status == ExecutionStatus::kError);
    CHECK(rlimit.stderr_text.find("ValueError") != std::string::npos);

    const ExecutionResult ptrace = pool().run(
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.ptrace(16, os.getppid(), 0, 0), ctypes.get_errno())");  // PTRACE_ATTACH
    CHECK(ptrace.stdout_text == "-1 1\n");  // EPERM
    check_next_call_works();
  }

  TEST_CASE("a detached background process does not outlive its call") {
    const ExecutionResult result = pool().run(
        "import subprocess\n"
        "subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
        "import os\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    import time; time.sleep(1000)\n"
        "print('spawned')\n");
    CHECK(result.status == ExecutionStatus::kOk);
    CHECK(result.stdout_text == "spawned\n");
    check_bounded(result);
    check_nothing_left_running();
  }

  TEST_CASE("10000 files in /tmp are gone before the next call") {
    const ExecutionResult result = pool().run(
        "for i in range(10000):\n    open(f'/tmp/f{i}', 'w').close()\nimport os\nprint(len(os.listdir('/tmp')))");
    CHECK(result.status == ExecutionStatus::kOk);
    CHECK(result.stdout_text == "10000\n");
    for (int i = 0; i < 3; ++i) {
      CHECK(pool().run("import os\nprint(len(os.listdir('/tmp')))").stdout_text == "0\n");
    }
  }

  TEST_CASE("500 concurrent mixed calls, some hostile, each get their own right result") {
    struct Expectation {
      std::string code;
      ExecutionStatus status;
      std::string stdout_text;
    };
    std::vector<Expectation> plan;
    for (int i = 0; i < 500; ++i) {
      switch (i % 25) {
        case 5: plan.push_back({"while True: pass", ExecutionStatus::kTimeout, ""}); break;
        case 10: plan.push_back({"x = bytearray(8 * 1024**3)", ExecutionStatus::kMemory, ""}); break;
        case 15: plan.push_back({"raise ValueError(" + std::to_string(i) + ")", ExecutionStatus::kError, ""}); break;
        case 20: plan.push_back({"while True: print('y' * 1000)", ExecutionStatus::kOutputLimit, std::string(1000, 'y') + "\n"}); break;
        default: {
          const std::string n = std::to_string(i);
          plan.push_back({"import sympy\nprint(" + n + ", sympy.Integer(" + n + ")**2)", ExecutionStatus::kOk,
                          n + " " + std::to_string(i * i) + "\n"});
        }
      }
    }
    std::vector<std::promise<ExecutionResult>> promises(plan.size());
    for (size_t i = 0; i < plan.size(); ++i) {
      pool().submit(plan[i].code, [&promises, i](ExecutionResult result) { promises[i].set_value(std::move(result)); });
    }
    int wrong = 0;
    for (size_t i = 0; i < plan.size(); ++i) {
      const ExecutionResult result = promises[i].get_future().get();
      const bool right = result.status == plan[i].status &&
                         (plan[i].status == ExecutionStatus::kError || result.stdout_text.substr(0, plan[i].stdout_text.size()) == plan[i].stdout_text) &&
                         (plan[i].status != ExecutionStatus::kOutputLimit || result.stdout_text.size() == 4096);
      if (!right && ++wrong <= 5) {
        MESSAGE("call " << i << ": status " << std::string(status_name(result.status)) << ", stdout '" << result.stdout_text.substr(0, 80) << "'");
      }
    }
    CHECK(wrong == 0);
    const ExecutorMetrics metrics = pool().metrics();
    CHECK(metrics.queue_depth == 0);
    CHECK(metrics.running == 0);
    CHECK(metrics.executions_by_status[static_cast<size_t>(ExecutionStatus::kTimeout)] >= 20);
  }

  TEST_CASE("a full queue refuses new calls at once, with a status") {
    config::ToolConfig tool = test_tool_config();
    tool.workers = 1;
    tool.max_queue = 2;
    auto started = Executor::start(tool);
    REQUIRE(started.ok());
    Executor& small = **started;
    // The first call holds the only worker until its timeout; submissions are taken in order, so the
    // next two wait in the queue and the last two find it full, however slow the machine.
    std::vector<std::promise<ExecutionResult>> promises(5);
    for (size_t i = 0; i < promises.size(); ++i) {
      small.submit(i == 0 ? "import time\ntime.sleep(1000)" : "print('done')",
                   [&promises, i](ExecutionResult result) { promises[i].set_value(std::move(result)); });
    }
    std::vector<ExecutionResult> results;
    for (auto& promise : promises) results.push_back(promise.get_future().get());
    CHECK(results[0].status == ExecutionStatus::kTimeout);
    for (const size_t i : {size_t{1}, size_t{2}}) CHECK(results[i].status == ExecutionStatus::kOk);
    for (const size_t i : {size_t{3}, size_t{4}}) {
      CHECK(results[i].status == ExecutionStatus::kSandboxError);
      CHECK(results[i].stderr_text.find("queue full (tool.max_queue = 2)") != std::string::npos);
    }
  }

  TEST_CASE("with bubblewrap switched off, snippets still run with their limits in a private folder") {
    config::ToolConfig tool = test_tool_config();
    tool.workers = 1;
    tool.isolation.bubblewrap = false;
    auto started = Executor::start(tool);
    REQUIRE_MESSAGE(started.ok(), started.status().message());
    Executor& weak = **started;
    const ExecutionResult first = weak.run("import os\nopen('left.txt', 'w').write('x')\nprint(os.getcwd().startswith('/tmp/torl-sandbox/worker-'))");
    CHECK(first.status == ExecutionStatus::kOk);
    CHECK(first.stdout_text == "True\n");
    CHECK(weak.run("import os\nprint(os.listdir('.'))").stdout_text == "[]\n");
    CHECK(weak.run("x = bytearray(4 * 1024**3)").status == ExecutionStatus::kMemory);
    CHECK(weak.run("while True: pass").status == ExecutionStatus::kTimeout);
    CHECK(weak.run("print(2 + 2)").stdout_text == "4\n");
  }

  TEST_CASE("shutting down ends waiting calls with a status and leaves no process behind") {
    config::ToolConfig tool = test_tool_config();
    tool.workers = 1;
    std::vector<std::promise<ExecutionResult>> promises(3);
    {
      auto started = Executor::start(tool);
      REQUIRE(started.ok());
      for (size_t i = 0; i < promises.size(); ++i) {
        (*started)->submit("while True: pass",
                           [&promises, i](ExecutionResult result) { promises[i].set_value(std::move(result)); });
      }
    }  // destroyed with one call running and two queued
    for (auto& promise : promises) {
      const ExecutionResult result = promise.get_future().get();
      CHECK(result.status == ExecutionStatus::kSandboxError);
      CHECK(result.stderr_text == "sandbox: shutting down");
    }
  }
}

}  // namespace
}  // namespace torl::sandbox
