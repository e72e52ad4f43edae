// The simulated control plane: Deployment, ReplicaSet, StatefulSet, DaemonSet and Job
// controllers, a kubelet that runs pods on simulated nodes, garbage collection and namespace
// deletion. One worker thread drains a queue of keys fed by store changes and timers.
#pragma once

#include "capstan/sandbox/cluster.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace capstan::sandbox {

class Controllers {
public:
  explicit Controllers(Cluster& cluster);
  ~Controllers();
  void start();
  void stop();

  // Queue keys: "<Kind>\x1f<namespace>\x1f<name>" (and "gc\x1f<uid>" for dependents of a
  // deleted owner).
  void enqueue(const std::string& key);
  void enqueue_after(const std::string& key, std::chrono::milliseconds delay);

private:
  void on_change(const Change& change);
  void run();
  void reconcile(const std::string& key);

  Cluster& cluster_;
  std::mutex mu_; // queue_, timers_, stopping_
  std::condition_variable cv_;
  std::set<std::string> queue_;
  std::multimap<std::chrono::steady_clock::time_point, std::string> timers_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace capstan::sandbox
