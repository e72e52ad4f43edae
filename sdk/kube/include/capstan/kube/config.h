// Where a cluster is and how to authenticate to it: kubeconfig files (as kubectl reads them)
// and the in-cluster service-account setup.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace capstan::kube {

// A kubeconfig user's `exec` credential plugin (client.authentication.k8s.io ExecCredential).
struct ExecConfig {
  std::string api_version; // client.authentication.k8s.io/v1 or v1beta1
  std::string command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  std::string install_hint;
  bool provide_cluster_info = false;
};

// Everything the client needs to reach one cluster as one user. Credential fields are secrets:
// they never appear in logs or error messages.
struct ClusterConfig {
  std::string context; // the context it came from, for messages ("" when built by hand)
  std::string server;  // https://host:port[/prefix]
  // Trust: the CA bundle (PEM), or no verification at all.
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name; // the name to verify the server certificate against
  std::string proxy_url;
  // Credentials, at most one kind in use: a bearer token (inline or a file re-read as it
  // rotates), a client certificate and key (PEM), basic auth, or an exec plugin.
  std::string token;
  std::string token_file;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string username;
  std::string password;
  std::optional<ExecConfig> exec;
  std::string namespace_; // the context's namespace ("" when it names none)
};

struct KubeconfigOptions {
  std::string context;               // "" means current-context
  std::filesystem::path base_dir;    // relative file references resolve here
  std::string source = "kubeconfig"; // the name errors use for the text
};

// Parses kubeconfig text. Throws Error(kConfiguration) naming the source and what is wrong
// (no such context, a cluster without server, an unreadable certificate file, an unsupported
// auth-provider, ...).
ClusterConfig parse_kubeconfig(std::string_view text, const KubeconfigOptions& options = {});

// Reads one kubeconfig file (relative references resolve next to it).
ClusterConfig load_kubeconfig(const std::filesystem::path& file, const std::string& context = "");

// What kubectl uses: the files in $KUBECONFIG (':'-separated, merged with the first file to
// set a value winning), else ~/.kube/config.
ClusterConfig load_default_kubeconfig(const std::string& context = "");

// The in-cluster configuration of a pod: KUBERNETES_SERVICE_HOST/PORT and the service account
// files under `sa_dir` (token, re-read as it rotates; ca.crt; namespace). Throws
// Error(kConfiguration) outside a cluster.
ClusterConfig in_cluster_config(
    const std::filesystem::path& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

} // namespace capstan::kube
