// Child processes through posix_spawn: pipes, process groups, deadlines and cancellation.
#include "capstan/process/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

extern char** environ;

namespace capstan::process {
namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(int err) {
  return std::strerror(err);
}

void close_fd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

ExitStatus decode(int raw) {
  ExitStatus s;
  if (WIFEXITED(raw)) {
    s.exit_code = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    s.signal = WTERMSIG(raw);
  }
  return s;
}

// Owns the file actions and attributes so every exit path releases them.
struct SpawnPlan {
  posix_spawn_file_actions_t actions{};
  posix_spawnattr_t attr{};
  SpawnPlan() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnPlan() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnPlan(const SpawnPlan&) = delete;
  SpawnPlan& operator=(const SpawnPlan&) = delete;
};

std::vector<std::string> build_env(const Options& options) {
  std::map<std::string, std::string> merged;
  if (options.inherit_env) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view kv(*e);
      auto eq = kv.find('=');
      if (eq == std::string_view::npos) continue;
      merged.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
  }
  for (const auto& [k, v] : options.env) merged[k] = v;
  std::vector<std::string> out;
  out.reserve(merged.size());
  for (const auto& [k, v] : merged) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> c_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

class LineSplitter {
public:
  LineSplitter(Stream stream, const RunControl& control, std::string* sink)
      : stream_(stream), control_(control), sink_(sink) {}

  void feed(const char* data, std::size_t n) {
    if (sink_ != nullptr) sink_->append(data, n);
    if (!control_.on_line) return;
    for (std::size_t i = 0; i < n; ++i) {
      if (data[i] == '\n') {
        emit();
      } else {
        partial_.push_back(data[i]);
        if (partial_.size() >= control_.max_line_bytes) emit();
      }
    }
  }
  void finish() {
    if (!partial_.empty()) emit();
  }

private:
  void emit() {
    control_.on_line(stream_, partial_);
    partial_.clear();
  }

  Stream stream_;
  const RunControl& control_;
  std::string* sink_;
  std::string partial_;
};

} // namespace

std::string ExitStatus::describe() const {
  if (signal != 0) {
    const char* name = ::strsignal(signal);
    return "killed by signal " + std::to_string(signal) + " (" + (name ? name : "?") + ")";
  }
  return "exit code " + std::to_string(exit_code);
}

Child Child::spawn(const Options& options) {
  if (options.stdin_data) {
    throw SpawnError("stdin_data is delivered by process::run(), not by Child::spawn()");
  }
  return spawn_with_stdin(options, -1);
}

Child Child::spawn_with_stdin(const Options& options, int stdin_fd) {
  if (options.argv.empty()) throw SpawnError("no command given");
  SpawnPlan plan;
  int in_fd = stdin_fd >= 0 ? stdin_fd : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in_fd < 0) throw SpawnError("cannot open /dev/null: " + errno_text(errno));
  posix_spawn_file_actions_adddup2(&plan.actions, in_fd, STDIN_FILENO);

  std::array<int, 2> out_pipe{-1, -1};
  std::array<int, 2> err_pipe{-1, -1};
  auto make_pipe = [&](const std::string& path, int target, std::array<int, 2>& p) {
    if (path == "-") return;
    if (!path.empty()) {
      posix_spawn_file_actions_addopen(&plan.actions, target, path.c_str(),
                                       O_WRONLY | O_CREAT | O_APPEND, 0644);
      return;
    }
    if (::pipe2(p.data(), O_CLOEXEC) != 0) {
      throw SpawnError("cannot create a pipe: " + errno_text(errno));
    }
    posix_spawn_file_actions_adddup2(&plan.actions, p[1], target);
  };
  auto cleanup = [&] {
    for (int* fd : {&in_fd, &out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1]}) close_fd(*fd);
  };
  try {
    make_pipe(options.stdout_path, STDOUT_FILENO, out_pipe);
    make_pipe(options.stderr_path, STDERR_FILENO, err_pipe);
  } catch (...) {
    cleanup();
    throw;
  }
  if (!options.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&plan.actions, options.working_dir.c_str());
  }

  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&plan.attr, &empty);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&plan.attr, &all);
  if (options.new_session) {
    flags |= POSIX_SPAWN_SETSID;
  } else if (options.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&plan.attr, 0);
  }
  posix_spawnattr_setflags(&plan.attr, flags);

  std::vector<std::string> argv_copy = options.argv;
  std::vector<std::string> env = build_env(options);
  std::vector<char*> argv_c = c_array(argv_copy);
  std::vector<char*> env_c = c_array(env);

  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, argv_copy[0].c_str(), &plan.actions, &plan.attr, argv_c.data(),
                          env_c.data());
  close_fd(in_fd);
  close_fd(out_pipe[1]);
  close_fd(err_pipe[1]);
  if (rc != 0) {
    close_fd(out_pipe[0]);
    close_fd(err_pipe[0]);
    std::string where = options.working_dir.empty() ? "" : " in " + options.working_dir;
    throw SpawnError("cannot start '" + options.argv[0] + "'" + where + ": " + errno_text(rc));
  }
  Child child;
  child.pid_ = pid;
  child.group_ = options.new_process_group || options.new_session;
  child.out_fd_ = out_pipe[0];
  child.err_fd_ = err_pipe[0];
  return child;
}

pid_t Child::release() {
  close_fds();
  status_.reset();
  return std::exchange(pid_, -1);
}

Child::Child(Child&& other) noexcept {
  *this = std::move(other);
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) terminate(std::chrono::milliseconds(0));
    close_fds();
    pid_ = std::exchange(other.pid_, -1);
    group_ = other.group_;
    status_ = std::exchange(other.status_, std::nullopt);
    out_fd_ = std::exchange(other.out_fd_, -1);
    err_fd_ = std::exchange(other.err_fd_, -1);
  }
  return *this;
}

Child::~Child() {
  if (pid_ > 0 && !status_) terminate(std::chrono::milliseconds(0));
  close_fds();
}

void Child::close_fds() {
  close_fd(out_fd_);
  close_fd(err_fd_);
}

bool Child::running() {
  if (pid_ <= 0 || status_) return false;
  return !wait_for(std::chrono::milliseconds(0)).has_value();
}

void Child::signal(int sig) {
  if (pid_ <= 0 || status_) return;
  if (group_) {
    // The group outlives its leader when the leader is reaped first; kill() on a gone
    // group is harmless (ESRCH).
    ::kill(-pid_, sig);
  } else {
    ::kill(pid_, sig);
  }
}

std::optional<ExitStatus> Child::wait_for(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  auto deadline = Clock::now() + timeout;
  // pidfd_open through syscall(): glibc 2.36 declares it without C linkage for C++.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  for (;;) {
    int raw = 0;
    pid_t r = ::waitpid(pid_, &raw, WNOHANG);
    if (r == pid_) {
      status_ = decode(raw);
      break;
    }
    if (r < 0 && errno != EINTR) {
      status_ = ExitStatus{}; // already reaped elsewhere: unknown status
      break;
    }
    auto now = Clock::now();
    if (now >= deadline) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    int wait_ms = static_cast<int>(std::min<long long>(left.count() + 1, 50));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, wait_ms);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(wait_ms, 5)));
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  return status_;
}

ExitStatus Child::terminate(std::chrono::milliseconds grace) {
  if (status_) return *status_;
  if (pid_ <= 0) return ExitStatus{};
  if (grace.count() > 0) {
    signal(SIGTERM);
    if (auto s = wait_for(grace)) {
      signal(SIGKILL); // leftovers of the group
      return *s;
    }
  }
  signal(SIGKILL);
  auto s = wait_for(std::chrono::milliseconds(10000));
  return s.value_or(ExitStatus{});
}

RunResult run(Options options, const RunControl& control) {
  std::optional<std::string> input = std::move(options.stdin_data);
  options.stdin_data.reset();
  options.stdout_path.clear();
  options.stderr_path.clear();

  // stdin: a pipe fed from the poll loop, so a child that writes before it reads can't
  // deadlock against us.
  int in_write = -1;
  Child child;
  if (input) {
    std::array<int, 2> in_pipe{};
    if (::pipe2(in_pipe.data(), O_CLOEXEC) != 0) {
      throw SpawnError("cannot create a pipe: " + errno_text(errno));
    }
    in_write = in_pipe[1];
    try {
      child = Child::spawn_with_stdin(options, in_pipe[0]); // takes ownership of the read end
    } catch (...) {
      close_fd(in_write);
      throw;
    }
    ::fcntl(in_write, F_SETFL, ::fcntl(in_write, F_GETFL) | O_NONBLOCK);
    if (input->empty()) close_fd(in_write);
  } else {
    child = Child::spawn(options);
  }
  std::size_t input_sent = 0;

  RunResult result;
  LineSplitter out_lines(Stream::kStdout, control, control.capture ? &result.out : nullptr);
  LineSplitter err_lines(Stream::kStderr, control, control.capture ? &result.err : nullptr);
  // The loop below owns the read ends from here on.
  int out_fd = std::exchange(child.out_fd_, -1);
  int err_fd = std::exchange(child.err_fd_, -1);

  auto start = Clock::now();
  // SIGKILL after the grace once we asked the child to stop; max() while not asked.
  Clock::time_point kill_at = Clock::time_point::max();
  std::optional<Clock::time_point> exited_at; // when the leader was reaped
  std::array<char, 8192> buf{};

  for (;;) {
    std::array<pollfd, 3> fds{};
    nfds_t n = 0;
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    if (in_write >= 0) fds[n++] = {in_write, POLLOUT, 0};
    if (n == 0 && exited_at) break;
    int timeout_ms = 50;
    if (n > 0) {
      int rc = ::poll(fds.data(), n, timeout_ms);
      if (rc < 0 && errno != EINTR) break;
      for (nfds_t i = 0; i < n; ++i) {
        if (fds[i].fd == in_write) {
          if ((fds[i].revents & (POLLERR | POLLHUP)) != 0) {
            close_fd(in_write); // the child closed its stdin
          } else if ((fds[i].revents & POLLOUT) != 0) {
            ssize_t put = ::write(in_write, input->data() + input_sent, input->size() - input_sent);
            if (put > 0) input_sent += static_cast<std::size_t>(put);
            if ((put < 0 && errno != EAGAIN && errno != EINTR) || input_sent == input->size()) {
              close_fd(in_write);
            }
          }
          continue;
        }
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        ssize_t got = ::read(fds[i].fd, buf.data(), buf.size());
        bool is_out = fds[i].fd == out_fd;
        if (got > 0) {
          (is_out ? out_lines : err_lines).feed(buf.data(), static_cast<std::size_t>(got));
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
          (is_out ? out_lines : err_lines).finish();
          close_fd(is_out ? out_fd : err_fd);
        }
      }
    } else {
      child.wait_for(std::chrono::milliseconds(timeout_ms));
    }

    auto now = Clock::now();
    if (!exited_at) {
      if (auto s = child.wait_for(std::chrono::milliseconds(0))) {
        result.status = *s;
        exited_at = now;
      }
    }
    if (exited_at) {
      // Background jobs of the child may still hold the pipes: give them a moment to
      // flush, then end the group.
      if (now - *exited_at > std::chrono::milliseconds(200) && (out_fd >= 0 || err_fd >= 0)) {
        if (child.group_) ::kill(-child.pid(), SIGKILL);
        if (now - *exited_at > std::chrono::milliseconds(1000)) break;
      }
      continue;
    }
    bool stop_requested = result.timed_out || result.cancelled;
    if (!stop_requested) {
      if (control.timeout && now - start >= *control.timeout) {
        result.timed_out = true;
      } else if (control.cancelled && control.cancelled()) {
        result.cancelled = true;
      }
      if (result.timed_out || result.cancelled) {
        child.signal(SIGTERM);
        kill_at = now + control.kill_grace;
      }
    } else if (now >= kill_at) {
      child.signal(SIGKILL);
      kill_at = Clock::time_point::max();
    }
  }
  out_lines.finish();
  err_lines.finish();
  close_fd(in_write);
  close_fd(out_fd);
  close_fd(err_fd);
  if (!exited_at) result.status = child.terminate(std::chrono::milliseconds(0));
  return result;
}

} // namespace capstan::process
