// Reading the release repository, its connector and the stage's GitOps clusters from the
// context the coordinator sends with each task.
#include "release_repo.h"

#include <capstan/sdk/plugin.h>

#include <optional>

namespace capstan::plugins::gitops {

namespace {

using nlohmann::json;
using plugin::v1::ERROR_TYPE_INVALID_INPUT;

[[noreturn]] void invalid(const std::string& message) {
  throw sdk::StepError(ERROR_TYPE_INVALID_INPUT, message);
}

std::string text(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

// "https://host/org/repo.git" -> "org/repo"; "git@host:org/repo" -> "org/repo".
std::string repository_path(const std::string& url) {
  std::string rest = url;
  auto scheme = rest.find("://");
  if (scheme != std::string::npos) {
    rest = rest.substr(scheme + 3);
    auto slash = rest.find('/');
    rest = slash == std::string::npos ? "" : rest.substr(slash + 1);
  } else if (auto colon = rest.find(':'); colon != std::string::npos) {
    rest = rest.substr(colon + 1);
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.size() > 4 && rest.compare(rest.size() - 4, 4, ".git") == 0) {
    rest.resize(rest.size() - 4);
  }
  return rest;
}

std::string join_url(std::string base, const std::string& name) {
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/" + name;
}

} // namespace

const char* to_string(ProviderKind kind) {
  switch (kind) {
  case ProviderKind::kGithub:
    return "github";
  case ProviderKind::kGitlab:
    return "gitlab";
  case ProviderKind::kLocal:
    break;
  }
  return "local";
}

static RepoTarget read_target(const json& context, const std::string& type) {
  const json service = context.value("service", json::object());
  const json manifests = service.value("manifests", json::array());
  const json* manifest = nullptr;
  for (const auto& m : manifests) {
    if (m.is_object() && m.value("type", "") == type) {
      manifest = &m;
      break;
    }
  }
  const std::string who = "service '" + text(service, "identifier") + "'";
  if (manifest == nullptr) {
    invalid(who + " has no " + type + " manifest (a GitOps service lists its " + type +
            " under manifests, with a Git store)");
  }
  RepoTarget t;
  t.manifest = text(*manifest, "identifier");
  const json store = manifest->value("store", json::object());
  const std::string store_type = text(store, "type");
  if (store_type != "Git" && store_type != "Github" && store_type != "Gitlab") {
    invalid(who + ": manifest '" + t.manifest + "' is stored in '" + store_type + "'; a " + type +
            " must be in a Git, Github or Gitlab store");
  }
  t.connector = text(store, "connectorRef");
  const json connectors = context.value("connectors", json::object());
  if (t.connector.empty() || !connectors.contains(t.connector)) {
    invalid(who + ": manifest '" + t.manifest + "' names connector '" + t.connector +
            "', which the task did not carry");
  }
  const json& conn = connectors[t.connector];
  std::string url = text(conn, "url");
  if (url.empty()) invalid("connector '" + t.connector + "' has no url");
  const std::string repo_name = text(store, "repoName");
  if (text(conn, "connectionType") == "Account") {
    if (repo_name.empty()) {
      invalid(who + ": manifest '" + t.manifest + "' uses the Account connector '" + t.connector +
              "' but names no repoName");
    }
    url = join_url(url, repo_name);
  }
  t.remote.url = url;
  t.repository = git::redact_url(url);

  const json auth = conn.value("auth", json::object());
  const std::string auth_type = text(auth, "type");
  if (auth_type == "Ssh") {
    t.remote.credentials.ssh_private_key = text(auth, "sshKey");
    t.remote.credentials.username = text(auth, "username");
    t.secrets.push_back(t.remote.credentials.ssh_private_key);
  } else if (auth_type != "Anonymous") {
    t.remote.credentials.username = text(auth, "username");
    t.remote.credentials.password = text(auth, "password");
    if (t.remote.credentials.password.empty()) t.remote.credentials.password = text(auth, "token");
    t.secrets.push_back(t.remote.credentials.password);
  }
  if (conn.value("skipTlsVerify", false)) t.remote.insecure_skip_tls_verify = true;
  t.remote.tls_ca_pem = text(conn, "caCert");
  t.remote.ssh_known_hosts = text(conn, "knownHosts");

  const std::string conn_type = text(conn, "type");
  if (conn_type == "Github" || conn_type == "Gitlab") {
    t.provider = conn_type == "Github" ? ProviderKind::kGithub : ProviderKind::kGitlab;
    t.api.api_url = text(conn, "apiUrl");
    t.api.token = text(conn, "apiToken");
    if (t.api.token.empty()) t.api.token = text(auth, "token");
    if (t.api.token.empty()) {
      invalid("connector '" + t.connector + "' has no API token: pull requests on " + conn_type +
              " need apiAccess (or a token in its authentication)");
    }
    t.api.repository = repository_path(url);
    t.api.insecure_skip_tls_verify = t.remote.insecure_skip_tls_verify;
    t.secrets.push_back(t.api.token);
  }

  t.branch = text(store, "branch");
  if (t.branch.empty()) t.branch = text(conn, "branch");
  if (t.branch.empty()) t.branch = "main";
  for (const auto& p : store.value("paths", json::array())) {
    if (p.is_string() && !p.get<std::string>().empty()) t.paths.push_back(p.get<std::string>());
  }
  if (t.paths.empty() && !text(store, "folderPath").empty()) {
    t.paths.push_back(text(store, "folderPath"));
  }
  return t;
}

static std::vector<Cluster> read_clusters(const json& context) {
  std::vector<Cluster> out;
  const json env = context.value("environment", json::object());
  const json group = context.value("environmentGroup", json::object());
  auto fill_env = [](Cluster& c, const json& e) {
    c.env_identifier = text(e, "identifier");
    c.env_name = text(e, "name");
    c.env_type = text(e, "type");
    c.env_variables = e.value("variables", json::object());
  };
  auto fill_group = [](Cluster& c, const json& g) {
    c.envgroup_identifier = text(g, "identifier");
    c.envgroup_name = text(g, "name");
  };
  const json gitops = context.value("gitOps", json::object());
  for (const auto& item : gitops.value("clusters", json::array())) {
    Cluster c;
    if (item.is_string()) { // an identifier alone
      c.identifier = c.name = item.get<std::string>();
      fill_env(c, env);
      fill_group(c, group);
    } else if (item.is_object()) {
      c.identifier = text(item, "identifier");
      c.name = text(item, "name");
      if (c.name.empty()) c.name = c.identifier;
      c.server = text(item, "server");
      fill_env(c, item.contains("environment") ? item["environment"] : env);
      fill_group(c, item.contains("environmentGroup") ? item["environmentGroup"] : group);
    } else {
      continue;
    }
    out.push_back(std::move(c));
  }
  if (out.empty() && !env.empty()) {
    Cluster c;
    fill_env(c, env);
    fill_group(c, group);
    out.push_back(std::move(c));
  }
  // Over an environment group the coordinator leaves <+env.*> in each environment's variables
  // to the step: resolved here for the cluster.
  for (auto& c : out) {
    if (c.envgroup_identifier.empty() || !c.env_variables.is_object()) continue;
    for (auto& [name, value] : c.env_variables.items()) {
      if (value.is_string() &&
          value.get_ref<const std::string&>().find("<+") != std::string::npos) {
        value =
            resolve_for_cluster(value.get<std::string>(), c,
                                "environment '" + c.env_identifier + "' variable '" + name + "'");
      }
    }
  }
  return out;
}

RepoTarget repo_target(const json& context, const std::string& type) {
  try {
    return read_target(context, type);
  } catch (const json::exception& e) {
    invalid(std::string("the task's context is malformed (service manifests or connectors): ") +
            e.what());
  }
}

std::vector<Cluster> clusters(const json& context) {
  try {
    return read_clusters(context);
  } catch (const json::exception& e) {
    invalid(std::string("the task's context is malformed (gitOps.clusters or environment): ") +
            e.what());
  }
}

json resolve_for_cluster(const std::string& text, const Cluster& cluster, const std::string& what) {
  std::string out;
  std::optional<json> whole; // the value when `text` is one expression alone
  std::size_t pos = 0;
  while (true) {
    auto open = text.find("<+", pos);
    if (open == std::string::npos) break;
    auto close = text.find('>', open);
    if (close == std::string::npos) invalid(what + ": an expression is not closed");
    std::string expr = text.substr(open + 2, close - open - 2);
    while (!expr.empty() && expr.front() == ' ') expr.erase(expr.begin());
    while (!expr.empty() && expr.back() == ' ') expr.pop_back();
    const std::string* value = nullptr;
    std::string owner;
    json variable;
    const std::string kVariables = "env.variables.";
    if (expr == "cluster.name") {
      value = &cluster.name, owner = "a GitOps cluster";
    } else if (expr == "cluster.identifier") {
      value = &cluster.identifier, owner = "a GitOps cluster";
    } else if (expr == "env.name") {
      value = &cluster.env_name, owner = "an environment";
    } else if (expr == "env.identifier") {
      value = &cluster.env_identifier, owner = "an environment";
    } else if (expr == "env.type") {
      value = &cluster.env_type, owner = "an environment";
    } else if (expr == "envgroup.name") {
      value = &cluster.envgroup_name, owner = "an environment group";
    } else if (expr == "envgroup.identifier") {
      value = &cluster.envgroup_identifier, owner = "an environment group";
    } else if (expr.rfind(kVariables, 0) == 0 && expr.size() > kVariables.size()) {
      const std::string name = expr.substr(kVariables.size());
      if (cluster.env_identifier.empty()) {
        invalid(what + " uses <+" + expr + "> but the stage deploys to no environment" +
                (cluster.identifier.empty() ? "" : " for cluster '" + cluster.identifier + "'"));
      }
      if (!cluster.env_variables.is_object() || !cluster.env_variables.contains(name)) {
        invalid(what + " uses <+" + expr + "> but environment '" + cluster.env_identifier +
                "' has no variable '" + name + "'");
      }
      variable = cluster.env_variables[name];
      if (variable.is_null()) variable = "";
    } else {
      invalid(what + ": <+" + expr +
              "> cannot be resolved per cluster (use <+cluster.name>, <+cluster.identifier>, "
              "<+env.name>, <+env.identifier>, <+env.type>, <+env.variables.NAME>, "
              "<+envgroup.name> and <+envgroup.identifier>)");
    }
    if (value != nullptr) {
      if (value->empty()) {
        invalid(what + " uses <+" + expr + "> but the stage deploys to no " +
                owner.substr(owner.find(' ') + 1) +
                (cluster.identifier.empty() ? "" : " for cluster '" + cluster.identifier + "'"));
      }
      variable = *value;
    }
    if (open == 0 && close + 1 == text.size()) whole = variable;
    out += text.substr(pos, open - pos) +
           (variable.is_string() ? variable.get<std::string>() : variable.dump());
    pos = close + 1;
  }
  if (whole) return *whole;
  out += text.substr(pos);
  return out;
}

std::string resolve_path(const std::string& path, const Cluster& cluster) {
  json v = resolve_for_cluster(path, cluster, "path '" + path + "'");
  return v.is_string() ? v.get<std::string>() : v.dump();
}

} // namespace capstan::plugins::gitops
