// Reading Harness-shaped service and override documents.
#include "capstan/manifest/service.h"

#include "capstan/manifest/error.h"

namespace capstan::manifest {
namespace {

using json = nlohmann::json;

const json& unwrap(const json& doc, const char* key) {
  if (doc.is_object()) {
    auto it = doc.find(key);
    if (it != doc.end() && it->is_object()) return *it;
  }
  return doc;
}

const json* path(const json& j, std::initializer_list<const char*> keys) {
  const json* cur = &j;
  for (const char* k : keys) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(k);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::vector<std::string> strings(const json* j, const std::string& where) {
  std::vector<std::string> out;
  if (!j || j->is_null()) return out;
  if (!j->is_array()) throw ManifestError(where + " must be a list of paths");
  for (const auto& e : *j) {
    if (!e.is_string()) throw ManifestError(where + " must be a list of paths");
    out.push_back(e.get<std::string>());
  }
  return out;
}

ManifestSpec read_manifest(const json& entry, const std::string& where, const std::string& origin) {
  const json& m = unwrap(entry, "manifest");
  if (!m.is_object()) throw ManifestError(where + ": a manifest must be a map");
  ManifestSpec spec;
  spec.origin = origin;
  spec.identifier = m.value("identifier", "");
  spec.type = m.value("type", "");
  if (spec.type.empty()) throw ManifestError(where + ": manifest type is missing");
  const json* store = path(m, {"spec", "store"});
  if (!store || !store->is_object()) throw ManifestError(where + ".spec.store is missing");
  spec.store.type = store->value("type", "");
  if (spec.store.type.empty()) throw ManifestError(where + ".spec.store.type is missing");
  spec.store.spec = store->contains("spec") ? (*store)["spec"] : json::object();
  spec.store.paths = strings(path(spec.store.spec, {"paths"}), where + ".spec.store.spec.paths");
  if (spec.store.type == "Inline") {
    const json* content = path(spec.store.spec, {"content"});
    if (!content || !content->is_string()) {
      throw ManifestError(where + ".spec.store.spec.content must hold the inline values text");
    }
    spec.store.content = content->get<std::string>();
  } else if (spec.store.paths.empty()) {
    throw ManifestError(where + ".spec.store.spec.paths lists no file or folder");
  }
  spec.values_paths = strings(path(m, {"spec", "valuesPaths"}), where + ".spec.valuesPaths");
  const json* skip = path(m, {"spec", "skipResourceVersioning"});
  spec.skip_resource_versioning = skip && skip->is_boolean() && skip->get<bool>();
  return spec;
}

} // namespace

std::vector<OverrideLayer> stage_overrides(const json& environment, const json& service_overrides,
                                           const json& infrastructure) {
  std::vector<OverrideLayer> out;
  const json& env = unwrap(environment, "environment");
  if (const json* m = path(env, {"overrides", "manifests"}); m && !m->is_null()) {
    out.push_back({"environment " + env.value("identifier", env.value("name", "")), *m});
  }
  const json& so = unwrap(service_overrides, "serviceOverrides");
  if (const json* m = path(so, {"manifests"}); m && !m->is_null()) {
    out.push_back({"service overrides of environment " + so.value("environmentRef", ""), *m});
  }
  const json& infra = unwrap(infrastructure, "infrastructureDefinition");
  if (const json* m = path(infra, {"overrides", "manifests"}); m && !m->is_null()) {
    out.push_back({"infrastructure " + infra.value("identifier", infra.value("name", "")), *m});
  }
  return out;
}

ManifestPlan plan_manifests(const json& service_doc, const std::vector<OverrideLayer>& overrides) {
  const json& service = unwrap(service_doc, "service");
  std::string id = service.value("identifier", service.value("name", "service"));
  const json* def = path(service, {"serviceDefinition"});
  if (!def || !def->is_object()) throw ManifestError("service " + id + " has no serviceDefinition");
  std::string type = def->value("type", "");
  if (type != "Kubernetes") {
    throw ManifestError("service " + id + " has deployment type \"" + type +
                        "\"; Kubernetes manifests need type Kubernetes");
  }
  const json* manifests = path(*def, {"spec", "manifests"});
  ManifestPlan plan;
  bool have_k8s = false;
  std::string first_k8s;
  if (manifests && manifests->is_array()) {
    for (std::size_t i = 0; i < manifests->size(); ++i) {
      std::string where = "service " + id + ": serviceDefinition.spec.manifests[" +
                          std::to_string(i) + "].manifest";
      ManifestSpec m = read_manifest((*manifests)[i], where, "service " + id);
      if (m.type == "K8sManifest") {
        if (have_k8s) {
          throw ManifestError(where + ": a Kubernetes service takes one K8sManifest; " + first_k8s +
                              " is already one");
        }
        have_k8s = true;
        first_k8s = m.identifier;
        plan.k8s_manifest = std::move(m);
      } else if (m.type == "Values") {
        plan.values.push_back(std::move(m));
      } else {
        throw ManifestError(where + ": manifest type \"" + m.type +
                            "\" is not supported (K8sManifest and Values are)");
      }
    }
  }
  if (!have_k8s) throw ManifestError("service " + id + " has no K8sManifest manifest");
  for (const auto& layer : overrides) {
    if (!layer.manifests.is_array()) {
      throw ManifestError(layer.origin + ": overrides.manifests must be a list");
    }
    for (std::size_t i = 0; i < layer.manifests.size(); ++i) {
      std::string where = layer.origin + ": manifests[" + std::to_string(i) + "].manifest";
      ManifestSpec m = read_manifest(layer.manifests[i], where, layer.origin);
      if (m.type != "Values") {
        throw ManifestError(where + ": only Values manifests can override a service here, not \"" +
                            m.type + "\"");
      }
      plan.values.push_back(std::move(m));
    }
  }
  return plan;
}

ValuesFile inline_values(const ManifestSpec& spec) {
  return {spec.origin + " values " + spec.identifier + " (inline)", spec.store.content};
}

} // namespace capstan::manifest
