// Object identity and tracking ids.
#include "capstan/apps/resources.h"

#include <capstan/manifest/resource.h>

#include <map>

namespace capstan::apps {

using nlohmann::json;

std::string api_group(std::string_view api_version) {
  auto slash = api_version.find('/');
  return slash == std::string_view::npos ? "" : std::string(api_version.substr(0, slash));
}

std::string annotation(const json& object, std::string_view key) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "";
  auto ann = meta->find("annotations");
  if (ann == meta->end() || !ann->is_object()) return "";
  auto it = ann->find(std::string(key));
  return it != ann->end() && it->is_string() ? it->get<std::string>() : "";
}

ResourceKey ResourceKey::of(const json& object) {
  ResourceKey k;
  k.group = api_group(object.value("apiVersion", ""));
  k.kind = object.value("kind", "");
  const json meta = object.value("metadata", json::object());
  if (meta.is_object()) {
    k.namespace_ = meta.value("namespace", "");
    k.name = meta.value("name", "");
  }
  return k;
}

std::string ResourceKey::str() const {
  return group + "/" + kind + "/" + namespace_ + "/" + name;
}

std::string tracking_id(const std::string& app, const ResourceKey& key) {
  return app + ":" + key.group + "/" + key.kind + ":" + key.namespace_ + "/" + key.name;
}

std::optional<std::string> tracked_by(const json& object) {
  std::string id = annotation(object, kTrackingAnnotation);
  auto colon = id.find(':');
  if (id.empty() || colon == std::string::npos) return std::nullopt;
  std::string app = id.substr(0, colon);
  if (id != tracking_id(app, ResourceKey::of(object))) return std::nullopt;
  return app;
}

bool builtin_namespaced(const std::string& /*api_version*/, const std::string& kind) {
  return !manifest::is_cluster_scoped(kind);
}

std::vector<DesiredObject> prepare_desired(const Application& app,
                                           std::vector<DesiredObject> objects,
                                           const NamespacedFn& namespaced) {
  std::map<ResourceKey, std::string> seen;
  for (auto& o : objects) {
    json& meta = o.object["metadata"];
    std::string api_version = o.object.value("apiVersion", "");
    std::string kind = o.object.value("kind", "");
    bool ns_scoped =
        namespaced ? namespaced(api_version, kind) : builtin_namespaced(api_version, kind);
    if (ns_scoped) {
      if (meta.value("namespace", "").empty()) {
        if (app.destination.namespace_.empty()) {
          throw ComparisonError(o.where() + ": " + kind + " " + meta.value("name", "") +
                                " has no namespace and spec.destination.namespace is empty");
        }
        meta["namespace"] = app.destination.namespace_;
      }
    } else if (meta.contains("namespace")) {
      meta.erase("namespace"); // cluster-scoped objects have none, whatever the file says
    }
    ResourceKey key = ResourceKey::of(o.object);
    if (!key.name.empty()) {
      auto [it, fresh] = seen.emplace(key, o.where());
      if (!fresh) {
        throw ComparisonError(o.where() + ": " + kind + " " + key.name +
                              " is defined twice (also at " + it->second + ")");
      }
      meta["annotations"][kTrackingAnnotation] = tracking_id(app.name, key);
    }
  }
  return objects;
}

} // namespace capstan::apps
