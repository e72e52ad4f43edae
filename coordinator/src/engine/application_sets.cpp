// ApplicationSets: each applied set is assigned to one delegate like an application (same epochs,
// fencing and failover; its runtime key is "applicationset/<name>"). The delegate renders it
// where Git is reachable and reports the generated Application documents; here they are
// followed: created, updated and deleted as the generators say, within the set's
// applicationsSync policy, never overwriting an application the set does not own.
#include <capstan/apps/application.h>
#include <capstan/apps/application_set.h>
#include <spdlog/spdlog.h>

#include "engine/git_push.h"
#include "engine/machine.h"
#include "model/object.h"

namespace capstan::engine {

using nlohmann::json;
namespace v1 = wire::v1;
using store::now_ms;

namespace {

constexpr std::string_view kSetKey = "applicationset/";

} // namespace

bool Machine::appsets_is_key(const std::string& key) {
  return key.rfind(kSetKey, 0) == 0;
}

std::string Machine::appsets_key(const std::string& set) {
  return std::string(kSetKey) + set;
}

std::string Machine::appsets_owner(const json& document) {
  const json meta = document.value("metadata", json::object());
  for (const auto& ref : meta.value("ownerReferences", json::array())) {
    if (ref.is_object() && ref.value("kind", "") == "ApplicationSet" &&
        ref.value("apiVersion", "") == apps::kApiVersion) {
      return ref.value("name", "");
    }
  }
  return "";
}

Machine::AppTarget Machine::appsets_target(const std::string& key) {
  AppTarget t;
  const std::string name = key.substr(kSetKey.size());
  auto obj = store_.object("applicationSet", name);
  if (!obj) {
    t.error = "ApplicationSet '" + name + "' does not exist";
    return t;
  }
  t.application_json = obj->model.value("document", json::object()).dump();
  // What the clusters generator offers: the registered GitOps clusters (no credentials).
  json clusters = json::array();
  for (const auto& gc : store_.objects("gitopsCluster")) {
    std::string server;
    if (auto c = store_.object("connector", gc.model.value("connectorRef", ""))) {
      server = cluster_server(c->model);
    }
    json labels = json::object();
    // Held in a local: a range-for over .items() of a temporary would read a destroyed object.
    const json tags =
        gc.document.value("gitopsCluster", json::object()).value("tags", json::object());
    for (const auto& [k, v] : tags.items()) {
      // A tag written `staging: true` is the label "true", as its selectors will say it.
      if (v.is_string()) labels[k] = v;
      if (v.is_boolean() || v.is_number()) labels[k] = v.dump();
      if (v.is_null()) labels[k] = "";
    }
    // Argo CD's parameters: name is the cluster's name, server its API URL.
    clusters.push_back({{"name", gc.name.empty() ? gc.identifier : gc.name},
                        {"server", server},
                        {"labels", labels}});
  }
  // The text as applied, so that the delegate's render errors name the file and line.
  json source = {
      {"file", obj->file},
      {"text",
       std::string(static_cast<std::size_t>(std::max(0, obj->line_offset)), '\n') + obj->yaml}};
  t.cluster_json = json{{"clusters", clusters}, {"source", source}}.dump();
  return t;
}

void Machine::appsets_put_application(const std::string& set, const model::Object& o,
                                      const std::string& action) {
  if (auto e = store_.object("application", o.identifier); e && app_deleting(*e)) {
    return; // generated again once its deletion is over
  }
  store::ObjectRecord r;
  r.kind = "application";
  r.identifier = o.identifier;
  r.name = o.name;
  r.document = o.document;
  r.yaml = yaml::dump(o.document);
  r.model = o.model;
  r.source = "ApplicationSet " + set;
  r.file = r.source;
  r.applied_at = now_ms();
  r.applied_by = appsets_key(set);
  for (const auto& ref : o.references) {
    r.references.push_back({{"kind", ref.kind},
                            {"identifier", ref.identifier},
                            {"location", ref.location},
                            {"role", ref.role}});
  }
  auto [version, fresh] = store_.put_object(r);
  if (!fresh) return;
  apps_written_ = true;
  store::AuditRecord a;
  a.user = appsets_key(set);
  a.action = "apply";
  a.kind = "application";
  a.target = o.identifier;
  a.details = {{"version", version}, {"result", action}, {"applicationSet", set}};
  store_.append_audit(a);
  spdlog::info("ApplicationSet {}: application {} {}", set, o.identifier, action);
}

void Machine::appsets_delete_application(const std::string& set, const std::string& name,
                                         const std::string& why) {
  auto existing = store_.object("application", name);
  if (!existing) return;
  if (apps::deletes_resources(existing->model.value("document", json::object()))) {
    // Its resources go first (the set's generated applications carry the finalizer).
    if (!app_deleting(*existing)) {
      apps_begin_delete(*existing, appsets_key(set), set);
      spdlog::info("ApplicationSet {}: application {} deleting ({})", set, name, why);
    }
    return;
  }
  store_.delete_object("application", name, appsets_key(set), now_ms());
  apps_written_ = true;
  store::AuditRecord a;
  a.user = appsets_key(set);
  a.action = "delete";
  a.kind = "application";
  a.target = name;
  a.details = {{"version", existing->version}, {"applicationSet", set}, {"reason", why}};
  store_.append_audit(a);
  spdlog::info("ApplicationSet {}: application {} deleted ({})", set, name, why);
}

void Machine::appsets_delete_owned(const std::string& set) {
  auto it = apps_by_owner_.find(set);
  if (it == apps_by_owner_.end()) return;
  for (const auto& name : std::set<std::string>(it->second)) {
    appsets_delete_application(set, name, "its ApplicationSet was deleted");
  }
}

bool Machine::appsets_follow(AppRuntime& rt, std::set<std::string>& written) {
  const std::string set = rt.state.name.substr(kSetKey.size());
  auto obj = store_.object("applicationSet", set);
  if (!obj) return true;
  const std::string policy = obj->model.value("applicationsSync", "sync");
  const bool may_update = policy == "sync" || policy == "create-update";
  const bool may_delete = policy == "sync" || policy == "create-delete";
  const json reported = rt.state.status.value("reported", json());
  if (!reported.is_object()) return true; // not rendered yet
  json conditions = json::array();
  bool error = false;
  std::string error_message;
  for (const auto& c : reported.value("conditions", json::array())) {
    if (!c.is_object()) continue;
    const std::string type = c.value("type", "");
    if (type == "ErrorOccurred" || type == "ParametersGenerated") {
      conditions.push_back(c);
      if (type == "ErrorOccurred" && c.value("status", "") == "True") {
        error = true;
        error_message = c.value("message", "");
      }
    } else if (type == "InvalidSpecError") {
      // The delegate could not take the set at all.
      error = true;
      error_message = c.value("message", "");
      conditions.push_back(
          apps::set_condition("ErrorOccurred", true, "ApplicationSetInvalid", error_message));
    }
  }
  json names = json::array();
  json resources = json::array();
  std::vector<std::string> problems;
  const json generated = reported.value("applications", json());
  if (generated.is_array()) {
    std::map<std::string, model::Object> desired;
    for (std::size_t i = 0; i < generated.size(); ++i) {
      yaml::Document doc;
      doc.value = generated[i];
      if (doc.value.is_object()) {
        // The set owns what it generates, whatever the delegate wrote.
        doc.value["metadata"]["ownerReferences"] = json::array({{{"apiVersion", apps::kApiVersion},
                                                                 {"kind", "ApplicationSet"},
                                                                 {"name", set},
                                                                 {"controller", true},
                                                                 {"blockOwnerDeletion", true}}});
      }
      model::Object o;
      std::vector<model::Problem> bad;
      if (doc.value.is_object()) {
        model::parse_application_object(doc, o, bad);
      } else {
        bad.push_back({"", "not a mapping"});
      }
      if (!bad.empty() || o.identifier.empty()) {
        problems.push_back("generated application #" + std::to_string(i + 1) +
                           " is invalid: " + (bad.empty() ? "no name" : bad.front().message));
        continue;
      }
      o.kind = "application";
      o.document = doc.value;
      desired.emplace(o.identifier, std::move(o));
    }
    std::set<std::string> owned;
    if (auto it = apps_by_owner_.find(set); it != apps_by_owner_.end()) owned = it->second;
    bool deferred = false;
    for (auto& [name, o] : desired) {
      names.push_back(name);
      std::string state = "Synced";
      auto existing = store_.object("application", name);
      if (existing && appsets_owner(existing->model.value("document", json::object())) != set) {
        const std::string other = appsets_owner(existing->model.value("document", json::object()));
        problems.push_back("application '" + name + "' already exists and is " +
                           (other.empty() ? std::string("not owned by an ApplicationSet")
                                          : "owned by ApplicationSet '" + other + "'") +
                           "; it is left as it is");
        state = "Conflict";
      } else if (written.count(name)) {
        deferred = true; // another set wrote it in this batch: looked at again after commit
        state = "Pending";
      } else if (!existing) {
        appsets_put_application(set, o, "created");
        written.insert(name);
        state = "Created";
      } else if (existing->document != o.document) {
        if (may_update) {
          appsets_put_application(set, o, "configured");
          written.insert(name);
          state = "Updated";
        } else {
          state = "OutOfDate"; // applicationsSync forbids updates
        }
      }
      resources.push_back({{"name", name}, {"status", state}});
    }
    for (const auto& name : owned) {
      if (desired.count(name)) continue;
      if (may_delete) {
        appsets_delete_application(set, name, "its generator no longer produces it");
        written.insert(name);
      } else {
        resources.push_back({{"name", name}, {"status", "Orphaned"}});
      }
    }
    if (deferred) return false;
  }
  if (!problems.empty() && !error) {
    error = true;
    error_message = problems.front();
    for (auto& c : conditions) {
      if (c.value("type", "") == "ErrorOccurred") {
        c = apps::set_condition("ErrorOccurred", true, "ApplicationSetApplicationsConflict",
                                error_message);
      }
    }
  }
  if (error) {
    std::string message = error_message;
    if (!generated.is_array())
      message += "; the applications it generated before are left as they are";
    conditions.push_back(apps::set_condition("ResourcesUpToDate", false, "ErrorOccurred", message));
  } else {
    conditions.push_back(apps::set_condition("ResourcesUpToDate", true, "ApplicationSetUpToDate",
                                             "ApplicationSet up to date"));
  }
  json status = {{"conditions", conditions},
                 {"revisions", reported.value("revisions", json::object())},
                 {"generatedAt", reported.value("generatedAt", "")},
                 {"problems", problems},
                 {"reported", reported}};
  if (generated.is_array()) {
    status["applications"] = names;
    status["resources"] = resources;
  } else {
    // Unchanged: what the last good render generated.
    status["applications"] = rt.state.status.value("applications", json::array());
    status["resources"] = rt.state.status.value("resources", json::array());
  }
  // Times of unchanged conditions stay as they were.
  for (auto& c : status["conditions"]) {
    for (const auto& old : rt.state.status.value("conditions", json::array())) {
      if (old.value("type", "") == c.value("type", "") &&
          old.value("status", "") == c.value("status", "") &&
          old.value("message", "") == c.value("message", "")) {
        c["lastTransitionTime"] = old.value("lastTransitionTime", c["lastTransitionTime"]);
      }
    }
  }
  if (status != rt.state.status) {
    rt.state.status = std::move(status);
    rt.dirty = true;
  }
  return true;
}

void Machine::appsets_tick() {
  // Store reads see commits only: while this batch applied or deleted objects, the follow
  // waits for the next batch (so it never overwrites what a user just applied).
  // The same while committed writes wait to be looked at: what each set owns is up to date.
  if (apps_written_ || apps_dirty_) return;
  std::set<std::string> written;
  for (auto& [key, rt] : apps_) {
    if (!rt.follow || !appsets_is_key(key)) continue;
    rt.follow = !appsets_follow(rt, written);
  }
}

void Machine::appsets_git_push(const GitPush& push, json& refreshed, json& waiting) {
  for (auto it = apps_.lower_bound(appsets_key("")); it != apps_.end() && appsets_is_key(it->first);
       ++it) {
    const std::string& key = it->first;
    auto& rt = it->second;
    bool concerned = false;
    for (const auto& [repo, revision] : rt.sources) {
      if (push.repositories.count(repo) && push_concerns(push, revision)) concerned = true;
    }
    if (!concerned) continue;
    Session* s =
        rt.state.instance_id.empty() ? nullptr : scheduler_.by_instance(rt.state.instance_id);
    if (s == nullptr || rt.orphaned_since) {
      waiting.push_back(key);
      continue;
    }
    v1::Envelope env;
    auto* op = env.mutable_app_operation();
    op->set_id("push-" + std::to_string(++app_operation_seq_));
    op->set_app(key);
    op->set_epoch(rt.state.epoch);
    op->set_op("refresh");
    op->set_params_json("{}");
    send(s->peer, std::move(env));
    refreshed.push_back(key);
  }
}

} // namespace capstan::engine
