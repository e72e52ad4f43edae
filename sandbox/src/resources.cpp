// Built-in resource types and the conversion of CRDs into served types.
#include "capstan/sandbox/resources.h"

#include "capstan/sandbox/api_error.h"

#include <mutex>
#include <set>

namespace capstan::sandbox {

namespace {

ResourceType builtin(std::string group, std::string version, std::string kind, std::string plural,
                     bool namespaced, std::vector<std::string> short_names,
                     std::vector<std::string> categories = {}, bool status = false,
                     bool scale = false) {
  ResourceType t;
  t.group = std::move(group);
  t.version = std::move(version);
  t.kind = std::move(kind);
  t.list_kind = t.kind + "List";
  t.plural = std::move(plural);
  t.singular.resize(t.kind.size());
  for (std::size_t i = 0; i < t.kind.size(); ++i)
    t.singular[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(t.kind[i])));
  t.namespaced = namespaced;
  t.short_names = std::move(short_names);
  t.categories = std::move(categories);
  t.status_subresource = status;
  t.scale_subresource = scale;
  t.schema = builtin_schema(t.group, t.version, t.kind);
  return t;
}

} // namespace

Registry::Registry() {
  const std::vector<std::string> all{"all"};
  builtin_ = {
      builtin("", "v1", "Namespace", "namespaces", false, {"ns"}, {}, true),
      builtin("", "v1", "ConfigMap", "configmaps", true, {"cm"}),
      builtin("", "v1", "Secret", "secrets", true, {}),
      builtin("", "v1", "Service", "services", true, {"svc"}, all, true),
      builtin("", "v1", "ServiceAccount", "serviceaccounts", true, {"sa"}),
      builtin("", "v1", "Pod", "pods", true, {"po"}, all, true),
      builtin("", "v1", "Event", "events", true, {"ev"}),
      builtin("", "v1", "Node", "nodes", false, {"no"}, {}, true),
      builtin("apps", "v1", "Deployment", "deployments", true, {"deploy"}, all, true, true),
      builtin("apps", "v1", "ReplicaSet", "replicasets", true, {"rs"}, all, true, true),
      builtin("apps", "v1", "StatefulSet", "statefulsets", true, {"sts"}, all, true, true),
      builtin("apps", "v1", "DaemonSet", "daemonsets", true, {"ds"}, all, true),
      builtin("batch", "v1", "Job", "jobs", true, {}, all, true),
      builtin("networking.k8s.io", "v1", "Ingress", "ingresses", true, {"ing"}, {}, true),
      builtin("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true,
              {"hpa"}, all, true),
      builtin("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, {"pdb"}, {},
              true),
      builtin("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
              false, {"crd", "crds"}, {}, true),
  };
}

std::optional<ResourceType> Registry::find(const std::string& group, const std::string& version,
                                           const std::string& plural) const {
  std::shared_lock lock(mu_);
  for (const auto& t : builtin_)
    if (t.group == group && t.version == version && t.plural == plural) return t;
  for (const auto& [_, types] : custom_)
    for (const auto& t : types)
      if (t.group == group && t.version == version && t.plural == plural) return t;
  return std::nullopt;
}

std::optional<ResourceType> Registry::find_kind(const std::string& group,
                                                const std::string& version,
                                                const std::string& kind) const {
  std::shared_lock lock(mu_);
  for (const auto& t : builtin_)
    if (t.group == group && t.version == version && t.kind == kind) return t;
  for (const auto& [_, types] : custom_)
    for (const auto& t : types)
      if (t.group == group && t.version == version && t.kind == kind) return t;
  return std::nullopt;
}

std::vector<ResourceType> Registry::all() const {
  std::shared_lock lock(mu_);
  std::vector<ResourceType> out = builtin_;
  for (const auto& [_, types] : custom_) out.insert(out.end(), types.begin(), types.end());
  return out;
}

std::vector<std::pair<std::string, std::vector<std::string>>> Registry::groups() const {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& t : all()) {
    auto it =
        std::find_if(out.begin(), out.end(), [&](const auto& g) { return g.first == t.group; });
    if (it == out.end()) {
      out.push_back({t.group, {t.version}});
    } else if (std::find(it->second.begin(), it->second.end(), t.version) == it->second.end()) {
      // The storage version is preferred, as the API server prefers the highest stable one.
      if (t.storage)
        it->second.insert(it->second.begin(), t.version);
      else
        it->second.push_back(t.version);
    }
  }
  return out;
}

void Registry::set_custom(const std::string& crd_name, std::vector<ResourceType> types) {
  std::unique_lock lock(mu_);
  if (types.empty())
    custom_.erase(crd_name);
  else
    custom_[crd_name] = std::move(types);
}

std::vector<ResourceType> types_from_crd(const nlohmann::json& crd) {
  const auto& spec = crd.value("spec", nlohmann::json::object());
  const auto& names = spec.value("names", nlohmann::json::object());
  std::string name = crd.value("/metadata/name"_json_pointer, std::string());
  std::vector<StatusCause> causes;
  std::string group = spec.value("group", "");
  std::string plural = names.value("plural", "");
  std::string kind = names.value("kind", "");
  std::string scope = spec.value("scope", "");
  if (group.empty()) causes.push_back({"FieldValueRequired", "Required value", "spec.group"});
  if (plural.empty())
    causes.push_back({"FieldValueRequired", "Required value", "spec.names.plural"});
  if (kind.empty()) causes.push_back({"FieldValueRequired", "Required value", "spec.names.kind"});
  if (scope != "Namespaced" && scope != "Cluster")
    causes.push_back(
        {"FieldValueNotSupported",
         "Unsupported value: \"" + scope + "\": supported values: \"Cluster\", \"Namespaced\"",
         "spec.scope"});
  if (!plural.empty() && !group.empty() && name != plural + "." + group)
    causes.push_back({"FieldValueInvalid",
                      "Invalid value: \"" + name + "\": must be spec.names.plural+\".\"+spec.group",
                      "metadata.name"});
  const auto versions = spec.value("versions", nlohmann::json::array());
  if (!versions.is_array() || versions.empty())
    causes.push_back(
        {"FieldValueRequired", "Required value: must have at least one version", "spec.versions"});
  int storage_count = 0;
  if (versions.is_array())
    for (const auto& v : versions)
      if (v.value("storage", false)) ++storage_count;
  if (versions.is_array() && !versions.empty() && storage_count != 1)
    causes.push_back({"FieldValueInvalid",
                      "Invalid value: must have exactly one version marked as storage version",
                      "spec.versions"});
  if (!causes.empty())
    throw ApiError::invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes);

  std::vector<ResourceType> out;
  for (const auto& v : versions) {
    if (!v.value("served", false)) continue;
    ResourceType t;
    t.group = group;
    t.version = v.value("name", "");
    t.kind = kind;
    t.list_kind = names.value("listKind", kind + "List");
    t.plural = plural;
    t.singular = names.value("singular", "");
    if (t.singular.empty())
      for (char c : kind)
        t.singular += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    t.namespaced = scope == "Namespaced";
    if (names.contains("shortNames"))
      for (const auto& s : names["shortNames"])
        if (s.is_string()) t.short_names.push_back(s);
    if (names.contains("categories"))
      for (const auto& s : names["categories"])
        if (s.is_string()) t.categories.push_back(s);
    t.custom = true;
    t.storage = v.value("storage", false);
    const auto sub = v.value("subresources", nlohmann::json::object());
    t.status_subresource = sub.contains("status");
    if (sub.contains("scale") && sub["scale"].is_object()) {
      t.scale_subresource = true;
      t.spec_replicas_path = sub["scale"].value("specReplicasPath", ".spec.replicas");
      t.status_replicas_path = sub["scale"].value("statusReplicasPath", ".status.replicas");
      t.label_selector_path = sub["scale"].value("labelSelectorPath", "");
    }
    const auto schema = v.value("/schema/openAPIV3Schema"_json_pointer, nlohmann::json());
    if (schema.is_object()) {
      t.schema = schema_from_openapi(schema, true);
    } else {
      nlohmann::json open = {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}};
      t.schema = schema_from_openapi(open, true);
    }
    if (v.contains("additionalPrinterColumns") && v["additionalPrinterColumns"].is_array()) {
      for (const auto& c : v["additionalPrinterColumns"]) {
        PrinterColumn pc;
        pc.name = c.value("name", "");
        pc.type = c.value("type", "string");
        pc.json_path = c.value("jsonPath", "");
        pc.description = c.value("description", "");
        pc.format = c.value("format", "");
        pc.priority = c.value("priority", 0);
        if (!pc.name.empty() && !pc.json_path.empty()) t.printer_columns.push_back(pc);
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

} // namespace capstan::sandbox
