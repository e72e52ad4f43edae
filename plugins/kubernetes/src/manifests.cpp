// Rendering the stage's manifests.
#include "manifests.h"

#include <capstan/manifest/service.h>
#include <capstan/yaml/yaml.h>

#include "errors.h"

namespace capstan::plugins::kubernetes {

using nlohmann::json;

Rendered render_stage(const StageContext& stage, StoreFetcher& fetcher, const sdk::StepContext& ctx,
                      const RenderSpec& spec) {
  if (!stage.has_service()) {
    throw invalid("the stage has no service, so there are no manifests to deploy");
  }
  return guarded([&] {
    json service_overrides = stage.raw.value("serviceOverrides", json());
    auto plan = manifest::plan_manifests(
        stage.service,
        manifest::stage_overrides(stage.environment, service_overrides, stage.infrastructure));
    const auto& k8s = plan.k8s_manifest;
    std::vector<std::string> paths = k8s.store.paths;
    for (const auto& v : k8s.values_paths) paths.push_back(v);
    std::vector<std::string> optional = spec.only_files;
    auto fetched = fetcher.fetch(k8s, paths, optional);
    const auto& root = fetched.root;

    manifest::ManifestSource source;
    source.root = root;
    source.texts = std::move(fetched.texts);
    source.paths =
        k8s.store.type == "Inline" ? std::vector<std::string>{"inline.yaml"} : k8s.store.paths;
    source.values_paths = k8s.values_paths;
    source.name = k8s.identifier.empty() ? "manifests" : k8s.identifier;
    // A file named in filePaths outside the manifest folders (elsewhere in the store) is read
    // from the store root.
    for (const auto& f : spec.only_files) {
      std::error_code ec;
      bool under = false;
      for (const auto& p : k8s.store.paths) {
        std::string norm = std::filesystem::path(p).lexically_normal().generic_string();
        while (!norm.empty() && norm.back() == '/') norm.pop_back();
        if (f == norm || f.rfind(norm + "/", 0) == 0) under = true;
      }
      if (!under && std::filesystem::exists(root / f, ec)) source.paths.push_back(f);
    }

    manifest::RenderRequest request;
    request.sources.push_back(source);
    for (const auto& v : plan.values) {
      if (v.store.type == "Inline") {
        request.overrides.push_back(manifest::inline_values(v));
        continue;
      }
      std::vector<std::string> vpaths = v.store.paths;
      auto fetched_values = fetcher.fetch(v, vpaths);
      for (auto& f : manifest::load_values_files(fetched_values.root, v.store.paths,
                                                 v.origin + " values " + v.identifier,
                                                 fetched_values.texts)) {
        request.overrides.push_back(std::move(f));
      }
    }
    for (const auto& v : spec.extra_values) request.overrides.push_back(v);
    request.artifact = stage.artifact;
    request.namespace_ = stage.namespace_;
    request.only_files = spec.only_files;
    request.skip_rendering = spec.skip_rendering;
    auto result = manifest::render_manifests(request);
    for (const auto& w : result.warnings) ctx.warn(w);
    Rendered out;
    out.resources = std::move(result.resources);
    out.files = std::move(result.files);
    out.skip_versioning = k8s.skip_resource_versioning;
    return out;
  });
}

std::string to_yaml_masked(const std::vector<manifest::Resource>& resources) {
  std::vector<json> docs;
  for (const auto& r : resources) {
    json o = r.object;
    if (r.kind() == "Secret") {
      for (const char* k : {"data", "stringData"}) {
        if (o.contains(k) && o[k].is_object()) {
          for (auto& [key, v] : o[k].items()) v = "***";
        }
      }
    }
    docs.push_back(std::move(o));
  }
  return yaml::dump_all(docs);
}

} // namespace capstan::plugins::kubernetes
