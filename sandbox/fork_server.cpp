#include "sandbox/fork_server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "common/json.hpp"
#include "common/log.hpp"

namespace torl::sandbox {

extern const char* const kForkServerSource;  // forkserver.py, embedded at build time

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kStartTimeout = std::chrono::seconds(60);
constexpr auto kCleanUpTimeout = std::chrono::seconds(30);  // for the worker to clear up after a snippet
constexpr auto kKillGrace = std::chrono::seconds(2);    // for the worker to confirm a kill
constexpr auto kDrainGrace = std::chrono::seconds(1);   // for pipes to close after the exit
constexpr size_t kDiagnosticsBytes = 4096;
constexpr int kControlFd = 3;
constexpr const char* kWorkerDied = "sandbox: the worker process died during this call (it is being replaced)";

void append_line(std::string& text, const std::string& line) {
  if (!text.empty() && text.back() != '\n') text += "\n";
  text += line;
}

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// Sends `data` with two descriptors attached to its first byte; returns how many bytes went out.
ssize_t send_with_fds(int socket_fd, const std::string& data, int fd_a, int fd_b) {
  iovec io{const_cast<char*>(data.data()), data.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &io;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(2 * sizeof(int));
  const int fds[2] = {fd_a, fd_b};
  std::memcpy(CMSG_DATA(header), fds, sizeof fds);
  ssize_t sent;
  do {
    sent = sendmsg(socket_fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);
  return sent;
}

}  // namespace

// One snippet in progress. Its asynchronous handlers hold it by shared_ptr and do nothing once it
// is `finished`.
struct ForkServer::Call {
  explicit Call(asio::io_context& io) : out(io), err(io), timer(io), drain_timer(io) {}

  Done done;
  Clock::time_point start = Clock::now();
  asio::posix::stream_descriptor out, err;
  std::array<char, 65536> out_chunk, err_chunk;
  ExecutionResult result;
  bool out_open = true, err_open = true;
  bool exited = false;       // the worker reported the snippet's end
  bool memory = false;       // ... and that it raised MemoryError
  bool worker_died = false;  // ... or that the snippet broke the worker, which now exits
  bool timed_out = false;    // we killed it at the wall-clock timeout
  bool overflowed = false;   // we killed it for writing too much
  bool keep_running = false; // past the cap, read and drop the rest instead of killing it
  bool kill_sent = false;
  bool finished = false;
  asio::steady_timer timer;        // the timeout, then the grace for the kill
  asio::steady_timer drain_timer;  // after the exit, the grace for the pipes
};

ForkServer::ForkServer(asio::io_context& io, const Isolation& isolation, int slot)
    : io_(io), isolation_(isolation), slot_(slot), control_(io), process_(io), diagnostics_(io),
      ready_timer_(io) {}

ForkServer::~ForkServer() {
  stop();
  reap();
}

void ForkServer::start(std::function<void(Status)> on_started, std::function<void()> on_idle,
                       std::function<void()> on_exit) {
  on_started_ = std::move(on_started);
  on_idle_ = std::move(on_idle);
  on_exit_ = std::move(on_exit);
  auto fail = [&](Status status) {
    state_ = State::kDead;
    auto callback = std::move(on_started_);
    asio::post(io_, [callback, status] { callback(status); });
  };

  int control[2], diagnostics[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
    return fail(io_error(std::string("socketpair: ") + std::strerror(errno)));
  }
  if (pipe2(diagnostics, O_CLOEXEC) != 0) {
    close(control[0]);
    close(control[1]);
    return fail(io_error(std::string("pipe: ") + std::strerror(errno)));
  }
  const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  auto close_all = [&] {
    for (const int fd : {control[0], control[1], diagnostics[0], diagnostics[1], null_fd}) close(fd);
  };

  if (!isolation_.tool().isolation.bubblewrap) {
    auto workdir = isolation_.make_host_workdir();
    if (!workdir) {
      close_all();
      return fail(workdir.status());
    }
    host_workdir_ = *workdir;
  }

  const auto& tool = isolation_.tool();
  Json settings = isolation_.snippet_limits();
  settings["pid_namespace"] = isolation_.pid_namespace();
  settings["workdir"] = isolation_.workdir(host_workdir_);
  auto spawned = isolation_.spawn({tool.python.string(), "-I", "-c", kForkServerSource, settings.dump()},
                                  {{1, null_fd}, {2, diagnostics[1]}, {kControlFd, control[1]}});
  close(control[1]);
  close(diagnostics[1]);
  close(null_fd);
  if (!spawned) {
    close(control[0]);
    close(diagnostics[0]);
    return fail(spawned.status().with_context("starting sandbox worker " + std::to_string(slot_)));
  }
  pid_ = spawned->pid;
  control_.assign(asio::local::stream_protocol(), control[0]);
  process_.assign(spawned->pidfd);
  diagnostics_.assign(diagnostics[0]);

  auto self = shared_from_this();
  process_.async_wait(asio::posix::stream_descriptor::wait_read, [self](boost::system::error_code ec) {
    if (!ec) self->on_worker_exit();
  });
  ready_timer_.expires_after(kStartTimeout);
  ready_timer_.async_wait([self](boost::system::error_code ec) {
    if (ec || self->state_ != State::kStarting) return;
    self->state_ = State::kDead;  // never started: its exit is no news
    self->stop();
    auto callback = std::move(self->on_started_);
    callback(Status(StatusCode::kTimeout, "sandbox worker " + std::to_string(self->slot_) +
                                              " did not become ready in 60 s" + self->diagnostics_tail()));
  });
  read_diagnostics();
  read_control();
}

void ForkServer::read_diagnostics() {
  auto self = shared_from_this();
  diagnostics_.async_read_some(asio::buffer(diagnostics_chunk_), [self](boost::system::error_code ec, size_t n) {
    if (ec) return;
    self->diagnostics_text_.append(self->diagnostics_chunk_.data(), n);
    if (self->diagnostics_text_.size() > kDiagnosticsBytes) {
      self->diagnostics_text_.erase(0, self->diagnostics_text_.size() - kDiagnosticsBytes);
    }
    self->read_diagnostics();
  });
}

std::string ForkServer::diagnostics_tail() const {
  if (diagnostics_text_.empty()) return "";
  return "; its stderr ends with:\n" + diagnostics_text_;
}

void ForkServer::read_control() {
  auto self = shared_from_this();
  asio::async_read_until(control_, asio::dynamic_buffer(control_buffer_), '\n',
                         [self](boost::system::error_code ec, size_t n) {
                           if (ec) return;  // the worker's exit is handled through its pidfd
                           std::string line = self->control_buffer_.substr(0, n - 1);
                           self->control_buffer_.erase(0, n);
                           self->on_control_line(line);
                           if (self->state_ != State::kDead) self->read_control();
                         });
}

void ForkServer::write_control(std::string line) {
  writes_.push_back(std::move(line));
  if (writes_.size() == 1) write_next();
}

void ForkServer::write_next() {
  auto self = shared_from_this();
  asio::async_write(control_, asio::buffer(writes_.front()), [self](boost::system::error_code ec, size_t) {
    if (ec) {
      self->writes_.clear();  // the worker is gone; its exit is handled through its pidfd
      return;
    }
    self->writes_.pop_front();
    if (!self->writes_.empty()) self->write_next();
  });
}

void ForkServer::on_control_line(const std::string& line) {
  auto message = parse_json(line, "sandbox worker " + std::to_string(slot_));
  if (!message || !message->is_object()) {
    TORL_LOG(kError) << "sandbox worker " << slot_ << " sent a malformed message: " << line;
    stop();
    on_worker_exit();
    return;
  }
  if (message->value("ready", false)) {
    if (state_ == State::kStarting) {
      state_ = State::kIdle;
      ready_timer_.cancel();
      auto callback = std::move(on_started_);
      callback(Status());
    } else if (state_ == State::kCleaning) {
      state_ = State::kIdle;
      ready_timer_.cancel();
      if (on_idle_) on_idle_();
    }
    return;
  }
  if (state_ == State::kCleaning && message->value("worker_died", false)) {
    // It could not clear up after the snippet (whose result is out) and exits; on_exit follows.
    state_ = State::kExiting;
    ready_timer_.cancel();
    stop();
    return;
  }
  if (state_ != State::kBusy || !call_) return;
  auto call = call_;
  call->exited = true;
  call->memory = message->value("memory", false);
  call->worker_died = message->value("worker_died", false);
  call->result.exit_code = message->value("exit_code", -1);
  call->result.signal = message->value("signal", 0);
  if (const auto files = message->find("files"); files != message->end() && files->is_object()) {
    for (const auto& [path, content] : files->items()) {
      if (content.is_string()) call->result.files[path] = content.get<std::string>();
    }
  }
  call->timer.cancel();
  auto self = shared_from_this();
  call->drain_timer.expires_after(kDrainGrace);
  call->drain_timer.async_wait([self, call](boost::system::error_code ec) {
    if (ec || call->finished) return;
    call->out_open = call->err_open = false;  // something outside the sandbox's reach holds the pipes
    self->maybe_finish();
  });
  maybe_finish();
}

// The control message for `request`: only the fields it uses, so that a plain snippet's is {"code"}.
std::string ForkServer::run_message(const RunRequest& request) const {
  const auto& tool = isolation_.tool();
  Json message = {{"code", request.code}};
  if (request.stdin_text) message["stdin"] = *request.stdin_text;
  if (!request.files.empty()) {
    Json files = Json::object();
    for (const auto& [path, content] : request.files) files[path] = content;
    message["files"] = std::move(files);
  }
  if (!request.fetch_files.empty()) message["fetch_files"] = request.fetch_files;
  if (request.as_file) message["as_file"] = true;
  if (request.memory_mb > 0 && request.memory_mb < tool.memory_mb) message["memory_mb"] = request.memory_mb;
  if (request.timeout_ms > 0 && request.timeout_ms < tool.timeout_ms) {
    message["cpu_seconds"] = Isolation::cpu_seconds_for(request.timeout_ms);
  }
  return message.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

bool ForkServer::run(const RunRequest& request, Done& done) {
  TORL_CHECK(state_ == State::kIdle && !call_, "ForkServer::run on a worker that is not idle");
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return false;
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return false;
  }
  const std::string message = run_message(request);
  const ssize_t sent = send_with_fds(control_.native_handle(), message, out[1], err[1]);
  close(out[1]);
  close(err[1]);
  if (sent <= 0) {
    // The worker is gone or wedged: the snippet never started, so it goes to another worker.
    close(out[0]);
    close(err[0]);
    state_ = State::kExiting;
    stop();
    return false;
  }
  state_ = State::kBusy;
  call_ = std::make_shared<Call>(io_);
  auto call = call_;
  call->done = std::move(done);
  call->keep_running = request.overflow == OutputOverflow::kKeepRunning;
  call->out.assign(out[0]);
  call->err.assign(err[0]);
  if (static_cast<size_t>(sent) < message.size()) write_control(message.substr(static_cast<size_t>(sent)));

  read_output(call, true);
  read_output(call, false);
  auto self = shared_from_this();
  const int timeout_ms = request.timeout_ms > 0 ? request.timeout_ms : isolation_.tool().timeout_ms;
  call->timer.expires_after(std::chrono::milliseconds(timeout_ms));
  call->timer.async_wait([self, call](boost::system::error_code ec) {
    if (ec || call->finished || call->exited) return;
    call->timed_out = true;
    self->request_kill();
  });
  return true;
}

void ForkServer::read_output(const std::shared_ptr<Call>& call, bool is_stdout) {
  auto& pipe = is_stdout ? call->out : call->err;
  auto& chunk = is_stdout ? call->out_chunk : call->err_chunk;
  auto self = shared_from_this();
  pipe.async_read_some(asio::buffer(chunk), [self, call, is_stdout](boost::system::error_code ec, size_t n) {
    if (call->finished) return;
    std::string& text = is_stdout ? call->result.stdout_text : call->result.stderr_text;
    const auto& chunk = is_stdout ? call->out_chunk : call->err_chunk;
    if (ec) {
      (is_stdout ? call->out_open : call->err_open) = false;
      self->maybe_finish();
      return;
    }
    const size_t cap = static_cast<size_t>(self->isolation_.tool().max_output_bytes);
    const size_t room = cap > text.size() ? cap - text.size() : 0;
    text.append(chunk.data(), std::min(n, room));
    if (n > room && call->keep_running) {
      // Past the cap: keep what fits and drop the rest, so that the snippet is never blocked on a
      // full pipe and ends as it would have (its exit status, or the timeout).
      call->result.truncated = true;
      self->read_output(call, is_stdout);
      return;
    }
    if (n > room) {
      // Past the cap: keep what fits, stop reading, and end the snippet.
      call->result.truncated = true;
      if (!call->exited && !call->timed_out) call->overflowed = true;
      (is_stdout ? call->out_open : call->err_open) = false;
      self->request_kill();
      self->maybe_finish();
      return;
    }
    self->read_output(call, is_stdout);
  });
}

void ForkServer::request_kill() {
  auto call = call_;
  if (call->kill_sent || call->exited) return;
  call->kill_sent = true;
  write_control("{\"kill\": true}\n");
  auto self = shared_from_this();
  call->timer.expires_after(kKillGrace);
  call->timer.async_wait([self, call](boost::system::error_code ec) {
    if (ec || call->finished || call->exited) return;
    TORL_LOG(kWarn) << "sandbox worker " << self->slot_ << " did not confirm a kill; replacing it";
    self->stop();
    self->on_worker_exit();
  });
}

void ForkServer::maybe_finish() {
  Call& call = *call_;
  if (call.finished || !call.exited || call.out_open || call.err_open) return;
  ExecutionResult& result = call.result;
  // A MemoryError outranks the timer: the snippet's code ended with it, and the timer may have fired
  // only while the snippet exited (freeing its memory) or ran its exit handlers.
  if (call.worker_died) {
    result.status = ExecutionStatus::kSandboxError;
    append_line(result.stderr_text, kWorkerDied);
  } else if (call.overflowed) {
    result.status = ExecutionStatus::kOutputLimit;
  } else if (call.memory) {
    result.status = ExecutionStatus::kMemory;
  } else if (call.timed_out || result.signal == SIGXCPU) {
    result.status = ExecutionStatus::kTimeout;
  } else if (result.signal != 0) {
    result.status = ExecutionStatus::kKilled;
  } else {
    result.status = result.exit_code == 0 ? ExecutionStatus::kOk : ExecutionStatus::kError;
  }
  if (call.worker_died) {
    state_ = State::kExiting;  // takes no more work; make sure it goes, on_exit follows
    finish(std::move(result));
    stop();
    return;
  }
  // The worker clears up after the snippet now, while the caller has its result; one that takes too
  // long is replaced.
  state_ = State::kCleaning;
  auto self = shared_from_this();
  ready_timer_.expires_after(kCleanUpTimeout);
  ready_timer_.async_wait([self](boost::system::error_code ec) {
    if (ec || self->state_ != State::kCleaning) return;
    TORL_LOG(kWarn) << "sandbox worker " << self->slot_ << " did not clear up after a snippet in "
                    << kCleanUpTimeout.count() << " s; replacing it";
    self->stop();
    self->on_worker_exit();
  });
  finish(std::move(result));
}

void ForkServer::finish(ExecutionResult result) {
  std::shared_ptr<Call> call = std::move(call_);
  call->finished = true;
  boost::system::error_code ignored;
  call->out.close(ignored);
  call->err.close(ignored);
  call->timer.cancel();
  call->drain_timer.cancel();
  result.wall_ms = elapsed_ms(call->start);
  Done done = std::move(call->done);
  done(std::move(result));
}

void ForkServer::on_worker_exit() {
  reap();
  const bool was_starting = state_ == State::kStarting;
  const bool was_dead = state_ == State::kDead && !call_;
  state_ = State::kDead;
  boost::system::error_code ignored;
  control_.close(ignored);
  process_.close(ignored);
  ready_timer_.cancel();
  if (call_) {
    Call& call = *call_;
    ExecutionResult result = std::move(call.result);
    if (call.timed_out) {
      result.status = ExecutionStatus::kTimeout;
    } else if (call.overflowed) {
      result.status = ExecutionStatus::kOutputLimit;
    } else {
      result.status = ExecutionStatus::kSandboxError;
      append_line(result.stderr_text, kWorkerDied);
    }
    finish(std::move(result));
  }
  if (was_starting && on_started_) {
    auto callback = std::move(on_started_);
    callback(Status(StatusCode::kUnavailable,
                    "sandbox worker " + std::to_string(slot_) + " exited while starting" + diagnostics_tail()));
    return;
  }
  if (!was_dead && on_exit_) {
    auto callback = std::move(on_exit_);
    callback();
  }
}

void ForkServer::shutdown() {
  on_started_ = nullptr;
  on_idle_ = nullptr;
  on_exit_ = nullptr;
  stop();
  reap();
  boost::system::error_code ignored;
  control_.close(ignored);  // cancels a pending write, whose buffer this object still owns
  process_.close(ignored);
  diagnostics_.close(ignored);
  ready_timer_.cancel();
  state_ = State::kDead;
  if (call_) finish(sandbox_error("sandbox: shutting down"));
}

void ForkServer::stop() {
  if (pid_ > 0) {
    // Without bubblewrap the worker's process group holds the zygotes and any snippet; with it,
    // killing bubblewrap takes the whole sandbox along.
    if (!isolation_.pid_namespace()) kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
  }
  if (!host_workdir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(host_workdir_, ec);
    host_workdir_.clear();
  }
}

void ForkServer::reap() {
  if (pid_ > 0) {
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

}  // namespace torl::sandbox
