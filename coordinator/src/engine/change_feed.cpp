// Long-poll support for execution watchers.
#include "engine/change_feed.h"

namespace capstan::engine {

void ChangeFeed::publish(const std::string& execution_id, Position position, bool finished) {
  {
    std::lock_guard lock(mutex_);
    if (finished) {
      positions_.erase(execution_id);
    } else {
      positions_[execution_id] = position;
    }
  }
  changed_.notify_all();
}

std::optional<Position> ChangeFeed::wait(const std::string& execution_id, Position seen,
                                         std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  std::optional<Position> now;
  changed_.wait_until(lock, deadline, [&] {
    now.reset();
    if (closed_) return true;
    auto it = positions_.find(execution_id);
    if (it == positions_.end()) return true;
    now = it->second;
    return it->second.revision > seen.revision || it->second.log_seq > seen.log_seq;
  });
  return now;
}

void ChangeFeed::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  changed_.notify_all();
}

} // namespace capstan::engine
