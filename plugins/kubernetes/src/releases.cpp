// The release history object and the stored manifests of each release.
#include "releases.h"

#include <capstan/kube/base64.h>
#include <capstan/manifest/error.h>
#include <capstan/yaml/yaml.h>

#include <set>

#include "applier.h"
#include "errors.h"

namespace capstan::plugins::kubernetes {

using nlohmann::json;

namespace {
constexpr const char* kManifestsKey = "manifests.yaml";
constexpr const char* kReleaseLabel = "harness.io/release-name";
constexpr const char* kManagedBy = "app.kubernetes.io/managed-by";
} // namespace

ReleaseStore::ReleaseStore(const kube::Client& client, std::string ns, std::string release_name)
    : client_(client), ns_(std::move(ns)), release_name_(std::move(release_name)) {}

std::string ReleaseStore::manifests_name(int number) const {
  return release_name_ + ".manifests.v" + std::to_string(number);
}

manifest::ReleaseHistory ReleaseStore::load() {
  return guarded([&] {
    auto cm = client_.try_get({"v1", "ConfigMap", ns_, release_name_});
    if (!cm) return manifest::ReleaseHistory{};
    return manifest::ReleaseHistory::from_object(*cm);
  });
}

void ReleaseStore::save(const manifest::ReleaseHistory& history, bool even_if_cancelled) {
  kube::Client client = even_if_cancelled ? client_.with_cancel({}) : client_;
  guarded([&] {
    json object = history.to_object(release_name_, ns_);
    object["metadata"]["labels"][kReleaseLabel] = release_name_;
    kube::ApplyOptions o;
    o.field_manager = kFieldManager;
    o.force = true;
    client.apply(object, o);
    return 0;
  });
}

void ReleaseStore::save_manifests(int number, const std::vector<manifest::Resource>& resources) {
  std::vector<json> docs;
  for (const auto& r : resources) docs.push_back(r.object);
  json secret = {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"type", "capstan.io/release-manifests"},
                 {"metadata",
                  {{"name", manifests_name(number)},
                   {"namespace", ns_},
                   {"labels",
                    {{kReleaseLabel, release_name_},
                     {kManagedBy, "capstan"},
                     {"capstan.io/release-number", std::to_string(number)}}}}},
                 {"data", {{kManifestsKey, kube::base64_encode(yaml::dump_all(docs))}}}};
  guarded([&] {
    kube::ApplyOptions o;
    o.field_manager = kFieldManager;
    o.force = true;
    try {
      client_.apply(secret, o);
    } catch (const kube::Error& e) {
      if (e.is(kube::ErrorKind::kRequestEntityTooLarge) || e.is(kube::ErrorKind::kInvalid)) {
        throw invalid("release " + std::to_string(number) +
                      "'s manifests cannot be stored for "
                      "rollback (" +
                      e.what() + "); they may be over the 1 MiB limit of a Secret");
      }
      throw;
    }
    return 0;
  });
}

std::optional<std::vector<json>> ReleaseStore::load_manifests(int number) {
  return guarded([&]() -> std::optional<std::vector<json>> {
    auto s = client_.try_get({"v1", "Secret", ns_, manifests_name(number)});
    if (!s) return std::nullopt;
    std::string where = "Secret " + ns_ + "/" + manifests_name(number);
    auto data = s->value("data", json::object());
    if (!data.contains(kManifestsKey) || !data[kManifestsKey].is_string()) {
      throw invalid(where + " holds no " + kManifestsKey);
    }
    auto text = kube::base64_decode(data[kManifestsKey].get<std::string>());
    if (!text) throw invalid(where + ": " + kManifestsKey + " is not base64");
    std::vector<json> out;
    try {
      for (auto& d : yaml::load_all(*text, where)) {
        if (d.value.is_object()) out.push_back(std::move(d.value));
      }
    } catch (const yaml::Error& e) {
      throw invalid(e.what());
    }
    return out;
  });
}

std::vector<manifest::ResourceId> ReleaseStore::all_resources(const manifest::ReleaseHistory& h) {
  std::vector<manifest::ResourceId> out;
  std::set<std::string> seen;
  for (const auto& rel : h.releases()) {
    auto add = [&](const manifest::ResourceId& id) {
      if (seen.insert(id.key()).second) out.push_back(id);
    };
    for (const auto& id : rel.resources) add(id);
    if (rel.canary_workload) add(*rel.canary_workload);
  }
  return out;
}

void ReleaseStore::collect_garbage(const manifest::ReleaseHistory& before,
                                   const manifest::ReleaseHistory& after) {
  std::set<int> kept;
  std::set<std::string> still_used;
  for (const auto& r : after.releases()) {
    kept.insert(r.number);
    for (const auto& id : r.resources) still_used.insert(id.key());
  }
  for (const auto& r : before.releases()) {
    if (kept.count(r.number) > 0) continue;
    kube::DeleteOptions o;
    try {
      client_.remove({"v1", "Secret", ns_, manifests_name(r.number)}, o);
      for (const auto& id : r.resources) {
        if (!id.versioned || still_used.count(id.key()) > 0) continue;
        client_.remove({"v1", id.kind, id.namespace_, id.name}, o);
      }
    } catch (const kube::Error& e) {
      if (e.is(kube::ErrorKind::kCancelled)) throw sdk::Cancelled();
      // Leftovers of old releases are not worth failing a deployment for.
    }
  }
}

void ReleaseStore::remove_records() {
  guarded([&] {
    kube::ListOptions lo;
    lo.label_selector = std::string(kReleaseLabel) + "=" + release_name_;
    for (const auto& s : client_.list("v1", "Secret", ns_, lo).items) {
      if (s.value("type", "") != "capstan.io/release-manifests") continue;
      client_.remove(kube::ObjectRef::of(s));
    }
    client_.remove({"v1", "ConfigMap", ns_, release_name_});
    return 0;
  });
}

} // namespace capstan::plugins::kubernetes
