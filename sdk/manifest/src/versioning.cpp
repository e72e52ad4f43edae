// ConfigMap/Secret versioning and the reference rewriting that goes with it.
#include "capstan/manifest/versioning.h"

#include <map>

#include "capstan/manifest/error.h"

namespace capstan::manifest {
namespace {

using Names = std::map<std::string, std::string>; // old name → new name, per kind and namespace

void rename(nlohmann::json& holder, const char* field, const Names& names) {
  if (!holder.is_object()) return;
  auto it = holder.find(field);
  if (it == holder.end() || !it->is_string()) return;
  auto n = names.find(it->get<std::string>());
  if (n != names.end()) *it = n->second;
}

nlohmann::json* child(nlohmann::json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

void rewrite_containers(nlohmann::json& spec, const Names& cms, const Names& secrets) {
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    nlohmann::json* cs = child(spec, list);
    if (!cs || !cs->is_array()) continue;
    for (auto& c : *cs) {
      if (nlohmann::json* env_from = child(c, "envFrom"); env_from && env_from->is_array()) {
        for (auto& e : *env_from) {
          if (nlohmann::json* ref = child(e, "configMapRef")) rename(*ref, "name", cms);
          if (nlohmann::json* ref = child(e, "secretRef")) rename(*ref, "name", secrets);
        }
      }
      if (nlohmann::json* env = child(c, "env"); env && env->is_array()) {
        for (auto& e : *env) {
          nlohmann::json* from = child(e, "valueFrom");
          if (!from) continue;
          if (nlohmann::json* ref = child(*from, "configMapKeyRef")) rename(*ref, "name", cms);
          if (nlohmann::json* ref = child(*from, "secretKeyRef")) rename(*ref, "name", secrets);
        }
      }
    }
  }
}

void rewrite_volumes(nlohmann::json& spec, const Names& cms, const Names& secrets) {
  nlohmann::json* volumes = child(spec, "volumes");
  if (!volumes || !volumes->is_array()) return;
  for (auto& v : *volumes) {
    if (nlohmann::json* cm = child(v, "configMap")) rename(*cm, "name", cms);
    if (nlohmann::json* s = child(v, "secret")) rename(*s, "secretName", secrets);
    nlohmann::json* projected = child(v, "projected");
    nlohmann::json* sources = projected ? child(*projected, "sources") : nullptr;
    if (!sources || !sources->is_array()) continue;
    for (auto& src : *sources) {
      if (nlohmann::json* cm = child(src, "configMap")) rename(*cm, "name", cms);
      if (nlohmann::json* s = child(src, "secret")) rename(*s, "name", secrets);
    }
  }
}

} // namespace

bool should_version(const Resource& r) {
  std::string kind = r.kind();
  if (kind != "ConfigMap" && kind != "Secret") return false;
  return !r.annotation_true(annotations::kSkipVersioning);
}

std::vector<Renamed> apply_versioning(std::vector<Resource>& resources, int release_number) {
  if (release_number < 1) {
    throw ManifestError("versioning needs a release number of 1 or more, not " +
                        std::to_string(release_number));
  }
  // namespace → (old → new), for each kind
  std::map<std::string, Names> cms;
  std::map<std::string, Names> secrets;
  std::vector<Renamed> out;
  const std::string suffix = "-" + std::to_string(release_number);
  for (auto& r : resources) {
    if (!should_version(r) || r.versioned) continue;
    ResourceId from = r.id();
    std::string to = from.name + suffix;
    r.object["metadata"]["name"] = to;
    r.versioned = true;
    (from.kind == "ConfigMap" ? cms : secrets)[from.namespace_][from.name] = to;
    out.push_back({from, to});
  }
  if (out.empty()) return out;
  static const Names kNone;
  for (auto& r : resources) {
    std::string ns = r.namespace_();
    auto c = cms.find(ns);
    auto s = secrets.find(ns);
    const Names& cm_names = c == cms.end() ? kNone : c->second;
    const Names& secret_names = s == secrets.end() ? kNone : s->second;
    for (nlohmann::json* spec : pod_specs(r.object)) {
      rewrite_containers(*spec, cm_names, secret_names);
      rewrite_volumes(*spec, cm_names, secret_names);
      if (nlohmann::json* pulls = child(*spec, "imagePullSecrets"); pulls && pulls->is_array()) {
        for (auto& p : *pulls) rename(p, "name", secret_names);
      }
    }
  }
  return out;
}

} // namespace capstan::manifest
