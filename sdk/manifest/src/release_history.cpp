// Release history (de)serialisation and bookkeeping.
#include "capstan/manifest/release_history.h"

#include <algorithm>

#include "capstan/kube/base64.h"
#include "capstan/manifest/error.h"
#include "capstan/yaml/yaml.h"

namespace capstan::manifest {
namespace {

nlohmann::json id_json(const ResourceId& id) {
  return {{"kind", id.kind},
          {"name", id.name},
          {"namespace", id.namespace_},
          {"versioned", id.versioned}};
}

[[noreturn]] void bad(const yaml::Document& doc, const std::string& ptr, const std::string& msg) {
  yaml::Mark m = doc.where.find(ptr);
  throw ManifestError(doc.where.file(), m.line, m.column, msg);
}

std::string get_string(const yaml::Document& doc, const nlohmann::json& j, const std::string& ptr,
                       const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) bad(doc, ptr, std::string("release history: missing ") + key);
    return {};
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<long long>());
  bad(doc, yaml::pointer_append(ptr, key),
      std::string("release history: ") + key + " must be text");
}

ResourceId id_from(const yaml::Document& doc, const nlohmann::json& j, const std::string& ptr) {
  if (!j.is_object()) bad(doc, ptr, "release history: a resource must be a map");
  ResourceId id;
  id.kind = get_string(doc, j, ptr, "kind", true);
  id.name = get_string(doc, j, ptr, "name", true);
  id.namespace_ = get_string(doc, j, ptr, "namespace", false);
  auto v = j.find("versioned");
  id.versioned = v != j.end() && v->is_boolean() && v->get<bool>();
  return id;
}

ReleaseStatus status_from(const yaml::Document& doc, const std::string& s, const std::string& ptr) {
  if (s == "InProgress" || s == "Started") return ReleaseStatus::InProgress;
  if (s == "Succeeded" || s == "RollbackSucceeded") return ReleaseStatus::Succeeded;
  if (s == "Failed" || s == "RollbackFailed") return ReleaseStatus::Failed;
  bad(doc, ptr, "release history: unknown status \"" + s + "\" (InProgress, Succeeded or Failed)");
}

} // namespace

std::string to_string(ReleaseStatus s) {
  switch (s) {
  case ReleaseStatus::InProgress:
    return "InProgress";
  case ReleaseStatus::Succeeded:
    return "Succeeded";
  case ReleaseStatus::Failed:
    return "Failed";
  }
  return "InProgress";
}

ReleaseHistory ReleaseHistory::parse(std::string_view text, const std::string& where) {
  yaml::Document doc;
  try {
    doc = yaml::load(text, where);
  } catch (const yaml::Error& e) {
    throw ManifestError(e.file(), e.mark().line, e.mark().column, e.message());
  }
  ReleaseHistory h;
  if (doc.value.is_null()) return h;
  if (!doc.value.is_object()) bad(doc, "", "release history: expected a map");
  auto releases = doc.value.find("releases");
  if (releases == doc.value.end() || releases->is_null()) return h;
  if (!releases->is_array()) bad(doc, "/releases", "release history: releases must be a list");
  for (std::size_t i = 0; i < releases->size(); ++i) {
    const auto& r = (*releases)[i];
    std::string ptr = yaml::pointer_append("/releases", i);
    if (!r.is_object()) bad(doc, ptr, "release history: a release must be a map");
    Release rel;
    auto num = r.find("number");
    if (num == r.end() || !num->is_number_integer() || num->get<long long>() < 1) {
      bad(doc, ptr, "release history: a release needs a positive number");
    }
    rel.number = static_cast<int>(num->get<long long>());
    rel.status = status_from(doc, get_string(doc, r, ptr, "status", true),
                             yaml::pointer_append(ptr, "status"));
    if (auto res = r.find("resources"); res != r.end() && res->is_array()) {
      for (std::size_t k = 0; k < res->size(); ++k) {
        rel.resources.push_back(id_from(
            doc, (*res)[k], yaml::pointer_append(yaml::pointer_append(ptr, "resources"), k)));
      }
    }
    if (auto mw = r.find("managedWorkload"); mw != r.end() && !mw->is_null()) {
      rel.managed_workload = id_from(doc, *mw, yaml::pointer_append(ptr, "managedWorkload"));
    }
    rel.managed_workload_revision = get_string(doc, r, ptr, "managedWorkloadRevision", false);
    if (auto mws = r.find("managedWorkloads"); mws != r.end() && mws->is_array()) {
      for (std::size_t k = 0; k < mws->size(); ++k) {
        std::string p = yaml::pointer_append(yaml::pointer_append(ptr, "managedWorkloads"), k);
        const auto& e = (*mws)[k];
        if (!e.is_object() || !e.contains("workload")) {
          bad(doc, p, "release history: a managed workload needs a workload");
        }
        rel.managed_workloads.push_back(
            {id_from(doc, e["workload"], yaml::pointer_append(p, "workload")),
             get_string(doc, e, p, "revision", false)});
      }
    }
    rel.bg_environment = get_string(doc, r, ptr, "bgEnvironment", false);
    rel.primary_service = get_string(doc, r, ptr, "primaryService", false);
    rel.stage_service = get_string(doc, r, ptr, "stageService", false);
    if (auto cw = r.find("canaryWorkload"); cw != r.end() && !cw->is_null()) {
      rel.canary_workload = id_from(doc, *cw, yaml::pointer_append(ptr, "canaryWorkload"));
    }
    rel.execution = get_string(doc, r, ptr, "execution", false);
    h.releases_.push_back(std::move(rel));
  }
  // Newest first, whatever order the text had.
  std::stable_sort(h.releases_.begin(), h.releases_.end(),
                   [](const Release& a, const Release& b) { return a.number > b.number; });
  return h;
}

ReleaseHistory ReleaseHistory::from_object(const nlohmann::json& object) {
  std::string kind = object.value("kind", "");
  std::string name = object.contains("metadata") ? object["metadata"].value("name", "") : "";
  std::string ns = object.contains("metadata") ? object["metadata"].value("namespace", "") : "";
  std::string where = kind + " " + (ns.empty() ? name : ns + "/" + name);
  auto data = object.find("data");
  if (data == object.end() || !data->is_object()) return {};
  auto it = data->find(kDataKey);
  if (it == data->end() || !it->is_string()) return {};
  std::string text = it->get<std::string>();
  if (kind == "Secret") {
    auto decoded = kube::base64_decode(text);
    if (!decoded) throw ManifestError(where + ": releaseHistory is not valid base64");
    text = *decoded;
  }
  return parse(text, where);
}

std::string ReleaseHistory::to_yaml() const {
  nlohmann::json releases = nlohmann::json::array();
  for (const auto& r : releases_) {
    nlohmann::json j = {{"number", r.number}, {"status", to_string(r.status)}};
    nlohmann::json res = nlohmann::json::array();
    for (const auto& id : r.resources) res.push_back(id_json(id));
    j["resources"] = res;
    if (r.managed_workload) j["managedWorkload"] = id_json(*r.managed_workload);
    if (!r.managed_workload_revision.empty())
      j["managedWorkloadRevision"] = r.managed_workload_revision;
    if (!r.managed_workloads.empty()) {
      nlohmann::json mws = nlohmann::json::array();
      for (const auto& w : r.managed_workloads) {
        mws.push_back({{"workload", id_json(w.workload)}, {"revision", w.revision}});
      }
      j["managedWorkloads"] = mws;
    }
    if (!r.bg_environment.empty()) j["bgEnvironment"] = r.bg_environment;
    if (!r.primary_service.empty()) j["primaryService"] = r.primary_service;
    if (!r.stage_service.empty()) j["stageService"] = r.stage_service;
    if (r.canary_workload) j["canaryWorkload"] = id_json(*r.canary_workload);
    if (!r.execution.empty()) j["execution"] = r.execution;
    releases.push_back(std::move(j));
  }
  return yaml::dump({{"version", "v1"}, {"releases", releases}});
}

nlohmann::json ReleaseHistory::to_object(const std::string& release_name, const std::string& ns,
                                         bool as_secret) const {
  nlohmann::json meta = {{"name", release_name},
                         {"labels", {{"app.kubernetes.io/managed-by", "capstan"}}}};
  if (!ns.empty()) meta["namespace"] = ns;
  nlohmann::json obj = {
      {"apiVersion", "v1"}, {"kind", as_secret ? "Secret" : "ConfigMap"}, {"metadata", meta}};
  if (as_secret) {
    obj["type"] = "Opaque";
    obj["data"] = {{kDataKey, kube::base64_encode(to_yaml())}};
  } else {
    obj["data"] = {{kDataKey, to_yaml()}};
  }
  return obj;
}

Release& ReleaseHistory::create_release(std::vector<ResourceId> resources) {
  Release r;
  r.number = releases_.empty() ? 1 : releases_.front().number + 1;
  r.resources = std::move(resources);
  releases_.insert(releases_.begin(), std::move(r));
  return releases_.front();
}

Release* ReleaseHistory::latest() {
  return releases_.empty() ? nullptr : &releases_.front();
}
const Release* ReleaseHistory::latest() const {
  return releases_.empty() ? nullptr : &releases_.front();
}

const Release* ReleaseHistory::last_successful() const {
  for (const auto& r : releases_) {
    if (r.status == ReleaseStatus::Succeeded) return &r;
  }
  return nullptr;
}

const Release* ReleaseHistory::previous_rollback_eligible(int current_number) const {
  for (const auto& r : releases_) {
    if (r.number < current_number && r.status == ReleaseStatus::Succeeded) return &r;
  }
  return nullptr;
}

Release* ReleaseHistory::find(int number) {
  for (auto& r : releases_) {
    if (r.number == number) return &r;
  }
  return nullptr;
}

void ReleaseHistory::cleanup(std::size_t keep) {
  const Release* last = last_successful();
  int last_number = last ? last->number : 0;
  std::erase_if(releases_, [&](const Release& r) {
    return r.number < last_number || r.status == ReleaseStatus::Failed;
  });
  if (releases_.size() > keep) releases_.resize(keep);
}

} // namespace capstan::manifest
