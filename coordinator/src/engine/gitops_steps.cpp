// The GitOps steps the coordinator runs itself, on its own Applications: GitOpsSync (a sync of
// each matched application through the delegate that holds it, then a wait until each is Synced
// and Healthy at the synced revision) and UpdateGitOpsApp (the Application's source changed as
// Harness does, stored and re-sent to its delegate). The live applications of a stage's
// clusters for FetchLinkedApps are gathered here too. See docs/gitops.md.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <regex>

#include "capstan/expression/expression.h"
#include "engine/machine.h"
#include "model/duration.h"
#include "model/object.h"

namespace capstan::engine {

using nlohmann::json;
namespace st = store::status;
using store::now_ms;

namespace {

// A flag of a rendered spec: a boolean, or "true"/"false" as Harness UIs and expressions give.
bool spec_flag(const json& spec, const char* key, bool fallback, std::string& error) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) {
    const auto s = it->get<std::string>();
    if (s == "true") return true;
    if (s == "false") return false;
    if (s.empty()) return fallback;
  }
  if (error.empty()) error = std::string(key) + " must be true or false, not " + it->dump();
  return fallback;
}

std::string text_of(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

// A list field that may arrive as a list, or as JSON text from an expression.
json list_of(const json& v, const std::string& field, std::string& error) {
  if (v.is_null()) return json::array();
  if (v.is_array()) return v;
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (s.empty()) return json::array();
    json parsed = json::parse(s, nullptr, false);
    if (parsed.is_array()) return parsed;
    return json::array({s}); // one name
  }
  if (error.empty()) error = field + " must be a list";
  return json::array();
}

// The application's conditions, one line.
std::string conditions_text(const json& status) {
  std::string out;
  for (const auto& c : status.value("conditions", json::array())) {
    out += (out.empty() ? "" : "; ") + c.value("type", "") + ": " + c.value("message", "");
  }
  return out;
}

// Kustomize's image name: "name=new:tag" → name; "name:tag" / "name@digest" → name (a registry
// port stays part of the name).
std::string image_name(const std::string& image) {
  if (auto eq = image.find('='); eq != std::string::npos) return image.substr(0, eq);
  std::string s = image;
  if (auto at = s.find('@'); at != std::string::npos) s.resize(at);
  auto slash = s.rfind('/');
  auto colon = s.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) s.resize(colon);
  return s;
}

std::chrono::milliseconds backoff_delay(const json& retry, int attempt) {
  double d = retry.value("baseMs", 5000.0);
  const double factor = retry.value("factor", 2.0);
  for (int i = 1; i < attempt; ++i) d *= factor;
  d = std::min(d, retry.value("maxMs", 180000.0));
  return std::chrono::milliseconds(static_cast<std::int64_t>(d));
}

} // namespace

// ---------------------------------------------------------------------------------------------
// FetchLinkedApps: the live applications of the stage's clusters

json Machine::live_applications(const json& clusters) {
  // The applications linked to the clusters, from the index: only those are read. Those
  // committed but not yet looked at (apps_catch_up) are read too: the index may not know where
  // they link to now.
  std::set<std::string> linked;
  for (const auto& [kind, id] : apps_pending_) {
    if (kind == "application") linked.insert(id);
  }
  for (const auto& c : clusters) {
    if (!c.is_object()) continue;
    json as_destination = {{"name", c.value("identifier", "")}, {"server", c.value("server", "")}};
    auto keys = app_destination_keys(as_destination);
    if (const std::string name = c.value("name", ""); !name.empty()) keys.push_back("name:" + name);
    for (const auto& k : keys) {
      if (auto it = apps_by_destination_.find(k); it != apps_by_destination_.end()) {
        linked.insert(it->second.begin(), it->second.end());
      }
    }
  }
  json out = json::array();
  for (const auto& name : linked) {
    const auto o = store_.object("application", name);
    if (!o) continue;
    const json dest = o->model.value("destination", json::object());
    const std::string dname = dest.value("name", "");
    std::string dserver = dest.value("server", "");
    while (!dserver.empty() && dserver.back() == '/') dserver.pop_back();
    std::string cluster;
    for (const auto& c : clusters) {
      if (!c.is_object()) continue;
      std::string server = c.value("server", "");
      while (!server.empty() && server.back() == '/') server.pop_back();
      if ((!dname.empty() &&
           (dname == c.value("identifier", "") || dname == c.value("name", ""))) ||
          (!dserver.empty() && dserver == server)) {
        cluster = c.value("identifier", "");
        break;
      }
    }
    if (cluster.empty()) continue;
    json status = json::object();
    std::string delegate;
    if (auto it = apps_.find(o->identifier); it != apps_.end()) {
      status = it->second.state.status.is_object() ? it->second.state.status : json::object();
      delegate = it->second.state.delegate;
    }
    const json doc = o->model.value("document", json::object());
    std::string owner;
    for (const auto& ref : doc.value("metadata", json::object()).value("ownerReferences", json())) {
      if (ref.is_object() && ref.value("kind", "") == "ApplicationSet")
        owner = ref.value("name", "");
    }
    out.push_back(
        {{"name", o->identifier},
         {"namespace", dest.value("namespace", "")},
         {"cluster", cluster},
         {"server", dest.value("server", "")},
         {"destinationName", dname},
         {"repoURL", o->model.value("repoURL", "")},
         {"path", o->model.value("path", "")},
         {"targetRevision", o->model.value("targetRevision", "")},
         {"applicationSet", owner},
         {"delegate", delegate},
         {"syncStatus", status.value("sync", json::object()).value("status", "Unknown")},
         {"healthStatus", status.value("health", json::object()).value("status", "Unknown")},
         {"revision", status.value("sync", json::object()).value("revision", "")},
         {"syncedRevision", status.value("syncedRevision", "")},
         {"conditions", status.value("conditions", json::array())}});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// GitOpsSync

std::string Machine::gitops_unheld(const std::string& app) {
  auto it = apps_.find(app);
  if (it == apps_.end()) return "application '" + app + "' does not exist";
  const auto& rt = it->second;
  if (rt.state.instance_id.empty() || rt.orphaned_since ||
      scheduler_.by_instance(rt.state.instance_id) == nullptr) {
    return "application '" + app + "' has no delegate reconciling it now" +
           (rt.state.message.empty() ? std::string() : " (" + rt.state.message + ")");
  }
  return "";
}

// Harness's agentId names the agent the application lives on: here the delegate holding it
// (by name, or by a tag of it, as a gitopsCluster's agentIdentifier selects delegates).
std::string Machine::gitops_agent_mismatch(const std::string& app, const std::string& agent) {
  const auto& held = apps_.at(app).state;
  const Session* holder = scheduler_.by_instance(held.instance_id);
  if (agent == held.delegate || (holder != nullptr && holder->has_tag(agent))) return "";
  return "application '" + app + "' is held by agent '" + held.delegate + "', not by agentId '" +
         agent + "' (give its delegate's name or one of its tags, or leave agentId out)";
}

std::optional<json> Machine::gitops_step_spec(Active& a, std::size_t si, int r) {
  std::string error;
  json spec = rendered_spec(a, si, r, error);
  if (!error.empty()) {
    fail_row(a, si, r, "InvalidInput", error);
    return std::nullopt;
  }
  return spec;
}

bool Machine::start_gitops_sync(Active& a, std::size_t si, int r) {
  auto& rec = row_record(a, si, r);
  const std::size_t index = a.offset()[si] + static_cast<std::size_t>(r);
  const auto rendered = gitops_step_spec(a, si, r);
  if (!rendered) return true;
  const json& spec = *rendered;
  std::string error;
  const std::string where = plan_row(a, si, r).node->location + ": ";
  json params = json::object();
  params["prune"] = spec_flag(spec, "prune", false, error);
  params["dryRun"] = spec_flag(spec, "dryRun", false, error);
  params["applyOnly"] = spec_flag(spec, "applyOnly", false, error);
  params["force"] = spec_flag(spec, "forceApply", false, error);
  const bool wait = spec_flag(spec, "waitTillHealthy", true, error);
  // The sync options the step turns on, over the application's own (Argo CD's names).
  json options = json::array();
  const json so = spec.value("syncOptions", json::object());
  if (so.is_object()) {
    const std::vector<std::pair<const char*, const char*>> names = {
        {"skipSchemaValidation", "Validate=false"},
        {"autoCreateNamespace", "CreateNamespace=true"},
        {"pruneResourcesAtLast", "PruneLast=true"},
        {"applyOutOfSyncOnly", "ApplyOutOfSyncOnly=true"},
        {"replaceResources", "Replace=true"},
        {"serverSideApply", "ServerSideApply=true"},
        {"respectIgnoreDifferences", "RespectIgnoreDifferences=true"}};
    for (const auto& [key, item] : names) {
      if (spec_flag(so, key, false, error)) options.push_back(item);
    }
    const std::string policy = text_of(so.value("prunePropagationPolicy", json()));
    if (!policy.empty()) {
      if (policy != "foreground" && policy != "background" && policy != "orphan") {
        error = "syncOptions.prunePropagationPolicy must be foreground, background or orphan, "
                "not '" +
                policy + "'";
      }
      options.push_back("PrunePropagationPolicy=" + policy);
    }
  }
  if (!options.empty()) params["syncOptions"] = options;
  // Retries of a failed sync, with Argo CD's backoff defaults.
  json retry = {{"limit", 0}, {"baseMs", 5000.0}, {"factor", 2.0}, {"maxMs", 180000.0}};
  const json rs = spec.value("retryStrategy", json::object());
  const bool retry_on = spec_flag(spec, "retry", true, error);
  if (rs.is_object() && retry_on) {
    auto number = [&](const char* key, double fallback) {
      const json v = rs.value(key, json());
      if (v.is_null() || (v.is_string() && v.get<std::string>().empty())) return fallback;
      if (v.is_number()) return v.get<double>();
      try {
        std::size_t used = 0;
        const std::string s = v.get<std::string>();
        double d = std::stod(s, &used);
        if (used == s.size()) return d;
      } catch (const std::exception&) {
      }
      error = std::string("retryStrategy.") + key + " must be a number, not " + v.dump();
      return fallback;
    };
    auto duration = [&](const char* key, double fallback) {
      const std::string s = text_of(rs.value(key, json()));
      if (s.empty()) return fallback;
      auto d = model::parse_duration(s);
      if (!d) {
        error = std::string("retryStrategy.") + key + ": '" + s + "' is not a duration";
        return fallback;
      }
      return static_cast<double>(d->count());
    };
    retry["limit"] = static_cast<int>(number("limit", 0));
    retry["factor"] = number("increaseBackoffByFactor", 2);
    retry["baseMs"] = duration("baseBackoffDuration", 5000);
    retry["maxMs"] = duration("maxBackoffDuration", 180000);
    if (retry["limit"].get<int>() < 0) error = "retryStrategy.limit must be 0 or more";
  }
  // The applications: named, matched by a regex, or those an earlier FetchLinkedApps found.
  std::vector<std::string> names;
  std::map<std::string, std::string> agents; // application -> the agentId the list gives it
  std::string selection;
  const json list = list_of(spec.value("applicationsList", json()), "applicationsList", error);
  const std::string regex = text_of(spec.value("applicationRegex", json()));
  std::vector<std::string> all;
  for (const auto& [n, app] : apps_) {
    if (!appsets_is_key(n)) all.push_back(n); // ApplicationSets are not synced, their apps are
  }
  if (!list.empty() && !regex.empty()) {
    error = "give either applicationsList or applicationRegex, not both";
  } else if (!list.empty()) {
    selection = "applicationsList";
    for (const auto& item : list) {
      std::string name =
          item.is_object() ? text_of(item.value("applicationName", json())) : text_of(item);
      if (name.empty()) {
        error = "applicationsList holds an entry without an application name: " + item.dump();
        break;
      }
      names.push_back(name);
      if (item.is_object()) {
        const std::string agent = text_of(item.value("agentId", json()));
        if (!agent.empty()) agents[name] = agent;
      }
    }
  } else if (!regex.empty()) {
    // Among the applications of the stage's GitOps clusters, when it has some (a regex in a
    // prod stage does not sync another environment's applications).
    const json clusters = a.record.stages[si]
                              .context.value("gitOps", json::object())
                              .value("clusters", json::array());
    std::vector<std::string> scope = all;
    std::string where_scope;
    if (clusters.is_array() && !clusters.empty()) {
      scope.clear();
      for (const auto& l : live_applications(clusters)) scope.push_back(l.value("name", ""));
      std::vector<std::string> ids;
      for (const auto& c : clusters) ids.push_back(c.value("identifier", ""));
      where_scope = " of the stage's clusters (" + joined(ids) + ")";
    }
    selection = "applicationRegex '" + regex + "'" + where_scope;
    try {
      std::regex re(regex, std::regex::ECMAScript);
      for (const auto& n : scope) {
        if (std::regex_search(n, re)) names.push_back(n);
      }
    } catch (const std::regex_error& e) {
      error =
          "applicationRegex '" + regex + "' is not a valid regular expression (" + e.what() + ")";
    }
    if (error.empty() && names.empty()) {
      error = "applicationRegex '" + regex + "' matches no application" + where_scope +
              " (applications: " + joined(scope) + ")";
    }
  } else {
    // Harness's behaviour: the applications a Fetch Linked Apps step found earlier in the stage.
    for (int other = r - 1; other >= 0 && selection.empty(); --other) {
      const auto& orow = plan_row(a, si, other);
      const auto& orec = row_record(a, si, other);
      if (orow.node->kind != model::NodeKind::kStep || orec.status != st::kSucceeded) continue;
      if (orow.node->type != "FetchLinkedApps" && orow.node->type != "GitOpsFetchLinkedApps") {
        continue;
      }
      selection = "the applications step " + orow.path + " fetched";
      json found = json::parse(text_of(orec.outputs.value("applications", json())), nullptr, false);
      for (const auto& f : found.is_array() ? found : json::array()) {
        if (f.is_object() && !f.value("name", "").empty()) names.push_back(f.value("name", ""));
      }
      if (names.empty()) error = "step " + orow.path + " fetched no application to sync";
    }
    if (selection.empty() && error.empty()) {
      error = "name the applications to sync with applicationsList or applicationRegex (or run "
              "FetchLinkedApps earlier in the stage)";
    }
  }
  if (!error.empty()) {
    fail_row(a, si, r, "InvalidInput", where + error);
    return true;
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  for (const auto& n : names) {
    if (!apps_.count(n) || appsets_is_key(n)) {
      fail_row(a, si, r, "InvalidInput",
               where + "application '" + n + "' does not exist (applications: " + joined(all) +
                   ")");
      return true;
    }
  }
  for (const auto& n : names) {
    auto why = gitops_unheld(n);
    if (!why.empty()) {
      fail_row(a, si, r, "DelegateProvisioning", why);
      return true;
    }
  }
  for (const auto& [n, agent] : agents) {
    auto why = gitops_agent_mismatch(n, agent);
    if (why.empty()) continue;
    fail_row(a, si, r, "InvalidInput", where + "applicationsList: " + why);
    return true;
  }
  json apps = json::object();
  for (const auto& n : names) apps[n] = {{"phase", "pending"}, {"attempt", 0}};
  rec.state["gitops"] = {{"op", "sync"},
                         {"params", params},
                         {"wait", wait && !params["dryRun"].get<bool>()},
                         {"retry", retry},
                         {"apps", apps}};
  rec.status = st::kRunning;
  rec.message = "syncing " + joined(names);
  note(a, index, 1,
       "syncing " + std::to_string(names.size()) + " application(s) (" + selection +
           "): " + joined(names) + (options.empty() ? "" : "; sync options " + options.dump()));
  return true;
}

void Machine::gitops_send_sync(Active& a, std::size_t index, const std::string& app) {
  auto& rec = a.record.steps[index];
  auto& g = rec.state["gitops"];
  auto& s = g["apps"][app];
  const int attempt = s.value("attempt", 0) + 1;
  const std::string marker = (a.record.triggered_by.empty() ? "pipeline" : a.record.triggered_by) +
                             " (execution " + a.record.id + ", step " + rec.stage_identifier + "." +
                             rec.identifier + ", attempt " + std::to_string(attempt) + ")";
  s["attempt"] = attempt;
  s["phase"] = "syncing";
  s["initiatedBy"] = marker;
  json params = g["params"];
  params["initiatedBy"] = marker;
  AppOperationRequest req{app, "sync", params, marker};
  std::promise<Outcome> promise;
  gitops_ops_[a.record.id + '\x1f' + std::to_string(index) + '\x1f' + app] = promise.get_future();
  app_operation(req, std::move(promise));
  note(a, index, 1,
       "application " + app + ": sync started on delegate " + apps_[app].state.delegate +
           (attempt > 1 ? " (attempt " + std::to_string(attempt) + ")" : ""));
  touch_step(a, index);
}

void Machine::gitops_terminate(Active& a, std::size_t index, const std::string& why) {
  auto& rec = a.record.steps[index];
  if (rec.status != st::kRunning || !rec.state.contains("gitops")) return;
  auto& g = rec.state["gitops"];
  if (g.value("op", "") != "sync" || !g.contains("apps")) return;
  for (auto& [name, s] : g["apps"].items()) {
    if (s.value("phase", "") != "syncing") continue;
    // The answer comes back to nobody: the step ends now, as Aborted.
    AppOperationRequest req{name, "terminate", json::object(), why};
    app_operation(req, std::promise<Outcome>());
    s["phase"] = "terminated";
    auto rt = apps_.find(name);
    note(a, index, 2,
         "application " + name + ": terminating its sync on delegate " +
             (rt == apps_.end() ? std::string("?") : rt->second.state.delegate) + " (" + why + ")");
  }
}

// Moves one GitOpsSync step on; true when it changed.
bool Machine::gitops_sync_progress(Active& a, std::size_t index, std::int64_t wall) {
  auto& rec = a.record.steps[index];
  auto& g = rec.state["gitops"];
  const bool wait = g.value("wait", true);
  const json retry = g.value("retry", json::object());
  bool changed = false;
  // Applications applied in this or the last batch reach their delegates first (apps_tick), so
  // a sync runs on the spec an UpdateGitOpsApp just stored.
  const bool apps_settled = !apps_written_ && !apps_dirty_;
  for (auto& [name, s] : g["apps"].items()) {
    const std::string phase = s.value("phase", "");
    auto fail = [&](const std::string& type, const std::string& message) {
      const int attempt = s.value("attempt", 1);
      const bool retryable = type != "Verification" && type != "InvalidInput";
      if (retryable && attempt <= retry.value("limit", 0)) {
        auto delay = backoff_delay(retry, attempt);
        s["phase"] = "retrying";
        s["retryAt"] = wall + delay.count();
        note(a, index, 2,
             "application " + name + ": " + message + "; retrying in " +
                 model::format_duration(delay));
      } else {
        s["phase"] = "failed";
        s["errorType"] = type;
        s["message"] = message;
        note(a, index, 3, "application " + name + ": " + message);
      }
      changed = true;
    };
    if (phase == "pending" || (phase == "retrying" && wall >= s.value("retryAt", 0LL))) {
      if (!apps_settled) continue;
      auto why = gitops_unheld(name);
      if (!why.empty()) {
        fail("DelegateProvisioning", why);
        continue;
      }
      gitops_send_sync(a, index, name);
      changed = true;
      continue;
    }
    auto rt = apps_.find(name);
    const json status = rt != apps_.end() && rt->second.state.status.is_object()
                            ? rt->second.state.status
                            : json::object();
    if (phase == "syncing") {
      const std::string key = a.record.id + '\x1f' + std::to_string(index) + '\x1f' + name;
      json op;
      auto f = gitops_ops_.find(key);
      if (f != gitops_ops_.end()) {
        if (f->second.wait_for(std::chrono::seconds(0)) != std::future_status::ready) continue;
        Outcome o = f->second.get();
        gitops_ops_.erase(f);
        if (!o.ok()) {
          fail(o.code == "NotReconciled" || o.code == "DelegateLost" ? "DelegateProvisioning"
                                                                     : "Unknown",
               "sync failed: " + o.message);
          continue;
        }
        op = o.body.value("result", json::object());
      } else {
        // The coordinator restarted while the sync ran: its outcome is the application's last
        // operation, when that is this step's.
        const json last = status.value("operationState", json::object());
        const std::string p = last.value("phase", "");
        if (last.value("initiatedBy", "") != s.value("initiatedBy", "") ||
            (p != "Succeeded" && p != "Failed" && p != "Error")) {
          continue;
        }
        op = last;
      }
      s["operation"] = {{"phase", op.value("phase", "")},
                        {"message", op.value("message", "")},
                        {"revision", op.value("revision", "")}};
      if (op.value("phase", "") != "Succeeded") {
        std::string conds = conditions_text(status);
        fail("Unknown", "sync " + op.value("phase", std::string("Failed")) +
                            (op.value("revision", "").empty()
                                 ? ""
                                 : " at " + op.value("revision", "").substr(0, 12)) +
                            ": " + op.value("message", "") +
                            (conds.empty() ? "" : " (conditions: " + conds + ")"));
        continue;
      }
      s["revision"] = op.value("revision", "");
      note(a, index, 1,
           "application " + name + ": sync succeeded at " + op.value("revision", "") +
               (wait ? "; waiting until it is Synced and Healthy" : ""));
      s["phase"] = wait ? "waiting" : "done";
      changed = true;
      if (wait) continue;
    }
    if (s.value("phase", "") == "waiting") {
      if (rt == apps_.end()) {
        fail("Unknown", "the application was deleted while the step waited for it");
        continue;
      }
      const std::string sync = status.value("sync", json::object()).value("status", "Unknown");
      const std::string health = status.value("health", json::object()).value("status", "Unknown");
      const std::string revision = status.value("sync", json::object()).value("revision", "");
      const std::string seen = sync + "/" + health + "@" + revision;
      if (s.value("seen", "") != seen) {
        s["seen"] = seen;
        changed = true;
        note(a, index, 1,
             "application " + name + ": " + sync + ", " + health +
                 (revision.empty() ? "" : " at " + revision.substr(0, 12)));
      }
      if (sync == "Synced" && health == "Healthy" && revision == s.value("revision", "")) {
        s["phase"] = "done";
        changed = true;
      } else if (health == "Degraded" && revision == s.value("revision", "")) {
        const std::string message =
            status.value("health", json::object()).value("message", std::string());
        const std::string conds = conditions_text(status);
        fail("Verification", "Degraded at " + revision.substr(0, 12) +
                                 (message.empty() ? "" : ": " + message) +
                                 (conds.empty() ? "" : " (conditions: " + conds + ")"));
      }
    }
  }
  // Outputs: every application's revision, sync and health status as they are now.
  json outputs = json::array();
  bool all_done = true;
  std::string failures, failure_type;
  int done = 0;
  for (auto& [name, s] : g["apps"].items()) {
    const std::string phase = s.value("phase", "");
    json status = json::object();
    if (auto rt = apps_.find(name); rt != apps_.end() && rt->second.state.status.is_object()) {
      status = rt->second.state.status;
    }
    outputs.push_back(
        {{"name", name},
         {"revision", s.value("revision", "")},
         {"syncStatus", status.value("sync", json::object()).value("status", "Unknown")},
         {"healthStatus", status.value("health", json::object()).value("status", "Unknown")},
         {"phase", phase == "done"     ? "Succeeded"
                   : phase == "failed" ? "Failed"
                                       : "Running"},
         {"message", s.value("message", "")}});
    if (phase == "done") ++done;
    if (phase == "failed") {
      failures += (failures.empty() ? "" : "; ") + std::string("application ") + name + ": " +
                  s.value("message", "");
      if (failure_type.empty()) failure_type = s.value("errorType", "Unknown");
    }
    if (phase != "done" && phase != "failed") all_done = false;
  }
  auto set_outputs = [&] {
    rec.outputs = {{"applications", outputs.dump()},
                   {"appCount", std::to_string(outputs.size())},
                   {"syncedCount", std::to_string(done)}};
  };
  if (rec.timeout_ms > 0 && wall > rec.started_at + rec.timeout_ms && !all_done) {
    std::string pending;
    for (const auto& o : outputs) {
      if (o["phase"] == "Running") {
        pending += (pending.empty() ? "" : ", ") + o["name"].get<std::string>() + " (" +
                   o["syncStatus"].get<std::string>() + ", " +
                   o["healthStatus"].get<std::string>() + ")";
      }
    }
    set_outputs();
    fail_step(a, index, "Timeout",
              "step did not finish within its timeout of " +
                  model::format_duration(std::chrono::milliseconds(rec.timeout_ms)) +
                  "; still waiting for " + pending + (failures.empty() ? "" : "; " + failures));
    return true;
  }
  if (!all_done) {
    if (changed) touch_step(a, index);
    return changed;
  }
  set_outputs();
  if (!failures.empty()) {
    fail_step(a, index, failure_type, failures);
    return true;
  }
  rec.status = st::kSucceeded;
  rec.ended_at = wall;
  rec.message =
      std::to_string(done) + " application(s) " + (wait ? "synced, Synced and Healthy" : "synced");
  rec.state.erase("wake");
  note(a, index, 1, rec.message);
  touch_step(a, index);
  return true;
}

void Machine::tick_gitops_steps() {
  const auto wall = now_ms();
  std::vector<std::string> touched;
  for (auto& [id, a] : active_) {
    if (st::terminal(a.record.status)) continue;
    bool changed = false;
    for (std::size_t i = 0; i < a.record.steps.size(); ++i) {
      auto& rec = a.record.steps[i];
      if (rec.status != st::kRunning || !rec.state.contains("gitops")) continue;
      changed |= gitops_sync_progress(a, i, wall);
    }
    if (changed) touched.push_back(id);
  }
  for (const auto& id : touched) {
    auto it = active_.find(id);
    if (it != active_.end()) advance(it->second);
  }
  // Answers nobody waits for any more (an aborted or timed-out step).
  for (auto it = gitops_ops_.begin(); it != gitops_ops_.end();) {
    const auto parts = it->first;
    const auto first = parts.find('\x1f');
    const auto second = parts.find('\x1f', first + 1);
    const std::string exec = parts.substr(0, first);
    const std::size_t index = std::stoul(parts.substr(first + 1, second - first - 1));
    auto ait = active_.find(exec);
    const bool wanted = ait != active_.end() && index < ait->second.record.steps.size() &&
                        ait->second.record.steps[index].status == st::kRunning;
    if (!wanted && it->second.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      it = gitops_ops_.erase(it);
    } else {
      ++it;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// UpdateGitOpsApp

bool Machine::start_update_gitops_app(Active& a, std::size_t si, int r) {
  auto& rec = row_record(a, si, r);
  const std::size_t index = a.offset()[si] + static_cast<std::size_t>(r);
  const auto rendered = gitops_step_spec(a, si, r);
  if (!rendered) return true;
  const json& spec = *rendered;
  std::string error;
  const std::string where = plan_row(a, si, r).node->location + ": ";
  const std::string name = text_of(spec.value("applicationName", json()));
  if (name.empty() && plan_row(a, si, r).section == "rollback") {
    return rollback_update_gitops_app(a, si, r);
  }
  if (name.empty()) {
    fail_row(a, si, r, "InvalidInput", where + "applicationName names no application");
    return true;
  }
  auto stored = store_.object("application", name);
  if (!stored) {
    std::vector<std::string> all;
    for (const auto& [n, app] : apps_) {
      if (!appsets_is_key(n)) all.push_back(n); // an ApplicationSet's entry is no application
    }
    fail_row(a, si, r, "InvalidInput",
             where + "application '" + name + "' does not exist (applications: " + joined(all) +
                 ")");
    return true;
  }
  // agentId, as GitOpsSync's applicationsList checks it: the application must be held by that
  // agent now.
  if (const std::string agent = text_of(spec.value("agentId", json())); !agent.empty()) {
    if (auto why = gitops_unheld(name); !why.empty()) {
      fail_row(a, si, r, "DelegateProvisioning",
               where + "agentId: " + why + ", so it is held by no agent '" + agent + "'");
      return true;
    }
    if (auto why = gitops_agent_mismatch(name, agent); !why.empty()) {
      fail_row(a, si, r, "InvalidInput", where + "agentId: " + why);
      return true;
    }
  }
  // Helm is refused field by field: the agent renders plain directories and Kustomize only.
  const json helm = spec.value("helm", json::object());
  if (helm.is_object()) {
    for (const auto& [key, v] : helm.items()) {
      const bool empty =
          v.is_null() || (v.is_array() && v.empty()) ||
          (v.is_string() && (v.get<std::string>().empty() || v.get<std::string>() == "[]"));
      if (!empty) {
        fail_row(a, si, r, "InvalidInput",
                 where + "spec.helm." + key + ": application '" + name +
                     "' cannot take Helm settings: the GitOps agent renders plain YAML/JSON "
                     "directories and Kustomize folders, not Helm charts");
        return true;
      }
    }
  }
  json doc = stored->model.value("document", json::object());
  json& source = doc["spec"]["source"];
  if (!source.is_object()) {
    fail_row(a, si, r, "InvalidInput",
             where + "application '" + name + "' has no spec.source to update");
    return true;
  }
  json changed = json::object();
  const std::string previous = source.value("targetRevision", std::string("HEAD"));
  const std::string target = text_of(spec.value("targetRevision", json()));
  if (!target.empty() && target != previous) {
    source["targetRevision"] = target;
    changed["targetRevision"] = target;
  }
  const json kz = spec.value("kustomize", json::object());
  if (kz.is_object()) {
    json images = list_of(kz.value("images", json()), "kustomize.images", error);
    json replicas = list_of(kz.value("replicas", json()), "kustomize.replicas", error);
    if (!replicas.empty()) {
      error = "spec.kustomize.replicas: application '" + name +
              "' cannot take Kustomize replica overrides: the GitOps agent supports images, "
              "namePrefix, nameSuffix, namespace, commonLabels and commonAnnotations";
    }
    if (!images.empty()) {
      // Merged by image name, as `argocd app set --kustomize-image` does.
      json& current = source["kustomize"]["images"];
      if (!current.is_array()) current = json::array();
      for (const auto& img : images) {
        const std::string text = text_of(img);
        if (text.empty()) continue;
        bool replaced = false;
        for (auto& c : current) {
          if (c.is_string() && image_name(c.get<std::string>()) == image_name(text)) {
            c = text;
            replaced = true;
          }
        }
        if (!replaced) current.push_back(text);
      }
      changed["kustomizeImages"] = current;
    }
    for (const char* key : {"namePrefix", "nameSuffix", "namespace"}) {
      const std::string v = text_of(kz.value(key, json()));
      if (v.empty()) continue;
      source["kustomize"][key] = v;
      changed[std::string("kustomize.") + key] = v;
    }
    for (const char* key : {"commonLabels", "commonAnnotations"}) {
      const json v = kz.value(key, json::object());
      if (!v.is_object() || v.empty()) continue;
      for (const auto& [k, val] : v.items()) source["kustomize"][key][k] = text_of(val);
      changed[std::string("kustomize.") + key] = source["kustomize"][key];
    }
  }
  if (!error.empty()) {
    fail_row(a, si, r, "InvalidInput", where + error);
    return true;
  }
  const auto index_note = [&](const std::string& line) { note(a, index, 1, line); };
  if (doc.value("metadata", json::object()).contains("ownerReferences")) {
    note(a, index, 2,
         "application " + name +
             " is generated by an ApplicationSet: the set puts its generated spec back at once "
             "unless its applicationsSync is create-only or create-delete; change the set's "
             "input in Git instead");
  }
  rec.outputs = {{"applicationName", name},
                 {"targetRevision", source.value("targetRevision", std::string("HEAD"))},
                 {"previousTargetRevision", previous},
                 {"repoURL", source.value("repoURL", "")},
                 {"path", source.value("path", "")},
                 {"kustomizeImages",
                  source.value("kustomize", json::object()).value("images", json::array()).dump()},
                 {"changed", changed.dump()}};
  if (changed.empty()) {
    index_note("application " + name + " already has these settings: nothing to change");
  } else {
    std::vector<model::Object> objects;
    try {
      objects.push_back(model::parse_object("application", yaml::dump(doc),
                                            rec.stage_identifier + "." + rec.identifier));
    } catch (const model::ValidationError& e) {
      fail_row(a, si, r, "InvalidInput",
               where + "the updated application '" + name + "' is not valid: " + e.what());
      return true;
    }
    auto out = apply(objects, false,
                     (a.record.triggered_by.empty() ? "pipeline" : a.record.triggered_by) +
                         " (execution " + a.record.id + ")");
    if (!out.ok()) {
      std::string details;
      for (const auto& d : out.details) {
        details += "; " + d.value("location", "") + ": " + d.value("message", "");
      }
      fail_row(a, si, r, "InvalidInput",
               where + "application '" + name + "' was not updated: " + out.message + details);
      return true;
    }
    index_note("application " + name + " updated: " + changed.dump() +
               "; its delegate reconciles the new spec at once");
    // What a rollback UpdateGitOpsApp of the stage puts back.
    rec.state["previousDocument"] = stored->model.value("document", json::object());
  }
  rec.status = st::kSucceeded;
  rec.ended_at = now_ms();
  rec.message = changed.empty() ? "nothing to change" : "updated " + name;
  return true;
}

// Among rollback steps, an UpdateGitOpsApp without an application puts back what the stage's
// last UpdateGitOpsApp changed (as Harness's rollback of the step does).
bool Machine::rollback_update_gitops_app(Active& a, std::size_t si, int r) {
  auto& rec = row_record(a, si, r);
  const std::size_t index = a.offset()[si] + static_cast<std::size_t>(r);
  const json* previous = nullptr;
  std::string from;
  for (int other = 0; other < static_cast<int>(a.plan()[si].rows.size()); ++other) {
    const auto& orow = plan_row(a, si, other);
    const auto& orec = row_record(a, si, other);
    if (orow.section != "steps" || orow.node->type != "UpdateGitOpsApp" ||
        orec.status != st::kSucceeded || !orec.state.contains("previousDocument")) {
      continue;
    }
    previous = &orec.state["previousDocument"];
    from = orow.path;
  }
  rec.ended_at = now_ms();
  rec.status = st::kSucceeded;
  if (previous == nullptr) {
    rec.message = "nothing to roll back";
    note(a, index, 1,
         "no UpdateGitOpsApp of the stage changed an application: nothing to roll back");
    return true;
  }
  const json doc = *previous;
  const std::string name = doc.value("metadata", json::object()).value("name", "");
  std::vector<model::Object> objects;
  Outcome out;
  try {
    objects.push_back(model::parse_object("application", yaml::dump(doc),
                                          rec.stage_identifier + "." + rec.identifier));
    out = apply(objects, false,
                (a.record.triggered_by.empty() ? "pipeline" : a.record.triggered_by) +
                    " (execution " + a.record.id + ", rollback)");
  } catch (const model::ValidationError& e) {
    out.status = 422;
    out.message = e.what();
  }
  if (!out.ok()) {
    fail_step(a, index, "Unknown",
              "application '" + name + "' could not be put back as it was before step " + from +
                  ": " + out.message);
    return true;
  }
  const json source = doc.value("spec", json::object()).value("source", json::object());
  rec.outputs = {{"applicationName", name},
                 {"targetRevision", source.value("targetRevision", std::string("HEAD"))},
                 {"repoURL", source.value("repoURL", "")},
                 {"path", source.value("path", "")},
                 {"kustomizeImages",
                  source.value("kustomize", json::object()).value("images", json::array()).dump()}};
  rec.message = "put back " + name;
  note(a, index, 1,
       "application " + name + " put back as it was before step " + from + " (targetRevision " +
           source.value("targetRevision", std::string("HEAD")) + ")");
  return true;
}

} // namespace capstan::engine
