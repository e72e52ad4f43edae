// Watches that keep going: list, then watch from the list's resourceVersion; reconnect where
// the last event (or bookmark) left off; list again when the server says that is too old (410
// Expired). Handlers run on the watch's own thread.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "capstan/kube/client.h"

namespace capstan::kube {

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark };

struct WatchEvent {
  WatchEventType type;
  nlohmann::json object; // for a bookmark, only metadata.resourceVersion matters
};

struct WatchOptions {
  std::string namespace_; // "" watches all namespaces (or a cluster-scoped kind)
  std::string label_selector;
  std::string field_selector;
  // Where to start. "" lists first (on_sync gets the objects), then watches from the list's
  // resourceVersion; anything else watches from there without listing (events newer than it).
  std::string resource_version;
  bool bookmarks = true;
  // How long the server keeps one watch request open before we open the next (the server may
  // end it sooner); jittered by up to a quarter so many watches do not reconnect together.
  std::chrono::seconds server_timeout{300};
  std::chrono::milliseconds min_backoff{200}; // after a failed connection, doubling
  std::chrono::milliseconds max_backoff{30000};
};

struct WatchHandlers {
  // After each list (the first, and every relist after 410 Expired): the full current set.
  std::function<void(const std::vector<nlohmann::json>& items, const std::string& rv)> on_sync;
  std::function<void(const WatchEvent& event)> on_event;
  // A problem the watch is retrying through (connection lost, server error). Informational.
  std::function<void(const Error& error)> on_error;
};

class Watch {
public:
  // Starts at once on its own thread. Discovery errors (an unknown kind) are thrown here.
  Watch(const Client& client, std::string api_version, std::string kind, WatchOptions options,
        WatchHandlers handlers);
  ~Watch(); // stop() and join
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Ends the watch within ~100 ms; no handler runs after it returns (unless called from one).
  void stop();
  // The resourceVersion of the last event, bookmark or list seen.
  std::string resource_version() const;
  // How many times it listed (1 after the first sync; more after 410 Expired).
  int lists() const { return lists_.load(); }
  // How many watch requests it opened (reconnects included).
  int connects() const { return connects_.load(); }

private:
  void run();
  void relist();
  // One watch request; returns when it ends. Throws Error.
  void watch_once();

  Client client_;
  ResourceInfo info_;
  WatchOptions options_;
  WatchHandlers handlers_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex rv_mutex_;
  std::string rv_;
  std::atomic<int> lists_{0};
  std::atomic<int> connects_{0};
  std::thread thread_;
};

std::string_view to_string(WatchEventType t); // "ADDED", "MODIFIED", "DELETED", "BOOKMARK"

} // namespace capstan::kube
