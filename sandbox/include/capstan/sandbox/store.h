// Object storage: an in-memory index over one SQLite file, a global monotonic resourceVersion,
// and a bounded history of changes that watches replay from.
#pragma once

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace capstan::sandbox {

using ObjectPtr = std::shared_ptr<const nlohmann::json>;

struct ObjectKey {
  std::string resource; // ResourceType::storage_key(): "apps/deployments", "/pods"
  std::string ns;       // "" for cluster-scoped objects
  std::string name;
  std::string str() const { return resource + "\x1f" + ns + "\x1f" + name; }
};

struct Change {
  std::string type; // ADDED, MODIFIED, DELETED
  std::string resource;
  std::string ns;
  std::int64_t rv = 0;
  ObjectPtr object;
};

// One watch's queue. The writer side never blocks: a watcher that falls too far behind is
// closed (as the API server drops slow watchers) and its client re-lists.
class Watcher {
public:
  using Filter = std::function<bool(const Change&)>;
  Watcher(std::string resource, std::string ns, Filter filter, std::size_t capacity)
      : resource_(std::move(resource)), ns_(std::move(ns)), filter_(std::move(filter)),
        capacity_(capacity) {}

  // Waits up to `timeout` for changes; returns what is queued (maybe empty). closed() tells
  // whether the stream must end.
  std::vector<Change> next(std::chrono::milliseconds timeout);
  bool closed() const;
  void close();

private:
  friend class Store;
  bool matches(const Change& c) const;
  void push(const Change& c);

  std::string resource_, ns_;
  Filter filter_;
  std::size_t capacity_;
  mutable std::mutex mu_; // guards queue_ and closed_, shared by the store and the stream
  std::condition_variable cv_;
  std::deque<Change> queue_;
  bool closed_ = false;
};

class Store {
public:
  // Opens (or creates) the SQLite file and loads every object.
  // history_size: changes kept for watches to resume from; watch_capacity: changes a watcher may
  // have queued before it is closed as too slow.
  Store(const std::filesystem::path& db_file, std::size_t history_size = 20000,
        std::size_t watch_capacity = 100000);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  std::int64_t resource_version() const;
  ObjectPtr get(const ObjectKey& key) const;
  // Objects of a resource (one namespace, or all when ns is empty), ordered by namespace/name,
  // and the resourceVersion the list is consistent with.
  std::vector<ObjectPtr> list(const std::string& resource, const std::string& ns,
                              std::int64_t* rv = nullptr) const;

  // Atomic read-modify-write: mutate gets the current object (nullptr when absent) and returns
  // the object to store, or nullopt to delete it (or leave it absent). It runs under the store's
  // write lock and may throw (nothing is changed then). The new resourceVersion is set on the
  // stored object. Returns the stored object (nullptr after a delete or no-op).
  using Mutation = std::function<std::optional<nlohmann::json>(const ObjectPtr& current)>;
  ObjectPtr mutate(const ObjectKey& key, const Mutation& mutate);

  // As mutate(), but `mutate` runs without the write lock, on the object as it was read; the
  // result is committed only when no one wrote the object meanwhile, else `mutate` runs again
  // on the newer object (after a few lost races, under the lock as mutate() does). So writes
  // to different objects compute (decode, merge, validate, track managed fields) at the same
  // time, and each is still judged against the exact object it replaces: resourceVersions,
  // conflicts and watch events are as with mutate(). `mutate` must depend on its argument only,
  // as it may run more than once.
  ObjectPtr mutate_optimistic(const ObjectKey& key, const Mutation& mutate);

  // A watch from resourceVersion `from` (0 = the current state as ADDED events first).
  // Returns nullptr when `from` is older than the history window (410 Gone).
  std::shared_ptr<Watcher> watch(const std::string& resource, const std::string& ns,
                                 std::int64_t from, Watcher::Filter filter);
  void unwatch(const std::shared_ptr<Watcher>& w);
  // Ends every watch (shutdown).
  void close_watches();

  // Called after every committed change, in commit order, under the write lock: listeners must
  // only enqueue.
  void subscribe(std::function<void(const Change&)> listener);

private:
  void persist(const std::string& key, const nlohmann::json* object, std::int64_t rv);
  // Stores `next` in place of `current` (the object under `k` now); the write lock is held.
  // `unchanged`: next equals current but for the resourceVersion (nothing to store).
  ObjectPtr commit(const ObjectKey& key, const std::string& k, const ObjectPtr& current,
                   std::optional<nlohmann::json> next, bool unchanged);

  mutable std::shared_mutex mu_; // objects_, rv_, history_, watchers_
  std::map<std::string, ObjectPtr> objects_;
  std::int64_t rv_ = 0;
  std::deque<Change> history_;
  std::size_t history_size_;
  std::size_t watch_capacity_;
  std::int64_t history_floor_ = 0; // changes after this rv are all in history_
  std::vector<std::shared_ptr<Watcher>> watchers_;
  std::vector<std::function<void(const Change&)>> listeners_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* put_ = nullptr;
  sqlite3_stmt* del_ = nullptr;
  sqlite3_stmt* rv_stmt_ = nullptr;
};

} // namespace capstan::sandbox
