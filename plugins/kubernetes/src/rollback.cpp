// K8sRollingRollback, K8sCanaryDelete, K8sBGSwapServices and K8sBlueGreenStageScaleDown: the
// steps that act on what an earlier step of the stage deployed, found through the release
// history in the cluster (so they work whichever delegate runs them).
#include <capstan/manifest/blue_green.h>
#include <capstan/manifest/workloads.h>

#include <set>

#include "errors.h"
#include "steps.h"

namespace capstan::plugins::kubernetes {

using manifest::Release;
using manifest::ReleaseHistory;
using manifest::ReleaseStatus;
using manifest::Resource;
using manifest::ResourceId;
using nlohmann::json;

namespace {

// The newest release this stage run made.
Release* this_runs_release(ReleaseHistory& h, const std::string& execution) {
  for (const auto& r : h.releases()) {
    if (r.execution == execution) return h.find(r.number);
  }
  return nullptr;
}

// Rolls Deployments back to a recorded revision the way `kubectl rollout undo` does, for
// releases recorded without their objects (histories written by other tools).
void undo_to_revisions(Step& step, const Release& previous) {
  for (const auto& w : previous.managed_workloads) {
    if (w.workload.kind != "Deployment" || w.revision.empty()) {
      throw invalid("release " + std::to_string(previous.number) + " has no stored objects, and " +
                    w.workload.key() + " cannot be rolled back by revision");
    }
    auto deployment = guarded([&] { return step.client.get(step.ref(w.workload)); });
    kube::ListOptions lo;
    lo.label_selector = kube::label_selector(deployment["spec"]["selector"]);
    auto sets = guarded(
        [&] { return step.client.list("apps/v1", "ReplicaSet", w.workload.namespace_, lo).items; });
    const json* match = nullptr;
    for (const auto& rs : sets) {
      json::json_pointer p("/metadata/annotations/deployment.kubernetes.io~1revision");
      if (rs.contains(p) && rs.at(p) == w.revision) match = &rs;
    }
    if (match == nullptr) {
      throw sdk::StepError(w.workload.key() + ": revision " + w.revision +
                           " is gone (past the Deployment's revisionHistoryLimit)");
    }
    json tmpl = (*match)["spec"]["template"];
    if (tmpl.contains("/metadata/labels"_json_pointer)) {
      tmpl["metadata"]["labels"].erase("pod-template-hash");
    }
    json patch = {{"spec", {{"template", tmpl}}}};
    guarded([&] {
      return step.client.patch(step.ref(w.workload), kube::PatchType::kStrategicMerge,
                               patch.dump());
    });
    step.ctx.info(w.workload.key() + " rolled back to revision " + w.revision);
  }
}

} // namespace

void rolling_rollback(Step& step) {
  bool pruning = spec_bool(step.ctx.spec(), "pruningEnabled");
  step.section("Rollback");
  ReleaseHistory history = step.releases.load();
  Release* current = this_runs_release(history, step.stage.execution_key);
  if (current == nullptr) {
    step.ctx.info("This stage deployed no release of " + step.stage.release_name +
                  "; nothing to roll back");
    return;
  }
  int current_number = current->number;
  const Release* previous = history.previous_rollback_eligible(current_number);
  if (previous == nullptr) {
    step.ctx.warn("No successful release of " + step.stage.release_name + " before release " +
                  std::to_string(current_number) + "; skipping rollback (the objects of release " +
                  std::to_string(current_number) + " stay as they are)");
    current->status = ReleaseStatus::Failed;
    step.releases.save(history);
    step.ctx.set_output("rollbackStatus", "Skipped");
    return;
  }
  int previous_number = previous->number;
  step.ctx.info("Rolling " + step.stage.release_name + " back from release " +
                std::to_string(current_number) + " to release " + std::to_string(previous_number));
  std::vector<kube::ObjectRef> wait;
  std::set<std::string> previous_keys;
  for (const auto& id : previous->resources) previous_keys.insert(id.key());
  auto objects = step.releases.load_manifests(previous_number);
  if (objects) {
    std::vector<Resource> resources;
    for (auto& o : *objects) {
      Resource r;
      r.object = std::move(o);
      r.file = "release " + std::to_string(previous_number);
      resources.push_back(std::move(r));
    }
    step.log_manifests(resources);
    step.before_changes(resources);
    step.applier.apply(resources);
    for (const auto& r : resources) step.ctx.info(r.kind() + "/" + r.name() + " restored");
    for (std::size_t i : manifest::managed_workloads(resources, manifest::Strategy::Rolling)) {
      wait.push_back(step.ref(resources[i]));
    }
  } else {
    std::vector<kube::ObjectRef> workloads;
    for (const auto& w : previous->managed_workloads) workloads.push_back(step.ref(w.workload));
    step.before_changes(workloads);
    undo_to_revisions(step, *previous);
    for (const auto& w : previous->managed_workloads) wait.push_back(step.ref(w.workload));
  }

  // What the failed release added: its canary always goes; other objects with pruning.
  std::vector<ResourceId> remove;
  if (current->canary_workload) remove.push_back(*current->canary_workload);
  if (pruning) {
    for (const auto& id : current->resources) {
      if (!id.versioned && previous_keys.count(id.key()) == 0) remove.push_back(id);
    }
  }
  if (!remove.empty()) {
    step.section("Delete what release " + std::to_string(current_number) + " added");
    step.applier.remove(remove);
  }
  step.wait_for_steady_state(wait);
  history.find(current_number)->status = ReleaseStatus::Failed;
  step.releases.save(history);
  step.ctx.info("Rolled back to release " + std::to_string(previous_number));
  step.ctx.set_output("rollbackStatus", "Succeeded");
  step.ctx.set_output("releaseNumber", std::to_string(previous_number));
}

void canary_delete(Step& step) {
  step.section("Delete canary workload");
  ReleaseHistory history = step.releases.load();
  const Release* rel = this_runs_release(history, step.stage.execution_key);
  if (rel == nullptr || !rel->canary_workload) {
    // Outside the run that deployed it (a re-run, a later stage): the newest canary recorded.
    rel = nullptr;
    for (const auto& r : history.releases()) {
      if (r.canary_workload) {
        rel = &r;
        break;
      }
    }
  }
  if (rel == nullptr) {
    step.ctx.info("No canary workload was deployed for " + step.stage.release_name +
                  "; nothing to delete");
    return;
  }
  step.applier.remove({*rel->canary_workload});
}

namespace {

// The blue-green release the swap and scale-down steps act on: this run's, else the newest.
const Release* blue_green_release(const ReleaseHistory& history, const std::string& execution) {
  for (const auto& r : history.releases()) {
    if (r.execution == execution && !r.primary_service.empty()) return &r;
  }
  for (const auto& r : history.releases()) {
    if (!r.primary_service.empty() && r.status == ReleaseStatus::Succeeded) return &r;
  }
  return nullptr;
}

void set_color(Step& step, const std::string& service, const std::string& color) {
  json patch = {{"spec", {{"selector", {{manifest::labels::kColor, color}}}}}};
  kube::WriteOptions o;
  o.field_manager = kFieldManager;
  guarded([&] {
    return step.client.patch({"v1", "Service", step.stage.namespace_, service},
                             kube::PatchType::kMerge, patch.dump(), o);
  });
}

} // namespace

void blue_green_swap(Step& step) {
  step.section(step.ctx.request().rollback() ? "Swap services back" : "Swap services");
  ReleaseHistory history = step.releases.load();
  const Release* rel = blue_green_release(history, step.stage.execution_key);
  if (rel == nullptr) {
    if (step.ctx.request().rollback()) {
      step.ctx.info("No blue-green release of " + step.stage.release_name +
                    "; nothing to swap back");
      return;
    }
    throw invalid("no blue-green release of " + step.stage.release_name +
                  " to swap: run K8sBlueGreenDeploy first");
  }
  auto primary = guarded([&] {
    return step.client.get({"v1", "Service", step.stage.namespace_, rel->primary_service});
  });
  auto stage = guarded([&] {
    return step.client.get({"v1", "Service", step.stage.namespace_, rel->stage_service});
  });
  std::string p = manifest::selector_color(primary);
  std::string s = manifest::selector_color(stage);
  if (step.ctx.request().rollback()) {
    // Undo a swap this run made: the primary routes to the colour this release deployed.
    bool swapped = rel->execution == step.stage.execution_key && p == rel->bg_environment &&
                   s != rel->bg_environment && !s.empty();
    if (swapped) {
      set_color(step, rel->primary_service, s);
      set_color(step, rel->stage_service, p);
      step.ctx.info("Service " + rel->primary_service + " routes to " + s + " again; " +
                    rel->stage_service + " to " + p);
    } else {
      step.ctx.info("Service " + rel->primary_service + " still routes to " + p +
                    "; nothing to swap back");
    }
    if (rel->execution == step.stage.execution_key) {
      history.find(rel->number)->status = ReleaseStatus::Failed;
      step.releases.save(history);
    }
    return;
  }
  if (p.empty() || s.empty()) {
    throw invalid("Service " + (p.empty() ? rel->primary_service : rel->stage_service) +
                  " selects no " + manifest::labels::kColor +
                  "; it was not deployed by "
                  "K8sBlueGreenDeploy");
  }
  if (p == s) {
    step.ctx.info("Both Services route to " + p + " (the first deployment); nothing to swap");
  } else {
    set_color(step, rel->primary_service, s);
    set_color(step, rel->stage_service, p);
    step.ctx.info("Service " + rel->primary_service + " now routes to " + s + "; " +
                  rel->stage_service + " to " + p);
  }
  step.ctx.set_output("primaryServiceName", rel->primary_service);
  step.ctx.set_output("stageServiceName", rel->stage_service);
  step.ctx.set_output("primaryColor", s);
  step.ctx.set_output("stageColor", p);
}

void blue_green_stage_scale_down(Step& step) {
  bool delete_resources = spec_bool(step.ctx.spec(), "deleteResources");
  step.section("Scale down the stage colour");
  ReleaseHistory history = step.releases.load();
  const Release* rel = blue_green_release(history, step.stage.execution_key);
  if (rel == nullptr || !rel->managed_workload) {
    step.ctx.info("No blue-green release of " + step.stage.release_name + "; nothing to do");
    return;
  }
  auto stage_svc = guarded([&] {
    return step.client.get({"v1", "Service", step.stage.namespace_, rel->stage_service});
  });
  auto primary_svc = guarded([&] {
    return step.client.get({"v1", "Service", step.stage.namespace_, rel->primary_service});
  });
  std::string stage_color = manifest::selector_color(stage_svc);
  std::string live_color = manifest::selector_color(primary_svc);
  if (stage_color.empty() || stage_color == live_color) {
    step.ctx.info("The stage Service routes to the live colour (" + live_color +
                  "); nothing to scale down");
    return;
  }
  ResourceId workload = *rel->managed_workload;
  const std::string& deployed = rel->bg_environment;
  std::string base = workload.name.substr(0, workload.name.size() - deployed.size() - 1);
  workload.name = base + "-" + stage_color;
  kube::ObjectRef ref = step.ref(workload);
  if (delete_resources) {
    step.applier.remove({workload});
    return;
  }
  bool exists = guarded([&] { return step.client.try_get(ref).has_value(); });
  if (!exists) {
    step.ctx.info(workload.key() + " does not exist; nothing to scale down");
    return;
  }
  guarded([&] { return step.client.scale(ref, 0); });
  step.ctx.info(workload.key() + " scaled down to 0 replicas");
}

} // namespace capstan::plugins::kubernetes
