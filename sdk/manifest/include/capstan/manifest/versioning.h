// ConfigMap and Secret versioning: each release gets its own copies, named <name>-<release>,
// so a rollback finds the configuration its pods were started with.
#pragma once

#include <string>
#include <vector>

#include "capstan/manifest/resource.h"

namespace capstan::manifest {

struct Renamed {
  ResourceId from; // the name in the manifests
  std::string to;  // the versioned name
};

// True for ConfigMaps and Secrets not annotated harness.io/skip-versioning: "true".
bool should_version(const Resource& r);

// Renames every ConfigMap and Secret that should be versioned to <name>-<release_number>
// (marking it versioned) and rewrites the references to them in pod specs: volumes
// (configMap, secret, projected sources), envFrom, env valueFrom configMapKeyRef and
// secretKeyRef of containers, init and ephemeral containers, and imagePullSecrets. References
// resolve in the pod's namespace, so call default_namespace first.
std::vector<Renamed> apply_versioning(std::vector<Resource>& resources, int release_number);

} // namespace capstan::manifest
