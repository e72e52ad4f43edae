// The delegate's task runner.
#include "task_runner.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace capstan::delegate {

namespace fs = std::filesystem;

namespace {

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

// A directory name from a task id: ids come from the coordinator, not from a file system.
std::string safe_name(const std::string& s) {
  std::string out;
  for (char c : s) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return out.empty() ? "task" : out;
}

} // namespace

struct TaskRunner::Task {
  wv1::Assign assign;
  plugin::v1::StepRequest request;
  std::atomic<bool> cancelled{false};
  std::mutex mutex; // guards outputs and secrets: plugin callbacks may come from any thread
  std::map<std::string, std::string> outputs;
  std::vector<std::string> secrets;
};

TaskRunner::TaskRunner(PluginHost& host, int slots, fs::path work_root, Send send)
    : host_(host), slots_(std::max(1, slots)), work_root_(std::move(work_root)),
      send_(std::move(send)) {
  fs::create_directories(work_root_);
  workers_.reserve(static_cast<std::size_t>(slots_));
  for (int i = 0; i < slots_; ++i) workers_.emplace_back([this] { work(); });
}

TaskRunner::~TaskRunner() {
  shutdown(std::chrono::milliseconds(0));
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
}

void TaskRunner::reject(const wv1::Assign& assign, plugin::v1::ErrorType type,
                        const std::string& why) {
  plugin::v1::StepResult r;
  r.set_status(plugin::v1::StepResult::STATUS_FAILED);
  r.set_error_type(type);
  r.set_message(why);
  wv1::Envelope env;
  auto* res = env.mutable_result();
  res->set_task_id(assign.task_id());
  res->set_attempt(assign.attempt());
  res->set_step_result(r.SerializeAsString());
  res->set_started_unix_ms(now_ms());
  res->set_finished_unix_ms(now_ms());
  {
    std::lock_guard lock(mutex_);
    unacked_[key_of(assign.task_id(), assign.attempt())] = env;
  }
  send_(std::move(env));
}

void TaskRunner::assign(const wv1::Assign& assign) {
  auto key = key_of(assign.task_id(), assign.attempt());
  auto task = std::make_shared<Task>();
  task->assign = assign;
  bool readable = task->request.ParseFromString(assign.step_request());
  std::optional<wv1::Envelope> resend;
  std::string refusal;
  {
    std::lock_guard lock(mutex_);
    if (active_.count(key)) return;
    if (auto it = unacked_.find(key); it != unacked_.end()) {
      resend = it->second;
    } else if (stopping_) {
      refusal = "the delegate is shutting down";
    } else if (static_cast<int>(active_.size()) >= slots_) {
      refusal = "the delegate has no free slot (" + std::to_string(slots_) + " in use)";
    } else if (readable) {
      active_[key] = task;
      pending_.push_back(task);
    }
  }
  if (resend) return send_(std::move(*resend));
  if (!refusal.empty()) {
    return reject(assign, plugin::v1::ERROR_TYPE_DELEGATE_PROVISIONING, refusal);
  }
  if (!readable) {
    return reject(assign, plugin::v1::ERROR_TYPE_UNKNOWN,
                  "the delegate could not decode the step request");
  }
  work_ready_.notify_one();
}

void TaskRunner::cancel(const wv1::Cancel& cancel) {
  std::lock_guard lock(mutex_);
  auto it = active_.find(key_of(cancel.task_id(), cancel.attempt()));
  if (it == active_.end()) return;
  spdlog::info("task {} attempt {}: cancel requested ({})", cancel.task_id(), cancel.attempt(),
               cancel.reason());
  it->second->cancelled = true;
}

void TaskRunner::acknowledge(const wv1::ResultAck& ack) {
  std::lock_guard lock(mutex_);
  unacked_.erase(key_of(ack.task_id(), ack.attempt()));
}

void TaskRunner::resend_results() {
  std::vector<wv1::Envelope> again;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [k, env] : unacked_) again.push_back(env);
  }
  for (auto& env : again) send_(std::move(env));
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
  for (const auto& [k, env] : unacked_) {
    wv1::TaskRef r;
    r.set_task_id(env.result().task_id());
    r.set_attempt(env.result().attempt());
    out.push_back(std::move(r));
  }
  return out;
}

int TaskRunner::busy() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(active_.size());
}

void TaskRunner::shutdown(std::chrono::milliseconds grace) {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  for (auto& [k, t] : active_) t->cancelled = true;
  work_ready_.notify_all();
  idle_.wait_for(lock, grace, [&] { return active_.empty(); });
}

void TaskRunner::work() {
  while (true) {
    std::shared_ptr<Task> task;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return; // stopping, nothing left
      task = std::move(pending_.front());
      pending_.pop_front();
    }
    execute(*task);
  }
}

void TaskRunner::execute(Task& task) {
  const auto& id = task.assign.task_id();
  const auto attempt = task.assign.attempt();
  auto started = now_ms();
  {
    wv1::Envelope env;
    env.mutable_accepted()->set_task_id(id);
    env.mutable_accepted()->set_attempt(attempt);
    send_(std::move(env));
  }
  spdlog::info("task {} attempt {}: {} step {} started", id, attempt, task.request.step_type(),
               task.request.step_identifier());

  // An empty directory of its own, gone when the task ends.
  fs::path dir = work_root_ / (safe_name(id) + "-" + std::to_string(attempt));
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  plugin::v1::StepRequest request = task.request;
  request.set_work_dir(dir.string());

  TaskCallbacks callbacks;
  callbacks.log = [&](capstan_log_level level, std::string_view line) {
    std::vector<std::string> secrets;
    {
      std::lock_guard lock(task.mutex);
      secrets = task.secrets;
    }
    wv1::Envelope env;
    auto* log = env.mutable_log();
    log->set_task_id(id);
    log->set_attempt(attempt);
    auto* l = log->add_lines();
    l->set_time_unix_ms(now_ms());
    l->set_level(static_cast<std::uint32_t>(level));
    l->set_text(mask(std::string(line), secrets));
    send_(std::move(env));
  };
  callbacks.cancelled = [&] { return task.cancelled.load(); };
  callbacks.output = [&](std::string_view name, std::string_view value) {
    std::lock_guard lock(task.mutex);
    task.outputs[std::string(name)] = std::string(value);
  };
  callbacks.progress = [&](std::uint32_t percent, std::string_view message) {
    callbacks.log(CAPSTAN_LOG_DEBUG, "progress " + std::to_string(percent) + "%" +
                                         (message.empty() ? "" : ": " + std::string(message)));
  };
  callbacks.mask = [&](std::string_view value) {
    std::lock_guard lock(task.mutex);
    task.secrets.emplace_back(value);
  };

  plugin::v1::StepResult result;
  try {
    result = host_.execute(request, callbacks);
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
  fs::remove_all(dir, ec);

  wv1::Envelope env;
  auto* res = env.mutable_result();
  res->set_task_id(id);
  res->set_attempt(attempt);
  {
    std::lock_guard lock(task.mutex);
    result.set_message(mask(result.message(), task.secrets));
    for (const auto& [k, v] : task.outputs) (*res->mutable_outputs())[k] = v;
  }
  res->set_step_result(result.SerializeAsString());
  res->set_started_unix_ms(started);
  res->set_finished_unix_ms(now_ms());
  {
    // The slot is free before the coordinator hears of it: it may assign the next task at once.
    std::lock_guard lock(mutex_);
    unacked_[key_of(id, attempt)] = env;
    active_.erase(key_of(id, attempt));
  }
  idle_.notify_all();
  spdlog::info("task {} attempt {}: {}{}", id, attempt,
               plugin::v1::StepResult::Status_Name(result.status()),
               result.message().empty() ? "" : " (" + result.message() + ")");
  send_(std::move(env));
}

} // namespace capstan::delegate
