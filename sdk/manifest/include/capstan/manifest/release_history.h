// The release history kept in the cluster, one object per release name, in the format Harness
// keeps it: a ConfigMap (or Secret) named after the release whose "releaseHistory" key holds
//
//   version: v1
//   releases:                      # newest first
//   - number: 3
//     status: Succeeded            # InProgress | Succeeded | Failed
//     resources: [{kind, name, namespace, versioned}, ...]
//     managedWorkload: {kind, name, namespace, versioned}
//     managedWorkloadRevision: "3"
//     managedWorkloads: [{workload: {...}, revision: "3"}, ...]
//     bgEnvironment: blue          # blue-green releases only
//     primaryService: web          # blue-green: the Services the swap exchanges
//     stageService: web-stage
//     canaryWorkload: {kind, name, namespace, versioned}   # canary releases only
//     execution: <executionId>/<stageId>                   # the run that made the release
// The last four are Capstan's; readers that do not know them skip them.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capstan/manifest/resource.h"

namespace capstan::manifest {

enum class ReleaseStatus { InProgress, Succeeded, Failed };
std::string to_string(ReleaseStatus s);

struct WorkloadRevision {
  ResourceId workload;
  std::string revision;
};

struct Release {
  int number = 0;
  ReleaseStatus status = ReleaseStatus::InProgress;
  std::vector<ResourceId> resources;
  std::optional<ResourceId> managed_workload;
  std::string managed_workload_revision;
  std::vector<WorkloadRevision> managed_workloads;
  std::string bg_environment;
  std::string primary_service;
  std::string stage_service;
  std::optional<ResourceId> canary_workload;
  std::string execution;
};

class ReleaseHistory {
public:
  static constexpr const char* kDataKey = "releaseHistory";

  // Reads the YAML text; `where` names it in errors (e.g. "ConfigMap default/release-ab12").
  static ReleaseHistory parse(std::string_view yaml_text, const std::string& where);
  // Reads the stored object (a ConfigMap's data or a Secret's base64 data); an object without
  // the key is an empty history.
  static ReleaseHistory from_object(const nlohmann::json& object);

  std::string to_yaml() const;
  // The object that stores the history: a ConfigMap, or an Opaque Secret when `as_secret`.
  nlohmann::json to_object(const std::string& release_name, const std::string& ns,
                           bool as_secret = false) const;

  // A new InProgress release numbered one past the latest (1 for the first), made latest.
  Release& create_release(std::vector<ResourceId> resources);
  Release* latest();
  const Release* latest() const;
  const Release* last_successful() const;
  // The newest Succeeded release older than `current_number`: what a rollback restores.
  const Release* previous_rollback_eligible(int current_number) const;
  Release* find(int number);
  // Drops failed releases and those older than the last success, as Harness does before it
  // stores the history; keeps at most `keep` releases.
  void cleanup(std::size_t keep = 100);

  const std::vector<Release>& releases() const { return releases_; }
  bool empty() const { return releases_.empty(); }

private:
  std::vector<Release> releases_; // newest first
};

} // namespace capstan::manifest
