// The live objects of the kinds applications use, kept current by one watch per kind, indexed
// by the application that tracks them; changes are reported per application.
#pragma once

#include <nlohmann/json.hpp>

#include <capstan/kube/client.h>
#include <capstan/kube/watch.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "capstan/apps/resources.h"

namespace capstan::apps::detail {

class LiveCache {
public:
  using ChangeFn = std::function<void(const std::string& app)>;
  LiveCache(kube::Client client, ChangeFn on_change);
  ~LiveCache();
  LiveCache(const LiveCache&) = delete;
  LiveCache& operator=(const LiveCache&) = delete;

  // Watches the kind (once) and waits until its first list arrived. Throws kube::Error for a
  // kind the cluster does not serve, or when the list does not come within `timeout`.
  void ensure(const std::string& api_version, const std::string& kind,
              std::chrono::milliseconds timeout = std::chrono::seconds(30));
  bool watching(const std::string& api_version, const std::string& kind) const;

  std::optional<nlohmann::json> get(const ResourceKey& key) const;
  std::vector<nlohmann::json> tracked(const std::string& app) const;
  // Records what a write returned, unless the cache already holds a newer version.
  void put(const nlohmann::json& object);
  void erase(const ResourceKey& key);
  void stop();

private:
  struct KindWatch {
    std::unique_ptr<kube::Watch> watch;
    bool synced = false;
  };
  void store(const nlohmann::json& object, std::set<std::string>& changed);
  void remove(const ResourceKey& key, std::set<std::string>& changed);
  void notify(const std::set<std::string>& apps);

  kube::Client client_;
  ChangeFn on_change_;
  mutable std::mutex mutex_;
  std::condition_variable synced_cv_;
  std::map<std::string, std::shared_ptr<KindWatch>> watches_; // "apiVersion|kind"
  std::map<ResourceKey, nlohmann::json> objects_;
  std::map<std::string, std::set<ResourceKey>> by_app_;
  bool stopped_ = false;
};

} // namespace capstan::apps::detail
