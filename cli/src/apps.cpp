// `capstan apps` and `capstan appsets`: GitOps applications and ApplicationSets as the
// coordinator knows them, and operations on them run by the delegate that holds each.
#include <iostream>

#include "args.h"
#include "commands.h"
#include "output.h"

namespace capstan::cli {

using nlohmann::json;

namespace {

std::string str(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return "";
    cur = &(*cur)[k];
  }
  if (cur->is_null()) return "";
  return cur->is_string() ? cur->get<std::string>() : cur->dump();
}

std::string path_of(const std::string& name) {
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) {
      throw UsageError("'" + name + "' is not an application name");
    }
  }
  return "/api/v1/apps/" + name;
}

std::string resource_name(const json& r) {
  std::string group = str(r, {"group"});
  std::string ns = str(r, {"namespace"});
  return (group.empty() ? "" : group + "/") + str(r, {"kind"}) + " " +
         (ns.empty() ? "" : ns + "/") + str(r, {"name"});
}

// `projects` and `selector` as GET /api/v1/apps takes them (argocd app list's -p and -l).
int apps_list(ApiClient& api, Format format, const std::vector<std::string>& projects,
              const std::optional<std::string>& selector) {
  std::string query;
  for (const auto& p : projects)
    query += (query.empty() ? "?" : "&") + ("projects=" + url_encode(p));
  if (selector) query += (query.empty() ? "?" : "&") + ("selector=" + url_encode(*selector));
  json r = api.get("/api/v1/apps" + query);
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(r["items"], format);
    return 0;
  }
  if (r["items"].empty()) {
    std::cout << (query.empty() ? "No applications.\n"
                                : "No applications match the project(s) and selector given.\n");
    return 0;
  }
  bool wide = format == Format::kWide;
  std::vector<std::string> headers = {"NAME",     "SYNC",        "HEALTH",
                                      "REVISION", "DESTINATION", "DELEGATE"};
  if (wide) headers.insert(headers.end(), {"REPO", "PATH", "TARGET", "EPOCH", "MESSAGE"});
  Table t(headers);
  Unreadable unreadable("application", "applications");
  for (const auto& a : r["items"]) {
    std::string dest = str(a, {"spec", "destination", "name"});
    if (dest.empty()) dest = str(a, {"spec", "destination", "server"});
    std::string sync = str(a, {"status", "sync", "status"});
    if (sync.empty()) sync = "Unknown";
    // Being deleted: its resources go first (Argo CD's resources finalizer).
    if (!str(a, {"metadata", "deletionTimestamp"}).empty()) sync = "Deleting";
    // A stored value of it cannot be read (damaged on disk): listed, and said why below.
    if (!unreadable.mark(a).empty()) sync = "Unreadable";
    std::string health = str(a, {"status", "health", "status"});
    std::vector<std::string> row = {str(a, {"metadata", "name"}),
                                    colour_status(sync),
                                    colour_status(health.empty() ? "Unknown" : health),
                                    short_sha(str(a, {"status", "sync", "revision"})),
                                    dest + "/" + str(a, {"spec", "destination", "namespace"}),
                                    str(a, {"assignment", "delegate"})};
    if (row.back().empty()) row.back() = "-";
    if (wide) {
      row.insert(row.end(),
                 {str(a, {"spec", "source", "repoURL"}), str(a, {"spec", "source", "path"}),
                  str(a, {"spec", "source", "targetRevision"}), str(a, {"assignment", "epoch"}),
                  str(a, {"assignment", "message"})});
    }
    t.add(row);
  }
  t.print();
  unreadable.report();
  return 0;
}

void print_conditions(const json& a) {
  for (const auto& c : a["status"].value("conditions", json::array())) {
    std::cout << "Condition:    " << str(c, {"type"}) << ": " << str(c, {"message"}) << "\n";
  }
}

int apps_get(ApiClient& api, const std::string& name, Format format) {
  json a = api.get(path_of(name));
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(a, format);
    return 0;
  }
  std::cout << "Name:         " << name << "\n"
            << "Project:      " << str(a, {"spec", "project"}) << "\n"
            << "Source:       " << str(a, {"spec", "source", "repoURL"}) << " "
            << str(a, {"spec", "source", "path"}) << " @ "
            << str(a, {"spec", "source", "targetRevision"}) << "\n"
            << "Destination:  "
            << (str(a, {"spec", "destination", "name"}).empty()
                    ? str(a, {"spec", "destination", "server"})
                    : str(a, {"spec", "destination", "name"}))
            << " namespace " << str(a, {"spec", "destination", "namespace"}) << "\n"
            << "Delegate:     "
            << (str(a, {"assignment", "delegate"}).empty() ? "-"
                                                           : str(a, {"assignment", "delegate"}))
            << "\n";
  if (!str(a, {"metadata", "deletionTimestamp"}).empty()) {
    std::cout << "Deleting:     since " << str(a, {"metadata", "deletionTimestamp"})
              << " (its resources are deleted first)\n";
  }
  if (!str(a, {"assignment", "message"}).empty()) {
    std::cout << "Waiting:      " << str(a, {"assignment", "message"}) << "\n";
  }
  std::string sync = str(a, {"status", "sync", "status"});
  std::cout << "Sync:         " << colour_status(sync.empty() ? "Unknown" : sync) << " to "
            << short_sha(str(a, {"status", "sync", "revision"})) << "\n";
  std::string health = str(a, {"status", "health", "status"});
  std::cout << "Health:       " << colour_status(health.empty() ? "Unknown" : health);
  if (!str(a, {"status", "health", "message"}).empty()) {
    std::cout << " (" << str(a, {"status", "health", "message"}) << ")";
  }
  std::cout << "\n";
  if (a["status"].contains("operationState")) {
    const json& op = a["status"]["operationState"];
    const bool running = str(op, {"phase"}) == "Running";
    std::cout << (running ? "Sync running: " : "Last sync:    ") << str(op, {"phase"}) << " at "
              << short_sha(str(op, {"revision"})) << " ("
              << (running ? "since " + str(op, {"startedAt"}) : str(op, {"finishedAt"})) << ")";
    if (!str(op, {"message"}).empty()) std::cout << ": " << str(op, {"message"});
    std::cout << "\n";
  }
  print_conditions(a);
  const json resources = a["status"].value("resources", json::array());
  if (!resources.empty()) {
    std::cout << "\n";
    Table t({"KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH"});
    for (const auto& r : resources) {
      std::string status = str(r, {"status"});
      if (r.value("requiresPruning", false)) status += " (prune)";
      t.add({(str(r, {"group"}).empty() ? "" : str(r, {"group"}) + "/") + str(r, {"kind"}),
             str(r, {"namespace"}), str(r, {"name"}), status, str(r, {"health", "status"})});
    }
    t.print();
  }
  return 0;
}

// What differs between Git and the cluster, per resource (the comparison the delegate made).
int apps_diff(ApiClient& api, const std::string& name, Format format) {
  json a = api.get(path_of(name));
  json out = json::array();
  for (const auto& r : a["status"].value("resources", json::array())) {
    if (str(r, {"status"}) == "Synced") continue;
    out.push_back(r);
  }
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(out, format);
    return out.empty() ? 0 : 1;
  }
  for (const auto& r : out) {
    std::string why = !r.value("exists", true)            ? "missing from the cluster"
                      : r.value("requiresPruning", false) ? "gone from Git (would be pruned)"
                                                          : "differs";
    std::cout << resource_name(r) << ": " << why << "\n";
    for (const auto& d : r.value("differences", json::array())) {
      std::cout << "  " << (d.is_string() ? d.get<std::string>() : d.dump()) << "\n";
    }
  }
  print_conditions(a);
  if (out.empty() && str(a, {"status", "sync", "status"}) == "Synced") {
    std::cout << "No differences: the cluster equals Git at "
              << short_sha(str(a, {"status", "sync", "revision"})) << ".\n";
  }
  // diff(1)'s convention: 1 when there are differences.
  return out.empty() ? 0 : 1;
}

int apps_history(ApiClient& api, const std::string& name, Format format) {
  json a = api.get(path_of(name));
  json h = a["status"].value("history", json::array());
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(h, format);
    return 0;
  }
  if (h.empty()) {
    std::cout << "No deployments yet (no sync has succeeded).\n";
    return 0;
  }
  Table t({"ID", "REVISION", "PHASE", "STARTED", "FINISHED", "BY", "MESSAGE"});
  for (const auto& e : h) {
    t.add({str(e, {"id"}), short_sha(str(e, {"revision"})), colour_status(str(e, {"phase"})),
           str(e, {"startedAt"}), str(e, {"finishedAt"}), str(e, {"initiatedBy"}),
           str(e, {"message"})});
  }
  t.print();
  return 0;
}

// A finished sync's record; non-zero unless it succeeded.
int print_operation(const json& r, Format format) {
  const json& op = r["result"];
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(r, format);
  } else {
    std::cout << "Sync " << colour_status(str(op, {"phase"})) << " at "
              << short_sha(str(op, {"revision"})) << " on delegate " << str(r, {"delegate"});
    if (!str(op, {"message"}).empty()) std::cout << ": " << str(op, {"message"});
    std::cout << "\n";
    for (const auto& res : op.value("resources", json::array())) {
      std::cout << "  " << resource_name(res) << ": " << str(res, {"status"});
      if (!str(res, {"message"}).empty()) std::cout << " (" << str(res, {"message"}) << ")";
      std::cout << "\n";
    }
  }
  return str(op, {"phase"}) == "Succeeded" ? 0 : 1;
}

std::string appset_path(const std::string& name) {
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) {
      throw UsageError("'" + name + "' is not an ApplicationSet name");
    }
  }
  return "/api/v1/appsets/" + name;
}

// An ApplicationSet condition's status ("True"/"False"), "" when it has none of that type.
std::string condition_status(const json& set, const std::string& type) {
  const json status = set.value("status", json::object());
  for (const auto& c : status.value("conditions", json::array())) {
    if (str(c, {"type"}) == type) return str(c, {"status"});
  }
  return "";
}

int appsets_list(ApiClient& api, Format format) {
  json r = api.get("/api/v1/appsets");
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(r["items"], format);
    return 0;
  }
  if (r["items"].empty()) {
    std::cout << "No ApplicationSets.\n";
    return 0;
  }
  Table t({"NAME", "APPLICATIONS", "UP-TO-DATE", "DELEGATE", "MESSAGE"});
  for (const auto& a : r["items"]) {
    const json status = a.value("status", json::object());
    std::string message;
    for (const auto& c : status.value("conditions", json::array())) {
      if (str(c, {"type"}) == "ErrorOccurred" && str(c, {"status"}) == "True") {
        message = str(c, {"message"});
      }
    }
    if (message.empty()) message = str(a, {"assignment", "message"});
    std::string delegate = str(a, {"assignment", "delegate"});
    std::string up = condition_status(a, "ResourcesUpToDate");
    t.add({str(a, {"metadata", "name"}),
           std::to_string(status.value("applications", json::array()).size()),
           up.empty() ? "Unknown" : up, delegate.empty() ? "-" : delegate, message});
  }
  t.print();
  return 0;
}

int appsets_get(ApiClient& api, const std::string& name, Format format) {
  json a = api.get(appset_path(name));
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(a, format);
    return 0;
  }
  const json status = a.value("status", json::object());
  std::string delegate = str(a, {"assignment", "delegate"});
  std::cout << "Name:         " << name << "\n"
            << "Delegate:     " << (delegate.empty() ? "-" : delegate) << "\n";
  if (!str(a, {"metadata", "deletionTimestamp"}).empty()) {
    std::cout << "Deleting:     since " << str(a, {"metadata", "deletionTimestamp"})
              << " (its resources are deleted first)\n";
  }
  if (!str(a, {"assignment", "message"}).empty()) {
    std::cout << "Waiting:      " << str(a, {"assignment", "message"}) << "\n";
  }
  const json revisions = status.value("revisions", json::object()); // not .items() of a temporary
  for (const auto& [repo, sha] : revisions.items()) {
    std::cout << "Revision:     " << repo << " "
              << short_sha(sha.is_string() ? sha.get<std::string>() : "") << "\n";
  }
  for (const auto& c : status.value("conditions", json::array())) {
    std::cout << "Condition:    " << str(c, {"type"}) << "=" << str(c, {"status"}) << ": "
              << str(c, {"message"}) << "\n";
  }
  const json resources = status.value("resources", json::array());
  if (!resources.empty()) {
    std::cout << "\n";
    Table t({"APPLICATION", "STATUS"});
    for (const auto& r : resources) t.add({str(r, {"name"}), str(r, {"status"})});
    t.print();
  }
  return 0;
}

} // namespace

int cmd_appsets(const Globals& g, const Argv& argv) {
  Args a(argv, {});
  const auto& pos = a.positional();
  auto format = parse_format(g.output);
  ApiClient api(g);
  const std::string sub = pos.empty() ? "list" : pos[0];
  auto need_name = [&](std::size_t n, const char* usage) {
    if (pos.size() != n) throw UsageError(std::string("usage: capstan appsets ") + usage);
  };
  if (sub == "list") {
    if (pos.size() > 1) throw UsageError("appsets list takes no arguments");
    return appsets_list(api, format);
  }
  if (sub == "get") {
    need_name(2, "get NAME");
    return appsets_get(api, pos[1], format);
  }
  if (sub == "refresh") {
    need_name(2, "refresh NAME");
    api.post(appset_path(pos[1]) + "/refresh", json::object());
    std::cout << "ApplicationSet " << pos[1] << " refreshed\n";
    return 0;
  }
  if (sub == "delete") {
    need_name(2, "delete NAME");
    api.del(appset_path(pos[1]));
    std::cout << "ApplicationSet " << pos[1] << " deleted\n";
    return 0;
  }
  throw UsageError("unknown appsets subcommand '" + sub + "' (list, get, refresh or delete)");
}

int cmd_apps(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--prune", "", false},
                {"--dry-run", "", false},
                {"--apply-only", "", false},
                {"--force", "", false},
                {"--revision", "", true},
                {"--project", "-p", true, true},
                {"--selector", "-l", true}});
  const auto& pos = a.positional();
  auto format = parse_format(g.output);
  ApiClient api(g);
  const std::string sub = pos.empty() ? "list" : pos[0];
  auto need_name = [&](std::size_t n, const char* usage) {
    if (pos.size() != n) throw UsageError(std::string("usage: capstan apps ") + usage);
  };
  if (sub != "sync" && (a.has("--prune") || a.has("--dry-run") || a.has("--apply-only") ||
                        a.has("--force") || a.has("--revision"))) {
    throw UsageError("--prune, --dry-run, --apply-only, --force and --revision are options of "
                     "'capstan apps sync'");
  }
  if (sub != "list" && (a.has("--project") || a.has("--selector"))) {
    throw UsageError("--project and --selector are options of 'capstan apps list'");
  }
  if (sub == "list") {
    if (pos.size() > 1) throw UsageError("apps list takes no arguments");
    return apps_list(api, format, a.values("--project"), a.value("--selector"));
  }
  if (sub == "get") {
    need_name(2, "get NAME");
    return apps_get(api, pos[1], format);
  }
  if (sub == "diff") {
    need_name(2, "diff NAME");
    return apps_diff(api, pos[1], format);
  }
  if (sub == "history") {
    need_name(2, "history NAME");
    return apps_history(api, pos[1], format);
  }
  if (sub == "refresh") {
    need_name(2, "refresh NAME");
    api.post(path_of(pos[1]) + "/refresh", json::object());
    std::cout << "application " << pos[1] << " refreshed\n";
    return 0;
  }
  if (sub == "sync") {
    need_name(2, "sync NAME [--prune] [--dry-run] [--apply-only] [--force] [--revision REV]");
    json body = json::object();
    if (a.has("--prune")) body["prune"] = true;
    if (a.has("--dry-run")) body["dryRun"] = true;
    if (a.has("--apply-only")) body["applyOnly"] = true;
    if (a.has("--force")) body["force"] = true;
    if (auto r = a.value("--revision")) body["revision"] = *r;
    return print_operation(api.post(path_of(pos[1]) + "/sync", body, 1900), format);
  }
  if (sub == "rollback") {
    need_name(3, "rollback NAME HISTORY-ID");
    long long id = 0;
    try {
      std::size_t used = 0;
      id = std::stoll(pos[2], &used);
      if (used != pos[2].size()) throw std::invalid_argument(pos[2]);
    } catch (const std::exception&) {
      throw UsageError("HISTORY-ID is a number from 'capstan apps history " + pos[1] + "', not '" +
                       pos[2] + "'");
    }
    return print_operation(api.post(path_of(pos[1]) + "/rollback", {{"id", id}}, 1900), format);
  }
  if (sub == "terminate-op") {
    need_name(2, "terminate-op NAME");
    // With nothing in progress the coordinator refuses (422, exit 2): a success is a terminating
    // sync.
    api.post(path_of(pos[1]) + "/terminate-op", json::object());
    std::cout << "application " << pos[1] << ": its running sync is terminating\n";
    return 0;
  }
  throw UsageError("unknown apps subcommand '" + sub +
                   "' (list, get, diff, sync, refresh, history, rollback or terminate-op)");
}

} // namespace capstan::cli
