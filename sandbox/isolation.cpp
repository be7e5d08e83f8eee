#include "sandbox/isolation.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>

#include "common/log.hpp"

namespace torl::sandbox {
namespace {

constexpr const char* kBubblewrap = "/usr/bin/bwrap";
constexpr int kSeccompFd = 9;  // where bubblewrap reads the seccomp program from

// Syscalls a snippet never needs; each fails with EPERM.
constexpr const char* kDeniedSyscalls[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot",
    "unshare", "setns", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "reboot", "swapon", "swapoff", "bpf", "perf_event_open", "keyctl", "add_key",
    "request_key", "userfaultfd", "acct", "quotactl", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "syslog", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "open_by_handle_at", "name_to_handle_at", "fanotify_init", "vhangup", "iopl", "ioperm",
    "mount_setattr", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    "pidfd_getfd", "process_madvise",
};

// Syscalls allowed on the caller itself (argument `arg` is 0) but not on another process: a snippet
// must not change the limits, priority or CPUs of the zygote it was forked from.
constexpr std::pair<const char*, unsigned> kSelfOnlySyscalls[] = {
    {"prlimit64", 0}, {"setpriority", 1}, {"sched_setaffinity", 0}, {"sched_setscheduler", 0},
    {"sched_setparam", 0}, {"sched_setattr", 0},
};

// clone() flags that would make new namespaces.
constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,
                                             CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                             CLONE_NEWCGROUP};

// The seccomp program as raw BPF, built with libseccomp.
Expected<std::string> build_seccomp_program() {
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(SCMP_ACT_ALLOW), seccomp_release);
  if (!ctx) return Status(StatusCode::kUnavailable, "seccomp_init failed");
  const uint32_t deny = SCMP_ACT_ERRNO(EPERM);
  int rc = 0;
  for (const char* name : kDeniedSyscalls) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    rc |= seccomp_rule_add(ctx.get(), deny, nr, 0);
  }
  for (const auto& [name, arg] : kSelfOnlySyscalls) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;
    rc |= seccomp_rule_add(ctx.get(), deny, nr, 1, SCMP_CMP(arg, SCMP_CMP_NE, 0));
  }
  rc |= seccomp_rule_add(ctx.get(), deny, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX));
  rc |= seccomp_rule_add(ctx.get(), deny, SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX));
  for (const unsigned long flag : kNamespaceFlags) {
    rc |= seccomp_rule_add(ctx.get(), deny, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
  }
  // clone3 passes its flags in memory, out of the filter's reach: refuse it so that libc falls back
  // to clone, whose flags are checked above.
  rc |= seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc != 0) return Status(StatusCode::kInternal, "building the seccomp filter failed");

  const int fd = memfd_create("torl-seccomp", MFD_CLOEXEC);
  if (fd < 0) return io_error(std::string("memfd_create: ") + std::strerror(errno));
  std::string program;
  if (seccomp_export_bpf(ctx.get(), fd) == 0) {
    const off_t size = lseek(fd, 0, SEEK_END);
    program.resize(static_cast<size_t>(size));
    if (pread(fd, program.data(), program.size(), 0) != size) program.clear();
  }
  close(fd);
  if (program.empty()) return Status(StatusCode::kInternal, "exporting the seccomp filter failed");
  return program;
}

// A file descriptor closed when this object goes away.
struct OwnedFd {
  int fd = -1;
  explicit OwnedFd(int f = -1) : fd(f) {}
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd >= 0) close(fd);
  }
};

// Everything the forked child needs, prepared before fork so that the child only makes syscalls.
struct ChildPlan {
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> env;
  std::vector<std::pair<int, int>> fds;  // (target, source)
  int uid = -1;
  std::optional<int> nice;                        // the workers' nice value; none: torl's
  const std::string* seccomp_in_child = nullptr;  // applied with prctl when there is no bubblewrap
  int error_fd = -1;                              // the child writes errno here if exec fails
  sigset_t signal_mask{};                         // the caller's mask, restored before exec
};

[[noreturn]] void child_fail(int error_fd, int stage) {
  const int report[2] = {stage, errno};
  [[maybe_unused]] ssize_t ignored = write(error_fd, report, sizeof report);
  _exit(127);
}

// Runs in the child between clone and exec, in torl's memory (CLONE_VM) while torl's thread waits
// (CLONE_VFORK): async-signal-safe calls only, no allocation, nothing written but the stack.
[[noreturn]] void run_child(const ChildPlan& plan) {
  constexpr int kHigh = 100;
  // Move the error pipe and the sources out of the way first, so that no target overwrites them.
  const int error_fd = fcntl(plan.error_fd, F_DUPFD_CLOEXEC, kHigh);
  if (error_fd < 0) child_fail(plan.error_fd, 2);
  setpgid(0, 0);  // a Ctrl-C meant for torl is torl's to handle
  if (plan.nice && setpriority(PRIO_PROCESS, 0, *plan.nice) != 0) child_fail(error_fd, 7);
  if (chdir("/") != 0) child_fail(error_fd, 1);

  int moved[16];
  const size_t count = plan.fds.size() < 16 ? plan.fds.size() : 16;
  for (size_t i = 0; i < count; ++i) {
    moved[i] = fcntl(plan.fds[i].second, F_DUPFD_CLOEXEC, kHigh);
    if (moved[i] < 0) child_fail(error_fd, 2);
  }
  bool stdin_mapped = false;
  for (size_t i = 0; i < count; ++i) {
    if (dup2(moved[i], plan.fds[i].first) < 0) child_fail(error_fd, 2);
    stdin_mapped |= plan.fds[i].first == 0;
  }
  if (!stdin_mapped) {
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2(null_fd, 0) < 0) child_fail(error_fd, 2);
  }
  // Close every other descriptor but the error pipe (which is close-on-exec).
  for (int fd = 3; fd < 1024; ++fd) {
    bool keep = fd == error_fd;
    for (size_t i = 0; i < count && !keep; ++i) keep = plan.fds[i].first == fd;
    if (!keep) close(fd);
  }
  if (syscall(SYS_close_range, 1024u, ~0u, 0u) != 0) {  // kernels before 5.9
    rlimit files{};
    getrlimit(RLIMIT_NOFILE, &files);
    const rlim_t last = std::min<rlim_t>(files.rlim_cur, 1u << 20);
    for (rlim_t fd = 1024; fd < last; ++fd) close(static_cast<int>(fd));
  }

  // Raw syscalls: glibc's setuid() would signal every thread of the process, and in this child the
  // process's memory is torl's.
  if (plan.uid >= 0) {
    if (syscall(SYS_setgroups, 0, nullptr) != 0 || syscall(SYS_setresgid, plan.uid, plan.uid, plan.uid) != 0 ||
        syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) {
      child_fail(error_fd, 3);
    }
  }
  if (plan.seccomp_in_child) {
    sock_fprog program{};
    program.len = static_cast<unsigned short>(plan.seccomp_in_child->size() / sizeof(sock_filter));
    program.filter = reinterpret_cast<sock_filter*>(const_cast<char*>(plan.seccomp_in_child->data()));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
      child_fail(error_fd, 5);
    }
  }
  // Default signal handlers and torl's signal mask back, as the new program should start.
  for (int signal_number = 1; signal_number < NSIG; ++signal_number) {
    struct sigaction action {};
    if (sigaction(signal_number, nullptr, &action) == 0 && action.sa_handler != SIG_DFL &&
        action.sa_handler != SIG_IGN) {
      action = {};
      action.sa_handler = SIG_DFL;
      sigaction(signal_number, &action, nullptr);
    }
  }
  sigprocmask(SIG_SETMASK, &plan.signal_mask, nullptr);
  execve(plan.argv[0], plan.argv.data(), plan.env.data());
  child_fail(error_fd, 6);
}

int child_entry(void* plan) { run_child(*static_cast<const ChildPlan*>(plan)); }

const char* stage_name(int stage) {
  switch (stage) {
    case 1: return "chdir";
    case 2: return "placing file descriptors";
    case 3: return "switching to the sandbox uid";
    case 5: return "loading the seccomp filter";
    case 6: return "exec";
    case 7: return "lowering the CPU priority (tool.worker_nice)";
  }
  return "starting";
}

std::vector<std::string> sandbox_environment(const std::string& home) {
  return {"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
          "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1", "MPLBACKEND=Agg"};
}

}  // namespace

Expected<Isolation> Isolation::create(const config::ToolConfig& tool) {
  Isolation isolation(tool);
  const auto& layers = tool.isolation;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(tool.python, ec)) {
    return not_found("tool.python '" + tool.python.string() + "' does not exist");
  }

  if (layers.bubblewrap) {
    if (access(kBubblewrap, X_OK) != 0) {
      return Status(StatusCode::kUnavailable,
                    std::string(kBubblewrap) + " is missing: install bubblewrap (tools/setup does), or "
                    "set tool.isolation.bubblewrap: false on a machine without it (much weaker)");
    }
    if (tool.python.string().rfind("/usr/", 0) != 0) {
      return invalid_argument("tool.python '" + tool.python.string() +
                              "' must be under /usr: only /usr is visible inside bubblewrap");
    }
  } else {
    TORL_LOG(kWarn) << "SANDBOX WEAKENED: tool.isolation.bubblewrap is off: snippets see the host's "
                       "files and network and may leave processes behind";
  }

  if (layers.uid >= 0 && geteuid() == 0) {
    isolation.run_as_uid_ = layers.uid;
  } else if (layers.uid >= 0) {
    TORL_LOG(kDebug) << "sandbox: torl is not root, so workers keep uid " << geteuid();
  } else if (geteuid() == 0) {
    TORL_LOG(kWarn) << "SANDBOX WEAKENED: tool.isolation.uid is -1 and torl runs as root: snippets "
                       "run as root inside their namespaces";
  }

  if (layers.seccomp) {
    auto program = build_seccomp_program();
    if (!program) return program.status().with_context("tool.isolation.seccomp");
    isolation.seccomp_program_ = std::move(program).value();
  } else {
    TORL_LOG(kWarn) << "SANDBOX WEAKENED: tool.isolation.seccomp is off: snippets may use any syscall";
  }
  if (!layers.rlimits) {
    TORL_LOG(kWarn) << "SANDBOX WEAKENED: tool.isolation.rlimits is off: a snippet may exhaust "
                       "memory, CPU, disk or processes";
  }
  return isolation;
}

std::string Isolation::workdir(const std::string& host_workdir) const {
  return tool_.isolation.bubblewrap ? "/tmp" : host_workdir;
}

Expected<std::string> Isolation::make_host_workdir() const {
  std::error_code ec;
  const auto base = std::filesystem::temp_directory_path(ec) / "torl-sandbox";
  std::filesystem::create_directories(base, ec);
  std::string path = (base / "worker-XXXXXX").string();
  if (mkdtemp(path.data()) == nullptr) {
    return io_error("creating a sandbox folder under " + base.string() + ": " + std::strerror(errno));
  }
  if (run_as_uid_ >= 0 && chown(path.c_str(), run_as_uid_, run_as_uid_) != 0) {
    return io_error("handing " + path + " to uid " + std::to_string(run_as_uid_) + ": " + std::strerror(errno));
  }
  return path;
}

std::vector<std::string> Isolation::bubblewrap_arguments() const {
  const std::string tmp_bytes = std::to_string(static_cast<long long>(tool_.isolation.tmp_mb) << 20);
  // --as-pid-1: our process is the sandbox's init, which no process inside can signal.
  std::vector<std::string> args = {
      kBubblewrap, "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
      "--ro-bind", "/usr", "/usr",
      "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
      "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
      // libblas.so.3 and friends resolve through Debian's alternatives.
      "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
      "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
      "--proc", "/proc", "--dev", "/dev",
      "--size", tmp_bytes, "--tmpfs", "/tmp", "--size", tmp_bytes, "--tmpfs", "/dev/shm",
      // Everything but /tmp and /dev/shm read-only, including the root bubblewrap builds the rest in.
      "--remount-ro", "/dev", "--remount-ro", "/",
      "--chdir", "/tmp", "--clearenv"};
  for (const auto& variable : sandbox_environment("/tmp")) {
    const auto eq = variable.find('=');
    args.insert(args.end(), {"--setenv", variable.substr(0, eq), variable.substr(eq + 1)});
  }
  if (!seccomp_program_.empty()) args.insert(args.end(), {"--seccomp", std::to_string(kSeccompFd)});
  args.push_back("--");
  return args;
}

Json Isolation::snippet_limits() const {
  const auto& layers = tool_.isolation;
  return {{"memory_mb", tool_.memory_mb},
          {"cpu_seconds", cpu_seconds()},
          {"file_mb", layers.file_mb},
          {"max_processes", layers.max_processes},
          {"rlimits", layers.rlimits}};
}

Expected<SpawnedProcess> Isolation::spawn(const std::vector<std::string>& command,
                                          const std::vector<std::pair<int, int>>& fds) const {
  TORL_CHECK(!command.empty() && fds.size() < 15, "spawn: bad command or too many descriptors");
  const bool bubblewrap = tool_.isolation.bubblewrap;

  ChildPlan plan;
  plan.argv_storage = bubblewrap ? bubblewrap_arguments() : std::vector<std::string>{};
  plan.argv_storage.insert(plan.argv_storage.end(), command.begin(), command.end());
  for (auto& arg : plan.argv_storage) plan.argv.push_back(arg.data());
  plan.argv.push_back(nullptr);
  plan.env_storage = sandbox_environment(bubblewrap ? "/tmp" : "/nonexistent");
  for (auto& variable : plan.env_storage) plan.env.push_back(variable.data());
  plan.env.push_back(nullptr);
  plan.fds = fds;
  plan.uid = run_as_uid_;
  if (tool_.worker_nice > 0) {  // relative to torl's own priority, as nice(1) counts
    errno = 0;
    const int own = getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && own < 19) plan.nice = std::min(19, own + tool_.worker_nice);
  }

  OwnedFd seccomp_fd;
  if (!seccomp_program_.empty()) {
    if (bubblewrap) {
      // bubblewrap reads the program from a descriptor; each spawn gets its own (the read moves
      // the file offset).
      seccomp_fd.fd = memfd_create("torl-seccomp", MFD_CLOEXEC);
      if (seccomp_fd.fd < 0 ||
          pwrite(seccomp_fd.fd, seccomp_program_.data(), seccomp_program_.size(), 0) !=
              static_cast<ssize_t>(seccomp_program_.size())) {
        return io_error(std::string("writing the seccomp program: ") + std::strerror(errno));
      }
      plan.fds.emplace_back(kSeccompFd, seccomp_fd.fd);
    } else {
      plan.seccomp_in_child = &seccomp_program_;
    }
  }

  int error_pipe[2];
  if (pipe2(error_pipe, O_CLOEXEC) != 0) return io_error(std::string("pipe: ") + std::strerror(errno));
  OwnedFd error_read(error_pipe[0]), error_write(error_pipe[1]);
  plan.error_fd = error_write.fd;

  // clone(CLONE_VM | CLONE_VFORK), as posix_spawn does: no copy of torl's (possibly many GB of)
  // memory, and this thread waits only until the child has called exec. Signals stay blocked until
  // the child has reset its handlers.
  std::vector<char> stack(256 * 1024);
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &plan.signal_mask);
  const pid_t pid = clone(child_entry, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &plan.signal_mask, nullptr);
  if (pid < 0) return Status(StatusCode::kUnavailable, std::string("clone: ") + std::strerror(clone_errno));

  close(error_write.fd);
  error_write.fd = -1;
  int report[2] = {0, 0};
  ssize_t got;
  do {
    got = read(error_read.fd, report, sizeof report);
  } while (got < 0 && errno == EINTR);
  if (got == sizeof report) {
    waitpid(pid, nullptr, 0);
    return Status(StatusCode::kUnavailable, std::string("starting the sandbox failed at ") +
                                                stage_name(report[0]) + ": " + std::strerror(report[1]));
  }
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return io_error(std::string("pidfd_open: ") + std::strerror(errno));
  }
  return SpawnedProcess{pid, pidfd};
}

}  // namespace torl::sandbox
