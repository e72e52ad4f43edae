// GitOps clusters, pull-request records and what GitOps tasks carry.
#include "engine/gitops.h"

#include <capstan/kube/config.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "model/problem.h"

namespace capstan::engine {

using nlohmann::json;

namespace {

constexpr int kMaxRecords = 100;

std::string without_user_info(const std::string& url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const std::size_t start = scheme + 3;
  const std::size_t slash = url.find('/', start);
  const std::size_t at = url.rfind('@', slash == std::string::npos ? url.size() : slash);
  if (at == std::string::npos || at < start) return url;
  return url.substr(0, start) + url.substr(at + 1);
}

std::string api_server(store::Store& store, const std::string& connector) {
  auto c = store.object("connector", connector);
  return c ? cluster_api_server(store, c->model) : "";
}

std::string server_url(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool serves(const json& cluster, const std::string& environment) {
  for (const auto& e : cluster.value("environments", json::array())) {
    if (e == environment) return true;
  }
  return false;
}

} // namespace

std::string cluster_api_server(store::Store& store, const json& connector_model) {
  const json cred =
      connector_model.value("spec", json::object()).value("credential", json::object());
  if (!cred.is_object()) return "";
  const std::string type = cred.value("type", "");
  const json spec = cred.value("spec", json::object());
  if (type == "InheritFromDelegate") return "https://kubernetes.default.svc";
  if (type == "ManualConfig") return server_url(spec.value("masterUrl", ""));
  if (type != "Kubeconfig") return "";
  // The delegates load the kubeconfig (a path is a file on their host): what they read wins.
  std::string server = store.reported_cluster_server(connector_model.value("identifier", ""));
  if (!server.empty()) return server_url(server);
  try {
    const std::string context = spec.value("context", "");
    if (spec.contains("content") && spec["content"].is_string()) {
      kube::KubeconfigOptions o;
      o.context = context;
      o.source = "the inline kubeconfig";
      return server_url(kube::parse_kubeconfig(spec["content"].get<std::string>(), o).server);
    }
    const std::string path = spec.value("path", "");
    if (!path.empty() && path.front() == '/' && std::filesystem::is_regular_file(path)) {
      return server_url(kube::load_kubeconfig(path, context).server);
    }
  } catch (const std::exception&) {
    // Unreadable here: a delegate reports the server once it has loaded the kubeconfig.
  }
  return "";
}

json stage_gitops_clusters(store::Store& store, const std::vector<std::string>& named,
                           bool deploy_to_all, const std::string& environment, std::string& error) {
  json out = json::array();
  auto add = [&](const json& m) {
    const std::string conn = m.value("connectorRef", "");
    out.push_back({{"identifier", m.value("identifier", "")},
                   {"name", m.value("name", "")},
                   {"connectorRef", conn},
                   {"server", api_server(store, conn)}});
  };
  if (deploy_to_all) {
    for (const auto& o : store.objects("gitopsCluster")) {
      if (serves(o.model, environment)) add(o.model);
    }
    if (out.empty()) {
      error = "no GitOps cluster serves environment '" + environment +
              "' (deployToAll: true): apply a gitopsCluster listing it under environments";
    }
    return out;
  }
  for (const auto& id : named) {
    auto o = store.object("gitopsCluster", model::strip_scope(id));
    if (!o) {
      error = "GitOps cluster '" + id + "' does not exist";
      return json::array();
    }
    if (!serves(o->model, environment)) {
      error = "GitOps cluster '" + id + "' does not serve environment '" + environment +
              "' (its environments: " + o->model.value("environments", json::array()).dump() + ")";
      return json::array();
    }
    add(o->model);
  }
  if (out.empty()) error = "the stage names no GitOps cluster";
  return out;
}

bool opens_pull_requests(const std::string& t) {
  return t == "UpdateReleaseRepo" || t == "GitOpsUpdateReleaseRepo" || t == "RevertPR" ||
         t == "GitOpsRevertPR";
}

bool is_gitops_step(const std::string& t) {
  return opens_pull_requests(t) || t == "MergePR" || t == "GitOpsMergePR" ||
         t == "FetchLinkedApps" || t == "GitOpsFetchLinkedApps";
}

std::string release_repository(const json& context) {
  const json service = context.value("service", json::object());
  const json manifests = service.value("manifests", json::array());
  for (const auto& m : manifests) {
    if (!m.is_object() || m.value("type", "") != "ReleaseRepo") continue;
    const json store = m.value("store", json::object());
    const std::string ref = store.value("connectorRef", "");
    const json connectors = context.value("connectors", json::object());
    if (!connectors.contains(ref)) return "";
    const json& conn = connectors[ref];
    std::string url = conn.value("url", "");
    if (url.empty()) return "";
    if (conn.value("connectionType", "") == "Account" && !store.value("repoName", "").empty()) {
      while (!url.empty() && url.back() == '/') url.pop_back();
      url += "/" + store.value("repoName", "");
    }
    return without_user_info(url);
  }
  return "";
}

std::string repository_lock_key(const std::string& url) {
  std::string u = without_user_info(url);
  std::size_t scheme = u.find("://");
  if (scheme == std::string::npos) {
    // scp-like [user@]host:path (a colon before any slash) is ssh; anything else a local path.
    const std::size_t colon = u.find(':');
    const std::size_t slash = u.find('/');
    if (colon != std::string::npos && (slash == std::string::npos || colon < slash)) {
      std::string host = u.substr(0, colon);
      if (const std::size_t at = host.rfind('@'); at != std::string::npos) host.erase(0, at + 1);
      std::string path = u.substr(colon + 1);
      u = "ssh://" + host + (path.rfind('/', 0) == 0 ? "" : "/") + path;
    } else {
      u = "file://" + u;
    }
    scheme = u.find("://");
  }
  const std::size_t host_end = u.find('/', scheme + 3);
  for (std::size_t i = 0; i < std::min(host_end, u.size()); ++i) {
    u[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(u[i])));
  }
  while (u.size() > scheme + 3 && u.back() == '/') u.pop_back();
  if (u.size() > 4 && u.compare(u.size() - 4, 4, ".git") == 0) u.resize(u.size() - 4);
  return u;
}

void add_gitops_context(store::Store& store, const std::string& execution_id,
                        const std::string& step_type, json& context) {
  json& gitops = context["gitOps"];
  if (!gitops.is_object()) gitops = json::object();
  const json env = context.value("environment", json::object());
  json clusters = gitops.value("clusters", json::array());
  for (auto& c : clusters) {
    if (c.is_object() && !c.contains("environment")) c["environment"] = env;
  }
  gitops["clusters"] = clusters;
  // The execution's pull requests (oldest first, so the last open one is the newest), then the
  // release repository's other open ones, which MergePR may name with prNumber.
  json records = json::array();
  store::PullRequestFilter f;
  f.execution_id = execution_id;
  auto list = store.pull_requests_written(f); // includes this batch's records
  std::reverse(list.begin(), list.end());
  const std::string repo = release_repository(context);
  if (!repo.empty()) {
    store::PullRequestFilter open;
    open.repository = repo;
    open.state = "open";
    open.limit = 200;
    for (auto& p : store.pull_requests_written(open)) {
      if (p.execution_id != execution_id) list.insert(list.begin(), std::move(p));
    }
  }
  for (const auto& p : list) records.push_back(store::to_json(p));
  json next = json::object();
  if (opens_pull_requests(step_type) && !repo.empty()) {
    next[repo] = store.reserve_pull_request_number(repo);
  }
  gitops["pullRequests"] = {{"records", records}, {"next", next}};
}

std::vector<std::string> store_step_records(store::Store& store,
                                            const plugin::v1::StepResult& result,
                                            const std::string& execution_id,
                                            const std::string& step) {
  std::vector<std::string> refused;
  int taken = 0;
  for (const auto& rec : result.records()) {
    if (rec.kind() != "PullRequest") continue; // kinds this coordinator does not keep
    if (++taken > kMaxRecords) {
      refused.push_back("more than " + std::to_string(kMaxRecords) +
                        " pull-request records; the rest were dropped");
      break;
    }
    try {
      json j = json::parse(rec.json());
      store::PullRequestRecord r = store::pull_request_from_step(j);
      r.execution_id = execution_id;
      r.step = step;
      r.updated_by = execution_id + " " + step;
      store.put_pull_request(r);
    } catch (const std::exception& e) {
      refused.push_back(std::string("a pull-request record was refused: ") + e.what());
    }
  }
  return refused;
}

} // namespace capstan::engine
