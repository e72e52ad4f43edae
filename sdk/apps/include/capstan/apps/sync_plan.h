// The order of a sync, as Argo CD runs it: phases (PreSync, Sync, PostSync; SyncFail when the
// sync fails), waves within a phase (argocd.argoproj.io/sync-wave), then kinds (namespaces and
// CRDs first, workloads last, custom resources after every built-in kind), then names.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "capstan/apps/diff.h"
#include "capstan/apps/render.h"
#include "capstan/apps/resources.h"

namespace capstan::apps {

enum class SyncPhase { kPreSync, kSync, kPostSync, kSyncFail };
std::string_view to_string(SyncPhase phase);

enum class TaskAction {
  kApply, // server-side apply of the desired object
  kPrune, // delete a tracked live object that left Git
};

struct SyncTask {
  SyncPhase phase = SyncPhase::kSync;
  int wave = 0;
  TaskAction action = TaskAction::kApply;
  nlohmann::json object; // the object to apply, or the live object to prune
  ResourceKey key;
  bool hook = false;
  // Hook deletion policies: BeforeHookCreation (the default), HookSucceeded, HookFailed.
  std::vector<std::string> delete_policies;
  std::string where; // where the desired object came from
  bool has_delete_policy(std::string_view policy) const;
};

struct SyncPlan {
  std::vector<SyncTask> tasks;     // PreSync, Sync, PostSync, in order
  std::vector<SyncTask> sync_fail; // run only when the sync fails
  // Consecutive tasks sharing phase and wave: each step runs once the previous one is done
  // (applied, and healthy when it has health).
  std::vector<std::vector<const SyncTask*>> steps() const;
};

struct PlanOptions {
  bool prune = false;                  // delete tracked objects gone from Git
  bool prune_last = false;             // ... after every other task, in a wave of their own
  bool apply_out_of_sync_only = false; // skip objects already Synced
  std::string revision;                // names generated hooks (generateName)
};

// Plans a sync of prepared desired objects against their comparison. Hooks with generateName
// get "<generateName><revision[:7]>-<phase>" as their name; "Skip" objects are left out. A
// sync-wave annotation that is not an integer is a ComparisonError naming the object.
SyncPlan plan_sync(const std::vector<DesiredObject>& desired, const Comparison& comparison,
                   const std::vector<nlohmann::json>& live, const PlanOptions& options);

// Argo CD's position of a kind in a sync (lower first); kinds it does not know come last.
int sync_kind_order(std::string_view kind);

} // namespace capstan::apps
