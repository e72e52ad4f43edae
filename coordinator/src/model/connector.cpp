// Connectors: how delegates reach clusters, Git remotes, SCM APIs and registries. Credentials
// are references to secrets; the coordinator resolves them when a task needs them.
#include "model/expression_check.h"
#include "model/object.h"

namespace capstan::model {

using nlohmann::json;
using yaml::pointer_append;

namespace {

struct ConnectorWalk {
  Checker& check;
  Object& out;
};

// A secret reference field (`passwordRef`, `tokenRef`, ...): recorded as a reference.
std::string secret_ref(const json& owner, const std::string& at, const std::string& key,
                       bool required, ConnectorWalk& w, const std::string& role) {
  auto value = w.check.string(owner, at, key, required);
  if (value.empty()) return value;
  auto id = strip_scope(value);
  auto fat = pointer_append(at, key);
  if (w.check.identifier(id, fat, true)) {
    w.out.references.push_back({"secret", id, w.check.locate(fat), "", role});
  }
  return id;
}

void k8s_cluster(const json& spec, const std::string& at, ConnectorWalk& w) {
  auto& check = w.check;
  check.only(spec, at, {"credential", "delegateSelectors"});
  check.strings(spec, at, "delegateSelectors", false);
  const auto* cred = check.object(spec, at, "credential", true);
  if (cred == nullptr) return;
  auto cat = pointer_append(at, "credential");
  auto type =
      check.one_of(*cred, cat, "type", {"InheritFromDelegate", "ManualConfig", "Kubeconfig"}, true);
  auto sat = pointer_append(cat, "spec");
  if (type == "InheritFromDelegate") {
    check.only(*cred, cat, {"type", "spec"});
    if (const auto* s = check.member(*cred, cat, "spec", false);
        s != nullptr && !(s->is_object() && s->empty())) {
      check.error(sat, "InheritFromDelegate takes no spec");
    }
    return;
  }
  check.only(*cred, cat, {"type", "spec"});
  const auto* s = check.object(*cred, cat, "spec", true);
  if (s == nullptr) return;
  if (type == "Kubeconfig") {
    check.only(*s, sat, {"path", "content", "kubeconfigRef", "context"});
    int given = 0;
    if (!check.string(*s, sat, "path", false).empty()) ++given;
    if (!check.string(*s, sat, "content", false).empty()) ++given;
    if (!secret_ref(*s, sat, "kubeconfigRef", false, w, "the kubeconfig").empty()) ++given;
    check.string(*s, sat, "context", false);
    if (given != 1) {
      check.error(sat, "a Kubeconfig credential takes exactly one of 'path' (a file on the "
                       "delegate's host), 'content' (the kubeconfig inline) or 'kubeconfigRef' (a "
                       "secret holding it)");
    }
    return;
  }
  if (type != "ManualConfig") return;
  check.only(*s, sat, {"masterUrl", "auth", "skipTlsVerify"});
  auto url = check.string(*s, sat, "masterUrl", true);
  if (!url.empty() && url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) {
    check.error(pointer_append(sat, "masterUrl"),
                "masterUrl must be an http(s) URL such as https://10.0.0.1:6443, not '" + url +
                    "'");
  }
  check.boolean(*s, sat, "skipTlsVerify");
  const auto* auth = check.object(*s, sat, "auth", true);
  if (auth == nullptr) return;
  auto aat = pointer_append(sat, "auth");
  check.only(*auth, aat, {"type", "spec"});
  auto auth_type = check.one_of(*auth, aat, "type",
                                {"ServiceAccount", "UsernamePassword", "ClientKeyCert"}, true);
  const auto* as = check.object(*auth, aat, "spec", true);
  if (as == nullptr || auth_type.empty()) return;
  auto asat = pointer_append(aat, "spec");
  if (auth_type == "ServiceAccount") {
    check.only(*as, asat, {"serviceAccountTokenRef", "caCertRef"});
    secret_ref(*as, asat, "serviceAccountTokenRef", true, w, "the service account token");
    secret_ref(*as, asat, "caCertRef", false, w, "the cluster's CA certificate");
  } else if (auth_type == "UsernamePassword") {
    check.only(*as, asat, {"username", "usernameRef", "passwordRef", "caCertRef"});
    if (check.string(*as, asat, "username", false).empty() &&
        secret_ref(*as, asat, "usernameRef", false, w, "the user name").empty()) {
      check.error(asat, "UsernamePassword needs 'username' or 'usernameRef'");
    }
    secret_ref(*as, asat, "passwordRef", true, w, "the password");
    secret_ref(*as, asat, "caCertRef", false, w, "the cluster's CA certificate");
  } else {
    check.only(*as, asat,
               {"clientCertRef", "clientKeyRef", "clientKeyPassphraseRef", "clientKeyAlgorithm",
                "caCertRef"});
    secret_ref(*as, asat, "clientCertRef", true, w, "the client certificate");
    secret_ref(*as, asat, "clientKeyRef", true, w, "the client key");
    secret_ref(*as, asat, "clientKeyPassphraseRef", false, w, "the client key passphrase");
    check.string(*as, asat, "clientKeyAlgorithm", false);
    secret_ref(*as, asat, "caCertRef", false, w, "the cluster's CA certificate");
  }
}

void check_url(const std::string& url, const std::string& at, Checker& check) {
  if (url.empty()) return;
  for (const char* scheme : {"https://", "http://", "ssh://", "git://", "file://", "git@"}) {
    if (url.rfind(scheme, 0) == 0) return;
  }
  check.error(at, "'" + url +
                      "' is not a Git URL (https://, http://, ssh://, git://, file:// or "
                      "git@host:path)");
}

// Git: {url, connectionType, type: Http|Ssh, spec: {username|usernameRef, passwordRef} |
// {sshKeyRef}}
void git(const json& spec, const std::string& at, ConnectorWalk& w) {
  auto& check = w.check;
  check.only(spec, at,
             {"url", "connectionType", "validationRepo", "branchName", "type", "spec",
              "delegateSelectors", "executeOnDelegate"});
  check_url(check.string(spec, at, "url", true), pointer_append(at, "url"), check);
  check.one_of(spec, at, "connectionType", {"Repo", "Account"}, false);
  check.string(spec, at, "validationRepo", false);
  check.string(spec, at, "branchName", false);
  check.strings(spec, at, "delegateSelectors", false);
  check.boolean(spec, at, "executeOnDelegate");
  auto type = check.one_of(spec, at, "type", {"Http", "Ssh"}, true);
  const auto* s = check.object(spec, at, "spec", type == "Ssh");
  if (s == nullptr) return;
  auto sat = pointer_append(at, "spec");
  if (type == "Ssh") {
    check.only(*s, sat, {"sshKeyRef"});
    secret_ref(*s, sat, "sshKeyRef", true, w, "the SSH private key");
  } else if (type == "Http") {
    check.only(*s, sat, {"username", "usernameRef", "passwordRef"});
    check.string(*s, sat, "username", false);
    secret_ref(*s, sat, "usernameRef", false, w, "the user name");
    secret_ref(*s, sat, "passwordRef", false, w, "the password or token");
  }
}

// Github/Gitlab: {url, connectionType, apiUrl, authentication: {type: Http|Ssh, spec},
// apiAccess: {type: Token, spec: {tokenRef}}}
void scm(const json& spec, const std::string& at, ConnectorWalk& w) {
  auto& check = w.check;
  check.only(spec, at,
             {"url", "connectionType", "validationRepo", "apiUrl", "authentication", "apiAccess",
              "delegateSelectors", "executeOnDelegate"});
  check_url(check.string(spec, at, "url", true), pointer_append(at, "url"), check);
  check.one_of(spec, at, "connectionType", {"Repo", "Account"}, false);
  check.string(spec, at, "validationRepo", false);
  auto api = check.string(spec, at, "apiUrl", false);
  if (!api.empty() && api.rfind("https://", 0) != 0 && api.rfind("http://", 0) != 0) {
    check.error(pointer_append(at, "apiUrl"), "apiUrl must be an http(s) URL");
  }
  check.strings(spec, at, "delegateSelectors", false);
  check.boolean(spec, at, "executeOnDelegate");
  if (const auto* auth = check.object(spec, at, "authentication", true)) {
    auto aat = pointer_append(at, "authentication");
    check.only(*auth, aat, {"type", "spec"});
    auto type = check.one_of(*auth, aat, "type", {"Http", "Ssh"}, true);
    const auto* s = check.object(*auth, aat, "spec", true);
    auto sat = pointer_append(aat, "spec");
    if (s != nullptr && type == "Ssh") {
      check.only(*s, sat, {"sshKeyRef"});
      secret_ref(*s, sat, "sshKeyRef", true, w, "the SSH private key");
    } else if (s != nullptr && type == "Http") {
      check.only(*s, sat, {"type", "spec"});
      auto kind =
          check.one_of(*s, sat, "type",
                       {"UsernameToken", "UsernamePassword", "OAuth", "PersonalAccessToken"}, true);
      const auto* c = check.object(*s, sat, "spec", true);
      auto csat = pointer_append(sat, "spec");
      if (c != nullptr) {
        check.only(*c, csat, {"username", "usernameRef", "tokenRef", "passwordRef"});
        check.string(*c, csat, "username", false);
        secret_ref(*c, csat, "usernameRef", false, w, "the user name");
        bool token = kind != "UsernamePassword";
        secret_ref(*c, csat, token ? "tokenRef" : "passwordRef", true, w,
                   token ? "the access token" : "the password");
      }
    }
  }
  if (const auto* api_access = check.object(spec, at, "apiAccess", false)) {
    auto aat = pointer_append(at, "apiAccess");
    check.only(*api_access, aat, {"type", "spec"});
    check.one_of(*api_access, aat, "type", {"Token", "OAuth"}, true);
    if (const auto* s = check.object(*api_access, aat, "spec", true)) {
      auto sat = pointer_append(aat, "spec");
      check.only(*s, sat, {"tokenRef", "apiUrl"});
      secret_ref(*s, sat, "tokenRef", true, w, "the API token");
      check.string(*s, sat, "apiUrl", false);
    }
  }
}

void docker_registry(const json& spec, const std::string& at, ConnectorWalk& w) {
  auto& check = w.check;
  check.only(
      spec, at,
      {"dockerRegistryUrl", "providerType", "auth", "delegateSelectors", "executeOnDelegate"});
  check.string(spec, at, "dockerRegistryUrl", true);
  check.one_of(spec, at, "providerType", {"DockerHub", "Harbor", "Quay", "Other"}, false);
  check.strings(spec, at, "delegateSelectors", false);
  check.boolean(spec, at, "executeOnDelegate");
  if (const auto* auth = check.object(spec, at, "auth", false)) {
    auto aat = pointer_append(at, "auth");
    check.only(*auth, aat, {"type", "spec"});
    auto type = check.one_of(*auth, aat, "type", {"Anonymous", "UsernamePassword"}, true);
    if (type == "UsernamePassword") {
      if (const auto* s = check.object(*auth, aat, "spec", true)) {
        auto sat = pointer_append(aat, "spec");
        check.only(*s, sat, {"username", "usernameRef", "passwordRef"});
        check.string(*s, sat, "username", false);
        secret_ref(*s, sat, "usernameRef", false, w, "the user name");
        secret_ref(*s, sat, "passwordRef", true, w, "the password");
      }
    }
  }
}

} // namespace

void parse_connector(const yaml::Document& doc, Object& out, std::vector<Problem>& problems) {
  Checker check(doc.where, problems);
  const std::string at = "/connector";
  const auto* body = check.object(doc.value, "", "connector", true);
  if (body == nullptr) return;
  check.only(*body, at,
             {"identifier", "name", "description", "tags", "orgIdentifier", "projectIdentifier",
              "type", "spec"});
  out.identifier = check.string(*body, at, "identifier", true);
  if (!out.identifier.empty()) check.identifier(out.identifier, at + "/identifier");
  out.name = check.string(*body, at, "name", true);
  auto type = check.one_of(*body, at, "type",
                           {"K8sCluster", "Git", "Github", "Gitlab", "DockerRegistry"}, true);
  const auto* spec = check.object(*body, at, "spec", true);
  ConnectorWalk w{check, out};
  if (spec != nullptr && !type.empty()) {
    auto sat = at + "/spec";
    if (type == "K8sCluster") {
      k8s_cluster(*spec, sat, w);
    } else if (type == "Git") {
      git(*spec, sat, w);
    } else if (type == "Github" || type == "Gitlab") {
      scm(*spec, sat, w);
    } else {
      docker_registry(*spec, sat, w);
    }
  }
  out.model = {{"identifier", out.identifier},
               {"name", out.name},
               {"description", body->value("description", "")},
               {"type", type},
               {"spec", spec != nullptr ? *spec : json::object()}};
}

} // namespace capstan::model
