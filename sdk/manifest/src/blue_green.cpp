// Blue-green preparation and the selector swap.
#include "capstan/manifest/blue_green.h"

#include "capstan/manifest/canary.h"
#include "capstan/manifest/error.h"
#include "capstan/manifest/workloads.h"

namespace capstan::manifest {
namespace {

std::string service_list(const std::vector<Resource>& resources,
                         const std::vector<std::size_t>& idx) {
  std::string out;
  for (std::size_t i : idx) {
    if (!out.empty()) out += ", ";
    out += resources[i].name() + " (" + resources[i].where() + ")";
  }
  return out;
}

void set_selector_color(nlohmann::json& service, const std::string& color) {
  auto& spec = service["spec"];
  if (!spec.is_object()) spec = nlohmann::json::object();
  auto& selector = spec["selector"];
  if (!selector.is_object()) selector = nlohmann::json::object();
  selector[labels::kColor] = color;
}

// A stage Service cloned from the primary; cluster-assigned addresses and ports are dropped so
// the two do not collide.
Resource clone_stage(const Resource& primary) {
  Resource stage = primary;
  auto& meta = stage.object["metadata"];
  meta["name"] = primary.name() + "-stage";
  if (meta.contains("annotations") && meta["annotations"].is_object()) {
    meta["annotations"].erase(annotations::kPrimaryService);
    if (meta["annotations"].empty()) meta.erase("annotations");
  }
  for (const char* f : {"resourceVersion", "uid", "creationTimestamp"}) meta.erase(f);
  stage.object.erase("status");
  auto& spec = stage.object["spec"];
  if (spec.is_object()) {
    for (const char* f : {"clusterIP", "clusterIPs", "loadBalancerIP", "healthCheckNodePort"}) {
      spec.erase(f);
    }
    if (spec.contains("ports") && spec["ports"].is_array()) {
      for (auto& p : spec["ports"]) {
        if (p.is_object()) p.erase("nodePort");
      }
    }
  }
  stage.file = primary.file;
  return stage;
}

} // namespace

std::string other_color(std::string_view color) {
  if (color == kBlue) return kGreen;
  if (color == kGreen) return kBlue;
  throw ManifestError("unknown blue-green colour \"" + std::string(color) +
                      "\" (expected blue or green)");
}

BlueGreenPlan prepare_blue_green(std::vector<Resource> resources, const std::string& live_color) {
  std::size_t wl = single_managed_workload(resources, Strategy::BlueGreen);
  std::vector<std::size_t> services;
  std::vector<std::size_t> primaries;
  std::vector<std::size_t> stages;
  for (std::size_t i = 0; i < resources.size(); ++i) {
    if (resources[i].kind() != "Service" || is_direct_apply(resources[i])) continue;
    services.push_back(i);
    if (resources[i].annotation_true(annotations::kPrimaryService)) primaries.push_back(i);
    if (resources[i].annotation_true(annotations::kStageService)) stages.push_back(i);
  }
  if (primaries.size() > 1) {
    throw ManifestError("more than one Service is annotated " +
                        std::string(annotations::kPrimaryService) + ": [" +
                        service_list(resources, primaries) + "]");
  }
  if (stages.size() > 1) {
    throw ManifestError("more than one Service is annotated " +
                        std::string(annotations::kStageService) + ": [" +
                        service_list(resources, stages) + "]");
  }
  std::size_t primary = 0;
  if (!primaries.empty()) {
    primary = primaries.front();
  } else if (services.size() == 1 && stages.empty()) {
    primary = services.front();
  } else if (services.empty()) {
    throw ManifestError("Blue/Green deployment needs a Service in the manifests to route "
                        "traffic to the workload; found none");
  } else {
    throw ManifestError("Could not locate a primary Service among [" +
                        service_list(resources, services) + "]: annotate it with " +
                        annotations::kPrimaryService + ": \"true\" (and the stage one with " +
                        annotations::kStageService + ": \"true\")");
  }
  BlueGreenPlan plan;
  plan.primary_color = live_color.empty() ? kGreen : live_color;
  plan.stage_color = other_color(plan.primary_color);
  plan.primary_service = resources[primary].name();
  if (!stages.empty()) {
    if (stages.front() == primary) {
      throw ManifestError("Service " + resources[primary].name() +
                          " is annotated both primary and stage");
    }
    plan.stage_service = resources[stages.front()].name();
    set_selector_color(resources[stages.front()].object, plan.stage_color);
  } else {
    Resource stage = clone_stage(resources[primary]);
    set_selector_color(stage.object, plan.stage_color);
    plan.stage_service = stage.name();
    plan.stage_service_created = true;
    resources.push_back(std::move(stage));
  }
  set_selector_color(resources[primary].object, plan.primary_color);

  Resource& workload = resources[wl];
  workload.object["metadata"]["name"] = workload.name() + "-" + plan.stage_color;
  if (nlohmann::json* labels = pod_template_labels(workload.object)) {
    (*labels)[labels::kColor] = plan.stage_color;
  }
  selector_labels(workload)[labels::kColor] = plan.stage_color;
  plan.workload = workload.id();
  plan.resources = std::move(resources);
  return plan;
}

std::string selector_color(const nlohmann::json& service) {
  auto spec = service.find("spec");
  if (spec == service.end() || !spec->is_object()) return {};
  auto sel = spec->find("selector");
  if (sel == spec->end() || !sel->is_object()) return {};
  auto c = sel->find(labels::kColor);
  return c != sel->end() && c->is_string() ? c->get<std::string>() : std::string();
}

void swap_service_selectors(nlohmann::json& primary, nlohmann::json& stage) {
  std::string p = selector_color(primary);
  std::string s = selector_color(stage);
  auto name = [](const nlohmann::json& o) {
    return o.contains("metadata") ? o["metadata"].value("name", "?") : std::string("?");
  };
  if (p.empty()) {
    throw ManifestError("Service " + name(primary) + " selects no " + labels::kColor +
                        "; it was not deployed by a blue-green step");
  }
  if (s.empty()) {
    throw ManifestError("Service " + name(stage) + " selects no " + labels::kColor +
                        "; it was not deployed by a blue-green step");
  }
  set_selector_color(primary, s);
  set_selector_color(stage, p);
}

} // namespace capstan::manifest
