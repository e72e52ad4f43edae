// The gitops plugin's reconciler hooks: one capstan::apps::Reconciler per destination cluster,
// holding the applications the delegate was assigned on that cluster, and the ApplicationSets
// it was assigned (named "applicationset/<name>"), followed by a SetFollower.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <capstan/apps/reconciler.h>
#include <capstan/sdk/plugin.h>

#include "set_follower.h"

namespace capstan::plugins::gitops {

struct AppHostOptions {
  std::filesystem::path work_root; // one folder per cluster below it
  std::chrono::milliseconds poll_interval{3000};
};

class AppHost {
public:
  explicit AppHost(AppHostOptions options);
  ~AppHost(); // stop()

  void start(sdk::ReconcilerHost host);
  // Serves one ReconcilerCall; returns its result JSON, throws std::exception on failure.
  std::string call(const plugin::v1::ReconcilerCall& call);
  // Stops every cluster's reconciler (joins their threads).
  void stop();

private:
  struct Cluster {
    std::string identifier;
    std::string config; // the cluster JSON it was built from: a change rebuilds it
    std::unique_ptr<apps::Reconciler> reconciler;
    std::map<std::string, apps::Application> apps; // what it reconciles
  };
  std::string upsert(const plugin::v1::ReconcilerCall& call);
  std::string call_set(const plugin::v1::ReconcilerCall& call);
  std::string remove(const std::string& app, bool delete_resources);
  std::shared_ptr<Cluster> cluster_of(const std::string& app);
  // Takes an application off its cluster; returns the cluster when it became empty (to be
  // stopped outside the lock).
  std::shared_ptr<Cluster> detach_locked(const std::string& app);

  AppHostOptions options_;
  SetFollower sets_;
  sdk::ReconcilerHost host_;
  std::mutex mutex_;                                         // guards the maps and stopped_
  std::map<std::string, std::shared_ptr<Cluster>> clusters_; // by cluster identifier
  std::map<std::string, std::string> app_cluster_;           // application -> cluster id
  bool started_ = false;
};

} // namespace capstan::plugins::gitops
