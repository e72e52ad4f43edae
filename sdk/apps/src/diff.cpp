// Desired against live, normalised: projections on the desired fields, managed fields, ignore
// rules; sync status and health.
#include "capstan/apps/diff.h"

#include <capstan/kube/base64.h>

#include <algorithm>
#include <map>
#include <set>

namespace capstan::apps {

using nlohmann::json;

std::string_view to_string(SyncStatus status) {
  switch (status) {
  case SyncStatus::kSynced:
    return "Synced";
  case SyncStatus::kOutOfSync:
    return "OutOfSync";
  case SyncStatus::kUnknown:
    return "Unknown";
  }
  return "Unknown";
}

namespace {

using Path =
    std::vector<std::string>; // managed-fields segments: "f:name", "k:{...}", "v:..", "i:N"

void collect_paths(const json& node, Path& current, std::vector<Path>& out) {
  if (!node.is_object()) return;
  bool leaf = true;
  for (const auto& [key, child] : node.items()) {
    if (key == ".") continue;
    leaf = false;
    current.push_back(key);
    collect_paths(child, current, out);
    current.pop_back();
  }
  if (leaf && !current.empty()) out.push_back(current);
}

std::vector<Path> owned_paths(const json& live, const std::vector<std::string>& managers) {
  std::vector<Path> out;
  const json mf = live.value("metadata", json::object()).value("managedFields", json::array());
  if (!mf.is_array()) return out;
  for (const auto& entry : mf) {
    if (!entry.is_object()) continue;
    std::string manager = entry.value("manager", "");
    if (std::find(managers.begin(), managers.end(), manager) == managers.end()) continue;
    Path current;
    collect_paths(entry.value("fieldsV1", json::object()), current, out);
  }
  return out;
}

// Whether a list element is the one a managed-fields key names. With `defaulted`, a key field
// the element leaves out matches too: the element is a desired one, and the server fills that
// field with its default (a container port's protocol) before it records the key.
bool element_matches(const json& element, const std::string& key_json, bool defaulted = false) {
  json keys = json::parse(key_json, nullptr, false);
  if (!keys.is_object() || !element.is_object()) return false;
  for (const auto& [k, v] : keys.items()) {
    auto it = element.find(k);
    if (it == element.end() && defaulted) continue;
    if (it == element.end() || *it != v) return false;
  }
  return true;
}

// Calls fn(parent, key-or-index) for every node the path reaches; the walk stops where the
// document has nothing.
bool path_exists(const json& v, const Path& path, std::size_t i, bool defaulted = false) {
  if (i == path.size()) return true;
  const std::string& seg = path[i];
  if (seg.rfind("f:", 0) == 0) {
    if (!v.is_object()) return false;
    auto it = v.find(seg.substr(2));
    return it != v.end() && !it->is_null() && path_exists(*it, path, i + 1, defaulted);
  }
  if (!v.is_array()) return false;
  if (seg.rfind("k:", 0) == 0) {
    for (const auto& e : v) {
      if (element_matches(e, seg.substr(2), defaulted) && path_exists(e, path, i + 1, defaulted))
        return true;
    }
    return false;
  }
  if (seg.rfind("v:", 0) == 0) {
    json value = json::parse(seg.substr(2), nullptr, false);
    return std::find(v.begin(), v.end(), value) != v.end();
  }
  if (seg.rfind("i:", 0) == 0) {
    std::size_t index = std::stoul(seg.substr(2));
    return index < v.size() && path_exists(v[index], path, i + 1, defaulted);
  }
  return false;
}

void path_remove(json& v, const Path& path, std::size_t i) {
  if (i >= path.size()) return;
  const std::string& seg = path[i];
  bool last = i + 1 == path.size();
  if (seg.rfind("f:", 0) == 0) {
    if (!v.is_object()) return;
    auto it = v.find(seg.substr(2));
    if (it == v.end()) return;
    if (last)
      v.erase(it);
    else
      path_remove(*it, path, i + 1);
    return;
  }
  if (!v.is_array()) return;
  if (seg.rfind("k:", 0) == 0) {
    for (std::size_t k = v.size(); k-- > 0;) {
      if (!element_matches(v[k], seg.substr(2))) continue;
      if (last)
        v.erase(k);
      else
        path_remove(v[k], path, i + 1);
    }
  } else if (seg.rfind("v:", 0) == 0) {
    json value = json::parse(seg.substr(2), nullptr, false);
    for (std::size_t k = v.size(); k-- > 0;) {
      if (v[k] == value) v.erase(k);
    }
  }
}

std::string path_pointer(const Path& path) {
  std::string out;
  for (const auto& seg : path) {
    out += "/" + (seg.rfind("f:", 0) == 0 ? yaml::pointer_escape(seg.substr(2)) : seg);
  }
  return out;
}

bool empty_value(const json& v) {
  return v.is_null() || ((v.is_object() || v.is_array()) && v.empty());
}

bool scalars_equal(const json& d, const json& l) {
  if (d == l) return true;
  if (d.is_number() && l.is_number()) return d.get<double>() == l.get<double>();
  return false;
}

// Compares the fields the desired value sets.
void project(const json& d, const json& l, const std::string& pointer,
             std::vector<std::string>& out) {
  if (d.is_object()) {
    if (!l.is_object()) {
      if (!(empty_value(d) && l.is_null())) out.push_back(pointer);
      return;
    }
    for (const auto& [k, dv] : d.items()) {
      std::string child = yaml::pointer_append(pointer, k);
      auto it = l.find(k);
      if (it == l.end() || it->is_null()) {
        if (!empty_value(dv)) out.push_back(child);
        continue;
      }
      project(dv, *it, child, out);
    }
    return;
  }
  if (d.is_array()) {
    if (!l.is_array() || l.size() != d.size()) {
      if (!(d.empty() && l.is_null())) out.push_back(pointer);
      return;
    }
    for (std::size_t i = 0; i < d.size(); ++i)
      project(d[i], l[i], yaml::pointer_append(pointer, i), out);
    return;
  }
  if (d.is_null()) return;
  if (!scalars_equal(d, l)) out.push_back(pointer);
}

void remove_pointer(json& v, const std::string& pointer) {
  if (pointer.empty()) return;
  try {
    json::json_pointer p(pointer);
    if (!v.contains(p)) return;
    json& parent = v.at(p.parent_pointer());
    const std::string last = p.back();
    if (parent.is_object()) {
      parent.erase(last);
    } else if (parent.is_array()) {
      std::size_t index = std::stoul(last);
      if (index < parent.size()) parent.erase(index);
    }
  } catch (const std::exception&) {
    // A pointer that does not fit this object's shape ignores nothing here.
  }
}

// What the comparison looks at: without server-owned metadata, status, and with a Secret's
// stringData folded into data as the API server does.
json normalize_desired(const json& desired) {
  json d = desired;
  d.erase("status");
  if (d.contains("metadata") && d["metadata"].is_object()) {
    json& meta = d["metadata"];
    for (const char* owned : {"creationTimestamp", "resourceVersion", "uid", "generation",
                              "managedFields", "selfLink", "generateName"}) {
      meta.erase(owned);
    }
  }
  if (d.value("kind", "") == "Secret" && d.value("apiVersion", "") == "v1" &&
      d.contains("stringData") && d["stringData"].is_object()) {
    for (const auto& [k, v] : d["stringData"].items()) {
      if (v.is_string()) d["data"][k] = kube::base64_encode(v.get<std::string>());
    }
    d.erase("stringData");
  }
  return d;
}

} // namespace

json strip_ignored(const json& desired, const std::vector<IgnoreDifference>& ignore) {
  json out = desired;
  ResourceKey key = ResourceKey::of(desired);
  for (const auto& rule : ignore) {
    if (!rule.matches(key.group, key.kind, key.namespace_, key.name)) continue;
    for (const auto& p : rule.json_pointers) remove_pointer(out, p);
  }
  return out;
}

std::vector<std::string> diff_object(const json& desired, const json& live,
                                     const std::vector<IgnoreDifference>& ignore,
                                     std::string_view field_manager) {
  json d = normalize_desired(desired);
  json l = live;
  ResourceKey key = ResourceKey::of(desired);
  for (const auto& rule : ignore) {
    if (!rule.matches(key.group, key.kind, key.namespace_, key.name)) continue;
    for (const auto& p : rule.json_pointers) {
      remove_pointer(d, p);
      remove_pointer(l, p);
    }
    for (const auto& path : owned_paths(live, rule.managed_fields_managers)) {
      path_remove(d, path, 0);
      path_remove(l, path, 0);
    }
  }
  std::vector<std::string> out;
  project(d, l, "", out);
  // Fields Git stopped setting: applied by us before, still live, absent from the desired.
  if (!field_manager.empty()) {
    for (const auto& path : owned_paths(live, {std::string(field_manager)})) {
      if (path_exists(l, path, 0) && !path_exists(d, path, 0, true))
        out.push_back(path_pointer(path));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool is_hook(const json& object) {
  std::string hook = annotation(object, kHookAnnotation);
  if (hook.empty()) return false;
  return hook.find("PreSync") != std::string::npos || hook.find("PostSync") != std::string::npos ||
         hook.find("SyncFail") != std::string::npos || hook.find("Sync") != std::string::npos;
}

json ResourceStatus::to_json() const {
  json out = {{"group", key.group}, {"version", ""},
              {"kind", key.kind},   {"namespace", key.namespace_},
              {"name", key.name},   {"status", std::string(apps::to_string(status))},
              {"hook", hook},       {"requiresPruning", requires_pruning},
              {"exists", exists}};
  auto slash = api_version.find('/');
  out["version"] = slash == std::string::npos ? api_version : api_version.substr(slash + 1);
  if (health) {
    out["health"] = {{"status", std::string(kube::to_string(health->status))}};
    if (!health->message.empty()) out["health"]["message"] = health->message;
  }
  if (!differences.empty()) out["differences"] = differences;
  return out;
}

const ResourceStatus* Comparison::find(const ResourceKey& key) const {
  for (const auto& r : resources) {
    if (r.key == key) return &r;
  }
  return nullptr;
}

json Comparison::to_json() const {
  json res = json::array();
  for (const auto& r : resources) res.push_back(r.to_json());
  json out = {{"sync", {{"status", std::string(to_string(sync))}}},
              {"health", {{"status", std::string(kube::to_string(health))}}},
              {"resources", res}};
  if (!health_message.empty()) out["health"]["message"] = health_message;
  return out;
}

Comparison compare(const Application& app, const std::vector<DesiredObject>& desired,
                   const std::vector<json>& live) {
  std::map<ResourceKey, const json*> live_by_key;
  for (const auto& l : live) live_by_key.emplace(ResourceKey::of(l), &l);
  Comparison c;
  c.sync = SyncStatus::kSynced;
  std::set<ResourceKey> desired_keys;
  auto account_health = [&](const ResourceStatus& r) {
    if (r.hook || r.requires_pruning || !r.health) return;
    if (kube::is_worse(r.health->status, c.health)) {
      c.health = r.health->status;
      c.health_message = r.health->message;
    }
  };
  for (const auto& d : desired) {
    ResourceStatus r;
    r.key = ResourceKey::of(d.object);
    r.api_version = d.object.value("apiVersion", "");
    r.hook = is_hook(d.object);
    if (!r.key.name.empty()) desired_keys.insert(r.key);
    auto it = r.key.name.empty() ? live_by_key.end() : live_by_key.find(r.key);
    if (it == live_by_key.end()) {
      r.exists = false;
      r.status = SyncStatus::kOutOfSync;
      if (!r.hook)
        r.health = kube::Health{kube::HealthStatus::kMissing, "the object does not exist"};
    } else {
      r.exists = true;
      r.differences = diff_object(d.object, *it->second, app.ignore_differences);
      r.status = r.differences.empty() ? SyncStatus::kSynced : SyncStatus::kOutOfSync;
      r.health = kube::assess_health(*it->second);
    }
    if (r.hook) {
      // Hooks run during syncs; they never make the application OutOfSync.
      r.status = r.exists ? SyncStatus::kSynced : SyncStatus::kOutOfSync;
    } else if (r.status == SyncStatus::kOutOfSync) {
      c.sync = SyncStatus::kOutOfSync;
    }
    account_health(r);
    c.resources.push_back(std::move(r));
  }
  for (const auto& l : live) {
    ResourceKey key = ResourceKey::of(l);
    if (desired_keys.count(key) || tracked_by(l) != app.name || is_hook(l)) continue;
    ResourceStatus r;
    r.key = key;
    r.api_version = l.value("apiVersion", "");
    r.exists = true;
    r.requires_pruning = true;
    r.status = SyncStatus::kOutOfSync;
    r.health = kube::assess_health(l);
    c.sync = SyncStatus::kOutOfSync;
    c.resources.push_back(std::move(r));
  }
  return c;
}

} // namespace capstan::apps
