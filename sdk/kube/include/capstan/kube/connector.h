// A resolved K8sCluster connector (as the coordinator hands it to plugins, credentials
// included) turned into the configuration the client needs.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

#include "capstan/kube/config.h"

namespace capstan::kube {

// The connector's shapes: credential.type Kubeconfig (kubeconfig text or kubeconfigPath, with
// ${VAR} and ~ expanded from the environment; optional context), ManualConfig (masterUrl,
// skipTlsVerify, auth ServiceAccount/UsernamePassword/ClientKeyCert, caCert), or
// InheritFromDelegate (the pod's service account, else the default kubeconfig). `mask` is
// given every secret value met on the way. Throws Error(kConfiguration) naming the connector.
ClusterConfig cluster_from_connector(const nlohmann::json& connector,
                                     const std::function<void(const std::string&)>& mask);

} // namespace capstan::kube
