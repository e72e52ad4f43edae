// GitOps applications: each applied Application is given to exactly one delegate whose plugins
// offer a reconciler and whose tags match the destination cluster's delegate selectors. Every
// assignment has a new epoch; statuses are kept only from the current one. A lost delegate's
// applications move after a fence delay longer than the delegate needs to notice it is cut
// off (it then stops reconciling them), so no application is reconciled twice at once.
#include <capstan/apps/application.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <functional>
#include <set>
#include <tuple>
#include <utility>

#include "engine/context.h"
#include "engine/gitops.h"
#include "engine/machine.h"
#include "model/object.h"

namespace capstan::engine {

using nlohmann::json;
namespace v1 = wire::v1;
using store::now_ms;

namespace {

Outcome op_failure(int status, std::string code, std::string message) {
  Outcome o;
  o.status = status;
  o.code = std::move(code);
  o.message = std::move(message);
  return o;
}

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string utc_rfc3339(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Takes `key` out of the set `index` keeps under `at` (and the set once empty).
void index_erase(std::map<std::string, std::set<std::string>>& index, const std::string& at,
                 const std::string& key) {
  auto it = index.find(at);
  if (it == index.end()) return;
  it->second.erase(key);
  if (it->second.empty()) index.erase(it);
}

// How long a failed deletion of an application's resources waits before its delegate tries again.
constexpr auto kDeleteRetry = std::chrono::seconds(5);

} // namespace

bool Machine::app_deleting(const store::ObjectRecord& o) {
  const json& doc = o.model.value("document", json::object());
  return doc.contains("metadata") && doc["metadata"].is_object() &&
         doc["metadata"].contains("deletionTimestamp");
}

Outcome Machine::apps_begin_delete(const store::ObjectRecord& existing, const std::string& user,
                                   const std::string& set) {
  Outcome out;
  out.status = 202;
  out.body = {{"kind", "application"},
              {"identifier", existing.identifier},
              {"deleted", false},
              {"deleting", true}};
  if (app_deleting(existing)) {
    out.body["message"] = "application '" + existing.identifier +
                          "' is already being deleted: it goes once its resources are deleted";
    return out;
  }
  store::ObjectRecord r = existing;
  const std::int64_t at = now_ms();
  r.model["document"]["metadata"]["deletionTimestamp"] = utc_rfc3339(at);
  if (r.document.is_object() && r.document.contains("metadata")) {
    r.document["metadata"]["deletionTimestamp"] = utc_rfc3339(at);
  }
  r.model["deletedBy"] = user;
  r.applied_at = at;
  r.applied_by = user;
  store_.put_object(r);
  apps_written_ = true;
  store::AuditRecord a;
  a.user = user;
  a.action = "delete";
  a.kind = "application";
  a.target = existing.identifier;
  a.details = {{"version", existing.version}, {"cascade", true}, {"deleting", true}};
  if (!set.empty()) a.details["applicationSet"] = set;
  store_.append_audit(a);
  spdlog::info("application {}: deleting (its resources first)", existing.identifier);
  out.body["message"] = "application '" + existing.identifier +
                        "' is being deleted: its delegate deletes its resources, then it goes";
  return out;
}

void Machine::apps_merge_history(AppRuntime& app, json& reported, const std::string& delegate) {
  const json& old_status = app.state.status;
  json history =
      old_status.is_object() && old_status.contains("history") && old_status["history"].is_array()
          ? old_status["history"]
          : json::array();
  const auto epoch = static_cast<std::int64_t>(app.state.epoch);
  // A delegate numbers its entries from 1 whenever it hosts the application afresh (a new
  // assignment, or again after its session was lost), so an entry is known by what it says.
  auto key = [](const json& e, const std::string& by) {
    return by + '\x1f' + std::to_string(e.value("delegateId", e.value("id", std::int64_t{0}))) +
           '\x1f' + e.value("startedAt", "") + '\x1f' + e.value("finishedAt", "") + '\x1f' +
           e.value("revision", "") + '\x1f' + e.value("initiatedBy", "") + '\x1f' +
           e.value("phase", "");
  };
  std::int64_t last_id = 0; // the newest entry is never trimmed: ids keep increasing
  std::set<std::string> known;
  for (const auto& e : history) {
    last_id = std::max(last_id, e.value("id", std::int64_t{0}));
    known.insert(key(e, e.value("delegate", "")));
  }
  if (reported.contains("history") && reported["history"].is_array()) {
    for (const auto& e : reported["history"]) {
      if (!e.is_object() || !known.insert(key(e, delegate)).second) continue;
      json kept = e;
      kept["delegateId"] = e.value("id", std::int64_t{0});
      kept["id"] = ++last_id;
      kept["epoch"] = epoch;
      kept["delegate"] = delegate;
      history.push_back(std::move(kept));
    }
  }
  const std::size_t limit = static_cast<std::size_t>(std::max(0, app.history_limit));
  if (history.size() > limit) {
    history.erase(history.begin(),
                  history.begin() + static_cast<std::ptrdiff_t>(history.size() - limit));
  }
  reported["history"] = std::move(history);
  // A new holder has not synced yet: the last operation is still the one before it.
  if (!reported.contains("operationState") && old_status.is_object() &&
      old_status.contains("operationState")) {
    reported["operationState"] = old_status["operationState"];
  }
}

void Machine::apps_deletion_condition(AppRuntime& app) {
  if (app.deletion_error.empty()) return;
  // Argo CD's condition for a deletion that is stuck.
  json& conditions = app.state.status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  for (auto& c : conditions) {
    if (c.value("type", "") == "DeletionError") {
      c["message"] = app.deletion_error;
      app.dirty = true;
      return;
    }
  }
  conditions.push_back({{"type", "DeletionError"}, {"message", app.deletion_error}});
  app.dirty = true;
}

void Machine::apps_on_deleted(const wire::PeerId& peer, const v1::AppDeleted& deleted) {
  auto* s = scheduler_.by_peer(peer);
  auto it = apps_.find(deleted.app());
  if (s == nullptr || it == apps_.end()) return;
  auto& app = it->second;
  if (app.state.instance_id != s->instance_id || app.state.epoch != deleted.epoch() ||
      !app.deleting) {
    return;
  }
  if (!deleted.ok()) {
    app.deletion_error = "deleting its resources failed on delegate " + s->name + ": " +
                         deleted.error() + " (tried again every " +
                         std::to_string(kDeleteRetry.count()) + " s)";
    apps_problem(app, app.deletion_error);
    apps_deletion_condition(app);
    app.retry_delete_at = Clock::now() + kDeleteRetry;
    app.sent.clear();
    return;
  }
  spdlog::info("application {}: its {} resource(s) were deleted by delegate {}; it is gone",
               deleted.app(), deleted.deleted_resources(), s->name);
  apps_finish_delete(deleted.app(),
                     {{"deletedResources", deleted.deleted_resources()}, {"delegate", s->name}});
}

void Machine::apps_finish_delete(const std::string& name, const json& details) {
  auto existing = store_.object("application", name);
  const std::string by = existing ? existing->model.value("deletedBy", "") : "";
  if (existing) store_.delete_object("application", name, by, now_ms());
  store::AuditRecord a;
  a.user = by;
  a.action = "delete";
  a.kind = "application";
  a.target = name;
  a.details = details;
  store_.append_audit(a);
  apps_fail_operations(name, "", "it was deleted");
  apps_forget(name);
  apps_written_ = true;
}

bool Machine::apps_cannot_delete_resources(AppRuntime& app, const AppTarget& t) {
  if (!app.deleting || !t.no_cluster) return false;
  app.delete_without_resources = t.error;
  apps_next_place_ = Clock::now();
  return true;
}

void Machine::apps_recover() {
  for (auto& r : store_.app_states_written()) {
    AppRuntime a;
    a.state = std::move(r);
    // Whoever held it before the restart keeps it if it re-attaches within the window; the
    // clock for that starts now.
    if (!a.state.instance_id.empty()) a.orphaned_since = Clock::now();
    apps_.emplace(a.state.name, std::move(a));
  }
  // Every application and set, reading only what the runtime entries mirror of them.
  std::set<std::string> live;
  for (auto& f : store_.object_fields("application",
                                      {"$.repoURL", "$.targetRevision", "$.document.metadata",
                                       "$.document.spec.revisionHistoryLimit", "$.destination"})) {
    json model = json::object();
    if (f.values[0].is_string()) model["repoURL"] = f.values[0];
    if (f.values[1].is_string()) model["targetRevision"] = f.values[1];
    if (f.values[2].is_object()) model["document"]["metadata"] = f.values[2];
    if (f.values[3].is_number_integer()) {
      model["document"]["spec"]["revisionHistoryLimit"] = f.values[3];
    }
    if (f.values[4].is_object()) model["destination"] = f.values[4];
    live.insert(f.identifier);
    apps_index(f.identifier, apps_entry(f.identifier), f.version, model);
  }
  for (auto& f : store_.object_fields("applicationSet", {"$.repositories"})) {
    json model = json::object();
    if (f.values[0].is_array()) model["repositories"] = f.values[0];
    const std::string key = appsets_key(f.identifier);
    live.insert(key);
    auto& rt = apps_entry(key);
    apps_index(key, rt, f.version, model);
    rt.follow = true;
  }
  std::vector<std::string> gone;
  for (const auto& [key, rt] : apps_) {
    if (!live.count(key)) gone.push_back(key);
  }
  for (const auto& key : gone) apps_forget(key);
  apps_next_place_ = Clock::now();
}

std::vector<std::string> Machine::app_destination_keys(const json& destination) {
  std::vector<std::string> out;
  if (!destination.is_object()) return out;
  const std::string name = destination.value("name", "");
  const std::string server = trim_slash(destination.value("server", ""));
  if (!name.empty()) out.push_back("name:" + name);
  if (!server.empty()) out.push_back("server:" + server);
  return out;
}

Machine::AppRuntime& Machine::apps_entry(const std::string& key) {
  auto [it, fresh] = apps_.try_emplace(key);
  if (fresh) {
    it->second.state.name = key;
    it->second.dirty = true;
  }
  return it->second;
}

void Machine::apps_index(const std::string& key, AppRuntime& rt, std::int64_t version,
                         const json& model) {
  rt.version = version;
  rt.sources.clear();
  if (appsets_is_key(key)) {
    for (const auto& r : model.value("repositories", json::array())) {
      if (!r.is_object()) continue;
      rt.sources.emplace_back(normalize_repo_url(r.value("repoURL", "")),
                              r.value("revision", "HEAD"));
    }
    return;
  }
  const json document = model.value("document", json::object());
  const json meta = document.value("metadata", json::object());
  rt.deleting = meta.is_object() && meta.contains("deletionTimestamp");
  const json limit = document.value("spec", json::object()).value("revisionHistoryLimit", json(10));
  rt.history_limit = limit.is_number_integer() ? limit.get<int>() : 10;
  rt.sources.emplace_back(normalize_repo_url(model.value("repoURL", "")),
                          model.value("targetRevision", "HEAD"));
  auto destinations = app_destination_keys(model.value("destination", json::object()));
  if (destinations != rt.destinations) {
    for (const auto& d : rt.destinations) index_erase(apps_by_destination_, d, key);
    rt.destinations = std::move(destinations);
    for (const auto& d : rt.destinations) apps_by_destination_[d].insert(key);
  }
  std::string owner = appsets_owner(document);
  if (owner == rt.owner) return;
  if (!rt.owner.empty()) index_erase(apps_by_owner_, rt.owner, key);
  rt.owner = std::move(owner);
  if (!rt.owner.empty()) apps_by_owner_[rt.owner].insert(key);
}

void Machine::apps_forget(const std::string& key) {
  auto it = apps_.find(key);
  if (it == apps_.end()) return;
  if (appsets_is_key(key)) {
    apps_unassign(it->second, "the ApplicationSet was deleted");
    appsets_delete_owned(key.substr(appsets_key("").size()));
  } else {
    // Gone from the store: deleted without cascade (a cascading deletion ends in
    // apps_finish_delete), so its resources stay.
    apps_unassign(it->second, "the application was deleted");
    if (!it->second.owner.empty()) index_erase(apps_by_owner_, it->second.owner, key);
    for (const auto& d : it->second.destinations) index_erase(apps_by_destination_, d, key);
  }
  store_.delete_app_state(key);
  apps_.erase(it);
}

std::string Machine::cluster_server(const json& connector_model) {
  return cluster_api_server(store_, connector_model);
}

Machine::AppTarget Machine::apps_target(const std::string& name) {
  if (appsets_is_key(name)) return appsets_target(name);
  AppTarget t;
  auto obj = store_.object("application", name);
  if (!obj) {
    t.error = "application '" + name + "' does not exist";
    return t;
  }
  const json& m = obj->model;
  json document = m.value("document", json::object());
  // Argo CD keeps status.resources on the Application and deletes and prunes by it: the kinds
  // of what its delegate last reported go with the document, so that another delegate (or this
  // one after a restart) still finds objects whose kinds have left Git.
  document.erase("status");
  if (auto rt = apps_.find(name); rt != apps_.end() && rt->second.state.status.is_object()) {
    std::set<std::tuple<std::string, std::string, std::string>> kinds;
    const json& reported = rt->second.state.status;
    if (auto r = reported.find("resources"); r != reported.end() && r->is_array()) {
      for (const auto& res : *r) {
        if (!res.is_object()) continue;
        auto text = [&res](const char* key) {
          auto it = res.find(key);
          return it != res.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        if (!text("kind").empty() && !text("version").empty()) {
          kinds.emplace(text("group"), text("version"), text("kind"));
        }
      }
    }
    json resources = json::array();
    for (const auto& [group, version, kind] : kinds) {
      resources.push_back({{"group", group}, {"version", version}, {"kind", kind}});
    }
    if (!resources.empty()) document["status"] = {{"resources", resources}};
  }
  t.application_json = document.dump();
  const json dest = m.value("destination", json::object());
  const std::string by_name = dest.value("name", "");
  const std::string server = trim_slash(dest.value("server", ""));
  std::optional<store::ObjectRecord> cluster;
  std::optional<json> connector;
  try {
    if (!by_name.empty()) {
      cluster = store_.object("gitopsCluster", by_name);
      if (!cluster) {
        // Argo CD's destination.name is the cluster's name: a generated application (whose
        // destination is not checked at apply) may use the gitopsCluster's name.
        std::vector<store::ObjectRecord> named;
        for (auto& gc : store_.objects("gitopsCluster")) {
          if (gc.name == by_name) named.push_back(std::move(gc));
        }
        if (named.size() > 1) {
          t.error = "destination cluster '" + by_name + "' is the name of " +
                    std::to_string(named.size()) + " GitOps clusters; use one's identifier (" +
                    named[0].identifier + ", " + named[1].identifier + ")";
          return t;
        }
        if (named.empty()) {
          t.no_cluster = true;
          t.error = "destination cluster '" + by_name +
                    "' is neither the identifier nor the name of a registered GitOps cluster";
          return t;
        }
        cluster = std::move(named.front());
      }
      auto c = store_.object("connector", cluster->model.value("connectorRef", ""));
      if (c) connector = c->model;
    } else {
      std::vector<std::string> known;
      for (auto& gc : store_.objects("gitopsCluster")) {
        auto c = store_.object("connector", gc.model.value("connectorRef", ""));
        if (!c) continue;
        const std::string url = cluster_server(c->model);
        if (!url.empty()) known.push_back(url + " (" + gc.identifier + ")");
        if (!url.empty() && url == server) {
          cluster = gc;
          connector = c->model;
          break;
        }
      }
      if (!cluster) {
        t.no_cluster = true;
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        t.error = "destination server " + server +
                  " is not the API server of a registered GitOps cluster (registered: " +
                  (list.empty() ? "none with a known server URL" : list) + ")";
        return t;
      }
    }
    if (!connector) {
      t.error = "GitOps cluster '" + cluster->identifier + "' has no connector";
      return t;
    }
    json resolved = resolve_connector(*connector, secret_source(), t.mask);
    json names = json::array({cluster->identifier});
    if (cluster->name != cluster->identifier && !cluster->name.empty())
      names.push_back(cluster->name);
    t.cluster_json =
        json{{"identifier", cluster->identifier}, {"names", names}, {"connector", resolved}}.dump();
    for (const auto& sel : resolved.value("delegateSelectors", json::array())) {
      if (sel.is_string()) t.selectors.push_back(sel.get<std::string>());
    }
    const std::string agent = cluster->model.value("agentIdentifier", "");
    if (!agent.empty()) t.selectors.push_back(agent);
  } catch (const std::exception& e) {
    t.error = e.what();
  }
  return t;
}

void Machine::apps_send_assign(AppRuntime& app, const Session& s, bool force) {
  auto t = apps_target(app.state.name);
  if (apps_cannot_delete_resources(app, t)) return;
  if (!t.error.empty()) {
    apps_unassign(app, t.error);
    apps_problem(app, t.error);
    return;
  }
  std::string digest = std::to_string(std::hash<std::string>{}(
      t.application_json + '\x1f' + t.cluster_json + '\x1f' + app.state.plugin));
  if (!force && digest == app.sent) return;
  app.sent = digest;
  v1::Envelope env;
  auto* a = env.mutable_app_assign();
  a->set_app(app.state.name);
  a->set_epoch(app.state.epoch);
  a->set_plugin(app.state.plugin);
  a->set_application_json(t.application_json);
  a->set_cluster_json(t.cluster_json);
  for (auto& m : t.mask) a->add_mask(std::move(m));
  a->set_deleting(app.deleting);
  send(s.peer, std::move(env));
}

void Machine::apps_problem(AppRuntime& app, const std::string& message) {
  if (app.state.message == message) return;
  if (!message.empty()) spdlog::warn("application {}: {}", app.state.name, message);
  app.state.message = message;
  app.dirty = true;
}

void Machine::apps_unassign(AppRuntime& app, const std::string& reason) {
  if (app.state.instance_id.empty()) return;
  if (auto* s = scheduler_.by_instance(app.state.instance_id)) {
    v1::Envelope env;
    env.mutable_app_unassign()->set_app(app.state.name);
    env.mutable_app_unassign()->set_epoch(app.state.epoch);
    env.mutable_app_unassign()->set_reason(reason);
    send(s->peer, std::move(env));
  }
  apps_fail_operations(app.state.name, "", "it was taken from delegate " + app.state.delegate);
  spdlog::info("application {}: unassigned from delegate {} ({})", app.state.name,
               app.state.delegate, reason);
  app.state.instance_id.clear();
  app.state.delegate.clear();
  app.orphaned_since.reset();
  app.sent.clear();
  app.dirty = true;
}

void Machine::apps_place(AppRuntime& app, std::map<std::string, int>& load) {
  auto t = apps_target(app.state.name);
  if (apps_cannot_delete_resources(app, t)) return;
  if (!t.error.empty()) {
    apps_problem(app, t.error);
    return;
  }
  const Session* best = nullptr;
  std::vector<std::string> seen;
  for (const auto& [id, s] : scheduler_.sessions()) {
    if (s.reconcilers.empty() || s.draining) continue;
    seen.push_back(s.name);
    bool match = std::all_of(t.selectors.begin(), t.selectors.end(),
                             [&](const std::string& sel) { return s.has_tag(sel); });
    if (!match) continue;
    if (best == nullptr || load[s.instance_id] < load[best->instance_id] ||
        (load[s.instance_id] == load[best->instance_id] && s.name < best->name)) {
      best = &s;
    }
  }
  if (best == nullptr) {
    std::string sel;
    for (const auto& x : t.selectors) sel += (sel.empty() ? "" : ", ") + x;
    std::string list;
    for (const auto& x : seen) list += (list.empty() ? "" : ", ") + x;
    apps_problem(app,
                 "no connected delegate can reconcile it: " +
                     (seen.empty() ? std::string("none has a plugin with a reconciler")
                                   : "delegates with a reconciler (" + list +
                                         ") do not match the cluster's selectors (" + sel + ")"));
    return;
  }
  apps_problem(app, "");
  app.state.epoch += 1;
  ++load[best->instance_id];
  app.state.instance_id = best->instance_id;
  app.state.delegate = best->name;
  app.state.plugin = best->reconcilers.front();
  app.state.assigned_at = now_ms();
  app.orphaned_since.reset();
  app.sent.clear();
  app.dirty = true;
  spdlog::info("application {}: assigned to delegate {} (epoch {})", app.state.name, best->name,
               app.state.epoch);
  apps_send_assign(app, *best, true);
}

void Machine::apps_on_hello(Session& s, const v1::Hello& hello, bool new_connection) {
  s.reconcilers.assign(hello.reconcilers().begin(), hello.reconcilers().end());
  std::map<std::string, std::uint64_t> held;
  for (const auto& l : hello.apps()) held[l.app()] = l.epoch();
  // What it holds that is no longer its own (given away while it was cut off, or deleted).
  for (const auto& [name, epoch] : held) {
    auto it = apps_.find(name);
    if (it != apps_.end() && it->second.state.instance_id == s.instance_id &&
        it->second.state.epoch == epoch) {
      continue;
    }
    v1::Envelope env;
    env.mutable_app_unassign()->set_app(name);
    env.mutable_app_unassign()->set_epoch(epoch);
    env.mutable_app_unassign()->set_reason("assigned elsewhere or deleted");
    send(s.peer, std::move(env));
  }
  for (auto& [name, app] : apps_) {
    if (app.state.instance_id != s.instance_id) continue;
    if (s.draining || s.reconcilers.empty()) {
      // A draining delegate has let its applications go: they move after the fence delay.
      if (!app.orphaned_since) app.orphaned_since = Clock::now();
      continue;
    }
    app.orphaned_since.reset();
    // Back within the fence delay: it keeps them (same epoch), and gets them again unless it
    // still holds them.
    auto h = held.find(name);
    bool holds = h != held.end() && h->second == app.state.epoch;
    if (new_connection || !holds) apps_send_assign(app, s, !holds);
  }
  apps_next_place_ = Clock::now(); // a new delegate may take what waits
}

void Machine::apps_on_session_lost(const std::string& instance_id) {
  apps_fail_operations("", instance_id, "its delegate was lost");
  for (auto& [name, app] : apps_) {
    if (app.state.instance_id == instance_id && !app.orphaned_since) {
      app.orphaned_since = Clock::now();
    }
  }
}

void Machine::apps_on_status(const wire::PeerId& peer, const v1::AppStatus& status) {
  auto* s = scheduler_.by_peer(peer);
  auto it = apps_.find(status.app());
  if (s == nullptr || it == apps_.end()) return;
  auto& app = it->second;
  // The fence: only the current holder's reports count.
  if (app.state.instance_id != s->instance_id || app.state.epoch != status.epoch()) {
    spdlog::debug("application {}: ignored a status of epoch {} from {} (current: epoch {} on {})",
                  status.app(), status.epoch(), s->name, app.state.epoch, app.state.delegate);
    return;
  }
  json j = json::parse(status.status_json(), nullptr, false);
  if (!j.is_object()) {
    spdlog::warn("application {}: delegate {} sent a status that is not a JSON object",
                 status.app(), s->name);
    return;
  }
  if (appsets_is_key(status.app())) {
    // The generator's report; what is shown is made of it when it is followed.
    app.state.status["reported"] = std::move(j);
    app.follow = true;
  } else {
    apps_reported_server(j);
    apps_merge_history(app, j, s->name);
    app.state.status = std::move(j);
    apps_deletion_condition(app);
  }
  app.state.status_epoch = status.epoch();
  app.state.status_at = now_ms();
  app.dirty = true;
}

void Machine::apps_reported_server(json& status) {
  auto it = status.find("clusterServer");
  if (it == status.end()) return;
  const json reported = std::move(*it);
  status.erase(it);
  if (!reported.is_object()) return;
  const std::string connector = reported.value("connector", "");
  const std::string server = reported.value("server", "");
  if (connector.empty() || server.empty() || reported_servers_[connector] == server) return;
  reported_servers_[connector] = server;
  if (store_.reported_cluster_server(connector) == server) return;
  spdlog::info("connector {}: its kubeconfig's API server is {}, as a delegate read it", connector,
               server);
  store_.put_reported_cluster_server(connector, server);
  // Applications naming it by destination.server, and the clusters generator, see it now.
  apps_pending_.insert({"connector", connector});
  apps_dirty_ = true;
}

void Machine::apps_changed(const std::set<std::pair<std::string, std::string>>& changes) {
  bool clusters = false;        // what every target is resolved against changed
  std::set<std::string> follow; // sets whose applications changed: follow their reports again
  std::set<std::string> assign; // entries whose spec changed: sent again to their delegates
  std::set<std::string> changed_apps;
  for (const auto& [kind, id] : changes) {
    if (kind != "application" && kind != "applicationSet") {
      clusters = true; // a GitOps cluster, connector or secret
      continue;
    }
    const bool set = kind == "applicationSet";
    const std::string key = set ? appsets_key(id) : id;
    auto obj = store_.object(kind, id);
    auto it = apps_.find(key);
    if (!set) {
      if (it != apps_.end() && !it->second.owner.empty()) follow.insert(it->second.owner);
      changed_apps.insert(id);
    }
    if (!obj) {
      apps_forget(key);
      continue;
    }
    auto& rt = apps_entry(key);
    apps_index(key, rt, obj->version, obj->model);
    if (set) {
      rt.follow = true;
    } else if (!rt.owner.empty()) {
      follow.insert(rt.owner);
    }
    assign.insert(key);
  }
  // The sets' keys sort together ("applicationset/..."; an application's name has no '/').
  for (auto it = apps_.lower_bound(appsets_key("")); it != apps_.end() && appsets_is_key(it->first);
       ++it) {
    auto& rt = it->second;
    if (rt.follow) continue;
    if (follow.count(it->first.substr(appsets_key("").size()))) {
      rt.follow = true;
      continue;
    }
    // A set generating a changed name without owning it (a conflict) may take it now.
    if (changed_apps.empty() || !rt.state.status.is_object()) continue;
    auto generated = rt.state.status.find("applications");
    if (generated == rt.state.status.end() || !generated->is_array()) continue;
    for (const auto& n : *generated) {
      if (n.is_string() && changed_apps.count(n.get<std::string>())) rt.follow = true;
    }
  }
  // Changed specs or clusters reach their delegates; the rest is placed at the next tick.
  auto send = [&](AppRuntime& app) {
    if (app.state.instance_id.empty() || app.orphaned_since) return;
    if (auto* s = scheduler_.by_instance(app.state.instance_id)) apps_send_assign(app, *s, false);
  };
  if (clusters) {
    for (auto& [name, app] : apps_) send(app);
  } else {
    for (const auto& key : assign) {
      if (auto it = apps_.find(key); it != apps_.end()) send(it->second);
    }
  }
  apps_next_place_ = Clock::now();
}

void Machine::apps_catch_up() {
  const auto start = Clock::now();
  if (apps_dirty_ && start >= apps_next_change_) {
    // Written in an earlier batch, committed now (store reads see commits only).
    apps_dirty_ = false;
    apps_changed(std::exchange(apps_pending_, {}));
    // It reads each object written: under a stream of applies, looking once a batch would pay
    // the fixed costs per batch, so the next look waits at least twice as long as this one took.
    const auto took = Clock::now() - start;
    apps_next_change_ =
        Clock::now() + std::max<Clock::duration>(std::chrono::milliseconds(20), 2 * took);
  }
  appsets_tick();
}

void Machine::apps_tick() {
  auto now = Clock::now();
  // Longer than a cut-off delegate needs to notice it lost its session and drop its
  // applications: its liveness window runs from the coordinator's last heartbeat, which can be
  // up to one interval older than the delegate's last message here.
  const auto fence = options_.liveness.interval * 2;
  bool place = now >= apps_next_place_;
  std::vector<std::pair<std::string, std::string>> without; // name, why
  for (const auto& [name, app] : apps_) {
    if (!app.delete_without_resources.empty()) {
      without.emplace_back(name, app.delete_without_resources);
    }
  }
  for (const auto& [name, why] : without) {
    // Argo CD lets such an application go: no cluster is there to delete its resources from.
    spdlog::warn("application {}: deleted without its resources: {}", name, why);
    apps_finish_delete(name, {{"deletedResources", 0}, {"resourcesLeft", why}});
  }
  for (auto it = app_operations_.begin(); it != app_operations_.end();) {
    if (now < it->second.deadline) {
      ++it;
      continue;
    }
    auto promise = it->second.done;
    auto o = op_failure(504, "Timeout",
                        "the delegate did not answer the operation on application '" +
                            it->second.app + "' in time");
    effects_.push_back([promise, o = std::move(o)]() mutable { promise->set_value(std::move(o)); });
    it = app_operations_.erase(it);
  }
  for (auto& [name, app] : apps_) {
    if (app.retry_delete_at && now >= *app.retry_delete_at) {
      app.retry_delete_at.reset();
      Session* s = app.state.instance_id.empty() || app.orphaned_since
                       ? nullptr
                       : scheduler_.by_instance(app.state.instance_id);
      if (s != nullptr && app.deleting) apps_send_assign(app, *s, true);
    }
    if (app.orphaned_since && now - *app.orphaned_since >= fence) {
      // After a coordinator restart, the old holder may still come back in the re-attach window.
      bool restarting = now - started_ < options_.reattach_window &&
                        scheduler_.by_instance(app.state.instance_id) == nullptr &&
                        app.orphaned_since <= started_ + fence;
      if (!restarting) {
        spdlog::warn("application {}: delegate {} is gone; moving it", name, app.state.delegate);
        apps_unassign(app, "its delegate is gone");
        place = true;
      }
    }
  }
  if (!place) return;
  apps_next_place_ = now + std::chrono::seconds(5);
  // Counted once for the whole pass (not once an application: that made placing N
  // applications quadratic), and kept up to date as applications are placed.
  std::map<std::string, int> load; // instance -> applications held
  for (const auto& [n, a] : apps_) {
    if (!a.state.instance_id.empty()) ++load[a.state.instance_id];
  }
  for (auto& [name, app] : apps_) {
    if (app.state.instance_id.empty()) apps_place(app, load);
  }
}

void Machine::apps_flush() {
  for (auto& [name, app] : apps_) {
    if (!app.dirty) continue;
    store_.put_app_state(app.state);
    app.dirty = false;
  }
}

void Machine::app_operation(const AppOperationRequest& request, std::promise<Outcome> done) {
  auto promise = std::make_shared<std::promise<Outcome>>(std::move(done));
  auto answer = [&](Outcome o) {
    effects_.push_back([promise, o = std::move(o)]() mutable { promise->set_value(std::move(o)); });
  };
  auto it = apps_.find(request.app);
  if (it == apps_.end()) {
    return answer(op_failure(404, "NotFound", "application '" + request.app + "' not found"));
  }
  std::chrono::milliseconds timeout{0};
  if (request.op == "refresh" || request.op == "terminate") {
    timeout = std::chrono::seconds(60);
  } else if (request.op == "sync" || request.op == "rollback") {
    timeout = std::chrono::minutes(30);
  } else {
    return answer(op_failure(400, "InvalidInput",
                             "unknown operation '" + request.op +
                                 "' (sync, refresh, rollback or terminate)"));
  }
  auto& app = it->second;
  if (app.deleting && (request.op == "sync" || request.op == "rollback")) {
    return answer(op_failure(409, "Deleting",
                             "application '" + request.app +
                                 "' is being deleted: it is not synced or rolled back any more"));
  }
  Session* s =
      app.state.instance_id.empty() ? nullptr : scheduler_.by_instance(app.state.instance_id);
  if (s == nullptr || app.orphaned_since) {
    return answer(op_failure(
        409, "NotReconciled",
        "application '" + request.app + "' has no delegate reconciling it now" +
            (app.state.message.empty() ? std::string() : " (" + app.state.message + ")")));
  }
  const std::string id = "op-" + std::to_string(++app_operation_seq_);
  json params = request.params.is_object() ? request.params : json::object();
  if (!params.contains("initiatedBy")) params["initiatedBy"] = request.user;
  std::string op_name = request.op;
  if (request.op == "rollback") {
    // The history is the coordinator's (it outlives delegates): a rollback is a sync at the
    // entry's revision, on whichever delegate holds the application now.
    if (!params.contains("id") || !params["id"].is_number_integer()) {
      return answer(op_failure(400, "InvalidInput", "a rollback needs the history entry's id"));
    }
    const auto wanted = params["id"].get<std::int64_t>();
    std::optional<json> entry;
    for (const auto& e : app.state.status.value("history", json::array())) {
      if (e.value("id", std::int64_t{0}) == wanted) entry = e;
    }
    if (!entry) {
      return answer(op_failure(404, "NotFound",
                               "application '" + request.app + "' has no history entry " +
                                   std::to_string(wanted) + " (see capstan apps history " +
                                   request.app + ")"));
    }
    op_name = "sync";
    params = {{"revision", entry->value("revision", "")},
              {"initiatedBy", params.value("initiatedBy", request.user) + " (rollback to " +
                                  std::to_string(wanted) + ")"}};
  }
  v1::Envelope env;
  auto* op = env.mutable_app_operation();
  op->set_id(id);
  op->set_app(request.app);
  op->set_epoch(app.state.epoch);
  op->set_op(op_name);
  op->set_params_json(params.dump());
  send(s->peer, std::move(env));
  app_operations_[id] = {request.app, app.state.instance_id, app.state.epoch,
                         Clock::now() + timeout, promise};
  store::AuditRecord a;
  a.user = request.user;
  a.action = request.op;
  a.kind = "application";
  a.target = request.app;
  a.details = {{"delegate", app.state.delegate}, {"params", request.params}};
  store_.append_audit(a);
}

Outcome Machine::git_push(const GitPush& push) {
  json refreshed = json::array();
  json waiting = json::array();
  for (auto& [name, app] : apps_) {
    if (appsets_is_key(name) || app.sources.empty()) continue;
    const auto& [repo, revision] = app.sources.front();
    if (!push.repositories.count(repo) || !push_concerns(push, revision)) continue;
    Session* s =
        app.state.instance_id.empty() ? nullptr : scheduler_.by_instance(app.state.instance_id);
    if (s == nullptr || app.orphaned_since) {
      // Its next delegate reads Git when it takes it.
      waiting.push_back(name);
      continue;
    }
    v1::Envelope env;
    auto* op = env.mutable_app_operation();
    op->set_id("push-" + std::to_string(++app_operation_seq_));
    op->set_app(name);
    op->set_epoch(app.state.epoch);
    op->set_op("refresh");
    op->set_params_json("{}");
    send(s->peer, std::move(env));
    refreshed.push_back(name);
  }
  appsets_git_push(push, refreshed, waiting);
  spdlog::info("push to {} ({}): refreshing {} application(s) and ApplicationSet(s)",
               push.repositories.empty() ? "?" : *push.repositories.begin(), push.ref,
               refreshed.size());
  Outcome out;
  out.body = {{"ref", push.ref}, {"refreshed", refreshed}, {"unassigned", waiting}};
  return out;
}

void Machine::apps_refresh_after_step(const std::string& step_type,
                                      const plugin::v1::StepResult& result,
                                      const std::string& execution_id) {
  const bool merge = step_type == "MergePR" || step_type == "GitOpsMergePR";
  const bool revert = step_type == "RevertPR" || step_type == "GitOpsRevertPR";
  if (!merge && !revert) return;
  // The branches the step moved, per repository: a merge moves its pull request's target, a
  // revert pushes its new branch.
  std::set<std::pair<std::string, std::string>> moved;
  for (const auto& rec : result.records()) {
    if (rec.kind() != "PullRequest") continue;
    json j = json::parse(rec.json(), nullptr, false);
    if (!j.is_object()) continue;
    const std::string repository = j.value("repository", "");
    const std::string branch = merge ? j.value("target", "") : j.value("source", "");
    if (merge && j.value("state", "") != "merged") continue;
    if (!repository.empty() && !branch.empty()) moved.emplace(repository, branch);
  }
  for (const auto& [repository, branch] : moved) {
    GitPush push;
    push.repositories.insert(normalize_repo_url(repository));
    push.ref = "refs/heads/" + branch;
    auto out = git_push(push);
    spdlog::info("execution {}: {} moved {} of {}: refreshed {}", execution_id, step_type, branch,
                 repository, out.body["refreshed"].dump());
  }
}

void Machine::apps_on_operation_result(const wire::PeerId& peer,
                                       const v1::AppOperationResult& result) {
  auto it = app_operations_.find(result.id());
  auto* s = scheduler_.by_peer(peer);
  if (it == app_operations_.end() || s == nullptr || s->instance_id != it->second.instance_id ||
      result.epoch() != it->second.epoch) {
    return;
  }
  auto promise = it->second.done;
  Outcome o;
  if (!result.ok()) {
    o = op_failure(422, "OperationFailed", result.error());
  } else {
    json body = json::parse(result.result_json(), nullptr, false);
    if (body.is_discarded()) body = json::object();
    o.body = {{"app", result.app()}, {"delegate", s->name}, {"result", body}};
  }
  app_operations_.erase(it);
  effects_.push_back([promise, o = std::move(o)]() mutable { promise->set_value(std::move(o)); });
}

void Machine::apps_fail_operations(const std::string& app, const std::string& instance_id,
                                   const std::string& why) {
  for (auto it = app_operations_.begin(); it != app_operations_.end();) {
    bool match = (!app.empty() && it->second.app == app) ||
                 (!instance_id.empty() && it->second.instance_id == instance_id);
    if (!match) {
      ++it;
      continue;
    }
    auto promise = it->second.done;
    auto o = op_failure(503, "DelegateLost",
                        "application '" + it->second.app + "': " + why +
                            "; the operation's outcome is unknown (see its status and history)");
    effects_.push_back([promise, o = std::move(o)]() mutable { promise->set_value(std::move(o)); });
    it = app_operations_.erase(it);
  }
}

} // namespace capstan::engine
