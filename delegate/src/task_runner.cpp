// The delegate's task runner.
#include "task_runner.h"

#include "utf8.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

namespace capstan::delegate {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// A Log message carries about this much at most; more lines go in the next one.
constexpr std::size_t kMaxLogMessageBytes = 1024 * 1024;
// A longer line is cut: one line must never outgrow a wire message.
constexpr std::size_t kMaxLineBytes = 64 * 1024;
// What a kept line costs beyond its text (time, level, framing).
constexpr std::size_t kLineOverhead = 16;
// A task's Accepted goes only once it has run this long, or before its first log line: a task
// that ends sooner is reported by its Result alone (one message and one state change at the
// coordinator, not two, and one send less). The coordinator treats a
// dispatched task and a running one alike when a delegate is lost or re-attaches, so only the
// moment `Running` shows is later.
constexpr std::chrono::milliseconds kAcceptedDelay{10};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string key_of(const std::string& task_id, std::uint32_t attempt) {
  return task_id + "#" + std::to_string(attempt);
}

// Replaces every occurrence of each secret in text.
std::string mask(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (s.empty()) continue;
    for (auto pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos + 10)) {
      text.replace(pos, s.size(), "**********");
    }
  }
  return text;
}

std::string seconds_text(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// A worker's directory, made once and checked after each task. Any entry made or removed in a
// directory changes its ctime, and a step's changes get a ctime from the clock at that moment: so
// when the clock had moved on past the ctime seen when the directory was last found empty before
// the step began, an unchanged ctime (one stat) says the step left it empty, the usual case.
// Otherwise one read of the directory says so; anything left (or the directory removed or
// replaced) takes the slow way: emptied or made again by path. Both looks go by name from the
// parent, held open (the walk of the whole path took about a tenth of the receiving thread's
// time for a no-op step); the parent is the delegate's work root, which steps have no business
// moving, and is looked up by path again on the slow way.
class WorkerDirectory {
public:
  // Looked at after the first task: an idle worker holds no descriptor.
  explicit WorkerDirectory(fs::path path)
      : path_(std::move(path)), name_(path_.string()), leaf_(path_.filename().string()) {
    std::error_code ec;
    fs::create_directories(path_, ec);
    plugin::v1::StepRequest appended;
    appended.set_work_dir(name_);
    appended.AppendToString(&encoded_);
  }
  ~WorkerDirectory() {
    if (parent_ >= 0) ::close(parent_);
  }
  WorkerDirectory(const WorkerDirectory&) = delete;
  WorkerDirectory& operator=(const WorkerDirectory&) = delete;

  const fs::path& path() const { return path_; }
  const std::string& name() const { return name_; }
  // A StepRequest holding only work_dir = name(), encoded: what a request is appended with.
  const std::string& encoded() const { return encoded_; }

  // Before a task: whether a change the step makes is sure to show as a new ctime (the
  // timestamps' clock has moved past the one recorded; a change within the same tick would not).
  void begin() {
    if (parent_ < 0 || trusted_) return;
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    trusted_ =
        now.tv_sec > ctime_.tv_sec || (now.tv_sec == ctime_.tv_sec && now.tv_nsec > ctime_.tv_nsec);
  }

  // Leaves the directory there and empty for the next task.
  void reset() {
    if (!still_empty()) reopen();
  }

private:
  bool still_empty() {
    if (parent_ < 0) return false;
    struct stat st {};
    // The same directory as the one found empty (a step may have removed or replaced it).
    if (::fstatat(parent_, leaf_.c_str(), &st, 0) != 0 || st.st_ino != inode_ ||
        st.st_dev != device_) {
      return false;
    }
    const bool unchanged =
        st.st_ctim.tv_sec == ctime_.tv_sec && st.st_ctim.tv_nsec == ctime_.tv_nsec;
    if (unchanged && trusted_) return true;
    const int fd = ::openat(parent_, leaf_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* dir = fd >= 0 ? ::fdopendir(fd) : nullptr;
    if (dir == nullptr) {
      if (fd >= 0) ::close(fd);
      return false;
    }
    bool empty = true;
    while (const auto* e = ::readdir(dir)) {
      std::string_view name = e->d_name;
      if (name != "." && name != "..") {
        empty = false;
        break;
      }
    }
    ::closedir(dir);
    if (!empty) return false;
    if (!unchanged) {
      ctime_ = st.st_ctim;
      trusted_ = false;
    }
    return true;
  }

  void reopen() {
    if (parent_ >= 0) ::close(parent_);
    parent_ = ::open(path_.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    trusted_ = false;
    std::error_code ec;
    if (!fs::is_directory(path_, ec)) {
      fs::remove(path_, ec);
      fs::create_directories(path_, ec);
    }
    std::vector<fs::path> left;
    for (fs::directory_iterator it(path_, ec), end; !ec && it != end; it.increment(ec)) {
      left.push_back(it->path());
    }
    for (const auto& p : left) fs::remove_all(p, ec);
    struct stat st {};
    if (parent_ >= 0 && ::fstatat(parent_, leaf_.c_str(), &st, 0) == 0 && S_ISDIR(st.st_mode)) {
      inode_ = st.st_ino;
      device_ = st.st_dev;
      ctime_ = st.st_ctim;
    } else if (parent_ >= 0) {
      ::close(parent_);
      parent_ = -1;
    }
  }

  fs::path path_;
  std::string name_;
  std::string encoded_;
  std::string leaf_; // the directory's name in its parent
  int parent_ = -1;  // the parent directory (O_PATH), once the directory was found empty
  ino_t inode_ = 0;
  dev_t device_ = 0;
  timespec ctime_{}; // when the directory was last seen empty, its ctime
  bool trusted_ = false;
};

} // namespace

std::string mask_secrets(std::string text, const std::vector<std::string>& secrets) {
  return mask(std::move(text), secrets);
}

struct TaskRunner::Lane {
  explicit Lane(fs::path path) : dir(std::move(path)) {}
  WorkerDirectory dir;
};

struct TaskRunner::Task {
  wv1::Assign assign;
  plugin::v1::StepRequest request;
  // The request as the coordinator sent it, then with the work directory appended (a field
  // given again replaces the earlier one): the plugin gets these bytes, not a new encoding.
  std::string request_bytes;
  std::string key;
  std::atomic<bool> cancelled{false};
  // Set once by whoever ends the task: the worker when the plugin returns, or the watchdog when
  // it abandons the call.
  std::atomic<bool> settled{false};
  std::int64_t started_unix_ms = 0;
  // Guarded by the runner's mutex_:
  bool running = false;
  bool on_receiver = false; // a prompt step run by assign()'s thread, not by a worker
  std::thread::id worker;
  std::optional<Clock::time_point> deadline;  // timeout passed: the plugin was told to stop
  bool timeout_noted = false;                 // the step's log says its timeout passed
  std::optional<Clock::time_point> cancel_at; // cancel requested
  std::string cancel_reason;
  std::optional<Clock::time_point> accepted_due; // when the watchdog sends the Accepted

  std::mutex mutex; // guards what follows: plugin callbacks may come from any thread
  std::map<std::string, std::string> outputs;
  std::vector<std::string> secrets;
  std::deque<wv1::LogLine> lines; // not yet acknowledged, oldest first
  std::uint64_t first_seq = 1;    // number of lines.front()
  std::uint64_t next_seq = 1;     // number the next line gets
  std::uint64_t sent_upto = 0;    // lines up to here went to the wire in this session
  std::size_t line_bytes = 0;     // what `lines` costs against the runner's log buffer
  std::uint64_t dropped = 0;      // lines dropped from a full buffer
  std::optional<wv1::Envelope> result;
  bool accepted_sent = false; // or no longer worth sending: the result is there
};

TaskRunner::TaskRunner(PluginHost& host, RunnerOptions options, Send send, Send send_later,
                       Flush flush)
    : host_(host), options_(std::move(options)), send_(std::move(send)),
      send_later_(std::move(send_later)), flush_(std::move(flush)) {
  if (!send_later_ || !flush_) {
    send_later_ = send_;
    flush_ = [] {};
  }
  options_.slots = std::max(1, options_.slots);
  fs::create_directories(options_.work_root);
  for (const auto& t : host_.step_types()) {
    if (t.prompt) prompt_types_.insert(t.type);
  }
  if (!prompt_types_.empty()) lane_ = std::make_unique<Lane>(options_.work_root / "receiver");
  workers_.reserve(static_cast<std::size_t>(options_.slots));
  {
    std::lock_guard lock(mutex_);
    for (int i = 0; i < options_.slots; ++i) start_worker();
  }
  watchdog_ = std::thread([this] { watch(); });
}

TaskRunner::~TaskRunner() {
  shutdown(std::chrono::milliseconds(0));
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mutex_);
    workers.swap(workers_);
  }
  for (auto& w : workers) {
    if (w.joinable()) w.join();
  }
  watch_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  if (lane_) {
    auto path = lane_->dir.path();
    lane_.reset();
    std::error_code ec;
    fs::remove_all(path, ec);
  }
}

void TaskRunner::start_worker() {
  workers_.emplace_back(
      [this, dir = options_.work_root / ("worker-" + std::to_string(++worker_seq_))] {
        work(dir);
        // Gone with its worker (an abandoned one leaves when its plugin call returns, if ever).
        std::error_code ec;
        fs::remove_all(dir, ec);
      });
}

void TaskRunner::refuse(const wv1::Assign& assign, const std::string& why) {
  metrics_.refused.inc();
  plugin::v1::StepResult r;
  r.set_status(plugin::v1::StepResult::STATUS_FAILED);
  r.set_error_type(plugin::v1::ERROR_TYPE_DELEGATE_PROVISIONING);
  r.set_message(why);
  wv1::Envelope env;
  auto* res = env.mutable_result();
  res->set_task_id(assign.task_id());
  res->set_attempt(assign.attempt());
  res->set_step_result(r.SerializeAsString());
  res->set_refused(true);
  res->set_started_unix_ms(now_ms());
  res->set_finished_unix_ms(now_ms());
  // Not kept: if the refusal is lost, the coordinator re-queues the task when it finds the
  // delegate does not report it.
  send_(std::move(env));
}

void TaskRunner::assign(wv1::Assign assign) {
  auto key = key_of(assign.task_id(), assign.attempt());
  auto task = std::make_shared<Task>();
  task->key = key;
  // Secret values the coordinator put into the request: masked in everything the task sends.
  task->secrets.assign(assign.mask().begin(), assign.mask().end());
  bool readable = task->request.ParseFromString(assign.step_request());
  task->request_bytes = std::move(*assign.mutable_step_request()); // parsed; passed on as is
  assign.clear_step_request();
  task->assign = std::move(assign);
  const auto& ref = task->assign;
  std::optional<wv1::Envelope> resend;
  std::string refusal;
  bool here = false;
  {
    std::lock_guard lock(mutex_);
    if (active_.count(key)) return;
    if (auto it = unacked_.find(key); it != unacked_.end()) {
      std::lock_guard tl(it->second->mutex);
      resend = it->second->result;
    } else if (stopping_) {
      refusal = "the delegate is shutting down";
    } else if (draining_) {
      refusal = "the delegate is draining";
    } else if (static_cast<int>(active_.size()) >= options_.slots) {
      refusal = "the delegate has no free slot (" + std::to_string(options_.slots) + " in use)";
    } else if (!readable) {
      refusal = "the delegate could not decode the step request";
    } else {
      active_[key] = task;
      metrics_.running.set(static_cast<std::int64_t>(active_.size()));
      // A prompt step runs here unless tasks wait for workers (it would overtake them). It has
      // no deadline for the watchdog: the host turns cancelled() true at its timeout, and a
      // call that overran would have held this thread anyway.
      here = pending_.empty() && lane_ != nullptr &&
             prompt_types_.find(task->request.step_type()) != prompt_types_.end();
      if (here) {
        task->running = true;
        task->on_receiver = true;
        task->worker = std::this_thread::get_id();
        set_work_dir(*task, lane_->dir.name(), lane_->dir.encoded());
      } else {
        pending_.push_back(task);
      }
    }
  }
  if (resend) return send_(std::move(*resend));
  if (!refusal.empty()) return refuse(ref, refusal);
  if (here) return run_here(task);
  work_ready_.notify_one();
}

void TaskRunner::run_here(const std::shared_ptr<Task>& task) {
  lane_->dir.begin();
  // The thread's CPU time and voluntary context switches (it slept: blocking I/O, a sleep, a
  // wait for a lock or another thread) tell a call that broke its promise from one that was only
  // kept off the CPU by other work on the machine, which is not the plugin's fault.
  rusage before{};
  ::getrusage(RUSAGE_THREAD, &before);
  const auto start = Clock::now();
  auto result = execute(task);
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  lane_->dir.reset();
  bool overran = false;
  if (took > options_.prompt_budget) {
    rusage after{};
    ::getrusage(RUSAGE_THREAD, &after);
    auto cpu_us = [](const rusage& r) {
      return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000LL + r.ru_utime.tv_usec +
             r.ru_stime.tv_usec;
    };
    overran = after.ru_nvcsw > before.ru_nvcsw ||
              cpu_us(after) - cpu_us(before) > options_.prompt_budget.count();
  }
  if (overran) {
    const auto& type = task->request.step_type();
    bool first = false;
    {
      std::lock_guard lock(mutex_);
      if (auto it = prompt_types_.find(type); it != prompt_types_.end()) {
        prompt_types_.erase(it);
        first = true;
      }
    }
    if (first) {
      metrics_.demoted.inc();
      spdlog::warn("step type {} is declared prompt (CAPSTAN_STEP_PROMPT), but a call took {:.1f} "
                   "ms (budget {:.1f} ms): its steps run on worker threads from now on",
                   type, static_cast<double>(took.count()) / 1000.0,
                   static_cast<double>(options_.prompt_budget.count()) / 1000.0);
    }
  }
  metrics_.ran_inline.inc();
  // Abandoned meanwhile (the delegate shutting down): the watchdog reported it.
  if (task->settled.exchange(true)) return;
  finish(task, std::move(result), Leave::kWithReceived);
}

void TaskRunner::set_work_dir(Task& task, const std::string& dir, const std::string& encoded) {
  task.request.set_work_dir(dir);
  // Appended as a message of its own: a parser merges concatenated messages, and a field given
  // again replaces the earlier one.
  // Into a string made to measure: growing the received one would double its size, and glibc
  // serves a request of 1 KiB or more by first merging every small free chunk of the thread's
  // arena (malloc_consolidate), which showed as 2 % of a delegate's CPU for a no-op step.
  std::string bytes;
  bytes.reserve(task.request_bytes.size() + encoded.size());
  bytes.append(task.request_bytes).append(encoded);
  task.request_bytes = std::move(bytes);
}

void TaskRunner::cancel(const wv1::Cancel& cancel) {
  std::lock_guard lock(mutex_);
  auto it = active_.find(key_of(cancel.task_id(), cancel.attempt()));
  if (it == active_.end()) return;
  auto& t = *it->second;
  spdlog::info("task {} attempt {}: cancel requested ({})", cancel.task_id(), cancel.attempt(),
               cancel.reason());
  t.cancelled = true;
  if (!t.cancel_at) {
    t.cancel_at = Clock::now();
    t.cancel_reason = cancel.reason();
  }
  watch_.notify_all();
}

void TaskRunner::acknowledge(const wv1::ResultAck& ack) {
  std::shared_ptr<Task> task;
  {
    std::lock_guard lock(mutex_);
    if (auto it = unacked_.find(key_of(ack.task_id(), ack.attempt())); it != unacked_.end()) {
      task = std::move(it->second);
      unacked_.erase(it);
    }
  }
  idle_.notify_all();
  if (!task) return;
  // The coordinator takes no line after the result: what is left is of no use.
  std::lock_guard lock(task->mutex);
  release_lines(*task, task->lines.size());
}

void TaskRunner::acknowledge(const wv1::LogAck& ack) {
  std::shared_ptr<Task> task;
  {
    std::lock_guard lock(mutex_);
    auto key = key_of(ack.task_id(), ack.attempt());
    if (auto it = active_.find(key); it != active_.end()) {
      task = it->second;
    } else if (auto u = unacked_.find(key); u != unacked_.end()) {
      task = u->second;
    }
  }
  if (!task) return;
  std::lock_guard lock(task->mutex);
  if (ack.seq() >= task->first_seq) {
    release_lines(*task, static_cast<std::size_t>(std::min<std::uint64_t>(
                             ack.seq() - task->first_seq + 1, task->lines.size())));
  }
}

void TaskRunner::release_lines(Task& task, std::size_t count) {
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < count && !task.lines.empty(); ++i) {
    bytes += task.lines.front().text().size() + kLineOverhead;
    task.lines.pop_front();
    ++task.first_seq;
  }
  task.line_bytes -= bytes;
  metrics_.retained_bytes.add(-static_cast<std::int64_t>(bytes));
}

void TaskRunner::append(Task& task, capstan_log_level level, std::string text) {
  text = mask(std::move(text), task.secrets);
  if (text.size() > kMaxLineBytes) {
    // Cut after masking, so no part of a secret is left behind.
    auto cut = text.size() - kMaxLineBytes;
    text = utf8::sanitize(std::string_view(text).substr(0, kMaxLineBytes)) + " [" +
           std::to_string(cut) + " more bytes cut]";
  }
  wv1::LogLine l;
  l.set_time_unix_ms(now_ms());
  l.set_level(static_cast<std::uint32_t>(level));
  l.set_text(std::move(text));
  const std::size_t bytes = l.text().size() + kLineOverhead;
  task.lines.push_back(std::move(l));
  ++task.next_seq;
  task.line_bytes += bytes;
  metrics_.retained_bytes.add(static_cast<std::int64_t>(bytes));
  // Full (the coordinator has acknowledged nothing for a while): this task's oldest lines go.
  // The next Log message says which line is the oldest kept, and the coordinator notes the gap.
  std::uint64_t dropped = 0;
  while (task.lines.size() > 1 && (task.lines.size() > options_.max_retained_lines ||
                                   static_cast<std::size_t>(metrics_.retained_bytes.value()) >
                                       options_.max_retained_bytes)) {
    release_lines(task, 1);
    ++dropped;
  }
  if (dropped > 0) {
    if (task.dropped == 0) {
      spdlog::warn("task {} attempt {}: the log buffer is full ({} lines, {} bytes kept for the "
                   "coordinator); dropping the oldest lines of this step",
                   task.assign.task_id(), task.assign.attempt(), task.lines.size(),
                   metrics_.retained_bytes.value());
    }
    task.dropped += dropped;
    metrics_.lines_dropped.inc(dropped);
  }
  pump(task);
}

void TaskRunner::send_accepted(Task& task) {
  if (task.accepted_sent) return;
  task.accepted_sent = true;
  wv1::Envelope env;
  env.mutable_accepted()->set_task_id(task.assign.task_id());
  env.mutable_accepted()->set_attempt(task.assign.attempt());
  send_(std::move(env));
}

void TaskRunner::pump(Task& task) {
  // The coordinator (and whoever follows the step) sees the step running before its output.
  if (task.sent_upto + 1 < task.next_seq) send_accepted(task);
  // Lines dropped from a full buffer are gone; start at the oldest kept.
  if (task.sent_upto + 1 < task.first_seq) task.sent_upto = task.first_seq - 1;
  while (task.sent_upto + 1 < task.next_seq) {
    wv1::Envelope env;
    auto* log = env.mutable_log();
    log->set_task_id(task.assign.task_id());
    log->set_attempt(task.assign.attempt());
    log->set_first_seq(task.sent_upto + 1);
    log->set_oldest_kept(task.first_seq);
    std::size_t bytes = 0;
    auto index = static_cast<std::size_t>(task.sent_upto + 1 - task.first_seq);
    for (; index < task.lines.size() && bytes < kMaxLogMessageBytes; ++index) {
      bytes += task.lines[index].text().size() + 16;
      *log->add_lines() = task.lines[index];
      ++task.sent_upto;
    }
    send_(std::move(env));
  }
}

void TaskRunner::resend_unacknowledged() {
  std::vector<std::shared_ptr<Task>> tasks;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [k, t] : active_) tasks.push_back(t);
    for (const auto& [k, t] : unacked_) tasks.push_back(t);
  }
  for (auto& t : tasks) {
    std::lock_guard lock(t->mutex);
    t->sent_upto = t->first_seq - 1;
    pump(*t);
    if (t->result) send_(*t->result);
  }
}

std::vector<wv1::TaskRef> TaskRunner::running() const {
  std::lock_guard lock(mutex_);
  std::vector<wv1::TaskRef> out;
  for (const auto& [k, t] : active_) {
    wv1::TaskRef r;
    r.set_task_id(t->assign.task_id());
    r.set_attempt(t->assign.attempt());
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<wv1::TaskRef> TaskRunner::finished() const {
  std::lock_guard lock(mutex_);
  std::vector<wv1::TaskRef> out;
  for (const auto& [k, t] : unacked_) {
    wv1::TaskRef r;
    r.set_task_id(t->assign.task_id());
    r.set_attempt(t->assign.attempt());
    out.push_back(std::move(r));
  }
  return out;
}

int TaskRunner::busy() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(active_.size());
}

void TaskRunner::drain() {
  draining_ = true;
}

bool TaskRunner::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, timeout, [&] { return active_.empty(); });
}

bool TaskRunner::wait_acknowledged(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, timeout, [&] { return unacked_.empty(); });
}

void TaskRunner::shutdown(std::chrono::milliseconds grace) {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  draining_ = true;
  auto now = Clock::now();
  for (auto& [k, t] : active_) {
    t->cancelled = true;
    if (!t->cancel_at) {
      t->cancel_at = now;
      t->cancel_reason = "the delegate is shutting down";
    }
  }
  work_ready_.notify_all();
  watch_.notify_all();
  idle_.wait_for(lock, grace, [&] { return active_.empty(); });
}

void TaskRunner::flush_deferred() {
  {
    std::lock_guard lock(mutex_);
    deferred_due_.reset();
  }
  flush_();
}

void TaskRunner::work(const fs::path& path) {
  pthread_setname_np(pthread_self(), "capstan-worker");
  WorkerDirectory dir(path); // made here, emptied after each task
  bool deferred = false;     // this worker's last Result went by send_later
  while (true) {
    std::shared_ptr<Task> task;
    {
      std::unique_lock lock(mutex_);
      if (deferred && pending_.empty()) {
        // The task that was waiting went to another worker: nothing follows from here soon.
        lock.unlock();
        flush_deferred();
        lock.lock();
      }
      deferred = false;
      work_ready_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return; // stopping, nothing left
      task = std::move(pending_.front());
      pending_.pop_front();
      task->running = true;
      task->worker = std::this_thread::get_id();
      // Under the runner's lock: the watchdog reads the request under it too.
      set_work_dir(*task, dir.name(), dir.encoded());
      const auto now = Clock::now();
      task->accepted_due = now + kAcceptedDelay;
      auto soonest = *task->accepted_due;
      if (task->request.timeout_ms() > 0) {
        task->deadline = now + std::chrono::milliseconds(task->request.timeout_ms());
        soonest = std::min(soonest, *task->deadline);
      }
      // The watchdog sleeps until its next deadline: wake it only if this one comes sooner
      // (under load it sleeps until an earlier task's Accepted is due, and is not woken).
      if (watch_next_ && soonest < *watch_next_) watch_.notify_all();
    }
    dir.begin();
    auto result = execute(task);
    // Most steps leave nothing behind: one look, and removals only when something is left.
    dir.reset();
    // An abandoned call: a replacement worker took this one's place, and this thread, detached,
    // leaves without touching the runner again.
    if (task->settled.exchange(true)) return;
    deferred = finish(task, std::move(result), Leave::kMayDefer);
  }
}

// Abandons plugin calls that outlive their cancellation by more than the grace period.
void TaskRunner::watch() {
  std::unique_lock lock(mutex_);
  while (true) {
    if (stopping_ && active_.empty()) return;
    auto now = Clock::now();
    std::optional<Clock::time_point> next;
    std::vector<std::pair<std::shared_ptr<Task>, bool>> overdue; // task, timed out
    for (auto& [k, t] : active_) {
      if (!t->running) continue;
      if (t->accepted_due) {
        if (now >= *t->accepted_due) {
          t->accepted_due.reset();
          std::lock_guard tl(t->mutex);
          if (!t->settled) send_accepted(*t);
        } else if (!next || *t->accepted_due < *next) {
          next = *t->accepted_due;
        }
      }
      if (t->deadline && !t->timeout_noted) {
        // The plugin host turns cancelled() true for the plugin at the deadline; the step's log
        // says so, and the abandonment clock below starts.
        if (now >= *t->deadline) {
          t->timeout_noted = true;
          metrics_.timed_out.inc();
          spdlog::warn("task {} attempt {}: timeout of {} passed; stopping the step",
                       t->assign.task_id(), t->assign.attempt(),
                       seconds_text(std::chrono::milliseconds(t->request.timeout_ms())));
          if (!t->settled) {
            std::lock_guard tl(t->mutex);
            append(*t, CAPSTAN_LOG_WARN,
                   "[capstan] the step's timeout of " +
                       seconds_text(std::chrono::milliseconds(t->request.timeout_ms())) +
                       " passed: the delegate is stopping it");
          }
        } else if (!next || *t->deadline < *next) {
          next = *t->deadline;
        }
      }
      std::optional<Clock::time_point> limit;
      bool timed_out = false;
      if (t->deadline) {
        limit = *t->deadline + options_.cancel_grace;
        timed_out = true;
      }
      if (t->cancel_at && (!limit || *t->cancel_at + options_.cancel_grace < *limit)) {
        limit = *t->cancel_at + options_.cancel_grace;
        timed_out = false;
      }
      if (!limit) continue;
      if (now >= *limit) {
        overdue.emplace_back(t, timed_out);
      } else if (!next || *limit < *next) {
        next = *limit;
      }
    }
    if (deferred_due_) {
      if (now >= *deferred_due_) {
        deferred_due_.reset();
        flush_(); // never waits: the wire sends from another thread if one holds its socket
      } else if (!next || *deferred_due_ < *next) {
        next = *deferred_due_;
      }
    }
    for (auto& [t, timed_out] : overdue) {
      if (t->settled.exchange(true)) continue; // it returned just now
      // A prompt step's thread is the receiving one, not a worker: nothing to replace.
      for (auto it = workers_.begin(); !t->on_receiver && it != workers_.end(); ++it) {
        if (it->get_id() == t->worker) {
          it->detach();
          workers_.erase(it);
          break;
        }
      }
      if (!stopping_ && !t->on_receiver) start_worker();
      metrics_.abandoned.inc();
      plugin::v1::StepResult r;
      std::string what =
          timed_out ? "its timeout of " + std::to_string(t->request.timeout_ms()) + " ms passed"
                    : "it was cancelled (" + t->cancel_reason + ")";
      r.set_status(timed_out ? plugin::v1::StepResult::STATUS_FAILED
                             : plugin::v1::StepResult::STATUS_CANCELLED);
      if (timed_out) r.set_error_type(plugin::v1::ERROR_TYPE_TIMEOUT);
      r.set_message("step " + t->request.step_identifier() + " (" + t->request.step_type() +
                    ") did not stop within " + seconds_text(options_.cancel_grace) + " after " +
                    what + "; the delegate abandoned the plugin call and freed its slot");
      spdlog::error("task {} attempt {}: {}", t->assign.task_id(), t->assign.attempt(),
                    r.message());
      lock.unlock();
      finish(t, std::move(r));
      lock.lock();
    }
    if (!overdue.empty()) continue;
    // A task that starts with a deadline sooner than this wakes the watchdog (work()).
    watch_next_ = next ? *next : Clock::time_point::max();
    if (next) {
      watch_.wait_until(lock, *next);
    } else {
      watch_.wait(lock);
    }
    watch_next_.reset();
  }
}

plugin::v1::StepResult TaskRunner::execute(const std::shared_ptr<Task>& task_ptr) {
  Task& task = *task_ptr;
  const auto& id = task.assign.task_id();
  const auto attempt = task.assign.attempt();
  task.started_unix_ms = now_ms();
  spdlog::info("task {} attempt {}: {} step {} started", id, attempt, task.request.step_type(),
               task.request.step_identifier());

  // The worker's directory (set by work()): there and empty, work() sees to it after each task.
  const plugin::v1::StepRequest& request = task.request;

  // The callbacks hold the task alive: an abandoned plugin may still call them. They stop
  // reaching the runner once the task is settled (the runner outlives every unsettled task).
  TaskCallbacks callbacks;
  callbacks.log = [task_ptr, this](capstan_log_level level, std::string_view line) {
    if (task_ptr->settled) return;
    std::lock_guard lock(task_ptr->mutex);
    append(*task_ptr, level, std::string(line));
  };
  callbacks.cancelled = [task_ptr] { return task_ptr->cancelled.load(); };
  callbacks.output = [task_ptr](std::string_view name, std::string_view value) {
    std::lock_guard lock(task_ptr->mutex);
    task_ptr->outputs[std::string(name)] = std::string(value);
  };
  callbacks.progress = [log = callbacks.log](std::uint32_t percent, std::string_view message) {
    log(CAPSTAN_LOG_DEBUG, "progress " + std::to_string(percent) + "%" +
                               (message.empty() ? "" : ": " + std::string(message)));
  };
  callbacks.mask = [task_ptr](std::string_view value) {
    std::lock_guard lock(task_ptr->mutex);
    task_ptr->secrets.emplace_back(value);
  };

  plugin::v1::StepResult result;
  try {
    result = host_.execute(request, callbacks, task.request_bytes);
  } catch (const std::exception& e) {
    result.set_status(plugin::v1::StepResult::STATUS_FAILED);
    result.set_error_type(plugin::v1::ERROR_TYPE_UNKNOWN);
    result.set_message(std::string("the plugin host failed: ") + e.what());
  }
  if (result.status() == plugin::v1::StepResult::STATUS_UNSPECIFIED) {
    result.set_status(plugin::v1::StepResult::STATUS_FAILED);
    result.set_error_type(plugin::v1::ERROR_TYPE_UNKNOWN);
    result.set_message("the plugin reported no status");
  }
  return result;
}

bool TaskRunner::finish(const std::shared_ptr<Task>& task, plugin::v1::StepResult result,
                        Leave leave) {
  const auto& id = task->assign.task_id();
  const auto attempt = task->assign.attempt();
  wv1::Envelope env;
  {
    std::lock_guard lock(task->mutex);
    auto* res = env.mutable_result();
    res->set_task_id(id);
    res->set_attempt(attempt);
    result.set_message(mask(result.message(), task->secrets));
    for (auto& rec : *result.mutable_records()) rec.set_json(mask(rec.json(), task->secrets));
    for (const auto& [k, v] : task->outputs) (*res->mutable_outputs())[k] = mask(v, task->secrets);
    res->set_step_result(result.SerializeAsString());
    res->set_started_unix_ms(task->started_unix_ms);
    res->set_finished_unix_ms(now_ms());
    task->result = env;
    task->accepted_sent = true; // the Result says more
  }
  bool ok = result.status() == plugin::v1::StepResult::STATUS_SUCCEEDED;
  (ok ? metrics_.succeeded : metrics_.failed).inc();
  metrics_.duration.observe(static_cast<double>(now_ms() - task->started_unix_ms) / 1000.0);
  bool stopping = false;
  bool defer = false;
  {
    // The slot is free before the coordinator hears of it: it may assign the next task at once.
    std::lock_guard lock(mutex_);
    unacked_[task->key] = task;
    active_.erase(task->key);
    metrics_.running.set(static_cast<std::int64_t>(active_.size()));
    stopping = stopping_;
    // A task waits for a worker (this one, or one woken for it): this Result leaves with the
    // next, in one Batch (one message for the coordinator to take). Bounded by the watchdog.
    defer = leave == Leave::kMayDefer && !stopping_ && !pending_.empty();
    if (defer && !deferred_due_) {
      deferred_due_ = Clock::now() + kAcceptedDelay;
      if (watch_next_ && *deferred_due_ < *watch_next_) watch_.notify_all();
    }
  }
  idle_.notify_all();
  // The watchdog only needs to hear of an ended task when it waits for the last one to stop.
  if (stopping) watch_.notify_all();
  if (spdlog::should_log(spdlog::level::info)) {
    spdlog::info("task {} attempt {}: {}{}", id, attempt,
                 plugin::v1::StepResult::Status_Name(result.status()),
                 result.message().empty() ? "" : " (" + result.message() + ")");
  }
  if (leave == Leave::kWithReceived) {
    send_later_(std::move(env));
    return false;
  }
  if (defer) {
    send_later_(std::move(env));
  } else {
    send_(std::move(env));
  }
  return defer;
}

} // namespace capstan::delegate
