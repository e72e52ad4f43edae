// ApplicationSets evaluated on the delegate, where Git is reachable: each set's git generators'
// repositories are polled cheaply (ls-remote); when one moved (or on a refresh) the set is
// rendered again and its generated Application documents are reported as its status, for the
// coordinator to create, update and delete the applications.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <capstan/apps/application_set.h>
#include <capstan/git/cache.h>
#include <capstan/sdk/plugin.h>

namespace capstan::plugins::gitops {

// The reconciler call's application name of an ApplicationSet: "applicationset/<name>"
// (application names cannot hold '/').
inline constexpr std::string_view kSetPrefix = "applicationset/";

struct SetFollowerOptions {
  std::filesystem::path work_dir; // the repository cache
  std::chrono::milliseconds poll_interval{3000};
};

class SetFollower {
public:
  explicit SetFollower(SetFollowerOptions options);
  ~SetFollower(); // stop()
  SetFollower(const SetFollower&) = delete;
  SetFollower& operator=(const SetFollower&) = delete;

  void start(sdk::ReconcilerHost host);
  void stop();

  // Follows the set under `key` from now on (or takes its new document): `document` is the
  // ApplicationSet, `clusters` the JSON {"clusters": [{"name", "server", "labels"}]} the
  // clusters generator offers, and optionally "source": {"file", "text"} (the document as
  // applied, so that errors name its file and line). Throws std::invalid_argument for a
  // document that is not one.
  void upsert(const std::string& key, const nlohmann::json& document,
              const nlohmann::json& clusters);
  void remove(const std::string& key);
  // Reads Git and renders again now.
  void refresh(const std::string& key);
  // The last status reported for it; throws std::invalid_argument when it is not followed here.
  nlohmann::json status(const std::string& key) const;

private:
  struct Entry {
    apps::ApplicationSet set;
    std::vector<apps::GeneratorCluster> clusters;
    std::map<std::string, std::string> revisions; // "repo@revision" -> commit last rendered
    bool force = true;
    std::uint64_t generation = 0; // grows with every upsert: a render of an older one is dropped
    nlohmann::json status = nlohmann::json::object();
  };
  void loop();
  // Evaluates one set (outside the lock); returns the status to report.
  nlohmann::json evaluate(const std::string& key, const Entry& entry, bool force,
                          std::map<std::string, std::string>& revisions);

  SetFollowerOptions options_;
  git::RepoCache cache_;
  sdk::ReconcilerHost host_;
  mutable std::mutex mutex_; // guards entries_, stopping_, wake_
  std::condition_variable cv_;
  std::map<std::string, Entry> entries_;
  bool stopping_ = false;
  bool started_ = false;
  bool wake_ = false;
  std::thread thread_;
};

} // namespace capstan::plugins::gitops
