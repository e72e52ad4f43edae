// Sync ordering: phases, waves, kinds, names; namespaces and CRDs moved before their users.
#include "capstan/apps/sync_plan.h"

#include <algorithm>
#include <cctype>
#include <map>

namespace capstan::apps {

using nlohmann::json;

std::string_view to_string(SyncPhase phase) {
  switch (phase) {
  case SyncPhase::kPreSync:
    return "PreSync";
  case SyncPhase::kSync:
    return "Sync";
  case SyncPhase::kPostSync:
    return "PostSync";
  case SyncPhase::kSyncFail:
    return "SyncFail";
  }
  return "Sync";
}

bool SyncTask::has_delete_policy(std::string_view policy) const {
  return std::find(delete_policies.begin(), delete_policies.end(), policy) != delete_policies.end();
}

int sync_kind_order(std::string_view kind) {
  static const char* const kKinds[] = {"Namespace",
                                       "NetworkPolicy",
                                       "ResourceQuota",
                                       "LimitRange",
                                       "PodSecurityPolicy",
                                       "PodDisruptionBudget",
                                       "ServiceAccount",
                                       "Secret",
                                       "SecretList",
                                       "ConfigMap",
                                       "StorageClass",
                                       "PersistentVolume",
                                       "PersistentVolumeClaim",
                                       "CustomResourceDefinition",
                                       "ClusterRole",
                                       "ClusterRoleList",
                                       "ClusterRoleBinding",
                                       "ClusterRoleBindingList",
                                       "Role",
                                       "RoleList",
                                       "RoleBinding",
                                       "RoleBindingList",
                                       "Service",
                                       "DaemonSet",
                                       "Pod",
                                       "ReplicationController",
                                       "ReplicaSet",
                                       "Deployment",
                                       "HorizontalPodAutoscaler",
                                       "StatefulSet",
                                       "Job",
                                       "CronJob",
                                       "IngressClass",
                                       "Ingress",
                                       "APIService"};
  for (std::size_t i = 0; i < std::size(kKinds); ++i) {
    if (kind == kKinds[i]) return static_cast<int>(i);
  }
  return static_cast<int>(std::size(kKinds));
}

std::vector<std::vector<const SyncTask*>> SyncPlan::steps() const {
  std::vector<std::vector<const SyncTask*>> out;
  for (const auto& t : tasks) {
    if (out.empty() || out.back().front()->phase != t.phase || out.back().front()->wave != t.wave) {
      out.emplace_back();
    }
    out.back().push_back(&t);
  }
  return out;
}

namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    std::string item = text.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    auto last = item.find_last_not_of(" \t");
    item.erase(last == std::string::npos ? 0 : last + 1);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

int wave_of(const json& object, const std::string& where) {
  std::string text = annotation(object, kSyncWaveAnnotation);
  if (text.empty()) return 0;
  try {
    std::size_t used = 0;
    int wave = std::stoi(text, &used);
    if (used == text.size()) return wave;
  } catch (const std::exception&) {
  }
  throw ComparisonError(where + ": annotation " + std::string(kSyncWaveAnnotation) + " '" + text +
                        "' is not an integer");
}

bool less(const SyncTask& a, const SyncTask& b) {
  if (a.phase != b.phase) return a.phase < b.phase;
  if (a.wave != b.wave) return a.wave < b.wave;
  int ka = sync_kind_order(a.key.kind);
  int kb = sync_kind_order(b.key.kind);
  if (ka != kb) return ka < kb;
  return a.key.name < b.key.name;
}

// Moves each dependency (a namespace, a CRD) before the first task that needs it, into that
// task's phase and wave, as Argo CD does.
template <typename IsDep, typename UsesDep>
void adjust_deps(std::vector<SyncTask>& tasks, IsDep is_dep, UsesDep uses_dep) {
  std::map<std::string, std::size_t> first_user;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].action != TaskAction::kApply) continue;
    if (auto dep = is_dep(tasks[i].object); !dep.empty()) {
      auto it = first_user.find(dep);
      if (it == first_user.end()) continue;
      std::size_t index = it->second;
      SyncTask moved = tasks[i];
      moved.wave = tasks[index].wave;
      moved.phase = tasks[index].phase;
      for (std::size_t j = i; j > index; --j) tasks[j] = std::move(tasks[j - 1]);
      tasks[index] = std::move(moved);
      for (auto& [_, first] : first_user) {
        if (first >= index) ++first;
      }
    } else if (auto used = uses_dep(tasks[i].object); !used.empty()) {
      first_user.emplace(used, i);
    }
  }
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

} // namespace

SyncPlan plan_sync(const std::vector<DesiredObject>& desired, const Comparison& comparison,
                   const std::vector<json>& live, const PlanOptions& options) {
  SyncPlan plan;
  std::vector<SyncTask> tasks;
  for (const auto& d : desired) {
    std::string hook = annotation(d.object, kHookAnnotation);
    auto phases = split_list(hook);
    bool skip = std::find(phases.begin(), phases.end(), "Skip") != phases.end();
    if (skip) continue;
    int wave = wave_of(d.object, d.where());
    if (phases.empty()) {
      SyncTask t;
      t.phase = SyncPhase::kSync;
      t.wave = wave;
      t.object = d.object;
      t.key = ResourceKey::of(d.object);
      t.where = d.where();
      if (options.apply_out_of_sync_only) {
        const ResourceStatus* s = comparison.find(t.key);
        if (s && s->status == SyncStatus::kSynced) continue;
      }
      tasks.push_back(std::move(t));
      continue;
    }
    auto policies = split_list(annotation(d.object, kHookDeletePolicyAnnotation));
    if (policies.empty()) policies.push_back("BeforeHookCreation");
    for (const auto& phase_name : phases) {
      SyncTask t;
      if (phase_name == "PreSync")
        t.phase = SyncPhase::kPreSync;
      else if (phase_name == "Sync")
        t.phase = SyncPhase::kSync;
      else if (phase_name == "PostSync")
        t.phase = SyncPhase::kPostSync;
      else if (phase_name == "SyncFail")
        t.phase = SyncPhase::kSyncFail;
      else
        throw ComparisonError(d.where() + ": annotation " + std::string(kHookAnnotation) + " '" +
                              hook + "' names an unknown phase '" + phase_name +
                              "' (PreSync, Sync, PostSync, SyncFail, Skip)");
      t.wave = wave;
      t.hook = true;
      t.object = d.object;
      t.delete_policies = policies;
      t.where = d.where();
      json& meta = t.object["metadata"];
      if (meta.value("name", "").empty()) {
        std::string rev =
            options.revision.substr(0, std::min<std::size_t>(7, options.revision.size()));
        meta["name"] = meta.value("generateName", "") + (rev.empty() ? "" : rev + "-") +
                       lower(std::string(to_string(t.phase)));
        meta.erase("generateName");
      }
      t.key = ResourceKey::of(t.object);
      auto& annotations = meta["annotations"];
      annotations.erase(kTrackingAnnotation);
      (t.phase == SyncPhase::kSyncFail ? plan.sync_fail : tasks).push_back(std::move(t));
    }
  }
  std::stable_sort(tasks.begin(), tasks.end(), less);
  adjust_deps(
      tasks,
      [](const json& o) -> std::string {
        return o.value("kind", "") == "Namespace" && api_group(o.value("apiVersion", "")).empty()
                   ? o["metadata"].value("name", "")
                   : "";
      },
      [](const json& o) -> std::string { return o["metadata"].value("namespace", ""); });
  adjust_deps(
      tasks,
      [](const json& o) -> std::string {
        if (o.value("kind", "") != "CustomResourceDefinition") return "";
        const json spec = o.value("spec", json::object());
        std::string group = spec.value("group", "");
        std::string kind = spec.value("names", json::object()).value("kind", "");
        return group.empty() || kind.empty() ? "" : group + "/" + kind;
      },
      [](const json& o) -> std::string {
        return api_group(o.value("apiVersion", "")) + "/" + o.value("kind", "");
      });

  if (options.prune) {
    int last_wave = tasks.empty() ? 0 : tasks.back().wave;
    for (const auto& r : comparison.resources) {
      if (!r.requires_pruning) continue;
      auto it = std::find_if(live.begin(), live.end(),
                             [&](const json& l) { return ResourceKey::of(l) == r.key; });
      if (it == live.end()) continue;
      if (annotation(*it, kSyncOptionsAnnotation).find("Prune=false") != std::string::npos)
        continue;
      SyncTask t;
      t.action = TaskAction::kPrune;
      t.phase = SyncPhase::kSync;
      t.key = r.key;
      t.object = *it;
      t.where = "live " + r.key.kind + " " + r.key.name;
      try {
        bool last =
            options.prune_last ||
            annotation(*it, kSyncOptionsAnnotation).find("PruneLast=true") != std::string::npos;
        t.wave = last ? last_wave + 1 : wave_of(*it, t.where);
      } catch (const ComparisonError&) {
        t.wave = 0;
      }
      tasks.push_back(std::move(t));
    }
    // Prunes go after the applies of their wave (so a PruneLast wave is really last), in the
    // reverse kind order: workloads before the namespaces they run in.
    std::stable_sort(tasks.begin(), tasks.end(), [](const SyncTask& a, const SyncTask& b) {
      if (a.phase != b.phase) return a.phase < b.phase;
      if (a.wave != b.wave) return a.wave < b.wave;
      if (a.action != b.action) return a.action < b.action;
      if (a.action == TaskAction::kPrune) {
        int ka = sync_kind_order(a.key.kind);
        int kb = sync_kind_order(b.key.kind);
        if (ka != kb) return ka > kb;
        return a.key.name < b.key.name;
      }
      return false; // applies keep the order the dependency adjustment gave them
    });
  }
  std::stable_sort(plan.sync_fail.begin(), plan.sync_fail.end(), less);
  plan.tasks = std::move(tasks);
  return plan;
}

} // namespace capstan::apps
