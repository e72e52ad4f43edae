// What every Kubernetes step works with: its stage, a client for the stage's cluster that
// honours cancellation, the applier and the release store, and the shared steps of a
// deployment (render, wait for steady state, sections in the log).
#pragma once

#include <capstan/git/cache.h>
#include <capstan/kube/client.h>
#include <capstan/kube/wait.h>
#include <capstan/sdk/plugin.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "applier.h"
#include "context.h"
#include "manifests.h"
#include "releases.h"
#include "stores.h"

namespace capstan::plugins::kubernetes {

// Settings from the delegate's plugin configuration (`plugins: {kubernetes: {...}}`).
struct PluginSettings {
  kube::ClientOptions client;
  int apply_concurrency = 8;
  std::chrono::milliseconds default_timeout{std::chrono::minutes(10)};
};

// One client per cluster and credentials, kept across steps so connections stay open.
class ClientPool {
public:
  explicit ClientPool(kube::ClientOptions options) : options_(std::move(options)) {}
  kube::Client get(const StageContext& stage);

private:
  kube::ClientOptions options_;
  std::mutex mutex_;
  std::map<std::string, kube::Client> clients_;
};

class Step {
public:
  Step(const sdk::StepContext& ctx, ClientPool& clients, git::RepoCache& repos,
       const PluginSettings& settings);

  const sdk::StepContext& ctx;
  StageContext stage;
  kube::Client client;
  Applier applier;
  ReleaseStore releases;
  StoreFetcher fetcher;
  std::chrono::system_clock::time_point started;

  void section(const std::string& title) const;
  Rendered render(const RenderSpec& spec = {});
  // Logs the objects about to be applied (Secret values hidden), at most ~256 KiB of them.
  void log_manifests(const std::vector<manifest::Resource>& resources) const;

  // Called before the step changes these objects: records the events of their namespaces, so
  // the wait shows only the events of this rollout. Events are a courtesy: when they cannot be
  // listed, the wait falls back to the step's start time.
  void before_changes(const std::vector<kube::ObjectRef>& objects);
  void before_changes(const std::vector<manifest::Resource>& resources);

  // Waits for the workloads; throws StepError with the pods' reasons, after logging them:
  // Timeout when the step's time ran out or the workload's own deadline passed
  // (progressDeadlineSeconds, a Job's activeDeadlineSeconds), as failure strategies match a
  // steady state not reached in time; Unknown for other failed rollouts (a Job that failed).
  void wait_for_steady_state(const std::vector<kube::ObjectRef>& workloads) const;
  // The reference of a rendered object, of a recorded one.
  kube::ObjectRef ref(const manifest::Resource& r) const;
  kube::ObjectRef ref(const manifest::ResourceId& id);

  // The time left for the step, less a margin to report a timeout before the host cancels.
  std::optional<std::chrono::steady_clock::time_point> deadline() const;

private:
  const PluginSettings& settings_;
  std::shared_ptr<kube::EventBaseline> events_before_;
};

// A number from the spec: an integer, or a string holding one (expressions resolve to text).
int spec_int(const nlohmann::json& v, const std::string& field);
bool spec_bool(const nlohmann::json& spec, const char* key, bool fallback = false);

} // namespace capstan::plugins::kubernetes
