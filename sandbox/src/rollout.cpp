// Rolling-update arithmetic (deployment/util and rolling.go upstream).
#include "capstan/sandbox/rollout.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace capstan::sandbox::rollout {

int resolve(const nlohmann::json& value, int total, bool round_up) {
  if (value.is_null()) return 0;
  if (value.is_number_integer()) return value.get<int>();
  if (value.is_string()) {
    std::string s = value;
    if (s.empty() || s.back() != '%') {
      std::size_t used = 0;
      int v = std::stoi(s, &used);
      if (used != s.size()) throw std::invalid_argument("invalid value for IntOrString: " + s);
      return v;
    }
    std::size_t used = 0;
    int pct = std::stoi(s.substr(0, s.size() - 1), &used);
    if (used != s.size() - 1) throw std::invalid_argument("invalid value for IntOrString: " + s);
    double v = static_cast<double>(pct) * total / 100.0;
    return static_cast<int>(round_up ? std::ceil(v) : std::floor(v));
  }
  throw std::invalid_argument("invalid type for IntOrString");
}

Fenceposts fenceposts(const nlohmann::json& max_surge, const nlohmann::json& max_unavailable,
                      int desired) {
  Fenceposts f;
  f.max_surge = resolve(max_surge, desired, true);
  f.max_unavailable = resolve(max_unavailable, desired, false);
  if (f.max_surge == 0 && f.max_unavailable == 0) f.max_unavailable = 1;
  if (f.max_unavailable > desired) f.max_unavailable = desired;
  return f;
}

int new_rs_replicas(int desired, const Fenceposts& f, int all_pods, int new_rs_current) {
  int max_total = desired + f.max_surge;
  if (all_pods >= max_total) return new_rs_current;
  int scale_up = max_total - all_pods;
  scale_up = std::min(scale_up, desired - new_rs_current);
  return new_rs_current + std::max(0, scale_up);
}

std::vector<int> scale_down_old(int desired, const Fenceposts& f,
                                const std::vector<ReplicaSetCounts>& old_sets,
                                const ReplicaSetCounts& new_set) {
  std::vector<int> out;
  int old_pods = 0;
  int all_pods = new_set.replicas;
  for (const auto& o : old_sets) {
    out.push_back(o.replicas);
    old_pods += o.replicas;
    all_pods += o.replicas;
  }
  if (old_pods == 0) return out;
  int min_available = desired - f.max_unavailable;
  int new_unavailable = new_set.replicas - new_set.available;
  int max_scaled_down = all_pods - min_available - new_unavailable;
  if (max_scaled_down <= 0) return out;
  // cleanupUnhealthyReplicas: old sets' unavailable replicas go first, oldest set first.
  int cleaned = 0;
  for (std::size_t i = 0; i < old_sets.size() && cleaned < max_scaled_down; ++i) {
    if (out[i] == 0) continue;
    int unhealthy = out[i] - old_sets[i].available;
    if (unhealthy <= 0) continue;
    int n = std::min(unhealthy, max_scaled_down - cleaned);
    out[i] -= n;
    cleaned += n;
  }
  // scaleDownOldReplicaSetsForRollingUpdate: then available ones, keeping min availability.
  int available = new_set.available;
  for (std::size_t i = 0; i < old_sets.size(); ++i)
    available += std::min(old_sets[i].available, out[i]);
  if (available <= min_available) return out;
  int to_scale = available - min_available;
  for (std::size_t i = 0; i < old_sets.size() && to_scale > 0; ++i) {
    if (out[i] == 0) continue;
    int n = std::min(out[i], to_scale);
    out[i] -= n;
    to_scale -= n;
  }
  return out;
}

} // namespace capstan::sandbox::rollout
