// K8sCluster connectors → ClusterConfig.
#include "capstan/kube/connector.h"

#include <cstdlib>

#include "capstan/kube/error.h"
#include "json_fields.h"

namespace capstan::kube {
namespace {

using nlohmann::json;

Error invalid(const std::string& message) {
  return Error(ErrorKind::kConfiguration, message);
}

// ${VAR} and a leading ~ in a kubeconfig path, expanded from the process environment.
std::string expand_path(const std::string& path) {
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '$' && i + 1 < path.size() && path[i + 1] == '{') {
      auto close = path.find('}', i);
      if (close == std::string::npos) {
        throw invalid("kubeconfig path '" + path + "' has an unclosed ${");
      }
      std::string var = path.substr(i + 2, close - i - 2);
      const char* v = std::getenv(var.c_str());
      if (v == nullptr) {
        throw invalid("kubeconfig path '" + path + "' uses ${" + var +
                      "}, which is not set in the delegate's environment");
      }
      out += v;
      i = close;
    } else {
      out += path[i];
    }
  }
  if (out.rfind("~/", 0) == 0) {
    if (const char* home = std::getenv("HOME")) out = std::string(home) + out.substr(1);
  }
  return out;
}

} // namespace

ClusterConfig cluster_from_connector(const json& connector,
                                     const std::function<void(const std::string&)>& mask) {
  const std::string who = "connector '" + detail::text(connector, "identifier") + "'";
  const std::string type = detail::text(connector, "type");
  if (!type.empty() && type != "K8sCluster") {
    throw invalid(who + " is a " + type + " connector, not a K8sCluster one");
  }
  const json cred = connector.value("credential", json::object());
  const std::string ct = detail::text(cred, "type");
  auto hide = [&](const ClusterConfig& c) {
    mask(c.token);
    mask(c.client_key_pem);
    mask(c.password);
  };
  try {
    if (ct == "Kubeconfig") {
      const std::string context = detail::text(cred, "context");
      const std::string content = detail::text(cred, "kubeconfig");
      if (!content.empty()) {
        mask(content);
        KubeconfigOptions o;
        o.context = context;
        o.source = "the kubeconfig of " + who;
        auto c = parse_kubeconfig(content, o);
        hide(c);
        return c;
      }
      std::string path = detail::text(cred, "kubeconfigPath");
      if (path.empty()) path = detail::text(cred, "path");
      if (path.empty()) throw invalid(who + " has neither a kubeconfig nor a kubeconfig path");
      auto c = load_kubeconfig(expand_path(path), context);
      hide(c);
      return c;
    }
    if (ct == "ManualConfig") {
      ClusterConfig c;
      c.context = who;
      c.server = detail::text(cred, "masterUrl");
      while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
      if (c.server.empty()) throw invalid(who + " has no masterUrl");
      c.insecure_skip_tls_verify = cred.value("skipTlsVerify", false);
      const json auth = cred.value("auth", json::object());
      const std::string at = detail::text(auth, "type");
      c.ca_pem = detail::text(auth, "caCert");
      if (at == "ServiceAccount") {
        c.token = detail::text(auth, "token");
      } else if (at == "UsernamePassword") {
        c.username = detail::text(auth, "username");
        c.password = detail::text(auth, "password");
      } else if (at == "ClientKeyCert") {
        c.client_cert_pem = detail::text(auth, "clientCert");
        c.client_key_pem = detail::text(auth, "clientKey");
        if (!detail::text(auth, "clientKeyPassphrase").empty()) {
          throw invalid(who + ": encrypted client keys (clientKeyPassphraseRef) are not "
                              "supported; store the key unencrypted in the secret");
        }
      } else {
        throw invalid(who + ": unknown auth type '" + at +
                      "' (ServiceAccount, UsernamePassword or ClientKeyCert)");
      }
      hide(c);
      return c;
    }
    if (ct == "InheritFromDelegate" || ct.empty()) {
      // The delegate's own identity: its pod's service account, else its kubeconfig.
      if (std::getenv("KUBERNETES_SERVICE_HOST") != nullptr) return in_cluster_config();
      return load_default_kubeconfig();
    }
  } catch (const Error& e) {
    if (std::string(e.what()).rfind(who, 0) == 0) throw;
    throw Error(e.kind(), who + ": " + e.what());
  }
  throw invalid(who + ": unknown credential type '" + ct +
                "' (Kubeconfig, ManualConfig or InheritFromDelegate)");
}

} // namespace capstan::kube
