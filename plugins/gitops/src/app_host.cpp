// Hosting applications per cluster behind the reconciler hooks.
#include "app_host.h"

#include <capstan/apps/application.h>
#include <capstan/kube/connector.h>
#include <capstan/kube/error.h>

#include <stdexcept>

namespace capstan::plugins::gitops {

using nlohmann::json;
using plugin::v1::ReconcilerCall;

namespace {

json parse_json(const std::string& text, const char* what) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw std::invalid_argument(std::string(what) + " is not valid JSON: " + e.what());
  }
}

// A folder name for a cluster identifier (identifiers are already plain, this only guards).
std::string folder_name(const std::string& id) {
  std::string out;
  for (char c : id) {
    bool plain =
        std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
    out += plain ? c : '_';
  }
  return out.empty() || out[0] == '.' ? "_" + out : out;
}

} // namespace

AppHost::AppHost(AppHostOptions options)
    : options_(std::move(options)),
      sets_(SetFollowerOptions{options_.work_root / "applicationsets", options_.poll_interval}) {}

AppHost::~AppHost() {
  stop();
}

void AppHost::start(sdk::ReconcilerHost host) {
  std::lock_guard lock(mutex_);
  host_ = host;
  started_ = true;
  sets_.start(host);
}

void AppHost::stop() {
  sets_.stop();
  std::map<std::string, std::shared_ptr<Cluster>> clusters;
  {
    std::lock_guard lock(mutex_);
    clusters.swap(clusters_);
    app_cluster_.clear();
    started_ = false;
  }
  for (auto& [id, c] : clusters) c->reconciler->stop();
}

std::shared_ptr<AppHost::Cluster> AppHost::detach_locked(const std::string& app) {
  auto it = app_cluster_.find(app);
  if (it == app_cluster_.end()) return nullptr;
  auto c = clusters_.find(it->second);
  app_cluster_.erase(it);
  if (c == clusters_.end()) return nullptr;
  auto cluster = c->second;
  cluster->reconciler->remove(app);
  cluster->apps.erase(app);
  if (cluster->apps.empty()) {
    clusters_.erase(c);
    return cluster;
  }
  return nullptr;
}

std::shared_ptr<AppHost::Cluster> AppHost::cluster_of(const std::string& app) {
  std::lock_guard lock(mutex_);
  auto it = app_cluster_.find(app);
  if (it == app_cluster_.end()) {
    throw std::invalid_argument("application '" + app + "' is not reconciled here");
  }
  return clusters_.at(it->second);
}

std::string AppHost::upsert(const ReconcilerCall& call) {
  const json document = parse_json(call.application_json(), "the application");
  apps::Application app = apps::parse_application(document);
  if (app.name != call.application()) {
    throw std::invalid_argument("the call names application '" + call.application() +
                                "' but the document is '" + app.name + "'");
  }
  const json cluster = parse_json(call.cluster_json(), "the cluster");
  const std::string id = cluster.value("identifier", "");
  if (id.empty()) throw std::invalid_argument("the cluster has no identifier");
  std::vector<std::string> names;
  for (const auto& n : cluster.value("names", json::array())) {
    if (n.is_string()) names.push_back(n.get<std::string>());
  }
  const std::string config = cluster.dump();
  // Read first: a connector that does not work changes nothing here.
  kube::ClusterConfig cc;
  try {
    cc = kube::cluster_from_connector(cluster.value("connector", json::object()),
                                      [](const std::string&) {});
  } catch (const kube::Error& e) {
    throw std::invalid_argument("cluster '" + id + "': " + e.what());
  }

  std::vector<std::shared_ptr<Cluster>> retired;
  std::shared_ptr<Cluster> target;
  {
    std::lock_guard lock(mutex_);
    if (!started_) throw std::logic_error("the reconciler is not started");
    auto current = app_cluster_.find(app.name);
    if (current != app_cluster_.end() && current->second != id) {
      if (auto empty = detach_locked(app.name)) retired.push_back(empty);
    }
    auto existing = clusters_.find(id);
    std::map<std::string, apps::Application> moving;
    if (existing != clusters_.end() && existing->second->config != config) {
      // The cluster's connection changed (a rotated token, a new server): rebuild it with the
      // applications it had.
      retired.push_back(existing->second);
      moving = existing->second->apps;
      clusters_.erase(existing);
      existing = clusters_.end();
    }
    // Stopped before anything starts again: an application is never reconciled twice at once.
    for (auto& c : retired) c->reconciler->stop();
    if (existing == clusters_.end()) {
      auto c = std::make_shared<Cluster>();
      c->identifier = id;
      c->config = config;
      apps::ReconcilerOptions o;
      o.work_dir = options_.work_root / folder_name(id);
      o.poll_interval = options_.poll_interval;
      o.cluster_names = names.empty() ? std::vector<std::string>{id} : names;
      auto host = host_;
      // A kubeconfig is read here, on the delegate's host: its server goes to the coordinator
      // with each status, so that destination.server can name the cluster.
      json reported_server;
      const json connector = cluster.value("connector", json::object());
      if (connector.value("credential", json::object()).value("type", "") == "Kubeconfig") {
        reported_server = {{"connector", connector.value("identifier", "")}, {"server", cc.server}};
      }
      o.on_status = [host, reported_server](const apps::ApplicationStatus& s) {
        json j = s.to_json();
        if (!reported_server.is_null()) j["clusterServer"] = reported_server;
        host.status(j.dump());
      };
      o.log = [host](const std::string& a, const std::string& line) {
        host.log(CAPSTAN_LOG_INFO, a, line);
      };
      c->reconciler = std::make_unique<apps::Reconciler>(kube::Client(std::move(cc)), std::move(o));
      c->reconciler->start();
      for (auto& [name, a] : moving) {
        if (name == app.name) continue;
        c->reconciler->upsert(a);
        c->apps.emplace(name, a);
      }
      existing = clusters_.emplace(id, c).first;
    }
    target = existing->second;
    app_cluster_[app.name] = id;
    target->apps.insert_or_assign(app.name, app);
    target->reconciler->upsert(app);
  }
  return "{}";
}

std::string AppHost::remove(const std::string& app, bool delete_resources) {
  std::shared_ptr<Cluster> empty, cluster;
  std::size_t deleted = 0;
  if (delete_resources) {
    std::lock_guard lock(mutex_);
    auto it = app_cluster_.find(app);
    if (it != app_cluster_.end()) cluster = clusters_.at(it->second);
  }
  // Argo CD's cascading deletion, outside the lock (it waits for a sync of it in flight).
  if (cluster) deleted = cluster->reconciler->remove_deleting_resources(app);
  {
    std::lock_guard lock(mutex_);
    empty = detach_locked(app);
  }
  if (empty) empty->reconciler->stop();
  return json{{"deletedResources", deleted}}.dump();
}

std::string AppHost::call_set(const ReconcilerCall& call) {
  const std::string& key = call.application();
  switch (call.op()) {
  case ReconcilerCall::OP_UPSERT:
    sets_.upsert(key, parse_json(call.application_json(), "the ApplicationSet"),
                 call.cluster_json().empty() ? json::object()
                                             : parse_json(call.cluster_json(), "the clusters"));
    return "{}";
  case ReconcilerCall::OP_REMOVE:
    sets_.remove(key);
    return "{}";
  case ReconcilerCall::OP_REFRESH:
    sets_.refresh(key);
    return "{}";
  case ReconcilerCall::OP_STATUS:
    return sets_.status(key).dump();
  default:
    throw std::invalid_argument("an ApplicationSet can be refreshed, not synced or rolled back; "
                                "sync its applications");
  }
}

std::string AppHost::call(const ReconcilerCall& call) {
  const std::string& app = call.application();
  if (app.empty()) throw std::invalid_argument("the call names no application");
  if (app.rfind(kSetPrefix, 0) == 0) return call_set(call);
  switch (call.op()) {
  case ReconcilerCall::OP_UPSERT:
    return upsert(call);
  case ReconcilerCall::OP_REMOVE: {
    json p = call.params_json().empty() ? json::object()
                                        : parse_json(call.params_json(), "the remove parameters");
    return remove(app, p.value("deleteResources", false));
  }
  case ReconcilerCall::OP_REFRESH:
    cluster_of(app)->reconciler->refresh(app);
    return "{}";
  case ReconcilerCall::OP_STATUS: {
    auto s = cluster_of(app)->reconciler->status(app);
    if (!s) throw std::invalid_argument("application '" + app + "' is not reconciled here");
    return s->to_json().dump();
  }
  case ReconcilerCall::OP_SYNC: {
    json p = call.params_json().empty() ? json::object()
                                        : parse_json(call.params_json(), "the sync parameters");
    apps::SyncRequest r;
    if (p.contains("prune") && p["prune"].is_boolean()) r.prune = p["prune"].get<bool>();
    r.dry_run = p.value("dryRun", false);
    r.apply_only = p.value("applyOnly", false);
    r.force = p.value("force", false);
    r.revision = p.value("revision", "");
    r.initiated_by = p.value("initiatedBy", "user");
    for (const auto& item : p.value("syncOptions", json::array())) {
      if (!item.is_string()) throw std::invalid_argument("syncOptions must be a list of strings");
      apps::SyncOptions check;
      apps::set_sync_option(check, item.get<std::string>()); // refused before anything runs
      r.sync_options.push_back(item.get<std::string>());
    }
    return cluster_of(app)->reconciler->sync(app, r).to_json().dump();
  }
  case ReconcilerCall::OP_TERMINATE: {
    auto& reconciler = *cluster_of(app)->reconciler;
    if (reconciler.terminate(app)) return json{{"terminated", true}}.dump();
    // As Argo CD's terminate-op: with no operation in progress there is nothing to terminate.
    std::string last;
    if (auto status = reconciler.status(app); status && status->last_operation) {
      const auto& op = *status->last_operation;
      last = " (its last operation, a sync of " + op.revision.substr(0, 12) + " started by " +
             op.initiated_by + ", ended " + op.phase +
             (op.finished_at.empty() ? "" : " at " + op.finished_at) + ")";
    }
    throw std::invalid_argument("unable to terminate the operation of application '" + app +
                                "': no operation is in progress" + last);
  }
  case ReconcilerCall::OP_ROLLBACK: {
    json p = parse_json(call.params_json(), "the rollback parameters");
    if (!p.contains("id") || !p["id"].is_number_integer()) {
      throw std::invalid_argument("a rollback needs the history entry's id");
    }
    return cluster_of(app)->reconciler->rollback(app, p["id"].get<std::int64_t>()).to_json().dump();
  }
  default:
    throw std::invalid_argument("unknown reconciler operation " + std::to_string(call.op()));
  }
}

} // namespace capstan::plugins::gitops
