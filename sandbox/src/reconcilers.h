// The controllers' reconcile functions, run on the controller thread.
#pragma once

#include "capstan/sandbox/cluster.h"

#include <map>
#include <random>
#include <string>
#include <vector>

namespace capstan::sandbox {

class Controllers;

// The queue keys a committed change should wake (called under the store's write lock).
std::vector<std::string> keys_for_change(const Change& change);

class Reconcilers {
public:
  Reconcilers(Cluster& cluster, Controllers& queue);
  void reconcile(const std::string& key);

private:
  void bootstrap();
  void deployment(const std::string& ns, const std::string& name);
  void replica_set(const std::string& ns, const std::string& name);
  void stateful_set(const std::string& ns, const std::string& name);
  void daemon_set(const std::string& ns, const std::string& name);
  void job(const std::string& ns, const std::string& name);
  void pod(const std::string& ns, const std::string& name);
  void namespace_(const std::string& name);
  void collect_garbage(const std::string& owner_uid);
  void finalize(const std::string& resource, const std::string& ns, const std::string& name);

  // Helpers shared by the workload controllers.
  std::vector<nlohmann::json> owned(const std::string& resource, const std::string& ns,
                                    const std::string& owner_uid) const;
  nlohmann::json new_pod(const nlohmann::json& owner, const nlohmann::json& tmpl,
                         const std::string& name, const std::string& generate_name) const;
  void create_pod(const nlohmann::json& owner, nlohmann::json pod, const std::string& component);
  void delete_object(const ResourceType& t, const nlohmann::json& object,
                     const std::string& propagation = "Background");
  std::chrono::milliseconds ready_delay();

  struct PodSim {
    int restarts = 0;
    std::chrono::steady_clock::time_point next; // when the next transition is due
    int stage = 0;                              // 0 scheduled, 1 started/failed once, ...
  };

  Cluster& cluster_;
  Controllers& queue_;
  ResourceType pods_, replicasets_, deployments_, statefulsets_, daemonsets_, jobs_, nodes_,
      namespaces_, serviceaccounts_;
  std::map<std::string, PodSim> sims_; // by pod uid
  std::mt19937 rng_;
  unsigned next_pod_ip_ = 10;
};

} // namespace capstan::sandbox
