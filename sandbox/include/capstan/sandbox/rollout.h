// The Deployment controller's arithmetic, as upstream computes it: maxSurge/maxUnavailable
// resolution, how far a rolling update may scale the new ReplicaSet up and the old ones down.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace capstan::sandbox::rollout {

// An int-or-string ("25%") against a total; percentages round up or down. Throws
// std::invalid_argument on a malformed value.
int resolve(const nlohmann::json& value, int total, bool round_up);

struct Fenceposts {
  int max_surge = 0;
  int max_unavailable = 0;
};
// maxSurge rounds up, maxUnavailable rounds down; both 0 becomes maxUnavailable 1 (so a
// rollout can always progress), and maxUnavailable never exceeds the desired count.
Fenceposts fenceposts(const nlohmann::json& max_surge, const nlohmann::json& max_unavailable,
                      int desired);

struct ReplicaSetCounts {
  int replicas = 0;  // spec.replicas
  int available = 0; // status.availableReplicas
};

// The new ReplicaSet's replica count for this step of a rolling update.
int new_rs_replicas(int desired, const Fenceposts& f, int all_pods, int new_rs_current);

// New spec.replicas for each old ReplicaSet (given oldest first): unhealthy replicas are
// removed first, then available ones while availability stays at desired - maxUnavailable.
std::vector<int> scale_down_old(int desired, const Fenceposts& f,
                                const std::vector<ReplicaSetCounts>& old_sets,
                                const ReplicaSetCounts& new_set);

} // namespace capstan::sandbox::rollout
