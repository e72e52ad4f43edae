// The engine's thread: drains events in batches, one transaction per batch, effects after commit.
#include "engine/engine.h"

#include <spdlog/spdlog.h>

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

#include "engine/machine.h"

namespace capstan::engine {

Engine::Engine(store::Store& store, ChangeFeed& feed, EngineOptions options)
    : store_(store), feed_(feed), options_(std::move(options)),
      wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd_ < 0) throw std::runtime_error("engine: eventfd failed");
}

Engine::~Engine() {
  stop();
  ::close(wake_fd_);
}

void Engine::start(wire::Router& router) {
  if (router.wait_fds()[0] < 0) {
    throw std::logic_error("engine: the router must be driven by the engine (own_thread false)");
  }
  router_ = &router;
  machine_ = std::make_unique<Machine>(store_, feed_, options_, router, metrics_);
  {
    sqlite::Transaction tx(store_.writer());
    machine_->recover();
    machine_->flush();
    tx.commit();
  }
  machine_->run_effects();
  thread_ = std::thread([this] { loop(); });
}

namespace {

// Events in one batch at most (one transaction): under load, one commit covers many changes.
constexpr std::size_t kBatchLimit = 4096;

void write_wake(int fd) {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
}

} // namespace

void Engine::stop() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
    signalled_ = true;
  }
  write_wake(wake_fd_);
  if (thread_.joinable()) thread_.join();
}

void Engine::push(Event event) {
  bool wake = false;
  {
    std::lock_guard lock(queue_mutex_);
    events_.push_back(std::move(event));
    if (asleep_ && !signalled_) wake = signalled_ = true;
  }
  if (wake) write_wake(wake_fd_);
}

void Engine::post(wire::RouterEvent&& event) {
  push(std::move(event));
}

void Engine::post(std::vector<wire::RouterEvent>&& events) {
  if (events.empty()) return;
  bool wake = false;
  {
    std::lock_guard lock(queue_mutex_);
    for (auto& e : events) events_.push_back(std::move(e));
    if (asleep_ && !signalled_) wake = signalled_ = true;
  }
  if (wake) write_wake(wake_fd_);
}

// Right before the engine thread waits: false when events came meanwhile.
bool Engine::may_sleep() {
  std::lock_guard lock(queue_mutex_);
  if (stopping_ || !events_.empty()) return false;
  asleep_ = true;
  return true;
}

void Engine::woke() {
  std::lock_guard lock(queue_mutex_);
  asleep_ = false;
  if (signalled_) {
    std::uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(wake_fd_, &count, sizeof count);
    signalled_ = false;
  }
}

std::future<Outcome> Engine::apply(std::vector<model::Object> objects, bool dry_run,
                                   std::string user) {
  ApplyCommand c{std::move(objects), dry_run, std::move(user), {}};
  auto f = c.done.get_future();
  push(std::move(c));
  return f;
}

std::future<Outcome> Engine::remove(std::string kind, std::string identifier, std::string user,
                                    bool cascade) {
  DeleteCommand c{std::move(kind), std::move(identifier), std::move(user), cascade, {}};
  auto f = c.done.get_future();
  push(std::move(c));
  return f;
}

std::future<Outcome> Engine::run(RunRequest request) {
  RunCommand c{std::move(request), {}};
  auto f = c.done.get_future();
  push(std::move(c));
  return f;
}

std::future<Outcome> Engine::abort(std::string execution_id, std::string user) {
  AbortCommand c{std::move(execution_id), std::move(user), {}};
  auto f = c.done.get_future();
  push(std::move(c));
  return f;
}

std::future<Outcome> Engine::approve(ApprovalRequest request) {
  ApprovalCommand c{std::move(request), {}};
  auto f = c.done.get_future();
  push(std::move(c));
  return f;
}

std::future<Outcome> Engine::intervene(InterventionRequest request) {
  InterventionCommand c{std::move(request), {}};
  auto f = c.done.get_future();
  push(std::move(c));
  return f;
}

std::future<Outcome> Engine::answer(InputAnswer request) {
  InputCommand c{std::move(request), {}};
  auto f = c.done.get_future();
  push(std::move(c));
  return f;
}

std::future<Outcome> Engine::app_operation(AppOperationRequest request) {
  AppOperationCommand c{std::move(request), {}};
  auto f = c.done.get_future();
  push(std::move(c));
  return f;
}

std::future<Outcome> Engine::git_push(GitPush pushed) {
  GitPushCommand c{std::move(pushed), {}};
  auto f = c.done.get_future();
  push(std::move(c));
  return f;
}

std::vector<nlohmann::json> Engine::waits() const {
  std::lock_guard lock(view_mutex_);
  return waits_;
}

std::future<Outcome> Engine::create_token(std::string name) {
  TokenCommand c{std::move(name), false, {}};
  auto f = c.done.get_future();
  push(std::move(c));
  return f;
}

std::future<Outcome> Engine::revoke_token(std::string name) {
  TokenCommand c{std::move(name), true, {}};
  auto f = c.done.get_future();
  push(std::move(c));
  return f;
}

std::vector<DelegateView> Engine::delegates() const {
  std::lock_guard lock(view_mutex_);
  return views_;
}

void Engine::loop() {
  pthread_setname_np(pthread_self(), "capstan-engine"); // for top -H, perf, /proc
  auto wake = machine_->next_wakeup();
  const auto wire_fds = router_->wait_fds();
  bool router_woken = true;
  std::vector<Event> batch; // emptied after each batch, its room kept for the next
  while (true) {
    // The wire first: what arrived joins this batch, and what the last batch queued leaves.
    const auto beat = router_->service(router_woken);
    router_woken = false;
    {
      std::lock_guard lock(queue_mutex_);
      if (stopping_) break;
      // Everything queued goes in one transaction (up to the limit).
      while (!events_.empty() && batch.size() < kBatchLimit) {
        batch.push_back(std::move(events_.front()));
        events_.pop_front();
      }
    }
    auto now = std::chrono::steady_clock::now();
    if (batch.empty() && now < wake) {
      if (!router_->may_wait() || !may_sleep()) continue;
      auto until = std::min(wake, beat);
      auto timeout = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
      pollfd fds[3] = {{wire_fds[0], POLLIN, 0}, {wire_fds[1], POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      int ready = ::poll(fds, 3, static_cast<int>(std::max<long long>(0, timeout)));
      router_woken = ready > 0 && (fds[1].revents & POLLIN) != 0;
      woke();
      continue;
    }
    process(batch);
    batch.clear();
    if (std::chrono::steady_clock::now() >= wake || machine_->work_now() || machine_->acks_held()) {
      wake = machine_->next_wakeup();
    }
  }
  router_->service(false); // what the last batch queued still leaves
  // Unanswered commands get an answer rather than a broken promise.
  std::lock_guard lock(queue_mutex_);
  for (auto& e : events_) {
    std::visit(
        [](auto& ev) {
          using T = std::decay_t<decltype(ev)>;
          if constexpr (!std::is_same_v<T, wire::RouterEvent>) {
            Outcome o;
            o.status = 503;
            o.code = "ShuttingDown";
            o.message = "the coordinator is shutting down";
            ev.done.set_value(std::move(o));
          }
        },
        e);
  }
}

void Engine::process(std::vector<Event>& events) {
  std::vector<std::pair<std::promise<Outcome>*, Outcome>> answers;
  // What came while the batch's events were handled (answers point into it: it lives as long).
  std::vector<Event> late;
  auto handle = [&](Event& e) {
    std::visit(
        [&](auto& ev) {
          using T = std::decay_t<decltype(ev)>;
          if constexpr (std::is_same_v<T, wire::RouterEvent>) {
            machine_->on_router_event(ev);
          } else if constexpr (std::is_same_v<T, ApplyCommand>) {
            answers.emplace_back(&ev.done, machine_->apply(ev.objects, ev.dry_run, ev.user));
          } else if constexpr (std::is_same_v<T, DeleteCommand>) {
            answers.emplace_back(&ev.done,
                                 machine_->remove(ev.kind, ev.identifier, ev.user, ev.cascade));
          } else if constexpr (std::is_same_v<T, RunCommand>) {
            answers.emplace_back(&ev.done, machine_->run(ev.request));
          } else if constexpr (std::is_same_v<T, TokenCommand>) {
            answers.emplace_back(&ev.done, ev.revoke ? machine_->revoke_token(ev.name)
                                                     : machine_->create_token(ev.name));
          } else if constexpr (std::is_same_v<T, ApprovalCommand>) {
            answers.emplace_back(&ev.done, machine_->approve(ev.request));
          } else if constexpr (std::is_same_v<T, InterventionCommand>) {
            answers.emplace_back(&ev.done, machine_->intervene(ev.request));
          } else if constexpr (std::is_same_v<T, InputCommand>) {
            answers.emplace_back(&ev.done, machine_->answer(ev.request));
          } else if constexpr (std::is_same_v<T, AppOperationCommand>) {
            // Answered later, when the delegate reports (or cannot).
            machine_->app_operation(ev.request, std::move(ev.done));
          } else if constexpr (std::is_same_v<T, GitPushCommand>) {
            answers.emplace_back(&ev.done, machine_->git_push(ev.push));
          } else {
            answers.emplace_back(&ev.done, machine_->abort(ev.execution_id, ev.user));
          }
        },
        e);
  };
  try {
    sqlite::Transaction tx(store_.writer());
    for (auto& e : events) handle(e);
    // The wire is read once more before the batch's dispatch and writes: a Result (or a run)
    // that arrived while the events above were handled joins this batch and its commit instead
    // of waiting for both to end. Once only, so that a steady stream cannot hold the commit.
    if (events.size() < kBatchLimit) {
      router_->service(false);
      std::lock_guard lock(queue_mutex_);
      while (!events_.empty() && events.size() + late.size() < kBatchLimit) {
        late.push_back(std::move(events_.front()));
        events_.pop_front();
      }
    }
    for (auto& e : late) handle(e);
    machine_->tick();
    machine_->schedule();
    machine_->flush();
    tx.commit();
  } catch (const std::exception& e) {
    // The store refused a write (disk full, I/O error): memory and store may now disagree.
    // Exit and let the restart resume from what was committed.
    spdlog::critical("store write failed, exiting so a restart resumes from the store: {}",
                     e.what());
    std::_Exit(70);
  }
  machine_->run_effects();
  machine_->sample(metrics_);
  // The delegates' view (slots in use change with every task) is rebuilt at most every 100 ms.
  auto now = std::chrono::steady_clock::now();
  if (machine_->views_urgent() ||
      (machine_->views_changed() && now - views_at_ >= std::chrono::milliseconds(100))) {
    views_at_ = now;
    auto views = machine_->views();
    std::lock_guard lock(view_mutex_);
    views_ = std::move(views);
  }
  if (machine_->waits_changed()) {
    auto waits = machine_->waits();
    std::lock_guard lock(view_mutex_);
    waits_ = std::move(waits);
  }
  // Answered last: a client that reads the delegates or the waits right after its command's
  // reply sees what the command did (a revoked token's delegate already disconnected).
  for (auto& [promise, outcome] : answers) promise->set_value(std::move(outcome));
}

} // namespace capstan::engine
