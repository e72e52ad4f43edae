// Desired against live: which objects differ (normalised as Argo CD does), the sync status of
// each and of the application, health per object and the application's (the worst).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <capstan/kube/health.h>

#include "capstan/apps/application.h"
#include "capstan/apps/render.h"
#include "capstan/apps/resources.h"

namespace capstan::apps {

enum class SyncStatus { kSynced, kOutOfSync, kUnknown };
std::string_view to_string(SyncStatus status);

// The field manager Capstan applies with; its managed fields tell which fields Git used to set.
inline constexpr const char* kFieldManager = "capstan-gitops";

// The JSON pointers at which `live` differs from `desired`. The comparison is on the fields
// the desired object sets: what the server fills in (defaults, status, uid, managedFields,
// resourceVersion, ...) is not a difference. Fields `field_manager` applied before but that
// the desired object no longer sets are differences (they would be removed by a sync). Rules of
// `ignore` that match the object remove their JSON pointers, and the fields owned by their
// managedFieldsManagers, from both sides first.
std::vector<std::string> diff_object(const nlohmann::json& desired, const nlohmann::json& live,
                                     const std::vector<IgnoreDifference>& ignore = {},
                                     std::string_view field_manager = kFieldManager);

// The desired object with the ignored JSON pointers of matching rules removed (for syncs with
// RespectIgnoreDifferences=true, which leave those fields as the cluster has them).
nlohmann::json strip_ignored(const nlohmann::json& desired,
                             const std::vector<IgnoreDifference>& ignore);

struct ResourceStatus {
  ResourceKey key;
  std::string api_version;
  SyncStatus status = SyncStatus::kUnknown;
  bool hook = false;                    // a hook: not part of the sync status
  bool requires_pruning = false;        // live, tracked by the application, gone from Git
  bool exists = false;                  // live
  std::optional<kube::Health> health;   // nullopt: the kind has no health (ConfigMap, ...)
  std::vector<std::string> differences; // JSON pointers
  nlohmann::json to_json() const;
};

struct Comparison {
  SyncStatus sync = SyncStatus::kUnknown;
  kube::HealthStatus health = kube::HealthStatus::kHealthy;
  std::string health_message;            // of the first resource with the worst health
  std::vector<ResourceStatus> resources; // desired first (in input order), then extra live ones
  const ResourceStatus* find(const ResourceKey& key) const;
  nlohmann::json to_json() const;
};

// Compares prepared desired objects (see prepare_desired) with the live objects: those the
// application tracks, and the live counterparts of desired objects. Live objects tracked by the
// application but not desired require pruning (OutOfSync); desired objects missing live are
// OutOfSync and Missing. Hooks are listed but count neither for sync nor for health. The
// application's health is the worst of its resources' (kube::assess_health); without any it
// is Healthy.
Comparison compare(const Application& app, const std::vector<DesiredObject>& desired,
                   const std::vector<nlohmann::json>& live);

// Whether an object is a hook (its hook annotation names a phase; "Skip" is not a hook).
bool is_hook(const nlohmann::json& object);

} // namespace capstan::apps
