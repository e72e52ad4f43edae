// SQLite-backed object store with an in-memory index and watch fan-out.
#include "capstan/sandbox/store.h"

#include <sqlite3.h>

#include <optional>
#include <stdexcept>

namespace capstan::sandbox {

using nlohmann::json;

std::vector<Change> Watcher::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || !queue_.empty(); });
  std::vector<Change> out(queue_.begin(), queue_.end());
  queue_.clear();
  return out;
}

bool Watcher::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

void Watcher::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

bool Watcher::matches(const Change& c) const {
  if (c.resource != resource_) return false;
  if (!ns_.empty() && c.ns != ns_) return false;
  return !filter_ || filter_(c);
}

void Watcher::push(const Change& c) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (queue_.size() >= capacity_) {
      closed_ = true; // too slow: the client re-lists
    } else {
      queue_.push_back(c);
    }
  }
  cv_.notify_all();
}

namespace {
void check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
    throw std::runtime_error(std::string("sandbox store: ") + what + ": " + sqlite3_errmsg(db));
}
} // namespace

Store::Store(const std::filesystem::path& db_file, std::size_t history_size,
             std::size_t watch_capacity)
    : history_size_(history_size), watch_capacity_(watch_capacity) {
  check(sqlite3_open(db_file.c_str(), &db_), db_, "open");
  auto exec = [&](const char* sql) {
    check(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), db_, sql);
  };
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  exec("CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, body TEXT NOT NULL)");
  exec("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
  sqlite3_stmt* st = nullptr;
  check(sqlite3_prepare_v2(db_, "SELECT key, body FROM objects", -1, &st, nullptr), db_, "load");
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string key = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    json body =
        json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)), nullptr, false);
    if (!body.is_discarded()) objects_[key] = std::make_shared<const json>(std::move(body));
  }
  sqlite3_finalize(st);
  check(sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE name='rv'", -1, &st, nullptr), db_,
        "rv");
  if (sqlite3_step(st) == SQLITE_ROW) rv_ = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  history_floor_ = rv_;
  check(sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO objects (key, body) VALUES (?, ?)", -1,
                           &put_, nullptr),
        db_, "prepare put");
  check(sqlite3_prepare_v2(db_, "DELETE FROM objects WHERE key = ?", -1, &del_, nullptr), db_,
        "prepare delete");
  check(sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO meta (name, value) VALUES ('rv', ?)", -1,
                           &rv_stmt_, nullptr),
        db_, "prepare rv");
}

Store::~Store() {
  close_watches();
  sqlite3_finalize(put_);
  sqlite3_finalize(del_);
  sqlite3_finalize(rv_stmt_);
  sqlite3_close(db_);
}

std::int64_t Store::resource_version() const {
  std::shared_lock lock(mu_);
  return rv_;
}

ObjectPtr Store::get(const ObjectKey& key) const {
  std::shared_lock lock(mu_);
  auto it = objects_.find(key.str());
  return it == objects_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> Store::list(const std::string& resource, const std::string& ns,
                                   std::int64_t* rv) const {
  std::shared_lock lock(mu_);
  std::string prefix = resource + "\x1f";
  if (!ns.empty()) prefix += ns + "\x1f";
  std::vector<ObjectPtr> out;
  for (auto it = objects_.lower_bound(prefix);
       it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    out.push_back(it->second);
  if (rv) *rv = rv_;
  return out;
}

void Store::persist(const std::string& key, const json* object, std::int64_t rv) {
  check(sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr), db_, "begin");
  try {
    sqlite3_stmt* st = object ? put_ : del_;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    std::string body;
    if (object) {
      body = object->dump();
      sqlite3_bind_text(st, 2, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
    }
    check(sqlite3_step(st), db_, "write object");
    sqlite3_reset(rv_stmt_);
    sqlite3_bind_int64(rv_stmt_, 1, rv);
    check(sqlite3_step(rv_stmt_), db_, "write resourceVersion");
    check(sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr), db_, "commit");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

namespace {

// Whether an update changes nothing but the resourceVersion (it then keeps the old one and
// notifies no one). Compared in place (swapping the resourceVersion in and back out) rather
// than on a copy: every write of every controller passes here.
bool same_but_version(nlohmann::json& next, const nlohmann::json& current) {
  auto meta = next.find("metadata");
  if (meta == next.end() || !meta->is_object()) return next == current;
  auto rv_field = meta->find("resourceVersion");
  std::optional<json> saved;
  if (rv_field != meta->end()) saved = std::move(*rv_field);
  (*meta)["resourceVersion"] = current["metadata"].value("resourceVersion", "");
  bool same = next == current;
  if (saved)
    (*meta)["resourceVersion"] = std::move(*saved);
  else
    meta->erase("resourceVersion");
  return same;
}

} // namespace

ObjectPtr Store::mutate(const ObjectKey& key, const Mutation& mutate) {
  std::unique_lock lock(mu_);
  const std::string k = key.str();
  auto it = objects_.find(k);
  ObjectPtr current = it == objects_.end() ? nullptr : it->second;
  std::optional<json> next = mutate(current);
  bool unchanged = next && current && same_but_version(*next, *current);
  return commit(key, k, current, std::move(next), unchanged);
}

ObjectPtr Store::mutate_optimistic(const ObjectKey& key, const Mutation& mutate) {
  const std::string k = key.str();
  for (int attempt = 0; attempt < 3; ++attempt) {
    ObjectPtr current;
    {
      std::shared_lock lock(mu_);
      auto it = objects_.find(k);
      if (it != objects_.end()) current = it->second;
    }
    std::optional<json> next = mutate(current);
    bool unchanged = next && current && same_but_version(*next, *current);
    std::unique_lock lock(mu_);
    auto it = objects_.find(k);
    ObjectPtr now = it == objects_.end() ? nullptr : it->second;
    // `current` is held, so a newer object can never have its address.
    if (now == current) return commit(key, k, current, std::move(next), unchanged);
  }
  return this->mutate(key, mutate);
}

ObjectPtr Store::commit(const ObjectKey& key, const std::string& k, const ObjectPtr& current,
                        std::optional<json> next, bool unchanged) {
  if (!next && !current) return nullptr;
  if (unchanged) return current;
  std::int64_t rv = rv_ + 1;
  Change change;
  change.resource = key.resource;
  change.ns = key.ns;
  change.rv = rv;
  ObjectPtr stored;
  if (next) {
    (*next)["metadata"]["resourceVersion"] = std::to_string(rv);
    stored = std::make_shared<const json>(std::move(*next));
    persist(k, stored.get(), rv);
    objects_[k] = stored;
    change.type = current ? "MODIFIED" : "ADDED";
    change.object = stored;
  } else {
    json gone = *current;
    gone["metadata"]["resourceVersion"] = std::to_string(rv);
    persist(k, nullptr, rv);
    objects_.erase(k);
    change.type = "DELETED";
    change.object = std::make_shared<const json>(std::move(gone));
  }
  rv_ = rv;
  history_.push_back(change);
  while (history_.size() > history_size_) {
    history_floor_ = history_.front().rv;
    history_.pop_front();
  }
  for (auto& w : watchers_)
    if (w->matches(change)) w->push(change);
  for (auto& l : listeners_) l(change);
  return stored;
}

std::shared_ptr<Watcher> Store::watch(const std::string& resource, const std::string& ns,
                                      std::int64_t from, Watcher::Filter filter) {
  std::unique_lock lock(mu_);
  if (from > 0 && from < history_floor_) return nullptr;
  auto w = std::make_shared<Watcher>(resource, ns, std::move(filter), watch_capacity_);
  if (from <= 0) {
    std::string prefix = resource + "\x1f";
    if (!ns.empty()) prefix += ns + "\x1f";
    for (auto it = objects_.lower_bound(prefix);
         it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      Change c{"ADDED", resource, (*it->second).value("/metadata/namespace"_json_pointer, ""), rv_,
               it->second};
      if (w->matches(c)) w->push(c);
    }
  } else {
    for (const auto& c : history_)
      if (c.rv > from && w->matches(c)) w->push(c);
  }
  watchers_.push_back(w);
  return w;
}

void Store::unwatch(const std::shared_ptr<Watcher>& w) {
  std::unique_lock lock(mu_);
  std::erase(watchers_, w);
}

void Store::close_watches() {
  std::unique_lock lock(mu_);
  for (auto& w : watchers_) w->close();
  watchers_.clear();
}

void Store::subscribe(std::function<void(const Change&)> listener) {
  std::unique_lock lock(mu_);
  listeners_.push_back(std::move(listener));
}

} // namespace capstan::sandbox
