// The gitops plugin: the pull-request steps of a GitOps (PR) pipeline, under the seed's names and
// Harness's: UpdateReleaseRepo, MergePR, RevertPR and FetchLinkedApps.
#include <capstan/apps/application_set.h>
#include <capstan/git/cache.h>
#include <capstan/scm/changes.h>
#include <capstan/scm/local.h>
#include <capstan/sdk/plugin.h>
#include <capstan/yaml/yaml.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "app_host.h"
#include "errors.h"
#include "pr_records.h"
#include "release_repo.h"
#include "schemas.h"

namespace capstan::plugins::gitops {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using plugin::v1::ERROR_TYPE_INVALID_INPUT;
using plugin::v1::ERROR_TYPE_TIMEOUT;

std::string text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

bool flag(const json& spec, const char* key, bool fallback = false) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) {
    const std::string s = it->get<std::string>();
    if (s == "true") return true;
    if (s == "false") return false;
    throw sdk::StepError(ERROR_TYPE_INVALID_INPUT,
                         std::string(key) + " must be true or false, not '" + s + "'");
  }
  return fallback;
}

// A ref-safe piece of a branch name.
std::string ref_safe(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '-';
  }
  return out.empty() ? "x" : out;
}

// The coordinator leaves <+cluster.*> and <+envgroup.*> in the values to the step, and over an
// environment group <+env.*> too: they are resolved for `cluster`.
json for_cluster(json value, const std::string& name, const Cluster* cluster) {
  if (value.is_null()) return "";
  if (cluster != nullptr && value.is_string() &&
      value.get_ref<const std::string&>().find("<+") != std::string::npos) {
    return resolve_for_cluster(value.get<std::string>(), *cluster, "variable '" + name + "'");
  }
  return value;
}

void add_variables(const json& object, std::map<std::string, json>& vars,
                   const Cluster* cluster = nullptr) {
  if (!object.is_object()) return;
  for (const auto& [k, v] : object.items()) vars[k] = for_cluster(v, k, cluster);
}

// The values a step variable list sets: name -> JSON value (Number variables become numbers),
// resolved for `cluster` as for_cluster() does.
void add_step_variables(const json& spec, std::map<std::string, json>& vars,
                        const Cluster* cluster = nullptr) {
  for (const auto& v : spec.value("variables", json::array())) {
    const std::string name = v.value("name", "");
    json value = for_cluster(v.value("value", json()), name, cluster);
    if (v.value("type", "String") == "Number" && value.is_string()) {
      try {
        std::size_t used = 0;
        const std::string s = value.get<std::string>();
        double d = std::stod(s, &used);
        if (used == s.size()) {
          value = s.find_first_of(".eE") == std::string::npos ? json(std::stoll(s)) : json(d);
        }
      } catch (const std::exception&) {
        // not a number: written as given, and the config file keeps it a string
      }
    }
    vars[name] = value;
  }
}

class GitOps : public sdk::Reconciler {
public:
  explicit GitOps(sdk::InitContext& init)
      : cache_(cache_root(init.state_dir())), apps_(app_host_options(init)) {
    const json author = init.config().value("commitAuthor", json::object());
    author_.name = author.value("name", "Capstan");
    author_.email = author.value("email", "capstan@localhost");
    init.info("gitops: repository cache in " + cache_.root().string());
  }

  sdk::Result update_release_repo(sdk::StepContext& ctx) {
    const json& spec = ctx.spec();
    RepoTarget t = target(ctx, "ReleaseRepo");
    if (t.paths.empty()) {
      throw sdk::StepError(ERROR_TYPE_INVALID_INPUT,
                           "the ReleaseRepo manifest '" + t.manifest + "' lists no paths");
    }
    const auto cls = clusters(ctx.context());
    if (cls.empty()) {
      throw sdk::StepError(ERROR_TYPE_INVALID_INPUT,
                           "the stage deploys to no GitOps cluster or environment: nothing to "
                           "resolve the release repo paths for");
    }
    // One commit for every cluster: each cluster's paths get service variables, overridden by
    // its environment's, overridden by the step's.
    std::map<std::string, json> base;
    const json service_variables =
        ctx.context().value("service", json::object()).value("variables", json());
    add_variables(service_variables, base);
    std::map<std::string, json> step;
    add_step_variables(spec, step);
    std::vector<scm::FileUpdate> files;
    std::map<std::string, std::size_t> index;
    for (const auto& c : cls) {
      std::map<std::string, json> vars;
      add_variables(service_variables, vars, &c);
      add_variables(c.env_variables, vars);
      std::map<std::string, json> step_vars;
      add_step_variables(spec, step_vars, &c);
      for (const auto& [k, v] : step_vars) vars[k] = v;
      for (const auto& p : t.paths) {
        const std::string path = resolve_path(p, c);
        ctx.info("cluster " + (c.identifier.empty() ? std::string("-") : c.identifier) +
                 " (environment " + c.env_name + "): " + path);
        auto [it, added] = index.emplace(path, files.size());
        if (added) files.push_back({path, {}});
        auto& edits = files[it->second].edits;
        for (const auto& [k, v] : vars) edits.push_back({k, v});
      }
    }
    if (step.empty() && base.empty()) {
      ctx.warn("no service, environment or step variables: the files are left as they are");
    }
    scm::ConfigChange change;
    change.target = t.branch;
    change.branch = branch_name(ctx, "update");
    change.title = spec.value("prTitle", "");
    if (change.title.empty()) change.title = "Capstan: Updating config overrides";
    change.body = spec.value("prDescription", "");
    if (change.body.empty()) change.body = describe_change(ctx, files);
    change.files = std::move(files);
    change.author = author_;
    change.allow_empty = flag(spec, "allowEmptyCommit");

    Recorder rec(ctx, t);
    scm::Proposal proposal;
    translate_errors("update release repo " + t.repository, t.secrets, [&] {
      auto turn = exclusive(ctx, t.repository);
      auto provider = rec.provider(cache_, reserved_number(ctx.context(), t.repository));
      proposal = scm::propose_config_change(*provider, cache_, t.remote, change);
      rec.created(proposal);
    });
    for (const auto& f : proposal.changed_files) ctx.info("changed " + f);
    ctx.info("pushed " + proposal.commit + " to branch " + proposal.branch +
             " and opened pull "
             "request #" +
             std::to_string(proposal.pr.number) + " into " + t.branch + " (" + proposal.pr.url +
             ")");
    export_pr(ctx, proposal.pr, proposal.commit, proposal.branch);
    return sdk::Result::succeeded();
  }

  sdk::Result merge_pr(sdk::StepContext& ctx) {
    const json& spec = ctx.spec();
    RepoTarget t = target(ctx, "ReleaseRepo");
    std::map<std::string, json> vars;
    add_step_variables(spec, vars);
    auto var = [&](std::initializer_list<const char*> names) -> std::string {
      for (const char* n : names) {
        if (vars.count(n) != 0 && !text(vars[n]).empty()) return text(vars[n]);
      }
      return "";
    };
    scm::MergeOptions opts;
    std::string method = spec.value("mergeMethod", "");
    if (method.empty()) method = var({"merge_method", "mergeMethod"});
    try {
      opts.method = method.empty() ? git::MergeMethod::kMerge : git::parse_merge_method(method);
    } catch (const git::Error& e) {
      throw sdk::StepError(ERROR_TYPE_INVALID_INPUT, std::string("mergeMethod: ") + e.what());
    }
    if (opts.method == git::MergeMethod::kFastForward) {
      throw sdk::StepError(ERROR_TYPE_INVALID_INPUT,
                           "mergeMethod: pull requests merge with merge, squash or rebase");
    }
    opts.delete_source_branch = flag(spec, "deleteSourceBranch");
    opts.commit_title = var({"commit_title", "commitTitle"});
    opts.commit_message = var({"commit_message", "commitMessage"});
    opts.expected_head = var({"sha"});

    Recorder rec(ctx, t);
    long number = 0;
    if (spec.contains("prNumber") && !text(spec["prNumber"]).empty()) {
      try {
        number = std::stol(text(spec["prNumber"]));
      } catch (const std::exception&) {
        throw sdk::StepError(ERROR_TYPE_INVALID_INPUT,
                             "prNumber must be a number, not '" + text(spec["prNumber"]) + "'");
      }
    } else {
      // The newest open one this execution opened (the coordinator also sends the repository's
      // other open pull requests, for prNumber).
      const std::string& execution = ctx.request().execution_id();
      for (const auto& e : rec.known()) {
        const bool ours = e.execution_id.empty() || e.execution_id == execution;
        if (ours && e.record.pr.state == scm::PrState::kOpen) number = e.record.pr.number;
      }
      if (number == 0) {
        throw sdk::StepError(ERROR_TYPE_INVALID_INPUT,
                             "no open pull request of " + t.repository +
                                 " was opened earlier in this execution: run UpdateReleaseRepo "
                                 "or RevertPR first, or name one with prNumber");
      }
    }
    scm::PullRequest pr;
    translate_errors("merge pull request #" + std::to_string(number) + " of " + t.repository,
                     t.secrets, [&] {
                       auto provider = rec.provider(cache_, 0);
                       pr = provider->merge(number, opts);
                       rec.changed(pr);
                     });
    ctx.info("merged pull request #" + std::to_string(pr.number) + " into " + pr.target + " (" +
             git::to_string(opts.method) + "): " + pr.merge_commit);
    if (opts.delete_source_branch) ctx.info("deleted branch " + pr.source);
    ctx.set_output("commitId", pr.merge_commit);
    ctx.set_output("prNumber", std::to_string(pr.number));
    ctx.set_output("prlink", pr.url);
    return sdk::Result::succeeded();
  }

  sdk::Result revert_pr(sdk::StepContext& ctx) {
    const json& spec = ctx.spec();
    RepoTarget t = target(ctx, "ReleaseRepo");
    scm::RevertChange change;
    change.commit = spec.value("commitId", "");
    change.target = t.branch;
    change.branch = branch_name(ctx, "revert");
    change.title = spec.value("prTitle", "");
    change.author = author_;
    Recorder rec(ctx, t);
    scm::Proposal proposal;
    translate_errors("revert " + change.commit + " in " + t.repository, t.secrets, [&] {
      auto turn = exclusive(ctx, t.repository);
      {
        // A merge commit (a merged pull request) is reverted against its first parent, the
        // target branch's side.
        git::RepoLease lease = cache_.acquire(t.remote, acquire_options(ctx));
        if (lease->commit_info(change.commit).parents.size() > 1) change.mainline = 1;
      }
      change.body = "This reverts commit " + change.commit + ".";
      auto provider = rec.provider(cache_, reserved_number(ctx.context(), t.repository));
      proposal = scm::propose_revert(*provider, cache_, t.remote, change);
      rec.created(proposal);
    });
    ctx.info("pushed revert " + proposal.commit + " to branch " + proposal.branch +
             " and opened pull request #" + std::to_string(proposal.pr.number) + " (" +
             proposal.pr.url + ")");
    export_pr(ctx, proposal.pr, proposal.commit, proposal.branch);
    return sdk::Result::succeeded();
  }

  // The applications the DeploymentRepo's ApplicationSets generate for the stage's clusters, as
  // the agent would render them.
  json rendered_linked_apps(sdk::StepContext& ctx) {
    RepoTarget t = target(ctx, "DeploymentRepo");
    if (t.paths.empty()) {
      throw sdk::StepError(ERROR_TYPE_INVALID_INPUT,
                           "the DeploymentRepo manifest '" + t.manifest + "' lists no paths");
    }
    const auto cls = clusters(ctx.context());
    apps::GenerateContext gen;
    std::set<std::string> names, servers;
    for (const auto& c : cls) {
      if (c.identifier.empty()) continue;
      gen.clusters.push_back({c.name, c.server, {}});
      names.insert(c.name);
      if (!c.server.empty()) servers.insert(c.server);
    }
    json linked_apps = json::array();
    translate_errors("fetch linked apps from " + t.repository, t.secrets, [&] {
      git::RepoLease lease = cache_.acquire(t.remote, acquire_options(ctx));
      const std::string rev = lease->resolve(t.branch);
      // The DeploymentRepo at the manifest's branch serves every git generator of its sets.
      gen.repo = [&](const std::string&, const std::string&) {
        apps::RepoTree tree;
        for (const auto& e : lease->list_tree(rev)) tree.files.push_back(e.path);
        tree.read = [&](const std::string& p) { return lease->read_file(rev, p); };
        return tree;
      };
      for (const auto& path : t.paths) {
        int sets = 0;
        for (const auto& doc : yaml::load_all(lease->read_file(rev, path), path)) {
          if (!doc.value.is_object() || doc.value.value("kind", "") != "ApplicationSet") continue;
          ++sets;
          const auto set = apps::parse_application_set(doc.value, doc.where);
          for (const auto& generated : apps::generate_applications(set, gen)) {
            const json& app = generated.document;
            const json dest = app["spec"].value("destination", json::object());
            const std::string dname = dest.value("name", "");
            const std::string dserver = dest.value("server", "");
            bool linked =
                gen.clusters.empty() || names.count(dname) != 0 || servers.count(dserver) != 0;
            if (!linked) continue;
            std::string cluster;
            for (const auto& c : cls) {
              if (!c.identifier.empty() &&
                  (c.name == dname || (!c.server.empty() && c.server == dserver))) {
                cluster = c.identifier;
              }
            }
            const json source = app["spec"].value("source", json::object());
            json info = {{"name", app["metadata"].value("name", "")},
                         {"namespace", dest.value("namespace", "")},
                         {"cluster", cluster},
                         {"server", dserver},
                         {"destinationName", dname},
                         {"repoURL", source.value("repoURL", "")},
                         {"path", source.value("path", "")},
                         {"targetRevision", source.value("targetRevision", "")},
                         {"applicationSet", set.name}};
            linked_apps.push_back(std::move(info));
          }
        }
        if (sets == 0) throw apps::Error("", path + " holds no ApplicationSet");
      }
    });
    for (const auto& a : linked_apps) {
      ctx.info("application " + a["name"].get<std::string>() + " -> " +
               (a["cluster"].get<std::string>().empty()
                    ? a["server"].get<std::string>()
                    : "cluster " + a["cluster"].get<std::string>()) +
               " (" + a["path"].get<std::string>() + ")");
    }
    if (linked_apps.empty())
      ctx.warn("no application of the ApplicationSet targets the stage's clusters");
    return linked_apps;
  }

  // The live applications of the stage's clusters (the coordinator sends them with their status
  // in context.gitOps.applications), joined with what the DeploymentRepo generates when the
  // service has one. Without live applications in the context (an older coordinator), the
  // rendered ones.
  sdk::Result fetch_linked_apps(sdk::StepContext& ctx) {
    const json live = ctx.context().value("gitOps", json::object()).value("applications", json());
    bool has_repo = false;
    for (const auto& m :
         ctx.context().value("service", json::object()).value("manifests", json::array())) {
      if (m.is_object() && m.value("type", "") == "DeploymentRepo") has_repo = true;
    }
    json rendered = json::array();
    if (has_repo || !live.is_array()) rendered = rendered_linked_apps(ctx);
    json linked_apps = json::array();
    json by_cluster = json::object();
    if (!live.is_array()) {
      linked_apps = rendered;
    } else {
      std::map<std::string, json> generated;
      for (const auto& r : rendered) generated[r.value("name", "")] = r;
      for (auto a : live) {
        const std::string name = a.value("name", "");
        if (auto g = generated.find(name); g != generated.end()) {
          if (a.value("applicationSet", "").empty())
            a["applicationSet"] = g->second["applicationSet"];
          generated.erase(g);
        }
        ctx.info("live application " + name + " on cluster " + a.value("cluster", "") + ": " +
                 a.value("syncStatus", "Unknown") + ", " + a.value("healthStatus", "Unknown") +
                 (a.value("revision", "").empty() ? "" : " at " + a.value("revision", "")) +
                 (a.value("delegate", "").empty() ? ", not held by any delegate"
                                                  : " (delegate " + a.value("delegate", "") + ")"));
        linked_apps.push_back(std::move(a));
      }
      for (const auto& [name, g] : generated) {
        ctx.warn("application " + name + " (generated for cluster " + g.value("cluster", "") +
                 ") is not among the applied applications: apply its ApplicationSet or "
                 "Application for the agent to deploy it");
      }
      if (linked_apps.empty()) ctx.warn("no live application targets the stage's clusters");
    }
    for (const auto& a : linked_apps) {
      const std::string cluster = a.value("cluster", "");
      if (!cluster.empty()) by_cluster[cluster].push_back(a.value("name", ""));
    }
    ctx.set_output("applications", linked_apps.dump());
    ctx.set_output("applicationsByCluster", by_cluster.dump());
    ctx.set_output("appCount", std::to_string(linked_apps.size()));
    return sdk::Result::succeeded();
  }

private:
  // Pull requests of one repository for one step: the provider the connector calls for, and the
  // records to hand back to the coordinator.
  class Recorder {
  public:
    Recorder(sdk::StepContext& ctx, const RepoTarget& t) : ctx_(ctx), t_(t) {
      for (auto& e : context_entries(ctx.context())) {
        if (e.repository == t.repository) known_.push_back(std::move(e));
      }
    }
    ~Recorder() {
      try {
        if (store_) {
          for (const auto& r : store_->changed()) report(r.pr, r.comments);
        }
      } catch (...) { // nothing may escape while a failure unwinds
      }
    }
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    const std::vector<PrEntry>& known() const { return known_; }

    std::unique_ptr<scm::Provider> provider(git::RepoCache& cache, long next_number) {
      if (t_.provider != ProviderKind::kLocal) {
        scm::HttpProviderConfig api = t_.api;
        api.cancelled = [this] { return ctx_.cancelled(); };
        api.log = [this](const std::string& line) { ctx_.info(line); };
        return t_.provider == ProviderKind::kGithub ? scm::make_github(api) : scm::make_gitlab(api);
      }
      std::vector<scm::PrRecord> records;
      for (const auto& e : known_) records.push_back(e.record);
      store_ = std::make_unique<TaskPrStore>(t_.repository, next_number, records);
      scm::LocalProviderConfig config;
      config.remote = t_.remote;
      config.repository = t_.repository;
      config.merger = git::Signature{"Capstan", "capstan@localhost", std::nullopt, 0};
      return std::make_unique<scm::LocalProvider>(config, cache, *store_);
    }
    // Hosted providers' pull requests are recorded by the step itself; local ones by the store.
    void created(const scm::Proposal& p) {
      commit_ = p.commit;
      if (t_.provider != ProviderKind::kLocal) report(p.pr, {});
    }
    void changed(const scm::PullRequest& pr) {
      if (t_.provider != ProviderKind::kLocal) report(pr, {});
    }

  private:
    void report(const scm::PullRequest& pr, const std::vector<std::string>& comments) {
      PrEntry e;
      e.repository = t_.repository;
      e.provider = to_string(t_.provider);
      e.connector = t_.connector;
      e.record.pr = pr;
      e.record.comments = comments;
      e.commit = commit_;
      ctx_.add_record("PullRequest", entry_to_json(e));
    }
    sdk::StepContext& ctx_;
    const RepoTarget& t_;
    std::vector<PrEntry> known_;
    std::unique_ptr<TaskPrStore> store_;
    std::string commit_;
  };

  static fs::path cache_root(const fs::path& state) {
    return state.empty() ? fs::temp_directory_path() / "capstan-gitops" / "repos" : state / "repos";
  }

  RepoTarget target(sdk::StepContext& ctx, const std::string& type) {
    RepoTarget t = repo_target(ctx.context(), type);
    for (const auto& s : t.secrets) ctx.mask(s);
    t.remote.cancelled = [&ctx] { return ctx.cancelled(); };
    ctx.info(type + " " + t.repository + " (branch " + t.branch +
             ", pull requests: " + to_string(t.provider) + ")");
    return t;
  }

  git::AcquireOptions acquire_options(const sdk::StepContext& ctx) const {
    git::AcquireOptions o;
    if (auto left = ctx.remaining()) o.lock_timeout = std::max(*left, std::chrono::milliseconds(1));
    return o;
  }

  std::string branch_name(const sdk::StepContext& ctx, const std::string& what) const {
    const auto& r = ctx.request();
    return "capstan-gitops/" + what + "-" + ref_safe(r.execution_id()) + "-" +
           ref_safe(r.step_identifier()) + "-" + std::to_string(r.attempt());
  }

  static std::string describe_change(const sdk::StepContext& ctx,
                                     const std::vector<scm::FileUpdate>& files) {
    std::string body = "Opened by step " + ctx.request().step_identifier() + " of execution " +
                       ctx.request().execution_id() + ".\n\nFiles:\n";
    for (const auto& f : files) body += "- " + f.path + "\n";
    return body;
  }

  static void export_pr(sdk::StepContext& ctx, const scm::PullRequest& pr,
                        const std::string& commit, const std::string& branch) {
    ctx.set_output("prlink", pr.url);
    ctx.set_output("prNumber", std::to_string(pr.number));
    ctx.set_output("commitId", commit);
    ctx.set_output("ref", branch);
  }

  // One UpdateReleaseRepo or RevertPR per repository at a time on this delegate; waits as long
  // as the step's timeout allows and gives up when the step is cancelled.
  std::unique_lock<std::timed_mutex> exclusive(const sdk::StepContext& ctx,
                                               const std::string& repository) {
    std::shared_ptr<std::timed_mutex> m;
    {
      std::lock_guard lock(locks_mutex_);
      auto& slot = repo_locks_[repository];
      if (!slot) slot = std::make_shared<std::timed_mutex>();
      m = slot;
    }
    std::unique_lock<std::timed_mutex> held(*m, std::defer_lock);
    bool said = false;
    while (!held.try_lock_for(std::chrono::milliseconds(100))) {
      if (!said) {
        ctx.info("waiting for another step updating " + repository + " on this delegate");
        said = true;
      }
      ctx.throw_if_cancelled();
      if (auto left = ctx.remaining(); left && left->count() == 0) {
        throw sdk::StepError(ERROR_TYPE_TIMEOUT,
                             "timed out waiting for another step updating " + repository);
      }
    }
    // The mutex lives in repo_locks_ for the plugin's lifetime, so the lock may outlive `m`.
    return held;
  }

  static AppHostOptions app_host_options(const sdk::InitContext& init) {
    AppHostOptions o;
    fs::path state = init.state_dir();
    o.work_root = (state.empty() ? fs::temp_directory_path() / "capstan-gitops" : state) / "apps";
    // Delegate config: plugins.gitops.pollIntervalMs (default 3000).
    const auto& poll = init.config().value("pollIntervalMs", nlohmann::json(3000));
    if (!poll.is_number_integer() || poll.get<long long>() < 100) {
      throw std::invalid_argument("gitops: pollIntervalMs must be a whole number of at least 100");
    }
    o.poll_interval = std::chrono::milliseconds(poll.get<long long>());
    return o;
  }

public:
  void reconciler_start(sdk::ReconcilerHost host) override { apps_.start(host); }
  std::string reconciler_call(const plugin::v1::ReconcilerCall& call) override {
    return apps_.call(call);
  }
  void reconciler_stop() override { apps_.stop(); }

private:
  git::RepoCache cache_;
  AppHost apps_;
  git::Signature author_;
  std::mutex locks_mutex_;
  std::map<std::string, std::shared_ptr<std::timed_mutex>> repo_locks_;
};

} // namespace
} // namespace capstan::plugins::gitops

CAPSTAN_PLUGIN(plugin) {
  using capstan::plugins::gitops::GitOps;
  namespace g = capstan::plugins::gitops;
  plugin.name("gitops").version("1.1.0").state<GitOps>().reconciler<GitOps>();
  const char* update = "Edits the release repo's config files per GitOps cluster and opens a PR";
  const char* merge = "Merges the pull request opened earlier in the execution";
  const char* revert = "Reverts a commit on a new branch and opens a pull request";
  const char* fetch = "Lists the live applications of the stage's clusters, with their status";
  plugin.step({"UpdateReleaseRepo", g::update_release_repo_schema(), update, 0},
              &GitOps::update_release_repo);
  plugin.step({"GitOpsUpdateReleaseRepo", g::update_release_repo_schema(), update, 0},
              &GitOps::update_release_repo);
  plugin.step({"MergePR", g::merge_pr_schema(), merge, 0}, &GitOps::merge_pr);
  plugin.step({"GitOpsMergePR", g::merge_pr_schema(), merge, 0}, &GitOps::merge_pr);
  plugin.step({"RevertPR", g::revert_pr_schema(), revert, 0}, &GitOps::revert_pr);
  plugin.step({"GitOpsRevertPR", g::revert_pr_schema(), revert, 0}, &GitOps::revert_pr);
  plugin.step({"FetchLinkedApps", g::fetch_linked_apps_schema(), fetch, CAPSTAN_STEP_RETRY_SAFE},
              &GitOps::fetch_linked_apps);
  plugin.step(
      {"GitOpsFetchLinkedApps", g::fetch_linked_apps_schema(), fetch, CAPSTAN_STEP_RETRY_SAFE},
      &GitOps::fetch_linked_apps);
}
