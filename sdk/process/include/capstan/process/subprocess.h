// Child processes: start, stream output line by line, enforce deadlines, cancel whole groups.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace capstan::process {

class SpawnError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

enum class Stream { kStdout, kStderr };

struct Options {
  std::vector<std::string> argv;          // argv[0] is looked up on PATH when it has no '/'
  std::map<std::string, std::string> env; // set on top of the inherited environment
  bool inherit_env = true;
  std::string working_dir; // empty: the caller's
  // The child leads a new process group, so a kill reaches everything it started.
  bool new_process_group = true;
  // The child leads a new session (setsid): no controlling terminal, untouched by the
  // caller's terminal signals. Implies its own process group. For daemons (see release()).
  bool new_session = false;
  // Where stdout/stderr go when not captured: empty means a pipe read by run()/Child::read_lines,
  // "-" means inherit the caller's, anything else is a file appended to.
  std::string stdout_path;
  std::string stderr_path;
  std::optional<std::string> stdin_data; // written then closed; none means /dev/null
};

struct ExitStatus {
  int exit_code = -1; // valid when signal == 0
  int signal = 0;     // the signal that ended the child, 0 when it exited
  bool success() const { return signal == 0 && exit_code == 0; }
  std::string describe() const; // "exit code 3", "killed by signal 9 (Killed)"
};

struct RunControl;
struct RunResult;

// A started child. Destroying a Child that still runs kills its group (SIGKILL) and reaps it,
// so no test or step can leak processes.
class Child {
public:
  static Child spawn(const Options& options); // throws SpawnError with the reason

  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const { return pid_; }
  bool running();
  // Sends sig to the child's process group (or the child alone when it has none).
  void signal(int sig);
  // Waits until the child exits or the timeout passes; nullopt on timeout.
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after grace; always reaps.
  ExitStatus terminate(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

  // Gives the child up: it is no longer killed or reaped by this object, which becomes empty.
  // Returns its pid. For daemons that must outlive the caller.
  pid_t release();

  int stdout_fd() const { return out_fd_; }
  int stderr_fd() const { return err_fd_; }

private:
  friend RunResult run(Options options, const RunControl& control);
  Child() = default;
  // stdin_fd: the read end the child gets as stdin (closed here), or -1 for /dev/null.
  static Child spawn_with_stdin(const Options& options, int stdin_fd);
  void close_fds();

  pid_t pid_ = -1;
  bool group_ = false;
  std::optional<ExitStatus> status_;
  int out_fd_ = -1;
  int err_fd_ = -1;
};

struct RunControl {
  std::optional<std::chrono::milliseconds> timeout;
  std::function<bool()> cancelled;                         // polled about every 50 ms
  std::function<void(Stream, const std::string&)> on_line; // each line without its '\n'
  bool capture = true;                                     // also keep the output in RunResult
  std::chrono::milliseconds kill_grace{2000};
  std::size_t max_line_bytes = 64 * 1024; // longer lines are split, never buffered unbounded
};

struct RunResult {
  ExitStatus status;
  bool timed_out = false;
  bool cancelled = false;
  std::string out;
  std::string err;
};

// Starts the child with piped output and runs it to completion under the control's deadline and
// cancellation. On timeout or cancel the whole group gets SIGTERM, then SIGKILL after kill_grace.
// When the child exits, leftovers of its group (background jobs still holding the pipes) are
// killed so the call never hangs on them.
RunResult run(Options options, const RunControl& control);

} // namespace capstan::process
