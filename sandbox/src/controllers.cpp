// The controller worker loop: change notifications and timers feed one queue of keys.
#include "controllers.h"

#include "reconcilers.h"

namespace capstan::sandbox {

Controllers::Controllers(Cluster& cluster) : cluster_(cluster) {
  cluster_.store().subscribe([this](const Change& c) { on_change(c); });
}

Controllers::~Controllers() {
  stop();
}

void Controllers::start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
  enqueue("Bootstrap\x1f\x1f");
}

void Controllers::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Controllers::enqueue(const std::string& key) {
  {
    std::lock_guard lock(mu_);
    queue_.insert(key);
  }
  cv_.notify_all();
}

void Controllers::enqueue_after(const std::string& key, std::chrono::milliseconds delay) {
  {
    std::lock_guard lock(mu_);
    timers_.emplace(std::chrono::steady_clock::now() + delay, key);
  }
  cv_.notify_all();
}

void Controllers::on_change(const Change& c) {
  // Runs under the store's write lock: only decides which keys to queue.
  for (const auto& key : keys_for_change(c)) {
    std::lock_guard lock(mu_);
    queue_.insert(key);
  }
  cv_.notify_all();
}

void Controllers::run() {
  Reconcilers reconcilers(cluster_, *this);
  while (true) {
    std::string key;
    {
      std::unique_lock lock(mu_);
      while (true) {
        if (stopping_) return;
        auto now = std::chrono::steady_clock::now();
        while (!timers_.empty() && timers_.begin()->first <= now) {
          queue_.insert(timers_.begin()->second);
          timers_.erase(timers_.begin());
        }
        if (!queue_.empty()) break;
        if (timers_.empty())
          cv_.wait(lock);
        else
          cv_.wait_until(lock, timers_.begin()->first);
      }
      key = *queue_.begin();
      queue_.erase(queue_.begin());
    }
    reconcilers.reconcile(key);
  }
}

} // namespace capstan::sandbox
