// Lets API threads wait for an execution to change (long-poll) without polling the store.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace capstan::engine {

struct Position {
  std::int64_t revision = 0; // the execution's revision
  std::int64_t log_seq = 0;  // its last log line
};

class ChangeFeed {
public:
  // Engine thread, after the change is committed. A finished execution is dropped from the
  // feed once published: waiters then read the store.
  void publish(const std::string& execution_id, Position position, bool finished);
  // Waits until the execution moved past `seen` (revision or log), the deadline passed, or
  // the feed is closed; returns where the execution is. nullopt when the feed does not track
  // it (finished, unknown) or is closed: the caller reads the store.
  std::optional<Position> wait(const std::string& execution_id, Position seen,
                               std::chrono::steady_clock::time_point deadline);
  void close();

private:
  std::mutex mutex_; // guards positions_ and closed_: written by the engine, read by API threads
  std::condition_variable changed_;
  std::unordered_map<std::string, Position> positions_;
  bool closed_ = false;
};

} // namespace capstan::engine
