// The GitOps agent loop for one cluster: polls the applications' Git remotes cheaply, renders a
// new revision when one appears, compares it with the live objects (kept current by watches),
// syncs in Argo CD's order with server-side apply, prunes, heals drift at once when selfHeal is
// on, and reports each application's status.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <capstan/git/remote.h>
#include <capstan/kube/client.h>
#include <capstan/kube/health.h>

#include "capstan/apps/application.h"
#include "capstan/apps/diff.h"
#include "capstan/apps/history.h"
#include "capstan/apps/render.h"

namespace capstan::apps {

// A problem the application has now. Types follow Argo CD: ComparisonError (the source cannot
// be read or rendered), InvalidSpecError (the application cannot be reconciled as written),
// SyncError (the last sync failed).
struct Condition {
  std::string type;
  std::string message;
  std::string last_transition_time; // RFC 3339
};

// The commit a target revision (a commit, branch, tag, full ref name or HEAD) names among a
// remote's refs (as git::ls_remote lists them); nullopt when none.
std::optional<std::string> resolve_ref(const std::vector<git::RemoteRef>& refs,
                                       const std::string& target);

struct ApplicationStatus {
  std::string name;
  SyncStatus sync = SyncStatus::kUnknown;
  kube::HealthStatus health = kube::HealthStatus::kUnknown;
  std::string health_message;
  std::string revision;        // the commit the comparison was made against
  std::string synced_revision; // the commit of the last successful sync
  std::vector<Condition> conditions;
  std::vector<ResourceStatus> resources;
  std::optional<OperationRecord> last_operation;
  std::vector<OperationRecord> history;
  std::string reconciled_at; // RFC 3339
  bool has_condition(const std::string& type) const;
  nlohmann::json to_json() const;
};

struct SyncRequest {
  std::optional<bool> prune; // default: the application's automated.prune
  bool dry_run = false;      // send every write with dryRun=All; nothing changes
  bool apply_only = false;   // skip hooks
  bool force = false;        // Replace: delete and re-create objects the server refuses to update
  std::string revision;      // a commit, branch or tag; default: the target revision
  // Argo CD sync options ("Name=value") set for this sync over the application's own.
  std::vector<std::string> sync_options;
  std::string initiated_by = "user";
};

struct ReconcilerOptions {
  std::filesystem::path work_dir; // repository cache and rendered trees
  std::chrono::milliseconds poll_interval{3000};
  int workers = 4;
  // The names this cluster answers to in spec.destination.name (server must be the client's
  // server URL or https://kubernetes.default.svc).
  std::vector<std::string> cluster_names = {"in-cluster"};
  // Credentials of a repository (default: the URL alone).
  std::function<git::RemoteOptions(const std::string& repo_url)> remote;
  // Called (from worker threads, one at a time) whenever an application's status changes.
  std::function<void(const ApplicationStatus&)> on_status;
  // Progress lines: "app: message".
  std::function<void(const std::string& app, const std::string& line)> log;
  // How long one sync wave may take to become healthy (hooks to finish) before the sync fails.
  std::chrono::milliseconds wave_timeout{std::chrono::minutes(5)};
  // Least time between two self-heal syncs of one application (a field the server keeps
  // rewriting must not turn into a tight loop).
  std::chrono::milliseconds self_heal_backoff{1000};
  RenderOptions render;
};

class Reconciler {
public:
  Reconciler(kube::Client client, ReconcilerOptions options);
  ~Reconciler(); // stop()
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Starts the poller and the workers. Applications added before or after are reconciled.
  void start();
  // Stops every thread and watch; no callback runs after it returns.
  void stop();

  // Adds an application or replaces its spec (reconciled at once).
  void upsert(const Application& app);
  // Stops reconciling it; its resources stay in the cluster.
  void remove(const std::string& name);
  // Stops reconciling it and deletes every live object it tracks from the cluster (Argo CD's
  // cascading deletion, asked for by kResourcesFinalizer). Returns how many were deleted;
  // throws kube::Error when a delete fails (what was not deleted yet stays).
  std::size_t remove_deleting_resources(const std::string& name);
  std::vector<std::string> names() const;

  // Reads Git and compares again now, without waiting for the next poll.
  void refresh(const std::string& name);
  // A sync now, whatever the sync policy; returns when it is done (or failed).
  OperationRecord sync(const std::string& name, const SyncRequest& request);
  // Argo CD's terminate-op: a sync of the application running (or waiting to run) stops before
  // its next object or wave, and ends Failed with "operation terminated". False when none runs
  // (the last operation, if any, has ended: status().last_operation says how).
  bool terminate(const std::string& name);
  // Re-applies the revision of a history entry (a sync at that commit; automated sync should be
  // off, or the next poll brings the target back).
  OperationRecord rollback(const std::string& name, std::int64_t history_id);

  std::optional<ApplicationStatus> status(const std::string& name) const;
  std::vector<ApplicationStatus> statuses() const;

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace capstan::apps
