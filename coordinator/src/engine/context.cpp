// Scopes, stage objects and connectors for steps.
#include "engine/context.h"

#include <openssl/evp.h>

#include <stdexcept>

#include "engine/gitops.h"
#include "model/inputs.h"
#include "model/object.h"

namespace capstan::engine {

using nlohmann::json;

std::optional<std::string> SecretSource::value(const std::string& id) const {
  auto sealed = store_.secret_value(model::strip_scope(id));
  if (!sealed) return std::nullopt;
  return box_.open(*sealed, model::strip_scope(id));
}

std::optional<expression::Value> StepScope::call(const std::vector<std::string>& target,
                                                 const std::string& function,
                                                 const std::vector<expression::Value>& args) const {
  if (target != std::vector<std::string>{"secrets"} || function != "getValue") {
    return std::nullopt;
  }
  if (args.size() != 1 || !args[0].is_string()) {
    throw expression::Error("secrets.getValue()", "takes one secret identifier in quotes");
  }
  auto id = args[0].get<std::string>();
  auto v = secrets_.value(id);
  if (!v) throw expression::Error("secrets.getValue(\"" + id + "\")", "no secret '" + id + "'");
  used_.push_back(*v);
  return expression::Value(*v);
}

bool StepScope::is_secret_call(const std::vector<std::string>& target,
                               const std::string& function) const {
  return target == std::vector<std::string>{"secrets"} && function == "getValue";
}

json evaluate_field(const std::string& text, const StepScope& scope,
                    const std::vector<std::string>& deferred) {
  if (!expression::has_expression(text)) return text;
  expression::EvalOptions options;
  options.secrets_used = &scope.used();
  options.deferred_roots = deferred;
  return expression::Expression::parse_template(text).evaluate(scope, options);
}

namespace {

// A field's place in the tree being rendered: its key or index under its parent's place. The
// pointer text is only made for a field that holds an expression.
struct Place {
  const Place* parent = nullptr;
  const std::string* key = nullptr; // null: `index` in an array
  std::size_t index = 0;

  std::string pointer() const {
    if (parent == nullptr) return "";
    auto base = parent->pointer();
    return key != nullptr ? yaml::pointer_append(base, *key) : yaml::pointer_append(base, index);
  }
};

void render_at(json& v, const Place& place, const StepScope& scope, std::string& failed_at,
               const std::vector<std::string>& deferred) {
  if (v.is_string()) {
    if (!expression::has_expression(v.get_ref<const std::string&>())) return;
    failed_at = place.pointer();
    v = evaluate_field(v.get<std::string>(), scope, deferred);
  } else if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      render_at(it.value(), Place{&place, &it.key(), 0}, scope, failed_at, deferred);
    }
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      render_at(v[i], Place{&place, nullptr, i}, scope, failed_at, deferred);
    }
  }
}

} // namespace

void render_tree(json& value, const StepScope& scope, std::string& failed_at,
                 const std::vector<std::string>& deferred) {
  render_at(value, Place{}, scope, failed_at, deferred);
}

std::string infra_key(const std::string& service, const std::string& environment,
                      const std::string& infrastructure) {
  std::string text = service + "-" + environment + "-" + infrastructure;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha1(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

namespace {

// One stored object with the run's inputs filled in, parsed again by its kind's parser.
struct Loaded {
  std::optional<model::Object> object;
  std::int64_t version = 0;
  std::string error;
};

Loaded load(store::Store& store, const std::string& kind, const std::string& id,
            const std::string& fqn_prefix, const std::string& body_key, const json& inputs,
            const std::string& used_by) {
  Loaded out;
  auto rec = store.object(kind, id);
  if (!rec) {
    out.error = used_by + " uses " + kind + " '" + id + "', which does not exist (any more)";
    return out;
  }
  out.version = rec->version;
  try {
    auto text =
        std::string(static_cast<std::size_t>(std::max(0, rec->line_offset)), '\n') + rec->yaml;
    auto doc = yaml::load(text, rec->file.empty() ? kind + "/" + id : rec->file);
    if (doc.value.is_object() && doc.value.contains(body_key)) {
      auto sites = model::find_inputs(doc.value[body_key], "/" + body_key, fqn_prefix, doc.where);
      std::map<std::string, std::string> values;
      for (const auto& s : sites) {
        if (inputs.contains(s.fqn) && inputs[s.fqn].is_string()) {
          values[s.fqn] = inputs[s.fqn].get<std::string>();
        } else if (s.input.default_value) {
          values[s.fqn] = *s.input.default_value;
        } else {
          out.error = s.location + ": runtime input " + s.fqn + " of " + kind + " '" + id +
                      "' has no value (give it when the run starts: --set " +
                      s.fqn.substr(s.fqn.rfind('.') + 1) + "=VALUE)";
          return out;
        }
      }
      model::substitute(doc.value, sites, values);
    }
    std::vector<model::Problem> problems;
    model::Object o;
    o.kind = kind;
    const auto* spec = model::find_kind(kind);
    spec->parse(doc, o, problems);
    if (!problems.empty()) {
      out.error = problems.front().text();
      return out;
    }
    o.base_dir = rec->base_dir;
    out.object = std::move(o);
  } catch (const yaml::Error& e) {
    out.error = e.what();
  } catch (const std::exception& e) {
    out.error = kind + " '" + id + "': " + e.what();
  }
  return out;
}

} // namespace

StageObjects load_stage_objects(store::Store& store, const model::Stage& stage,
                                const json& inputs) {
  StageObjects out;
  const std::string sid = stage.identifier;
  const std::string who = "stage '" + sid + "'";
  json snapshot = json::object();
  if (stage.service_ref.empty() || expression::has_expression(stage.service_ref)) {
    out.error = who + " has no service: its serviceRef is '" + stage.service_ref + "'";
    return out;
  }
  auto svc = load(store, "service", stage.service_ref,
                  "pipeline.stages." + sid + ".spec.service.serviceInputs", "service", inputs, who);
  if (!svc.object) {
    out.error = svc.error;
    return out;
  }
  json service = svc.object->model;
  service["version"] = svc.version;
  service["baseDir"] = svc.object->base_dir;
  bool gitops = service.value("gitOpsEnabled", false);
  if (gitops != stage.gitops) {
    out.error = who + " deploys " + (gitops ? "GitOps" : "CD") + " service '" + stage.service_ref +
                "' but says spec.gitOpsEnabled: " + (stage.gitops ? "true" : "false");
    return out;
  }
  snapshot["service"] = std::move(service);
  if (stage.environment_group) {
    // A GitOps stage over an environment group: the clusters of the chosen environments, each
    // with its environment and the group (what <+env.*> and <+envgroup.*> resolve to per
    // cluster). The stage itself has no single environment.
    const auto& g = *stage.environment_group;
    auto group = store.object("environmentGroup", g.env_group_ref);
    if (!group) {
      out.error = who + ": environment group '" + g.env_group_ref + "' does not exist";
      return out;
    }
    const json members = group->model.value("envIdentifiers", json::array());
    std::vector<model::StageEnvironment> picks;
    if (g.deploy_to_all) {
      for (const auto& id : members) {
        model::StageEnvironment e;
        e.environment_ref = id.get<std::string>();
        e.deploy_to_all = true;
        picks.push_back(std::move(e));
      }
    } else {
      picks = g.environments;
    }
    const json group_ref = {{"identifier", group->model.value("identifier", "")},
                            {"name", group->model.value("name", "")}};
    json clusters = json::array();
    for (const auto& e : picks) {
      if (std::find(members.begin(), members.end(), e.environment_ref) == members.end()) {
        out.error = who + ": environment '" + e.environment_ref +
                    "' is not in environment group '" + g.env_group_ref +
                    "' (its environments: " + members.dump() + ")";
        return out;
      }
      auto env = load(store, "environment", e.environment_ref,
                      "pipeline.stages." + sid + ".spec.environmentGroup.environments." +
                          e.environment_ref + ".environmentInputs",
                      "environment", inputs, who);
      if (!env.object) {
        out.error = env.error;
        return out;
      }
      std::string error;
      json found = stage_gitops_clusters(store, e.gitops_clusters, e.deploy_to_all,
                                         e.environment_ref, error);
      if (!error.empty() && !(g.deploy_to_all && found.empty())) {
        out.error = who + ": environment '" + e.environment_ref + "': " + error;
        return out;
      }
      const json& m = env.object->model;
      for (auto& c : found) {
        c["environment"] = {{"identifier", m.value("identifier", "")},
                            {"name", m.value("name", "")},
                            {"type", m.value("type", "")},
                            {"version", env.version},
                            {"variables", m.value("variables", json::array())}};
        c["environmentGroup"] = group_ref;
        clusters.push_back(std::move(c));
      }
    }
    if (clusters.empty()) {
      out.error = who + ": no GitOps cluster serves the environments of environment group '" +
                  g.env_group_ref + "' (" + members.dump() + ")";
      return out;
    }
    json stored_group = group_ref;
    stored_group["version"] = group->version;
    snapshot["environmentGroup"] = std::move(stored_group);
    snapshot["gitOps"] = {{"clusters", clusters}, {"deployToAll", g.deploy_to_all}};
    out.snapshot = std::move(snapshot);
    return out;
  }
  if (!stage.environment) {
    out.error = who + " has no environment";
    return out;
  }
  const auto& e = *stage.environment;
  auto env = load(store, "environment", e.environment_ref,
                  "pipeline.stages." + sid + ".spec.environment.environmentInputs", "environment",
                  inputs, who);
  if (!env.object) {
    out.error = env.error;
    return out;
  }
  json environment = env.object->model;
  environment["version"] = env.version;
  environment["baseDir"] = env.object->base_dir;
  snapshot["environment"] = std::move(environment);
  if (stage.gitops) {
    std::string error;
    json clusters = stage_gitops_clusters(store, e.gitops_clusters, e.deploy_to_all,
                                          snapshot["environment"].value("identifier", ""), error);
    if (!error.empty()) {
      out.error = who + ": " + error;
      return out;
    }
    snapshot["gitOps"] = {{"clusters", clusters}, {"deployToAll", e.deploy_to_all}};
  } else {
    if (e.infrastructure_refs.empty()) {
      out.error = who + " names no infrastructure definition";
      return out;
    }
    const auto& infra_id = e.infrastructure_refs.front();
    auto infra = load(store, "infrastructureDefinition", infra_id,
                      "pipeline.stages." + sid + ".spec.environment.infrastructureDefinitions." +
                          infra_id + ".inputs",
                      "infrastructureDefinition", inputs, who);
    if (!infra.object) {
      out.error = infra.error;
      return out;
    }
    json i = infra.object->model;
    if (i.value("environmentRef", "") != e.environment_ref) {
      out.error = who + ": infrastructure '" + infra_id + "' belongs to environment '" +
                  i.value("environmentRef", "") + "', not '" + e.environment_ref + "'";
      return out;
    }
    i["version"] = infra.version;
    i["infraKey"] = infra_key(stage.service_ref, e.environment_ref, infra_id);
    snapshot["infrastructure"] = std::move(i);
  }
  out.snapshot = std::move(snapshot);
  return out;
}

namespace {

struct Resolver {
  const SecretSource& secrets;
  std::vector<std::string>& used;
  std::string connector;

  std::string secret(const json& spec, const char* key, const std::string& what,
                     bool required = true) {
    if (!spec.contains(key) || !spec[key].is_string() || spec[key].get<std::string>().empty()) {
      if (required) {
        throw std::runtime_error("connector '" + connector + "' has no " + key + " (" + what + ")");
      }
      return {};
    }
    auto id = model::strip_scope(spec[key].get<std::string>());
    auto v = secrets.value(id);
    if (!v) {
      throw std::runtime_error("secret '" + id + "' (" + what + " of connector '" + connector +
                               "') does not exist");
    }
    used.push_back(*v);
    return *v;
  }
};

std::string default_api_url(const std::string& type, const std::string& url) {
  // https://github.com/org/repo -> https://api.github.com; https://ghe.corp/org -> .../api/v3
  std::string scheme = "https://";
  std::string rest = url;
  if (auto p = url.find("://"); p != std::string::npos) {
    scheme = url.substr(0, p + 3);
    rest = url.substr(p + 3);
  } else if (url.rfind("git@", 0) == 0) {
    rest = url.substr(4);
  }
  auto host = rest.substr(0, rest.find_first_of("/:"));
  if (scheme != "http://" && scheme != "https://") scheme = "https://";
  if (type == "Github") {
    if (host == "github.com") return "https://api.github.com";
    return scheme + host + "/api/v3";
  }
  return scheme + host + "/api/v4";
}

} // namespace

json resolve_connector(const json& model, const SecretSource& secrets,
                       std::vector<std::string>& used) {
  const std::string type = model.value("type", "");
  const json spec = model.value("spec", json::object());
  Resolver r{secrets, used, model.value("identifier", "")};
  json out = {{"identifier", model.value("identifier", "")},
              {"name", model.value("name", "")},
              {"type", type},
              {"delegateSelectors", spec.value("delegateSelectors", json::array())}};
  if (type == "K8sCluster") {
    const json cred = spec.value("credential", json::object());
    const std::string ct = cred.value("type", "");
    const json cs = cred.value("spec", json::object());
    json c = {{"type", ct}};
    if (ct == "Kubeconfig") {
      if (cs.contains("path")) c["kubeconfigPath"] = cs["path"];
      if (cs.contains("content")) c["kubeconfig"] = cs["content"];
      if (cs.contains("kubeconfigRef"))
        c["kubeconfig"] = r.secret(cs, "kubeconfigRef", "the kubeconfig");
      if (cs.contains("context")) c["context"] = cs["context"];
    } else if (ct == "ManualConfig") {
      c["masterUrl"] = cs.value("masterUrl", "");
      c["skipTlsVerify"] = cs.value("skipTlsVerify", false);
      const json auth = cs.value("auth", json::object());
      const std::string at = auth.value("type", "");
      const json as = auth.value("spec", json::object());
      json a = {{"type", at}};
      if (at == "ServiceAccount") {
        a["token"] = r.secret(as, "serviceAccountTokenRef", "the service account token");
      } else if (at == "UsernamePassword") {
        a["username"] = as.contains("usernameRef") ? r.secret(as, "usernameRef", "the user name")
                                                   : as.value("username", "");
        a["password"] = r.secret(as, "passwordRef", "the password");
      } else if (at == "ClientKeyCert") {
        a["clientCert"] = r.secret(as, "clientCertRef", "the client certificate");
        a["clientKey"] = r.secret(as, "clientKeyRef", "the client key");
        a["clientKeyPassphrase"] =
            r.secret(as, "clientKeyPassphraseRef", "the client key passphrase", false);
        a["clientKeyAlgorithm"] = as.value("clientKeyAlgorithm", "");
      }
      if (as.contains("caCertRef")) a["caCert"] = r.secret(as, "caCertRef", "the CA certificate");
      c["auth"] = a;
    }
    out["credential"] = c;
  } else if (type == "Git") {
    out["url"] = spec.value("url", "");
    out["connectionType"] = spec.value("connectionType", "Repo");
    out["branch"] = spec.value("branchName", "");
    out["validationRepo"] = spec.value("validationRepo", "");
    const std::string at = spec.value("type", "Http");
    const json as = spec.value("spec", json::object());
    json a = {{"type", at}};
    if (at == "Ssh") {
      a["sshKey"] = r.secret(as, "sshKeyRef", "the SSH private key");
    } else {
      a["username"] = as.contains("usernameRef") ? r.secret(as, "usernameRef", "the user name")
                                                 : as.value("username", "");
      a["password"] = r.secret(as, "passwordRef", "the password or token", false);
      if (a["username"] == "" && a["password"] == "") a["type"] = "Anonymous";
    }
    out["auth"] = a;
  } else if (type == "Github" || type == "Gitlab") {
    out["url"] = spec.value("url", "");
    out["connectionType"] = spec.value("connectionType", "Repo");
    out["validationRepo"] = spec.value("validationRepo", "");
    const json api_access = spec.value("apiAccess", json::object());
    std::string api = spec.value("apiUrl", "");
    if (api.empty()) api = api_access.value("spec", json::object()).value("apiUrl", "");
    if (api.empty()) api = default_api_url(type, out["url"].get<std::string>());
    out["apiUrl"] = api;
    const json auth = spec.value("authentication", json::object());
    const std::string at = auth.value("type", "Http");
    const json as = auth.value("spec", json::object());
    json a = {{"type", at}};
    if (at == "Ssh") {
      a["sshKey"] = r.secret(as, "sshKeyRef", "the SSH private key");
    } else {
      const json creds = as.value("spec", json::object());
      a["username"] = creds.contains("usernameRef")
                          ? r.secret(creds, "usernameRef", "the user name")
                          : creds.value("username", "");
      bool password = as.value("type", "") == "UsernamePassword";
      a[password ? "password" : "token"] = r.secret(creds, password ? "passwordRef" : "tokenRef",
                                                    password ? "the password" : "the access token");
    }
    out["auth"] = a;
    if (api_access.contains("spec")) {
      out["apiToken"] = r.secret(api_access["spec"], "tokenRef", "the API token");
    } else if (a.contains("token")) {
      out["apiToken"] = a["token"];
    }
  } else if (type == "DockerRegistry") {
    out["url"] = spec.value("dockerRegistryUrl", "");
    out["providerType"] = spec.value("providerType", "DockerHub");
    const json auth = spec.value("auth", json::object());
    const json as = auth.value("spec", json::object());
    json a = {{"type", auth.value("type", "Anonymous")}};
    if (a["type"] == "UsernamePassword") {
      a["username"] = as.contains("usernameRef") ? r.secret(as, "usernameRef", "the user name")
                                                 : as.value("username", "");
      a["password"] = r.secret(as, "passwordRef", "the password");
    }
    out["auth"] = a;
  }
  return out;
}

} // namespace capstan::engine
