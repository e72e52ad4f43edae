// Applying rendered objects to a cluster: kinds checked against discovery, a server-side dry
// run, server-side apply in Harness's order (objects of one kind concurrently), deletion in the
// reverse order.
#pragma once

#include <capstan/kube/client.h>
#include <capstan/manifest/resource.h>
#include <capstan/sdk/plugin.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace capstan::plugins::kubernetes {

inline constexpr const char* kFieldManager = "capstan";

class Applier {
public:
  Applier(const kube::Client& client, const sdk::StepContext& ctx, int concurrency);

  // Every object's kind must be served by the cluster, or defined by a CustomResourceDefinition
  // among the objects. Cluster-scoped objects lose a namespace they were given by default.
  // Throws InvalidInput naming the file and line and what the cluster serves.
  void check_kinds(std::vector<manifest::Resource>& resources);

  // Server-side apply with dryRun=All of every object; nothing is changed. Objects in a
  // namespace the same set creates, and custom resources of a CRD it creates, are skipped
  // (the server cannot judge them before those exist). Throws naming the file and line of
  // every object the server refused.
  void dry_run(const std::vector<manifest::Resource>& resources);

  // Server-side apply (field manager "capstan", forced); returns the objects as the server has
  // them, in the order given. Kind by kind in Harness's order (Namespaces, then the objects
  // they hold and CustomResourceDefinitions before their custom resources, ...): a kind starts
  // once every object of the kinds before it is applied. The objects of one kind go over up to
  // `concurrency` requests at once on the client's keep-alive connections. When the server
  // refuses objects, the rest of their kind is still applied (as kubectl does), then the step
  // stops and throws naming the file and line of each refused object; a failure that is not
  // about one object (the cluster unreachable, credentials refused, cancellation) stops at once.
  std::vector<nlohmann::json> apply(const std::vector<manifest::Resource>& resources);

  // Deletes, in reverse kind order; a missing object is skipped. Returns what was deleted.
  std::vector<std::string> remove(const std::vector<manifest::ResourceId>& ids,
                                  kube::Propagation propagation = kube::Propagation::kBackground);

  const kube::Client& client() const { return client_; }

  // apiVersion of a kind, for objects known by kind only (release records, Kind/Name
  // references): the cluster's preferred version among those serving it.
  std::string api_version_of(const std::string& kind);

private:
  void run_batches(const std::vector<manifest::Resource>& resources, bool dry,
                   std::vector<nlohmann::json>* out);

  kube::Client client_;
  const sdk::StepContext& ctx_;
  int concurrency_;
};

// "file:line: " for messages about a rendered object.
std::string where(const manifest::Resource& r);

} // namespace capstan::plugins::kubernetes
