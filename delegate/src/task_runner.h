// The delegate's task runner: a fixed pool of workers running assigned steps through the plugin
// host, streaming their logs and keeping each result until the coordinator acknowledges it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capstan/delegate/plugin_host.h"
#include "capstan/wire/v1/wire.pb.h"

namespace capstan::delegate {

namespace wv1 = ::capstan::wire::v1;

class TaskRunner {
public:
  using Send = std::function<void(wv1::Envelope)>;

  // slots: workers (and the most tasks at once); work_root: each task gets an empty directory
  // below it, removed when the task ends; send: hands an envelope to the wire (thread-safe).
  TaskRunner(PluginHost& host, int slots, std::filesystem::path work_root, Send send);
  ~TaskRunner(); // cancels what runs and joins the workers
  TaskRunner(const TaskRunner&) = delete;
  TaskRunner& operator=(const TaskRunner&) = delete;

  // From the wire thread. A duplicate of a task already taken is ignored (its result, if any,
  // is sent again).
  void assign(const wv1::Assign& assign);
  void cancel(const wv1::Cancel& cancel);
  void acknowledge(const wv1::ResultAck& ack);
  // After a (re)connect: results still unacknowledged are sent again.
  void resend_results();

  // What a Hello reports: attempts queued or running, and finished ones not yet acknowledged.
  std::vector<wv1::TaskRef> running() const;
  std::vector<wv1::TaskRef> finished() const;
  int busy() const;

  // Stops taking tasks, cancels running ones, and waits up to `grace` for them to report.
  void shutdown(std::chrono::milliseconds grace);

private:
  struct Task;
  void work();
  void execute(Task& task);
  void reject(const wv1::Assign& assign, plugin::v1::ErrorType type, const std::string& why);

  PluginHost& host_;
  int slots_;
  std::filesystem::path work_root_;
  Send send_;

  mutable std::mutex mutex_; // guards everything below: the wire thread and workers share it
  std::condition_variable work_ready_;
  std::condition_variable idle_;
  std::deque<std::shared_ptr<Task>> pending_;
  std::map<std::string, std::shared_ptr<Task>> active_; // queued or running, by "task#attempt"
  std::map<std::string, wv1::Envelope> unacked_;        // finished results, by "task#attempt"
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

} // namespace capstan::delegate
