// Watch-backed cache of live objects.
#include "live_cache.h"

namespace capstan::apps::detail {

using nlohmann::json;

namespace {
long long rv_number(const json& object) {
  try {
    return std::stoll(object.at("metadata").value("resourceVersion", "0"));
  } catch (const std::exception&) {
    return -1;
  }
}
} // namespace

LiveCache::LiveCache(kube::Client client, ChangeFn on_change)
    : client_(std::move(client)), on_change_(std::move(on_change)) {}

LiveCache::~LiveCache() {
  stop();
}

void LiveCache::stop() {
  std::map<std::string, std::shared_ptr<KindWatch>> watches;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    watches.swap(watches_);
  }
  for (auto& [_, w] : watches) {
    if (w->watch) w->watch->stop();
  }
}

bool LiveCache::watching(const std::string& api_version, const std::string& kind) const {
  std::lock_guard lock(mutex_);
  auto it = watches_.find(api_version + "|" + kind);
  return it != watches_.end() && it->second->synced;
}

void LiveCache::ensure(const std::string& api_version, const std::string& kind,
                       std::chrono::milliseconds timeout) {
  const std::string id = api_version + "|" + kind;
  std::shared_ptr<KindWatch> w;
  {
    std::unique_lock lock(mutex_);
    if (stopped_) throw kube::Error(kube::ErrorKind::kCancelled, "the reconciler is stopping");
    auto it = watches_.find(id);
    if (it == watches_.end()) {
      w = std::make_shared<KindWatch>();
      watches_[id] = w;
      lock.unlock();
      const std::string group = api_group(api_version);
      kube::WatchHandlers handlers;
      std::weak_ptr<KindWatch> weak = w;
      handlers.on_sync = [this, weak, group, kind](const std::vector<json>& items,
                                                   const std::string&) {
        std::set<std::string> changed;
        {
          std::lock_guard l(mutex_);
          // A relist replaces everything known of the kind.
          std::vector<ResourceKey> old;
          for (const auto& [key, _] : objects_) {
            if (key.group == group && key.kind == kind) old.push_back(key);
          }
          for (const auto& key : old) remove(key, changed);
          for (const auto& item : items) store(item, changed);
          if (auto kw = weak.lock()) kw->synced = true;
        }
        synced_cv_.notify_all();
        notify(changed);
      };
      handlers.on_event = [this](const kube::WatchEvent& e) {
        if (e.type == kube::WatchEventType::kBookmark) return;
        std::set<std::string> changed;
        {
          std::lock_guard l(mutex_);
          if (e.type == kube::WatchEventType::kDeleted) {
            remove(ResourceKey::of(e.object), changed);
            if (auto app = tracked_by(e.object)) changed.insert(*app);
          } else {
            store(e.object, changed);
          }
        }
        notify(changed);
      };
      kube::WatchOptions options;
      options.server_timeout = std::chrono::seconds(240);
      try {
        w->watch = std::make_unique<kube::Watch>(client_, api_version, kind, options, handlers);
      } catch (...) {
        std::lock_guard l(mutex_);
        watches_.erase(id);
        throw;
      }
      lock.lock();
    } else {
      w = it->second;
    }
    if (!synced_cv_.wait_for(lock, timeout, [&] { return w->synced || stopped_; })) {
      throw kube::Error(kube::ErrorKind::kTimeout, "listing " + kind +
                                                       " objects took longer than " +
                                                       std::to_string(timeout.count()) + " ms");
    }
  }
}

void LiveCache::store(const json& object, std::set<std::string>& changed) {
  ResourceKey key = ResourceKey::of(object);
  auto it = objects_.find(key);
  if (it != objects_.end()) {
    long long have = rv_number(it->second);
    long long got = rv_number(object);
    if (have >= 0 && got >= 0 && got < have) return; // an older version than the one we hold
    if (auto app = tracked_by(it->second)) {
      changed.insert(*app);
      by_app_[*app].erase(key);
    }
  }
  // Only what comparisons read is kept.
  json copy = object;
  objects_[key] = std::move(copy);
  if (auto app = tracked_by(object)) {
    by_app_[*app].insert(key);
    changed.insert(*app);
  }
}

void LiveCache::remove(const ResourceKey& key, std::set<std::string>& changed) {
  auto it = objects_.find(key);
  if (it == objects_.end()) return;
  if (auto app = tracked_by(it->second)) {
    by_app_[*app].erase(key);
    changed.insert(*app);
  }
  objects_.erase(it);
}

void LiveCache::notify(const std::set<std::string>& apps) {
  if (!on_change_) return;
  for (const auto& app : apps) on_change_(app);
}

std::optional<json> LiveCache::get(const ResourceKey& key) const {
  std::lock_guard lock(mutex_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

std::vector<json> LiveCache::tracked(const std::string& app) const {
  std::lock_guard lock(mutex_);
  std::vector<json> out;
  auto it = by_app_.find(app);
  if (it == by_app_.end()) return out;
  for (const auto& key : it->second) {
    auto o = objects_.find(key);
    if (o != objects_.end()) out.push_back(o->second);
  }
  return out;
}

void LiveCache::put(const json& object) {
  std::set<std::string> changed;
  std::lock_guard lock(mutex_);
  store(object, changed); // our own write: nobody needs telling
}

void LiveCache::erase(const ResourceKey& key) {
  std::set<std::string> changed;
  std::lock_guard lock(mutex_);
  remove(key, changed);
}

} // namespace capstan::apps::detail
