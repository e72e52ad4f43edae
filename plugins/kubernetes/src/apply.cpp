// K8sApply, K8sDryRun, K8sScale and K8sDelete.
#include <capstan/kube/rollout_status.h>
#include <capstan/manifest/canary.h>
#include <capstan/manifest/service.h>
#include <capstan/manifest/workloads.h>

#include <set>

#include "errors.h"
#include "steps.h"

namespace capstan::plugins::kubernetes {

using manifest::Resource;
using manifest::ResourceId;
using nlohmann::json;

namespace {

std::vector<std::string> strings(const json& spec, const char* key) {
  std::vector<std::string> out;
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return out;
  if (it->is_string()) {
    out.push_back(it->get<std::string>());
    return out;
  }
  if (!it->is_array()) throw invalid(std::string(key) + " must be a list");
  for (const auto& v : *it) {
    if (!v.is_string() || v.get<std::string>().empty()) {
      throw invalid(std::string(key) + " must be a list of non-empty strings");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

// "[namespace/]Kind/Name" as Harness writes workload and resource names.
ResourceId parse_kind_name(const std::string& text, const std::string& default_ns,
                           const std::string& field) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    auto slash = text.find('/', start);
    parts.push_back(
        text.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  for (const auto& p : parts) {
    if (p.empty()) parts.clear();
  }
  if (parts.size() != 2 && parts.size() != 3) {
    throw invalid(field + " '" + text + "' is not [namespace/]Kind/Name (e.g. Deployment/web)");
  }
  ResourceId id;
  id.namespace_ = parts.size() == 3 ? parts[0] : default_ns;
  id.kind = parts[parts.size() - 2];
  id.name = parts.back();
  return id;
}

// Every workload whose steady state a K8sApply checks: all kinds rollout status judges.
std::vector<kube::ObjectRef> workloads_of(Step& step, const std::vector<Resource>& resources) {
  std::vector<kube::ObjectRef> out;
  for (const auto& r : resources) {
    if (kube::is_rollout_kind(r.kind())) out.push_back(step.ref(r));
  }
  return out;
}

} // namespace

void apply(Step& step) {
  const json& spec = step.ctx.spec();
  RenderSpec rs;
  rs.only_files = strings(spec, "filePaths");
  if (rs.only_files.empty()) throw invalid("filePaths names no file to apply");
  rs.skip_rendering = spec_bool(spec, "skipRendering");
  if (spec.contains("overrides") && spec["overrides"].is_array()) {
    auto plan = guarded([&] {
      json fake = {
          {"identifier", "apply"},
          {"serviceDefinition",
           {{"type", "Kubernetes"},
            {"spec",
             {{"manifests",
               json::array(
                   {{{"manifest",
                      {{"identifier", "none"},
                       {"type", "K8sManifest"},
                       {"spec",
                        {{"store", {{"type", "Inline"}, {"spec", {{"content", ""}}}}}}}}}}})}}}}}};
      return manifest::plan_manifests(
          fake, {manifest::OverrideLayer{"step overrides", spec["overrides"]}});
    });
    for (const auto& v : plan.values) {
      if (v.store.type != "Inline") {
        throw invalid("K8sApply overrides: only Inline values are supported here (" + v.identifier +
                      " is " + v.store.type + "); add Git values to the service");
      }
      rs.extra_values.push_back(manifest::inline_values(v));
    }
  }
  Rendered rendered = step.render(rs);
  step.log_manifests(rendered.resources);
  if (!spec_bool(spec, "skipDryRun")) {
    step.section("Dry run");
    step.applier.dry_run(rendered.resources);
    step.ctx.info("The server accepted all " + std::to_string(rendered.resources.size()) +
                  " objects");
  }
  step.section("Apply");
  step.before_changes(rendered.resources);
  step.applier.apply(rendered.resources);
  step.ctx.info(std::to_string(rendered.resources.size()) + " objects applied");
  if (spec_bool(spec, "skipSteadyStateCheck")) {
    step.ctx.info("Skipping the steady state check (skipSteadyStateCheck)");
    return;
  }
  step.wait_for_steady_state(workloads_of(step, rendered.resources));
}

void dry_run(Step& step) {
  Rendered rendered = step.render();
  step.section("Dry run");
  step.applier.dry_run(rendered.resources);
  std::string yaml = to_yaml_masked(rendered.resources);
  step.ctx.info(yaml);
  step.ctx.info("The server accepted all " + std::to_string(rendered.resources.size()) +
                " objects; nothing was changed");
  step.ctx.set_output("manifestDryRun", yaml);
}

void scale(Step& step) {
  const json& spec = step.ctx.spec();
  std::string text = spec.value("workload", "");
  ResourceId id = parse_kind_name(text, step.stage.namespace_, "workload");
  kube::ObjectRef ref = step.ref(id);
  const json sel = spec.value("instanceSelection", json::object());
  std::string type = sel.value("type", "Count");
  const json sspec = sel.value("spec", json::object());
  step.section("Scale " + ref.str());
  auto current = guarded([&] { return step.client.get_scale(ref); });
  int replicas = 0;
  if (type == "Percentage") {
    int pct = spec_int(sspec.value("percentage", json()), "instanceSelection.spec.percentage");
    if (pct < 0 || pct > 100) throw invalid("percentage must be between 0 and 100");
    // A percentage of what the last successful release declared, else of the current count.
    int target =
        current.contains("/spec/replicas"_json_pointer) ? current["spec"].value("replicas", 0) : 0;
    auto history = step.releases.load();
    if (const auto* last = history.last_successful()) {
      if (auto objects = step.releases.load_manifests(last->number)) {
        for (const auto& o : *objects) {
          if (kube::ObjectRef::of(o).kind == id.kind && kube::ObjectRef::of(o).name == id.name &&
              o.contains("/spec/replicas"_json_pointer)) {
            target = o["spec"]["replicas"].get<int>();
          }
        }
      }
    }
    replicas = pct == 0 ? 0 : guarded([&] {
      return manifest::canary_instances(manifest::InstanceUnit::Percentage, pct, target);
    });
    step.ctx.info(std::to_string(pct) + "% of " + std::to_string(target) + " is " +
                  std::to_string(replicas));
  } else {
    replicas = spec_int(sspec.value("count", json()), "instanceSelection.spec.count");
    if (replicas < 0) throw invalid("count must be 0 or more");
  }
  step.before_changes({ref});
  guarded([&] { return step.client.scale(ref, replicas); });
  step.ctx.info(ref.str() + " scaled to " + std::to_string(replicas) + " replicas");
  if (spec_bool(spec, "skipSteadyStateCheck")) {
    step.ctx.info("Skipping the steady state check (skipSteadyStateCheck)");
    return;
  }
  step.wait_for_steady_state({ref});
}

void delete_resources(Step& step) {
  const json& spec = step.ctx.spec();
  const json dr = spec.value("deleteResources", json::object());
  std::string type = dr.value("type", "");
  const json dspec = dr.value("spec", json::object());
  step.section("Delete");
  if (type == "ResourceName") {
    auto names = strings(dspec, "resourceNames");
    if (names.empty()) throw invalid("deleteResources.spec.resourceNames names nothing");
    std::vector<ResourceId> ids;
    for (const auto& n : names) {
      ids.push_back(parse_kind_name(n, step.stage.namespace_, "resourceNames entry"));
    }
    step.applier.remove(ids);
    return;
  }
  if (type == "ManifestPath") {
    RenderSpec rs;
    rs.only_files = strings(dspec, "manifestPaths");
    if (spec_bool(dspec, "allManifestPaths"))
      rs.only_files.clear();
    else if (rs.only_files.empty()) {
      throw invalid("deleteResources.spec.manifestPaths names no file (or set allManifestPaths)");
    }
    Rendered rendered = step.render(rs);
    std::vector<ResourceId> ids;
    for (const auto& r : rendered.resources) ids.push_back(r.id());
    step.applier.remove(ids);
    return;
  }
  if (type == "ReleaseName") {
    bool delete_namespace = spec_bool(dspec, "deleteNamespace");
    auto history = step.releases.load();
    auto ids = ReleaseStore::all_resources(history);
    step.ctx.info("Deleting the " + std::to_string(ids.size()) + " objects release " +
                  step.stage.release_name + " recorded");
    step.applier.remove(ids);
    step.releases.remove_records();
    step.ctx.info("Deleted the release history of " + step.stage.release_name);
    if (delete_namespace) {
      step.applier.remove({ResourceId{"Namespace", step.stage.namespace_, "", false}});
    }
    return;
  }
  throw invalid("deleteResources.type must be ResourceName, ManifestPath or ReleaseName, not '" +
                type + "'");
}

} // namespace capstan::plugins::kubernetes
