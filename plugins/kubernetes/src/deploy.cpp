// K8sRollingDeploy, K8sCanaryDeploy and K8sBlueGreenDeploy: a release recorded in the cluster,
// versioned ConfigMaps and Secrets, a dry run, server-side apply, steady state, pruning.
#include <capstan/manifest/blue_green.h>
#include <capstan/manifest/canary.h>
#include <capstan/manifest/versioning.h>
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

constexpr const char* kSkipPruning = "harness.io/skipPruning";

// The history as found, and with the release this step works on.
struct Releases {
  ReleaseHistory before;
  ReleaseHistory history;
  int number = 0;
  bool reused = false; // a canary release of this run continued by its primary phase
  Release& release() { return *history.find(number); }
};

// Starts release N+1, or continues this run's canary release.
Releases start_release(Step& step, bool continue_canary) {
  Releases r;
  r.before = step.releases.load();
  r.history = r.before;
  Release* latest = r.history.latest();
  if (continue_canary && latest != nullptr && latest->status == ReleaseStatus::InProgress &&
      latest->canary_workload && latest->execution == step.stage.execution_key) {
    r.number = latest->number;
    r.reused = true;
    step.ctx.info("Continuing release " + std::to_string(r.number) + " of " +
                  step.stage.release_name + " (its canary phase ran earlier in this stage)");
    return r;
  }
  // Numbers keep increasing: the new release is numbered before failed releases and those
  // older than the last success are dropped.
  r.history.create_release({});
  r.history.cleanup();
  Release& rel = *r.history.latest();
  rel.execution = step.stage.execution_key;
  r.number = rel.number;
  step.ctx.info("Release " + std::to_string(r.number) + " of " + step.stage.release_name +
                " in namespace " + step.stage.namespace_);
  return r;
}

// Pull secret and ConfigMap/Secret versioning, as every deployment does them.
void prepare_objects(Step& step, std::vector<Resource>& resources, bool skip_versioning,
                     int number) {
  if (step.stage.artifact && manifest::inject_image_pull_secret(
                                 resources, *step.stage.artifact,
                                 step.stage.release_name + "-dockercfg", step.stage.namespace_)) {
    step.ctx.info("Added image pull secret " + step.stage.release_name + "-dockercfg for " +
                  step.stage.artifact->registry);
  }
  if (skip_versioning) return;
  for (const auto& r : manifest::apply_versioning(resources, number)) {
    step.ctx.info("Versioned " + r.from.kind + " " + r.from.name + " as " + r.to);
  }
}

std::vector<ResourceId> ids_of(const std::vector<Resource>& resources) {
  std::vector<ResourceId> out;
  for (const auto& r : resources) out.push_back(r.id());
  return out;
}

void save_failed(Step& step, Releases& r) {
  try {
    r.release().status = ReleaseStatus::Failed;
    step.releases.save(r.history, true);
  } catch (const std::exception& e) {
    step.ctx.warn(std::string("could not record release ") + std::to_string(r.number) +
                  " as failed: " + e.what());
  }
}

// Runs `body`; a failure or cancellation marks the release Failed before it goes on.
template <class F> void recording_failure(Step& step, Releases& r, F&& body) {
  try {
    body();
  } catch (const sdk::StepError&) {
    save_failed(step, r);
    throw;
  } catch (const sdk::Cancelled&) {
    save_failed(step, r);
    throw;
  }
}

// Dry run, record, apply: the release is saved InProgress (with its objects, for a rollback)
// before anything changes.
std::vector<json> dry_run_record_apply(Step& step, Releases& r,
                                       const std::vector<Resource>& resources, bool skip_dry_run) {
  step.log_manifests(resources);
  if (!skip_dry_run) {
    step.section("Dry run");
    step.applier.dry_run(resources);
    step.ctx.info("The server accepted all " + std::to_string(resources.size()) + " objects");
  }
  step.section("Apply");
  step.releases.save_manifests(r.number, resources);
  step.releases.save(r.history);
  step.before_changes(resources);
  auto live = step.applier.apply(resources);
  for (const auto& res : resources) step.ctx.info(res.kind() + "/" + res.name() + " applied");
  return live;
}

std::string revision_of(const json& live) {
  json::json_pointer p("/metadata/annotations/deployment.kubernetes.io~1revision");
  return live.contains(p) && live.at(p).is_string() ? live.at(p).get<std::string>() : "";
}

// Deletes what the previous successful release had and this one does not.
void prune(Step& step, const ReleaseHistory& history, int number,
           const std::vector<Resource>& current, const std::set<std::string>& also_keep) {
  const Release* previous = history.previous_rollback_eligible(number);
  if (previous == nullptr) {
    step.ctx.info("Pruning: no previous successful release to compare with");
    return;
  }
  std::set<std::string> keep = also_keep;
  for (const auto& r : current) keep.insert(r.id().key());
  std::vector<ResourceId> gone;
  for (const auto& id : previous->resources) {
    if (id.versioned || keep.count(id.key()) > 0) continue;
    // harness.io/skipPruning: "true" on the live object keeps it.
    try {
      auto live = step.client.try_get(step.ref(id));
      if (!live) continue;
      json::json_pointer ann("/metadata/annotations");
      if (live->contains(ann) && (*live).at(ann).value(kSkipPruning, "") == "true") {
        step.ctx.info("Pruning: keeping " + id.key() + " (" + kSkipPruning + ")");
        continue;
      }
    } catch (const sdk::StepError& e) {
      step.ctx.warn("Pruning: skipping " + id.key() + ": " + e.what());
      continue;
    }
    gone.push_back(id);
  }
  step.section("Prune");
  if (gone.empty()) {
    step.ctx.info("Nothing to prune");
    return;
  }
  step.applier.remove(gone);
}

void finish(Step& step, Releases& r, const std::vector<Resource>& resources,
            const std::vector<json>& live, const std::vector<std::size_t>& managed, bool pruning,
            const std::set<std::string>& keep = {}) {
  Release& rel = r.release();
  rel.managed_workloads.clear();
  for (std::size_t i : managed) {
    std::string revision;
    if (resources[i].kind() == "Deployment") {
      auto now = guarded([&] { return step.client.try_get(step.ref(resources[i])); });
      revision = revision_of(now.value_or(live[i]));
    }
    rel.managed_workloads.push_back({resources[i].id(), revision});
  }
  if (!rel.managed_workloads.empty()) {
    rel.managed_workload = rel.managed_workloads.front().workload;
    rel.managed_workload_revision = rel.managed_workloads.front().revision;
  }
  rel.status = ReleaseStatus::Succeeded;
  if (pruning) prune(step, r.history, r.number, resources, keep);
  step.section("Wrap up");
  ReleaseHistory saved = r.history;
  step.releases.save(saved);
  step.releases.collect_garbage(r.before, saved);
  step.ctx.info("Release " + std::to_string(r.number) + " of " + step.stage.release_name +
                " succeeded");
}

std::vector<kube::ObjectRef> refs(Step& step, const std::vector<Resource>& resources,
                                  const std::vector<std::size_t>& idx) {
  std::vector<kube::ObjectRef> out;
  for (std::size_t i : idx) out.push_back(step.ref(resources[i]));
  return out;
}

} // namespace

void rolling_deploy(Step& step) {
  const json& spec = step.ctx.spec();
  bool skip_dry_run = spec_bool(spec, "skipDryRun");
  bool pruning = spec_bool(spec, "pruningEnabled");
  Rendered rendered = step.render();
  auto& resources = rendered.resources;

  Releases r = start_release(step, true);
  prepare_objects(step, resources, rendered.skip_versioning, r.number);
  manifest::label_release(resources, manifest::Strategy::Rolling, step.stage.release_name);
  auto managed = manifest::managed_workloads(resources, manifest::Strategy::Rolling);
  if (r.reused) {
    // The primary phase of a canary: its pods are the stable track. A selector cannot change
    // once a Deployment exists, so it gets the label when the workload is new, and keeps it
    // when an earlier canary release put it there.
    for (std::size_t i : managed) {
      auto live = guarded([&] { return step.client.try_get(step.ref(resources[i])); });
      json::json_pointer track("/spec/selector/matchLabels/harness.io~1track");
      manifest::mark_stable(resources[i], !live || live->contains(track));
    }
  }
  Release& rel = r.release();
  auto canary = rel.canary_workload;
  rel.resources = ids_of(resources);
  rel.status = ReleaseStatus::InProgress;

  std::vector<json> live;
  recording_failure(step, r, [&] {
    live = dry_run_record_apply(step, r, resources, skip_dry_run);
    step.wait_for_steady_state(refs(step, resources, managed));
  });
  finish(step, r, resources, live, managed, pruning);
  step.ctx.set_output("releaseName", step.stage.release_name);
  step.ctx.set_output("releaseNumber", std::to_string(r.number));
}

void canary_deploy(Step& step) {
  const json& spec = step.ctx.spec();
  bool skip_dry_run = spec_bool(spec, "skipDryRun");
  const json sel = spec.value("instanceSelection", json::object());
  std::string type = sel.value("type", "Count");
  const json sspec = sel.value("spec", json::object());
  manifest::InstanceUnit unit =
      type == "Percentage" ? manifest::InstanceUnit::Percentage : manifest::InstanceUnit::Count;
  int instances =
      unit == manifest::InstanceUnit::Percentage
          ? spec_int(sspec.value("percentage", json()), "instanceSelection.spec.percentage")
          : spec_int(sspec.value("count", json()), "instanceSelection.spec.count");

  Rendered rendered = step.render();
  Releases r = start_release(step, false);
  auto resources = rendered.resources;
  prepare_objects(step, resources, rendered.skip_versioning, r.number);
  manifest::label_release(resources, manifest::Strategy::Canary, step.stage.release_name);
  manifest::CanaryPlan plan =
      guarded([&] { return manifest::prepare_canary(resources, unit, instances); });
  step.ctx.info("Canary workload " + plan.canary_workload.kind + "/" + plan.canary_workload.name +
                " with " + std::to_string(plan.replicas) + " instance(s)" +
                (unit == manifest::InstanceUnit::Percentage
                     ? " (" + std::to_string(instances) + "% of the target, rounded up)"
                     : std::string()));
  Release& rel = r.release();
  rel.canary_workload = plan.canary_workload;
  for (const auto& res : plan.resources) {
    if (!res.id().same_object(plan.canary_workload)) rel.resources.push_back(res.id());
  }
  kube::ObjectRef canary_ref;
  for (const auto& res : plan.resources) {
    if (res.id().same_object(plan.canary_workload)) canary_ref = step.ref(res);
  }
  recording_failure(step, r, [&] {
    dry_run_record_apply(step, r, plan.resources, skip_dry_run);
    step.wait_for_steady_state({canary_ref});
  });
  // The release stays in progress: the primary (rolling) phase of this stage completes it.
  step.ctx.set_output("canaryWorkload",
                      plan.canary_workload.kind + "/" + plan.canary_workload.name);
  step.ctx.set_output("canaryWorkloadDeployed", "true");
  step.ctx.set_output("releaseNumber", std::to_string(r.number));
  step.ctx.set_output("targetInstances", std::to_string(plan.replicas));
}

void blue_green_deploy(Step& step) {
  const json& spec = step.ctx.spec();
  bool skip_dry_run = spec_bool(spec, "skipDryRun");
  bool pruning = spec_bool(spec, "pruningEnabled");
  Rendered rendered = step.render();
  Releases r = start_release(step, false);
  auto resources = rendered.resources;
  prepare_objects(step, resources, rendered.skip_versioning, r.number);
  manifest::label_release(resources, manifest::Strategy::BlueGreen, step.stage.release_name);

  // Which colour takes live traffic now: what the primary Service selects in the cluster.
  auto probe = guarded([&] { return manifest::prepare_blue_green(resources, ""); });
  std::string live_color;
  for (const auto& res : resources) {
    if (res.kind() == "Service" && res.name() == probe.primary_service) {
      auto svc = guarded([&] { return step.client.try_get(step.ref(res)); });
      if (svc) live_color = manifest::selector_color(*svc);
    }
  }
  auto plan = guarded([&] { return manifest::prepare_blue_green(resources, live_color); });
  bool first = live_color.empty();
  if (first) {
    // Nothing serves yet: the primary Service routes to the new colour straight away.
    for (auto& res : plan.resources) {
      if (res.kind() == "Service" && res.name() == plan.primary_service) {
        res.object["spec"]["selector"][manifest::labels::kColor] = plan.stage_color;
      }
    }
    plan.primary_color = plan.stage_color;
  }
  step.ctx.info("Primary Service " + plan.primary_service + " routes to " +
                (first ? plan.stage_color + " (first deployment)" : live_color) + "; deploying " +
                plan.stage_color + " as " + plan.workload.kind + "/" + plan.workload.name +
                " behind stage Service " + plan.stage_service);
  Release& rel = r.release();
  rel.resources = ids_of(plan.resources);
  rel.bg_environment = plan.stage_color;
  rel.primary_service = plan.primary_service;
  rel.stage_service = plan.stage_service;
  std::vector<std::size_t> managed;
  for (std::size_t i = 0; i < plan.resources.size(); ++i) {
    if (plan.resources[i].id().same_object(plan.workload)) managed.push_back(i);
  }
  std::vector<json> live;
  recording_failure(step, r, [&] {
    live = dry_run_record_apply(step, r, plan.resources, skip_dry_run);
    step.wait_for_steady_state(refs(step, plan.resources, managed));
  });
  // The other colour's workload serves live traffic: never pruned.
  ResourceId other = plan.workload;
  std::string base = other.name.substr(0, other.name.size() - plan.stage_color.size() - 1);
  other.name = base + "-" + manifest::other_color(plan.stage_color);
  finish(step, r, plan.resources, live, managed, pruning, {other.key()});
  step.ctx.set_output("releaseNumber", std::to_string(r.number));
  step.ctx.set_output("primaryServiceName", plan.primary_service);
  step.ctx.set_output("stageServiceName", plan.stage_service);
  step.ctx.set_output("stageColor", plan.stage_color);
  step.ctx.set_output("primaryColor", plan.primary_color);
}

} // namespace capstan::plugins::kubernetes
