// The delegate's task runner: a pool of workers running assigned steps through the plugin host,
// streaming numbered log lines and keeping each line and result until the coordinator
// acknowledges it, so neither side's restart loses or doubles anything. A plugin that does not
// stop when cancelled (or when its timeout passes) is abandoned after a grace period: its slot
// is freed, the coordinator is told, and the worker it holds is replaced.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "capstan/delegate/plugin_host.h"
#include "capstan/wire/metrics.h"
#include "capstan/wire/v1/wire.pb.h"

namespace capstan::delegate {

namespace wv1 = ::capstan::wire::v1;

struct RunnerOptions {
  int slots = 1;
  // Each worker has a directory below it: empty when a task starts, emptied when it ends (a
  // directory created and removed per task cost more than a no-op step itself).
  std::filesystem::path work_root;
  // How long a cancelled (or timed-out) plugin call may take to return before it is abandoned.
  std::chrono::milliseconds cancel_grace{std::chrono::seconds(10)};
  // Lines of one attempt kept while the coordinator has not acknowledged them; past it the
  // oldest go (and the coordinator records how many were lost).
  std::size_t max_retained_lines = 50000;
  // Bytes of log lines kept, for all tasks together, while the coordinator has not acknowledged
  // them (it is unreachable, or restarting). When full, the logging task's oldest lines go.
  std::size_t max_retained_bytes = 32 * 1024 * 1024;
  // A step whose type is declared prompt (CAPSTAN_STEP_PROMPT) runs on the thread that calls
  // assign(), when no task waits for a worker; a call that takes longer than this, and either
  // waited (slept, blocked) or computed that long, ends that for its type (a warning says so):
  // the type runs on workers from then on. A call only kept off the CPU by other work does not.
  std::chrono::microseconds prompt_budget{std::chrono::milliseconds(5)};
};

struct RunnerMetrics {
  wire::Gauge running;
  wire::Counter succeeded;
  wire::Counter failed; // failed, cancelled or abandoned
  wire::Counter refused;
  wire::Counter abandoned;
  wire::Counter timed_out;     // tasks the delegate stopped because their timeout passed
  wire::Counter lines_dropped; // log lines dropped from a full buffer, never delivered
  wire::Counter ran_inline;    // prompt steps run on the receiving thread, not a worker
  wire::Counter demoted;       // prompt step types that overran their budget
  wire::Gauge retained_bytes;  // log bytes waiting for the coordinator's acknowledgement
  wire::Histogram duration;
};

// Replaces every occurrence of each secret in text with asterisks.
std::string mask_secrets(std::string text, const std::vector<std::string>& secrets);

class TaskRunner {
public:
  using Send = std::function<void(wv1::Envelope)>;
  using Flush = std::function<void()>;

  // send: hands an envelope to the wire (thread-safe, never waits for another sender; may drop
  // it while detached). send_later: queues it to leave with the next, for a Result whose worker
  // takes a queued task at once; flush sends what send_later left waiting. A worker that goes
  // idle flushes, and so does the watchdog kAcceptedDelay after a deferral at the latest.
  // Without them every envelope goes through send.
  TaskRunner(PluginHost& host, RunnerOptions options, Send send, Send send_later = nullptr,
             Flush flush = nullptr);
  ~TaskRunner(); // cancels what runs and joins the workers (abandoned ones are left behind)
  TaskRunner(const TaskRunner&) = delete;
  TaskRunner& operator=(const TaskRunner&) = delete;

  // From the wire thread. A duplicate of a task already taken is ignored (its result, if any,
  // is sent again). A task that cannot start (draining, no free slot) is refused: the
  // coordinator queues it again. A prompt step (see RunnerOptions::prompt_budget) runs here,
  // before assign() returns, and its Result goes by send_later: the caller sends what is left
  // waiting once it has handled what it received (the wire client does, after every round).
  void assign(wv1::Assign assign);
  void cancel(const wv1::Cancel& cancel);
  void acknowledge(const wv1::ResultAck& ack);
  void acknowledge(const wv1::LogAck& ack);
  // After a (re)connect: unacknowledged log lines, then unacknowledged results, are sent again.
  void resend_unacknowledged();

  // What a Hello reports: attempts queued or running, and finished ones not yet acknowledged.
  std::vector<wv1::TaskRef> running() const;
  std::vector<wv1::TaskRef> finished() const;
  int busy() const;

  // Stops taking tasks; running ones go on.
  void drain();
  bool draining() const { return draining_; }
  // Waits up to `timeout` until no task runs; true when none does.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Waits up to `timeout` until every result was acknowledged.
  bool wait_acknowledged(std::chrono::milliseconds timeout);
  // Stops taking tasks, cancels running ones, and waits up to `grace` for them to report.
  void shutdown(std::chrono::milliseconds grace);

  RunnerMetrics& metrics() { return metrics_; }

private:
  struct Task;
  struct Lane; // what runs prompt steps on the receiving thread: their directory
  enum class Leave { kNow, kMayDefer, kWithReceived };
  void work(const std::filesystem::path& dir);
  void run_here(const std::shared_ptr<Task>& task); // a prompt step, on assign()'s thread
  // In the request, and in its bytes as `encoded` (a StepRequest of that work_dir alone).
  static void set_work_dir(Task& task, const std::string& dir, const std::string& encoded);
  void watch();
  plugin::v1::StepResult execute(const std::shared_ptr<Task>& task);
  // Records and sends the result. kMayDefer (a worker's own task): when another task waits
  // for a worker, the Result goes by send_later and true is returned. kWithReceived: by
  // send_later, always (assign()'s caller sends it).
  bool finish(const std::shared_ptr<Task>& task, plugin::v1::StepResult result,
              Leave leave = Leave::kNow);
  void flush_deferred(); // sends deferred results (mutex_ not held)
  void refuse(const wv1::Assign& assign, const std::string& why);
  void pump(Task& task);          // sends the lines not sent yet (task.mutex held)
  void send_accepted(Task& task); // once per attempt, unless its result came first (task.mutex)
  // Adds a line to the task's log, bounded by the buffer limits (task.mutex held).
  void append(Task& task, capstan_log_level level, std::string text);
  void release_lines(Task& task, std::size_t count); // forgets the oldest lines (task.mutex held)
  void start_worker();

  PluginHost& host_;
  RunnerOptions options_;
  Send send_;
  Send send_later_;
  Flush flush_;
  RunnerMetrics metrics_;
  std::atomic<bool> draining_{false};

  mutable std::mutex mutex_; // guards everything below: the wire thread and workers share it
  std::condition_variable work_ready_;
  std::condition_variable idle_;
  std::condition_variable watch_;
  std::deque<std::shared_ptr<Task>> pending_;
  std::map<std::string, std::shared_ptr<Task>> active_;  // queued or running, by "task#attempt"
  std::map<std::string, std::shared_ptr<Task>> unacked_; // finished, result not acknowledged
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  int worker_seq_ = 0; // names each worker's directory; a replacement gets a new one
  // Step types declared prompt and not (yet) caught overrunning their budget.
  std::set<std::string, std::less<>> prompt_types_;
  std::unique_ptr<Lane> lane_; // made when a prompt type exists; used by assign()'s thread only
  // When the watchdog wakes next on its own: a task whose deadline comes earlier wakes it.
  std::optional<std::chrono::steady_clock::time_point> watch_next_;
  // A Result left by send_later is flushed by then at the latest (by the watchdog).
  std::optional<std::chrono::steady_clock::time_point> deferred_due_;
  std::thread watchdog_;
};

} // namespace capstan::delegate
