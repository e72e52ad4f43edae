// Objects out of rendered YAML, and the ordering and namespace rules applied to them.
#include "capstan/manifest/resource.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "capstan/manifest/error.h"
#include "capstan/yaml/yaml.h"

namespace capstan::manifest {
namespace {

std::string str_at(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string describe_json(const nlohmann::json& v) {
  if (v.is_array()) return "a list";
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s.size() > 40) s = s.substr(0, 40) + "...";
    return "the text \"" + s + "\"";
  }
  return "the scalar " + v.dump();
}

void validate(const nlohmann::json& v, const std::string& file, yaml::Mark mark,
              const std::string& what) {
  auto fail = [&](const std::string& msg) {
    throw ManifestError(file, mark.line, mark.column, msg);
  };
  if (!v.is_object()) {
    fail(what + " is not a Kubernetes object (a map with apiVersion, kind and metadata); found " +
         describe_json(v));
  }
  auto api = v.find("apiVersion");
  if (api == v.end() || !api->is_string() || api->get<std::string>().empty()) {
    fail(what + " has no apiVersion");
  }
  auto kind = v.find("kind");
  if (kind == v.end() || !kind->is_string() || kind->get<std::string>().empty()) {
    fail(what + " has no kind");
  }
  std::string k = kind->get<std::string>();
  auto meta = v.find("metadata");
  if (meta == v.end() || !meta->is_object()) fail(k + " object has no metadata");
  auto name = meta->find("name");
  if (name == meta->end() || !name->is_string() || name->get<std::string>().empty()) {
    fail(k + " object has no metadata.name");
  }
  auto ns = meta->find("namespace");
  if (ns != meta->end() && !ns->is_string() && !ns->is_null()) {
    fail(k + " " + name->get<std::string>() + ": metadata.namespace must be a string");
  }
}

constexpr std::string_view kKindOrder[] = {
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ServiceAccount",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "DeploymentConfig",
    "StatefulSet",
    "Job",
    "CronJob",
    "Ingress",
    "APIService",
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool apply_less(const Resource& a, const Resource& b) {
  std::string ka = a.kind();
  std::string kb = b.kind();
  int oa = kind_order(ka);
  int ob = kind_order(kb);
  if (oa != ob) return oa < ob;
  if (ka != kb) return lower(ka) < lower(kb);
  return lower(a.name()) < lower(b.name());
}

} // namespace

std::string ResourceId::key() const {
  if (namespace_.empty()) return kind + "/" + name;
  return kind + "/" + namespace_ + "/" + name;
}

std::string Resource::api_version() const {
  return str_at(object, "apiVersion");
}
std::string Resource::kind() const {
  return str_at(object, "kind");
}

std::string Resource::name() const {
  auto it = object.find("metadata");
  return it != object.end() && it->is_object() ? str_at(*it, "name") : std::string();
}

std::string Resource::namespace_() const {
  auto it = object.find("metadata");
  return it != object.end() && it->is_object() ? str_at(*it, "namespace") : std::string();
}

ResourceId Resource::id() const {
  return {kind(), name(), namespace_(), versioned};
}

std::string Resource::annotation(std::string_view key) const {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return {};
  auto ann = meta->find("annotations");
  if (ann == meta->end() || !ann->is_object()) return {};
  auto it = ann->find(std::string(key));
  if (it == ann->end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_boolean()) return it->get<bool>() ? "true" : "false";
  return it->dump();
}

bool Resource::annotation_true(std::string_view key) const {
  return lower(annotation(key)) == "true";
}

std::string Resource::where() const {
  if (line > 0) return file + ":" + std::to_string(line);
  return file;
}

std::vector<Resource> parse_resources(std::string_view text, const std::string& file) {
  std::vector<yaml::Document> docs;
  try {
    docs = yaml::load_all(text, file);
  } catch (const yaml::Error& e) {
    throw ManifestError(e.file(), e.mark().line, e.mark().column, e.message());
  }
  std::vector<Resource> out;
  for (auto& doc : docs) {
    if (doc.value.is_null()) continue;
    if (doc.value.is_object() && str_at(doc.value, "kind") == "List" &&
        doc.value.contains("items")) {
      const auto& items = doc.value["items"];
      if (!items.is_array()) {
        throw ManifestError(file, doc.start.line, doc.start.column, "List items must be a list");
      }
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (items[i].is_null()) continue;
        yaml::Mark m = doc.where.find(yaml::pointer_append("/items", i));
        validate(items[i], file, m, "List item " + std::to_string(i));
        out.push_back({items[i], file, m.line, false, false});
      }
      continue;
    }
    validate(doc.value, file, doc.start, "document");
    out.push_back({std::move(doc.value), file, doc.start.line, false, false});
  }
  return out;
}

bool is_cluster_scoped(std::string_view kind) {
  static const std::set<std::string, std::less<>> kinds = {
      "Namespace",
      "Node",
      "PersistentVolume",
      "StorageClass",
      "VolumeAttachment",
      "CSIDriver",
      "CSINode",
      "CustomResourceDefinition",
      "APIService",
      "ClusterRole",
      "ClusterRoleBinding",
      "PriorityClass",
      "PodSecurityPolicy",
      "RuntimeClass",
      "IngressClass",
      "MutatingWebhookConfiguration",
      "ValidatingWebhookConfiguration",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
      "CertificateSigningRequest",
      "TokenReview",
      "SelfSubjectAccessReview",
      "SelfSubjectRulesReview",
      "SubjectAccessReview",
      "ComponentStatus",
      "FlowSchema",
      "PriorityLevelConfiguration",
  };
  return kinds.count(kind) > 0;
}

void default_namespace(std::vector<Resource>& resources, const std::string& ns,
                       const std::function<bool(const Resource&)>& cluster_scoped) {
  for (auto& r : resources) {
    bool cluster = cluster_scoped ? cluster_scoped(r) : is_cluster_scoped(r.kind());
    if (cluster) continue;
    auto& meta = r.object["metadata"];
    auto it = meta.find("namespace");
    if (it == meta.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty())) {
      meta["namespace"] = ns;
    }
  }
}

int kind_order(std::string_view kind) {
  for (std::size_t i = 0; i < std::size(kKindOrder); ++i) {
    if (kKindOrder[i] == kind) return static_cast<int>(i);
  }
  return static_cast<int>(std::size(kKindOrder));
}

void sort_for_apply(std::vector<Resource>& resources) {
  std::stable_sort(resources.begin(), resources.end(), apply_less);
}

void sort_for_delete(std::vector<Resource>& resources) {
  std::stable_sort(resources.begin(), resources.end(),
                   [](const Resource& a, const Resource& b) { return apply_less(b, a); });
}

void check_duplicates(const std::vector<Resource>& resources) {
  std::map<std::string, const Resource*> seen;
  for (const auto& r : resources) {
    auto [it, inserted] = seen.emplace(r.id().key(), &r);
    if (!inserted) {
      throw ManifestError(r.file, r.line, 0,
                          r.id().key() + " is defined twice: also at " + it->second->where());
    }
  }
}

std::vector<nlohmann::json*> pod_specs(nlohmann::json& object) {
  std::vector<nlohmann::json*> out;
  auto spec = object.find("spec");
  if (spec == object.end() || !spec->is_object()) return out;
  if (str_at(object, "kind") == "Pod") {
    out.push_back(&*spec);
    return out;
  }
  auto tmpl = spec->find("template");
  if (tmpl != spec->end() && tmpl->is_object()) {
    auto ps = tmpl->find("spec");
    if (ps != tmpl->end() && ps->is_object()) out.push_back(&*ps);
  }
  auto job = spec->find("jobTemplate");
  if (job != spec->end() && job->is_object()) {
    auto js = job->find("spec");
    if (js != job->end() && js->is_object()) {
      auto jt = js->find("template");
      if (jt != js->end() && jt->is_object()) {
        auto ps = jt->find("spec");
        if (ps != jt->end() && ps->is_object()) out.push_back(&*ps);
      }
    }
  }
  return out;
}

nlohmann::json* pod_template_labels(nlohmann::json& object) {
  auto spec = object.find("spec");
  if (spec == object.end() || !spec->is_object()) return nullptr;
  auto tmpl = spec->find("template");
  if (tmpl == spec->end() || !tmpl->is_object()) return nullptr;
  auto& meta = (*tmpl)["metadata"];
  if (!meta.is_object()) meta = nlohmann::json::object();
  auto& labels = meta["labels"];
  if (!labels.is_object()) labels = nlohmann::json::object();
  return &labels;
}

} // namespace capstan::manifest
