// The agent loop: poll refs, render, compare against the watch cache, sync, heal, report.
#include "capstan/apps/reconciler.h"

#include <capstan/git/cache.h>
#include <capstan/git/error.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "capstan/apps/resources.h"
#include "capstan/apps/sync_plan.h"
#include "live_cache.h"

namespace capstan::apps {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

bool ApplicationStatus::has_condition(const std::string& type) const {
  return std::any_of(conditions.begin(), conditions.end(),
                     [&](const Condition& c) { return c.type == type; });
}

json ApplicationStatus::to_json() const {
  json res = json::array();
  for (const auto& r : resources) res.push_back(r.to_json());
  json conds = json::array();
  for (const auto& c : conditions) {
    conds.push_back(
        {{"type", c.type}, {"message", c.message}, {"lastTransitionTime", c.last_transition_time}});
  }
  json hist = json::array();
  for (const auto& h : history) {
    json entry = h.to_json();
    // The names Argo CD's history entries give the deployment's times.
    entry["deployStartedAt"] = h.started_at;
    entry["deployedAt"] = h.finished_at;
    hist.push_back(std::move(entry));
  }
  json out = {{"name", name},
              {"sync", {{"status", std::string(to_string(sync))}, {"revision", revision}}},
              {"health", {{"status", std::string(kube::to_string(health))}}},
              {"syncedRevision", synced_revision},
              {"conditions", conds},
              {"resources", res},
              {"history", hist},
              {"reconciledAt", reconciled_at}};
  if (!health_message.empty()) out["health"]["message"] = health_message;
  if (last_operation) out["operationState"] = last_operation->to_json();
  return out;
}

namespace {

// (apiVersion, kind) of each entry of the document's status.resources.
std::set<std::pair<std::string, std::string>> reported_kinds(const json& document) {
  std::set<std::pair<std::string, std::string>> out;
  if (!document.is_object() || !document.contains("status")) return out;
  const json& status = document["status"];
  if (!status.is_object() || !status.contains("resources") || !status["resources"].is_array()) {
    return out;
  }
  for (const auto& r : status["resources"]) {
    if (!r.is_object()) continue;
    auto text = [&r](const char* key) {
      auto it = r.find(key);
      return it != r.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    const std::string group = text("group");
    const std::string version = text("version");
    const std::string kind = text("kind");
    if (version.empty() || kind.empty()) continue;
    out.emplace(group.empty() ? version : group + "/" + version, kind);
  }
  return out;
}

std::string now_rfc3339() {
  return kube::format_rfc3339(std::chrono::system_clock::now());
}

bool is_sha(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

struct RepoRefs {
  std::vector<git::RemoteRef> refs;
  std::string error; // "" when the last ls-remote worked
  Clock::time_point at{};
};

} // namespace

std::optional<std::string> resolve_ref(const std::vector<git::RemoteRef>& refs,
                                       const std::string& target) {
  if (is_sha(target)) return target;
  std::vector<std::string> candidates;
  if (target == "HEAD" || target.empty()) {
    candidates = {"HEAD"};
  } else {
    candidates = {"refs/heads/" + target, "refs/tags/" + target + "^{}", "refs/tags/" + target,
                  target};
  }
  for (const auto& want : candidates) {
    for (const auto& r : refs) {
      if (r.name == want) return r.oid;
    }
  }
  return std::nullopt;
}

struct AppEntry {
  std::mutex op; // held for a whole reconcile or sync
  // Guarded by op:
  Application app;
  ApplicationStatus status;
  OperationHistory history;
  std::string rendered_revision;
  std::vector<DesiredObject> desired;
  bool force_render = true;
  bool force_refs = false;   // refresh: read the remote's refs now
  std::string auto_revision; // last revision automated sync ran for
  bool auto_failed = false;
  int retry_attempt = 0;
  Clock::time_point last_self_heal{};
  std::set<std::pair<std::string, std::string>> kinds; // (apiVersion, kind) ever managed
  bool deleted = false; // its resources were deleted with it: nothing may apply them again
  // Not guarded by op (a terminate comes while a sync holds it): syncs asked for or running,
  // and whether the running ones must stop (Argo CD's terminate-op).
  std::atomic<int> operations{0};
  std::atomic<bool> terminate{false};
};

// Counts a sync of the entry while it is asked for or runs; the last one to end clears a
// termination, so that it never stops a later sync.
struct OperationScope {
  explicit OperationScope(AppEntry& e) : entry(e) { ++entry.operations; }
  ~OperationScope() {
    if (--entry.operations == 0) entry.terminate = false;
  }
  OperationScope(const OperationScope&) = delete;
  OperationScope& operator=(const OperationScope&) = delete;
  AppEntry& entry;
};

struct Reconciler::Impl {
  Impl(kube::Client c, ReconcilerOptions o)
      : client(std::move(c)), options(std::move(o)), repos(options.work_dir / "repos"),
        cache(client, [this](const std::string& app) { enqueue(app); }) {}

  kube::Client client;
  ReconcilerOptions options;
  git::RepoCache repos;
  detail::LiveCache cache;

  mutable std::mutex mutex; // apps, published, queue, repo refs, delayed, polled
  std::condition_variable work_cv;
  std::condition_variable poll_cv;
  std::map<std::string, std::shared_ptr<AppEntry>> apps;
  std::map<std::string, ApplicationStatus> published;
  std::deque<std::string> queue;
  std::set<std::string> queued;
  std::multimap<Clock::time_point, std::string> delayed;
  std::map<std::string, RepoRefs> repo_refs; // by repo URL
  std::map<std::string, std::string> polled; // app -> last revision (or error) seen by the poller
  bool stopping = false;
  bool started = false;
  std::vector<std::thread> threads;
  std::mutex callback_mutex;
  std::mutex trees_mutex;

  void log(const std::string& app, const std::string& line) {
    if (options.log) options.log(app, line);
  }

  void enqueue(const std::string& name) {
    {
      std::lock_guard lock(mutex);
      if (!apps.count(name) || !queued.insert(name).second) return;
      queue.push_back(name);
    }
    work_cv.notify_one();
  }

  void enqueue_after(const std::string& name, std::chrono::milliseconds delay) {
    {
      std::lock_guard lock(mutex);
      delayed.emplace(Clock::now() + delay, name);
    }
    poll_cv.notify_all();
  }

  git::RemoteOptions remote_for(const std::string& url) const {
    if (options.remote) return options.remote(url);
    git::RemoteOptions r;
    r.url = url;
    r.connect_timeout = std::chrono::seconds(5);
    return r;
  }

  RepoRefs list_refs(const std::string& url) {
    RepoRefs out;
    out.at = Clock::now();
    try {
      out.refs = git::ls_remote(remote_for(url));
    } catch (const std::exception& e) {
      out.error = e.what();
    }
    std::lock_guard lock(mutex);
    repo_refs[url] = out;
    return out;
  }

  void poller() {
    auto next_poll = Clock::now();
    while (true) {
      {
        std::unique_lock lock(mutex);
        while (!stopping) {
          auto wake = next_poll;
          if (!delayed.empty()) wake = std::min(wake, delayed.begin()->first);
          if (Clock::now() >= wake) break;
          poll_cv.wait_until(lock, wake);
        }
        if (stopping) return;
        auto now = Clock::now();
        while (!delayed.empty() && delayed.begin()->first <= now) {
          std::string name = delayed.begin()->second;
          delayed.erase(delayed.begin());
          if (apps.count(name) && queued.insert(name).second) queue.push_back(name);
        }
        work_cv.notify_all();
        if (now < next_poll) continue;
        next_poll = now + options.poll_interval;
      }
      std::map<std::string, std::vector<std::pair<std::string, std::string>>> by_repo;
      {
        std::lock_guard lock(mutex);
        for (const auto& [name, target] : targets)
          by_repo[target.first].emplace_back(name, target.second);
      }
      for (const auto& [url, members] : by_repo) {
        RepoRefs refs = list_refs(url); // one cheap ls-remote per repository, whatever the apps
        for (const auto& [name, target] : members) {
          std::string seen;
          if (!refs.error.empty()) {
            seen = "error:" + refs.error;
          } else {
            seen = resolve_ref(refs.refs, target).value_or("unresolved:" + target);
          }
          bool changed;
          {
            std::lock_guard lock(mutex);
            auto& last = polled[name];
            changed = last != seen;
            last = seen;
          }
          if (changed) enqueue(name);
        }
      }
    }
  }
  std::map<std::string, std::pair<std::string, std::string>> targets; // app -> (repo, revision)

  void worker() {
    while (true) {
      std::string name;
      {
        std::unique_lock lock(mutex);
        work_cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        name = queue.front();
        queue.pop_front();
        queued.erase(name);
      }
      std::shared_ptr<AppEntry> entry;
      {
        std::lock_guard lock(mutex);
        auto it = apps.find(name);
        if (it == apps.end()) continue;
        entry = it->second;
      }
      std::lock_guard op(entry->op);
      if (entry->deleted) continue;
      try {
        reconcile(*entry);
      } catch (const std::exception& e) {
        set_condition(entry->status, "ComparisonError", e.what());
        entry->status.sync = SyncStatus::kUnknown;
        publish(*entry);
      }
    }
  }

  static void set_condition(ApplicationStatus& s, const std::string& type,
                            const std::string& message) {
    for (auto& c : s.conditions) {
      if (c.type == type) {
        if (c.message != message) {
          c.message = message;
          c.last_transition_time = now_rfc3339();
        }
        return;
      }
    }
    s.conditions.push_back({type, message, now_rfc3339()});
  }
  static void clear_condition(ApplicationStatus& s, const std::string& type) {
    s.conditions.erase(std::remove_if(s.conditions.begin(), s.conditions.end(),
                                      [&](const Condition& c) { return c.type == type; }),
                       s.conditions.end());
  }

  void publish(AppEntry& entry) {
    entry.status.name = entry.app.name;
    entry.status.history.assign(entry.history.entries().begin(), entry.history.entries().end());
    entry.status.reconciled_at = now_rfc3339();
    bool changed;
    {
      std::lock_guard lock(mutex);
      auto& old = published[entry.app.name];
      json a = old.to_json();
      json b = entry.status.to_json();
      a.erase("reconciledAt");
      b.erase("reconciledAt");
      changed = a != b;
      old = entry.status;
    }
    if (changed && options.on_status) {
      std::lock_guard lock(callback_mutex);
      options.on_status(entry.status);
    }
  }

  bool destination_ok(const Application& app, std::string& why) const {
    const auto& d = app.destination;
    if (!d.server.empty()) {
      // As the coordinator matches them: a trailing '/' names the same server.
      auto bare = [](std::string url) {
        while (url.size() > 1 && url.back() == '/') url.pop_back();
        return url;
      };
      if (bare(d.server) == bare(client.config().server) ||
          bare(d.server) == "https://kubernetes.default.svc")
        return true;
      why = "spec.destination.server '" + d.server +
            "' is not the cluster this agent reconciles (" + client.config().server + ")";
      return false;
    }
    for (const auto& n : options.cluster_names) {
      if (n == d.name) return true;
    }
    why = "spec.destination.name '" + d.name + "' is not the cluster this agent reconciles";
    return false;
  }

  // The revision's files on disk, exported once per commit and shared by every application.
  fs::path tree_for(const std::string& url, const std::string& sha) {
    std::lock_guard lock(trees_mutex);
    fs::path dir = options.work_dir / "trees" / (git::url_key(url) + "-" + sha);
    if (fs::exists(dir)) return dir;
    auto lease = repos.acquire(remote_for(url));
    if (!lease->try_resolve(sha)) lease->fetch(remote_for(url));
    fs::path tmp = dir;
    tmp += ".tmp";
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    lease->export_tree(sha, tmp);
    fs::rename(tmp, dir);
    return dir;
  }

  std::vector<DesiredObject> render(const Application& app, const std::string& sha) {
    fs::path tree = tree_for(app.source.repo_url, sha);
    RenderOptions ro = options.render;
    ro.cancelled = [this] {
      std::lock_guard lock(mutex);
      return stopping;
    };
    auto objects = render_source(tree, app.source, ro);
    return prepare_desired(app, std::move(objects),
                           [this](const std::string& api, const std::string& kind) {
                             try {
                               if (auto r = client.find_resource(api, kind)) return r->namespaced;
                             } catch (const std::exception&) {
                             }
                             return builtin_namespaced(api, kind);
                           });
  }

  // Starts watches for every kind the application manages; kinds the cluster does not serve
  // yet (custom resources before their CRD) are skipped and show as Missing.
  void watch_kinds(AppEntry& entry, const std::vector<DesiredObject>& desired) {
    for (const auto& d : desired) {
      entry.kinds.emplace(d.object.value("apiVersion", ""), d.object.value("kind", ""));
    }
    for (const auto& [api, kind] : entry.kinds) {
      try {
        cache.ensure(api, kind);
      } catch (const kube::Error& e) {
        if (!e.is(kube::ErrorKind::kUnsupportedKind) && !e.is(kube::ErrorKind::kNotFound)) throw;
      }
    }
  }

  std::vector<json> live_for(const AppEntry& entry, const std::vector<DesiredObject>& desired) {
    std::vector<json> live = cache.tracked(entry.app.name);
    std::set<ResourceKey> have;
    for (const auto& l : live) have.insert(ResourceKey::of(l));
    for (const auto& d : desired) {
      ResourceKey key = ResourceKey::of(d.object);
      if (key.name.empty() || have.count(key)) continue;
      if (auto l = cache.get(key)) live.push_back(*l);
    }
    return live;
  }

  void reconcile(AppEntry& entry) {
    const Application& app = entry.app;
    ApplicationStatus& s = entry.status;
    std::string why;
    if (!destination_ok(app, why)) {
      set_condition(s, "InvalidSpecError", why);
      s.sync = SyncStatus::kUnknown;
      publish(entry);
      return;
    }
    clear_condition(s, "InvalidSpecError");
    RepoRefs refs;
    {
      std::lock_guard lock(mutex);
      // Refs the poller read within the last interval serve every application of the repo.
      auto it = repo_refs.find(app.source.repo_url);
      if (it != repo_refs.end() && !entry.force_refs &&
          Clock::now() - it->second.at < options.poll_interval) {
        refs = it->second;
      }
    }
    if (refs.at == Clock::time_point{}) refs = list_refs(app.source.repo_url);
    entry.force_refs = false;
    if (!refs.error.empty()) {
      set_condition(s, "ComparisonError",
                    "failed to list refs of " + git::redact_url(app.source.repo_url) + ": " +
                        refs.error);
      s.sync = SyncStatus::kUnknown;
      publish(entry);
      return;
    }
    auto sha = resolve_ref(refs.refs, app.source.target_revision);
    if (!sha) {
      set_condition(s, "ComparisonError",
                    "unable to resolve '" + app.source.target_revision + "' to a commit of " +
                        git::redact_url(app.source.repo_url));
      s.sync = SyncStatus::kUnknown;
      publish(entry);
      return;
    }
    if (*sha != entry.rendered_revision || entry.force_render) {
      try {
        entry.desired = render(app, *sha);
        entry.rendered_revision = *sha;
        entry.force_render = false;
      } catch (const std::exception& e) {
        s.revision = *sha;
        set_condition(s, "ComparisonError", e.what());
        s.sync = SyncStatus::kUnknown;
        entry.rendered_revision.clear();
        publish(entry);
        return;
      }
    }
    clear_condition(s, "ComparisonError");
    watch_kinds(entry, entry.desired);
    auto live = live_for(entry, entry.desired);
    Comparison c = compare(app, entry.desired, live);
    apply_comparison(s, c, *sha);

    if (app.sync_policy.automated && c.sync == SyncStatus::kOutOfSync) {
      bool new_revision = entry.auto_revision != *sha;
      bool retry_due =
          !new_revision && entry.auto_failed && app.sync_policy.retry &&
          (app.sync_policy.retry->limit < 0 || entry.retry_attempt < app.sync_policy.retry->limit);
      bool heal = !new_revision && !entry.auto_failed && app.sync_policy.self_heal;
      if (heal) {
        auto since = Clock::now() - entry.last_self_heal;
        if (since < options.self_heal_backoff) {
          enqueue_after(app.name, std::chrono::duration_cast<std::chrono::milliseconds>(
                                      options.self_heal_backoff - since));
          heal = false;
        } else {
          entry.last_self_heal = Clock::now();
        }
      }
      if (new_revision || retry_due || heal) {
        if (new_revision)
          entry.retry_attempt = 0;
        else if (retry_due)
          ++entry.retry_attempt;
        SyncRequest request;
        request.initiated_by = "automated";
        log(app.name, new_revision ? "syncing revision " + *sha
                                   : (heal ? "healing drift" : "retrying the sync"));
        OperationRecord r = run_sync(entry, *sha, entry.desired, c, live, request);
        entry.auto_revision = *sha;
        entry.auto_failed = r.phase != "Succeeded";
        if (entry.auto_failed && app.sync_policy.retry &&
            (app.sync_policy.retry->limit < 0 ||
             entry.retry_attempt < app.sync_policy.retry->limit)) {
          enqueue_after(app.name, app.sync_policy.retry->backoff.delay(entry.retry_attempt + 1));
        }
        // Compare again with what the sync left behind.
        live = live_for(entry, entry.desired);
        apply_comparison(s, compare(app, entry.desired, live), *sha);
      }
    }
    publish(entry);
  }

  static void apply_comparison(ApplicationStatus& s, const Comparison& c, const std::string& sha) {
    s.sync = c.sync;
    s.health = c.health;
    s.health_message = c.health_message;
    s.resources = c.resources;
    s.revision = sha;
  }

  // --- syncs ---

  struct StepFailure {
    std::string message;
  };

  json apply_object(const SyncTask& t, const Application& app, const SyncRequest& request) {
    json object = app.sync_policy.options.respect_ignore_differences
                      ? strip_ignored(t.object, app.ignore_differences)
                      : t.object;
    if (app.sync_policy.options.replace && !t.hook) {
      auto ref = kube::ObjectRef::of(object);
      kube::WriteOptions wo;
      wo.field_manager = kFieldManager;
      wo.dry_run = request.dry_run;
      if (auto existing = client.try_get(ref)) {
        object["metadata"]["resourceVersion"] =
            (*existing)["metadata"].value("resourceVersion", "");
        try {
          return client.update(object, wo);
        } catch (const kube::Error& e) {
          if (!request.force || request.dry_run || e.is(kube::ErrorKind::kConflict)) throw;
          client.remove(ref, kube::DeleteOptions{kube::Propagation::kForeground, 0, false, ""});
          wait_gone(object, std::chrono::seconds(60));
          object["metadata"].erase("resourceVersion");
        }
      }
      return client.create(object, wo);
    }
    kube::ApplyOptions ao;
    ao.field_manager = kFieldManager;
    ao.force = true; // Git is the source of truth: take over fields others changed
    ao.dry_run = request.dry_run;
    if (!app.sync_policy.options.validate) ao.field_validation = "Ignore";
    return client.apply(object, ao);
  }

  // Asks the API server, not the cache: delete_object forgets the object at once, while a
  // foreground deletion keeps it (with a deletionTimestamp) until its dependents are gone.
  static void check_terminated(const AppEntry* entry) {
    if (entry != nullptr && entry->terminate) throw StepFailure{"operation terminated"};
  }

  void wait_gone(const json& object, std::chrono::milliseconds timeout,
                 const AppEntry* entry = nullptr) {
    auto deadline = Clock::now() + timeout;
    const auto ref = kube::ObjectRef::of(object);
    while (Clock::now() < deadline) {
      check_terminated(entry);
      if (!client.try_get(ref)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw kube::Error(kube::ErrorKind::kTimeout,
                      ref.kind + " " + ref.name + " was not deleted in time");
  }

  // Waits until every applied object of a step is healthy (hooks: finished). Degraded fails.
  void wait_healthy(const std::vector<const SyncTask*>& step, const Application& app,
                    const AppEntry* entry = nullptr) {
    auto deadline = Clock::now() + options.wave_timeout;
    while (true) {
      check_terminated(entry);
      std::string pending;
      for (const SyncTask* t : step) {
        if (t->action != TaskAction::kApply) continue;
        auto live = cache.get(t->key);
        if (!live) {
          pending = t->key.kind + " " + t->key.name + " does not exist yet";
          break;
        }
        auto h = kube::assess_health(*live);
        if (!h || h->status == kube::HealthStatus::kHealthy ||
            h->status == kube::HealthStatus::kSuspended ||
            h->status == kube::HealthStatus::kUnknown) {
          continue;
        }
        if (h->status == kube::HealthStatus::kDegraded) {
          throw StepFailure{(t->hook ? "hook " : "") + t->key.kind + " " + t->key.name +
                            " is Degraded" + (h->message.empty() ? "" : ": " + h->message)};
        }
        pending =
            t->key.kind + " " + t->key.name + " is " + std::string(kube::to_string(h->status));
        break;
      }
      if (pending.empty()) return;
      if (Clock::now() >= deadline) {
        throw StepFailure{"timed out after " + std::to_string(options.wave_timeout.count() / 1000) +
                          " s waiting for the wave to become healthy: " + pending};
      }
      {
        std::lock_guard lock(mutex);
        if (stopping) throw StepFailure{"the reconciler stopped"};
      }
      (void)app;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void delete_object(const json& object, const Application& app, bool dry_run) {
    kube::DeleteOptions d;
    const std::string& policy = app.sync_policy.options.prune_propagation_policy;
    d.propagation = policy == "background" ? kube::Propagation::kBackground
                    : policy == "orphan"   ? kube::Propagation::kOrphan
                                           : kube::Propagation::kForeground;
    d.dry_run = dry_run;
    client.remove(kube::ObjectRef::of(object), d);
    if (!dry_run) cache.erase(ResourceKey::of(object));
  }

  json task_result(const SyncTask& t, const std::string& status, const std::string& message) {
    json r = {{"group", t.key.group},
              {"kind", t.key.kind},
              {"namespace", t.key.namespace_},
              {"name", t.key.name},
              {"status", status},
              {"syncPhase", std::string(to_string(t.phase))},
              {"wave", t.wave}};
    if (t.hook) r["hookPhase"] = std::string(to_string(t.phase));
    if (!message.empty()) r["message"] = message;
    return r;
  }

  OperationRecord run_sync(AppEntry& entry, const std::string& sha,
                           const std::vector<DesiredObject>& desired, const Comparison& comparison,
                           const std::vector<json>& live, const SyncRequest& request) {
    Application with_options;
    if (!request.sync_options.empty()) {
      with_options = entry.app;
      for (const auto& item : request.sync_options) {
        set_sync_option(with_options.sync_policy.options, item);
      }
    }
    const Application& app = request.sync_options.empty() ? entry.app : with_options;
    OperationScope scope(entry);
    OperationRecord record;
    record.revision = sha;
    record.started_at = now_rfc3339();
    record.initiated_by = request.initiated_by;
    record.prune = request.prune.value_or(app.sync_policy.prune);
    record.dry_run = request.dry_run;
    // Argo CD's status.operationState shows the operation while it runs, not only once it ended.
    OperationRecord running = record;
    running.phase = "Running";
    running.message = "syncing";
    entry.status.last_operation = running;
    publish(entry);
    std::string failure;
    SyncPlan plan;
    try {
      PlanOptions po;
      po.prune = record.prune;
      po.prune_last = app.sync_policy.options.prune_last;
      po.apply_out_of_sync_only = app.sync_policy.options.apply_out_of_sync_only;
      po.revision = sha;
      plan = plan_sync(desired, comparison, live, po);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (request.apply_only) {
      plan.tasks.erase(std::remove_if(plan.tasks.begin(), plan.tasks.end(),
                                      [](const SyncTask& t) { return t.hook; }),
                       plan.tasks.end());
      plan.sync_fail.clear();
    }
    for (const auto& t : plan.tasks) {
      if (t.hook) {
        try {
          cache.ensure(t.object.value("apiVersion", ""), t.key.kind);
        } catch (const std::exception&) {
        }
      }
    }
    if (failure.empty() && app.sync_policy.options.create_namespace &&
        !app.destination.namespace_.empty()) {
      try {
        kube::ObjectRef ns{"v1", "Namespace", "", app.destination.namespace_};
        if (!client.try_get(ns)) {
          json obj = {
              {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns.name}}}};
          kube::ApplyOptions ao;
          ao.field_manager = kFieldManager;
          ao.dry_run = request.dry_run;
          client.apply(obj, ao);
          log(app.name, "created namespace " + ns.name);
        }
      } catch (const std::exception& e) {
        failure = "creating namespace " + app.destination.namespace_ + ": " + e.what();
      }
    }
    auto steps = plan.steps();
    std::vector<const SyncTask*> failed_step;
    for (std::size_t i = 0; failure.empty() && i < steps.size(); ++i) {
      const auto& step = steps[i];
      try {
        for (const SyncTask* t : step) {
          check_terminated(&entry);
          try {
            if (t->action == TaskAction::kPrune) {
              delete_object(t->object, app, request.dry_run);
              record.resources.push_back(
                  task_result(*t, "Pruned", request.dry_run ? "pruned (dry run)" : "pruned"));
              continue;
            }
            if (t->hook && t->has_delete_policy("BeforeHookCreation") && !request.dry_run) {
              if (cache.get(t->key) || client.try_get(kube::ObjectRef::of(t->object))) {
                delete_object(t->object, app, false);
                wait_gone(t->object, options.wave_timeout, &entry);
              }
            }
            json result = apply_object(*t, app, request);
            if (!request.dry_run) cache.put(result);
            record.resources.push_back(
                task_result(*t, "Synced", request.dry_run ? "applied (dry run)" : "applied"));
          } catch (const kube::Error& e) {
            record.resources.push_back(task_result(*t, "SyncFailed", e.what()));
            throw StepFailure{t->key.kind + " " + t->key.name + ": " + e.what()};
          }
        }
        bool has_hooks =
            std::any_of(step.begin(), step.end(), [](const SyncTask* t) { return t->hook; });
        if (!request.dry_run && (i + 1 < steps.size() || has_hooks)) {
          wait_healthy(step, app, &entry);
        }
        for (const SyncTask* t : step) {
          if (t->hook && t->has_delete_policy("HookSucceeded") && !request.dry_run) {
            try {
              delete_object(t->object, app, false);
            } catch (const std::exception&) {
            }
          }
        }
      } catch (const StepFailure& f) {
        failure = f.message;
        failed_step = step;
      } catch (const std::exception& e) {
        failure = e.what();
        failed_step = step;
      }
    }
    if (!failure.empty()) {
      for (const SyncTask* t : failed_step) {
        if (t->hook && t->has_delete_policy("HookFailed")) {
          try {
            delete_object(t->object, app, false);
          } catch (const std::exception&) {
          }
        }
      }
      if (entry.terminate) {
        log(app.name, "sync terminated");
      } else if (!request.dry_run && !plan.sync_fail.empty()) {
        log(app.name, "sync failed; running SyncFail hooks");
        std::vector<const SyncTask*> fail_step;
        for (const auto& t : plan.sync_fail) {
          try {
            cache.ensure(t.object.value("apiVersion", ""), t.key.kind);
            if (cache.get(t.key)) {
              delete_object(t.object, app, false);
              wait_gone(t.object, options.wave_timeout);
            }
            cache.put(apply_object(t, app, request));
            record.resources.push_back(task_result(t, "Synced", "applied"));
            fail_step.push_back(&t);
          } catch (const std::exception& e) {
            record.resources.push_back(task_result(t, "SyncFailed", e.what()));
          }
        }
        try {
          wait_healthy(fail_step, app);
        } catch (const StepFailure&) {
        }
      }
    }
    record.finished_at = now_rfc3339();
    record.phase = failure.empty() ? "Succeeded" : "Failed";
    record.message =
        failure.empty() ? (request.dry_run ? "dry run succeeded" : "successfully synced") : failure;
    log(app.name, "sync " + record.phase + ": " + record.message);
    // The history holds deployments, as Argo CD's: syncs that succeeded (a failed or terminated
    // one is the operation state until the next, and a dry run changed nothing).
    if (!request.dry_run && failure.empty()) {
      const OperationRecord& added = entry.history.add(record);
      record.id = added.id;
    }
    entry.status.last_operation = record;
    if (failure.empty()) {
      if (!request.dry_run) entry.status.synced_revision = sha;
      clear_condition(entry.status, "SyncError");
    } else {
      set_condition(entry.status, "SyncError", failure);
    }
    return record;
  }

  OperationRecord manual_sync(const std::string& name, SyncRequest request) {
    std::shared_ptr<AppEntry> entry;
    {
      std::lock_guard lock(mutex);
      auto it = apps.find(name);
      if (it == apps.end()) throw std::invalid_argument("no application named '" + name + "'");
      entry = it->second;
    }
    OperationScope scope(*entry); // a terminate while it waits for the entry stops it too
    std::lock_guard op(entry->op);
    const Application& app = entry->app;
    std::string target = request.revision.empty() ? app.source.target_revision : request.revision;
    RepoRefs refs = list_refs(app.source.repo_url);
    OperationRecord failed;
    failed.started_at = now_rfc3339();
    failed.initiated_by = request.initiated_by;
    failed.phase = "Error";
    if (!refs.error.empty()) {
      failed.message =
          "failed to list refs of " + git::redact_url(app.source.repo_url) + ": " + refs.error;
      failed.finished_at = now_rfc3339();
      return failed;
    }
    auto sha = resolve_ref(refs.refs, target);
    if (!sha) {
      failed.message = "unable to resolve '" + target + "' to a commit";
      failed.finished_at = now_rfc3339();
      return failed;
    }
    std::vector<DesiredObject> desired;
    try {
      desired = *sha == entry->rendered_revision && !entry->force_render ? entry->desired
                                                                         : render(app, *sha);
    } catch (const std::exception& e) {
      failed.revision = *sha;
      failed.message = e.what();
      failed.finished_at = now_rfc3339();
      set_condition(entry->status, "ComparisonError", e.what());
      publish(*entry);
      return failed;
    }
    watch_kinds(*entry, desired);
    auto live = live_for(*entry, desired);
    Comparison c = compare(app, desired, live);
    OperationRecord r = run_sync(*entry, *sha, desired, c, live, request);
    if (*sha == entry->rendered_revision) {
      live = live_for(*entry, desired);
      apply_comparison(entry->status, compare(app, desired, live), *sha);
    }
    publish(*entry);
    return r;
  }
};

Reconciler::Reconciler(kube::Client client, ReconcilerOptions options)
    : impl_(std::make_unique<Impl>(std::move(client), std::move(options))) {}

Reconciler::~Reconciler() {
  stop();
}

void Reconciler::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->started) return;
  impl_->started = true;
  impl_->threads.emplace_back([this] { impl_->poller(); });
  for (int i = 0; i < std::max(1, impl_->options.workers); ++i) {
    impl_->threads.emplace_back([this] { impl_->worker(); });
  }
}

void Reconciler::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->work_cv.notify_all();
  impl_->poll_cv.notify_all();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->cache.stop();
}

void Reconciler::upsert(const Application& app) {
  std::shared_ptr<AppEntry> entry;
  {
    std::lock_guard lock(impl_->mutex);
    auto& slot = impl_->apps[app.name];
    if (!slot) slot = std::make_shared<AppEntry>();
    entry = slot;
    impl_->targets[app.name] = {app.source.repo_url, app.source.target_revision};
  }
  {
    std::lock_guard op(entry->op);
    entry->app = app;
    entry->history.set_limit(app.revision_history_limit);
    entry->force_render = true;
    // The kinds of the resources it last reported (Argo CD's status.resources, kept by whoever
    // gave it here): a kind that has left Git is still watched, so that its objects are pruned
    // and deleted with the application even by a reconciler that never rendered it.
    for (const auto& [api, kind] : reported_kinds(app.document)) entry->kinds.emplace(api, kind);
  }
  impl_->enqueue(app.name);
}

void Reconciler::remove(const std::string& name) {
  std::lock_guard lock(impl_->mutex);
  impl_->apps.erase(name);
  impl_->targets.erase(name);
  impl_->published.erase(name);
  impl_->polled.erase(name);
}

std::size_t Reconciler::remove_deleting_resources(const std::string& name) {
  std::shared_ptr<AppEntry> entry;
  {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->apps.find(name);
    if (it == impl_->apps.end()) return 0;
    entry = it->second;
  }
  // Waits for a reconcile or sync of it in flight; none starts after (deleted).
  std::lock_guard op(entry->op);
  if (entry->rendered_revision.empty() && !entry->deleted) {
    // Never rendered here (it was given to this reconciler to be deleted): the kinds it manages
    // are known, and watched, only once its source is read.
    try {
      impl_->reconcile(*entry);
    } catch (const std::exception& e) {
      Impl::set_condition(entry->status, "ComparisonError", e.what());
    }
    // Without its source the kinds it reported still say where its objects are.
    if (entry->kinds.empty() && entry->rendered_revision.empty()) {
      std::string why = "its source could not be read";
      for (const auto& c : entry->status.conditions) {
        if (c.type == "ComparisonError" || c.type == "InvalidSpecError") why = c.message;
      }
      throw std::runtime_error("cannot tell which resources application '" + name +
                               "' manages: " + why);
    }
  }
  entry->deleted = true;
  remove(name);
  impl_->watch_kinds(*entry, entry->desired);
  std::size_t deleted = 0;
  for (const auto& live : impl_->cache.tracked(name)) {
    try {
      impl_->delete_object(live, entry->app, false);
      ++deleted;
      impl_->log(name, "deleted " + live.value("kind", "") + " " +
                           live["metadata"].value("name", "") + " with the application");
    } catch (const kube::Error& e) {
      if (!e.is(kube::ErrorKind::kNotFound)) throw;
    }
  }
  return deleted;
}

std::vector<std::string> Reconciler::names() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> out;
  for (const auto& [name, _] : impl_->apps) out.push_back(name);
  return out;
}

void Reconciler::refresh(const std::string& name) {
  std::shared_ptr<AppEntry> entry;
  {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->apps.find(name);
    if (it == impl_->apps.end()) return;
    entry = it->second;
  }
  {
    std::lock_guard op(entry->op);
    entry->force_render = true;
    entry->force_refs = true;
  }
  impl_->enqueue(name);
}

OperationRecord Reconciler::sync(const std::string& name, const SyncRequest& request) {
  return impl_->manual_sync(name, request);
}

bool Reconciler::terminate(const std::string& name) {
  std::shared_ptr<AppEntry> entry;
  {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->apps.find(name);
    if (it == impl_->apps.end()) return false;
    entry = it->second;
  }
  if (entry->operations == 0) return false;
  entry->terminate = true;
  impl_->log(name, "terminating the running sync");
  return true;
}

OperationRecord Reconciler::rollback(const std::string& name, std::int64_t history_id) {
  std::optional<OperationRecord> entry;
  {
    std::shared_ptr<AppEntry> app;
    {
      std::lock_guard lock(impl_->mutex);
      auto it = impl_->apps.find(name);
      if (it == impl_->apps.end())
        throw std::invalid_argument("no application named '" + name + "'");
      app = it->second;
    }
    std::lock_guard op(app->op);
    entry = app->history.find(history_id);
  }
  if (!entry) {
    throw std::invalid_argument("application '" + name + "' has no history entry " +
                                std::to_string(history_id));
  }
  SyncRequest request;
  request.revision = entry->revision;
  request.initiated_by = "rollback to " + std::to_string(history_id);
  return impl_->manual_sync(name, request);
}

std::optional<ApplicationStatus> Reconciler::status(const std::string& name) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->published.find(name);
  if (it == impl_->published.end()) return std::nullopt;
  return it->second;
}

std::vector<ApplicationStatus> Reconciler::statuses() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<ApplicationStatus> out;
  for (const auto& [_, s] : impl_->published) out.push_back(s);
  return out;
}

} // namespace capstan::apps
