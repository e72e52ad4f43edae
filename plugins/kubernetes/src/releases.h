// Releases kept in the cluster: the release history ConfigMap Harness keeps (one per release
// name), and a Secret per release holding the objects it applied, which rollbacks re-apply.
#pragma once

#include <capstan/kube/client.h>
#include <capstan/manifest/release_history.h>
#include <capstan/manifest/resource.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace capstan::plugins::kubernetes {

class ReleaseStore {
public:
  ReleaseStore(const kube::Client& client, std::string ns, std::string release_name);

  // The history, empty when the release name was never deployed. A stored history that does
  // not parse is an InvalidInput error naming the object.
  manifest::ReleaseHistory load();
  // `even_if_cancelled`: recording the outcome of a step that was cancelled still goes out.
  void save(const manifest::ReleaseHistory& history, bool even_if_cancelled = false);

  // The objects release `number` applied (Secrets included: hence a Secret).
  void save_manifests(int number, const std::vector<manifest::Resource>& resources);
  std::optional<std::vector<nlohmann::json>> load_manifests(int number);

  // Drops stored manifests of releases no longer in `history`, and the versioned ConfigMaps
  // and Secrets only those releases used.
  void collect_garbage(const manifest::ReleaseHistory& before,
                       const manifest::ReleaseHistory& after);

  // Every object any release recorded (versioned ones included), newest release first, without
  // duplicates.
  static std::vector<manifest::ResourceId> all_resources(const manifest::ReleaseHistory& h);
  // The history ConfigMap and every stored-manifests Secret of the release name.
  void remove_records();

  std::string manifests_name(int number) const;
  const std::string& release_name() const { return release_name_; }
  const std::string& namespace_() const { return ns_; }

private:
  kube::Client client_;
  std::string ns_;
  std::string release_name_;
};

} // namespace capstan::plugins::kubernetes
