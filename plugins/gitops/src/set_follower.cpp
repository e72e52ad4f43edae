// Following ApplicationSets on the delegate: poll, render when a generator's repository moved,
// report the generated Applications (or why they could not be generated).
#include "set_follower.h"

#include <capstan/apps/reconciler.h>
#include <capstan/git/remote.h>
#include <capstan/kube/client.h>
#include <capstan/yaml/yaml.h>

#include <stdexcept>

namespace capstan::plugins::gitops {

using nlohmann::json;

namespace {

// The (repoURL, revision) of every git generator, matrices included.
void git_sources(const json& generators, std::vector<std::pair<std::string, std::string>>& out) {
  if (!generators.is_array()) return;
  for (const auto& g : generators) {
    if (!g.is_object()) continue;
    if (g.contains("git") && g["git"].is_object()) {
      std::string revision = g["git"].value("revision", "HEAD");
      out.emplace_back(g["git"].value("repoURL", ""), revision.empty() ? "HEAD" : revision);
    }
    if (g.contains("matrix") && g["matrix"].is_object()) {
      git_sources(g["matrix"].value("generators", json::array()), out);
    }
  }
}

git::RemoteOptions remote_of(const std::string& url) {
  git::RemoteOptions r;
  r.url = url;
  r.connect_timeout = std::chrono::seconds(5);
  return r;
}

std::string set_now() {
  return kube::format_rfc3339(std::chrono::system_clock::now());
}

// Two statuses say the same when they differ in times only.
bool same_status(json a, json b) {
  for (json* s : {&a, &b}) {
    s->erase("generatedAt");
    if (s->contains("conditions") && (*s)["conditions"].is_array()) {
      for (auto& c : (*s)["conditions"]) c.erase("lastTransitionTime");
    }
  }
  return a == b;
}

} // namespace

SetFollower::SetFollower(SetFollowerOptions options)
    : options_(std::move(options)), cache_(options_.work_dir / "repos") {}

SetFollower::~SetFollower() {
  stop();
}

void SetFollower::start(sdk::ReconcilerHost host) {
  std::lock_guard lock(mutex_);
  if (started_) return;
  host_ = host;
  started_ = true;
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void SetFollower::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!started_) return;
    stopping_ = true;
    started_ = false;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  entries_.clear();
}

void SetFollower::upsert(const std::string& key, const json& document, const json& clusters) {
  // The text as applied, when the coordinator sent it: errors then name its file and line.
  yaml::SourceMap where;
  const json source = clusters.value("source", json::object());
  if (source.contains("text") && source["text"].is_string()) {
    try {
      auto doc = yaml::load(source["text"].get<std::string>(), source.value("file", "<input>"));
      if (doc.value == document) where = doc.where;
    } catch (const std::exception&) {
      // Positions are a help: without them errors still say what is wrong.
    }
  }
  apps::ApplicationSet set;
  try {
    set = apps::parse_application_set(document, where);
  } catch (const apps::Error& e) {
    throw std::invalid_argument(e.what());
  }
  if (key != std::string(kSetPrefix) + set.name) {
    throw std::invalid_argument("the call names '" + key +
                                "' but the document is ApplicationSet '" + set.name + "'");
  }
  std::vector<apps::GeneratorCluster> list;
  for (const auto& c : clusters.value("clusters", json::array())) {
    if (!c.is_object()) continue;
    apps::GeneratorCluster g;
    g.name = c.value("name", "");
    g.server = c.value("server", "");
    for (const auto& [k, v] : c.value("labels", json::object()).items()) {
      if (v.is_string()) g.labels[k] = v.get<std::string>();
    }
    list.push_back(std::move(g));
  }
  {
    std::lock_guard lock(mutex_);
    if (!started_) throw std::logic_error("the reconciler is not started");
    Entry& e = entries_[key];
    e.set = std::move(set);
    e.clusters = std::move(list);
    e.force = true;
    ++e.generation;
    wake_ = true;
  }
  cv_.notify_all();
}

void SetFollower::remove(const std::string& key) {
  std::lock_guard lock(mutex_);
  entries_.erase(key);
}

void SetFollower::refresh(const std::string& key) {
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end()) throw std::invalid_argument("'" + key + "' is not followed here");
    it->second.force = true;
    wake_ = true;
  }
  cv_.notify_all();
}

json SetFollower::status(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) throw std::invalid_argument("'" + key + "' is not followed here");
  return it->second.status;
}

void SetFollower::loop() {
  auto next_poll = std::chrono::steady_clock::now();
  while (true) {
    std::vector<std::tuple<std::string, Entry, bool>> work;
    {
      std::unique_lock lock(mutex_);
      cv_.wait_until(lock, next_poll, [&] { return stopping_ || wake_; });
      if (stopping_) return;
      bool poll = std::chrono::steady_clock::now() >= next_poll;
      if (poll) next_poll = std::chrono::steady_clock::now() + options_.poll_interval;
      wake_ = false;
      for (auto& [key, e] : entries_) {
        if (!poll && !e.force) continue;
        work.emplace_back(key, e, e.force);
        e.force = false;
      }
    }
    for (auto& [key, copy, force] : work) {
      std::map<std::string, std::string> revisions;
      json status = evaluate(key, copy, force, revisions);
      if (status.is_null()) continue;
      bool report = false;
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        auto it = entries_.find(key);
        // Removed or replaced meanwhile: the newer document is rendered next.
        if (it == entries_.end() || it->second.generation != copy.generation) continue;
        it->second.revisions = revisions;
        report = !same_status(it->second.status, status);
        it->second.status = status;
      }
      if (report) host_.status(status.dump());
    }
  }
}

json SetFollower::evaluate(const std::string& key, const Entry& entry, bool force,
                           std::map<std::string, std::string>& revisions) {
  std::vector<std::pair<std::string, std::string>> sources;
  git_sources(entry.set.generators, sources);
  std::map<std::string, std::vector<git::RemoteRef>> refs; // one ls-remote per repository
  std::string error;
  auto resolve = [&](const std::string& url, const std::string& revision) {
    auto r = refs.find(url);
    if (r == refs.end()) r = refs.emplace(url, git::ls_remote(remote_of(url))).first;
    auto sha = apps::resolve_ref(r->second, revision);
    if (!sha) {
      throw std::runtime_error("unable to resolve '" + revision + "' to a commit of " +
                               git::redact_url(url));
    }
    revisions[url + "@" + revision] = *sha;
    return *sha;
  };
  for (const auto& [url, revision] : sources) {
    try {
      resolve(url, revision);
    } catch (const std::exception& e) {
      error = entry.set.name + ": a git generator's repository " + git::redact_url(url) +
              " cannot be read: " + e.what();
      break;
    }
  }
  if (error.empty() && !force && revisions == entry.revisions) return nullptr;

  json generated = json::array();
  std::size_t params = 0;
  bool parameters_generated = false;
  if (error.empty()) {
    try {
      std::map<std::string, git::RepoLease> leases;
      apps::GenerateContext ctx;
      ctx.clusters = entry.clusters;
      ctx.repo = [&](const std::string& url, const std::string& revision) {
        auto known = revisions.find(url + "@" + revision);
        const std::string sha = known != revisions.end() ? known->second : resolve(url, revision);
        auto it = leases.find(url);
        if (it == leases.end()) it = leases.try_emplace(url, cache_.acquire(remote_of(url))).first;
        git::RepoLease& lease = it->second;
        if (!lease->try_resolve(sha)) lease->fetch(remote_of(url));
        apps::RepoTree tree;
        for (const auto& f : lease->list_tree(sha)) {
          if (f.type == git::TreeEntry::Type::kFile) tree.files.push_back(f.path);
        }
        tree.read = [&lease, sha](const std::string& path) { return lease->read_file(sha, path); };
        return tree;
      };
      for (const auto& app : apps::generate_applications(entry.set, ctx)) {
        generated.push_back(app.document);
      }
      params = generated.size();
      parameters_generated = true;
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  json conditions = json::array();
  if (error.empty()) {
    conditions.push_back(
        apps::set_condition("ErrorOccurred", false, "ApplicationSetUpToDate",
                            "Successfully generated parameters for all Applications"));
    conditions.push_back(apps::set_condition("ParametersGenerated", true, "ParametersGenerated",
                                             "Successfully generated parameter sets for " +
                                                 std::to_string(params) + " application(s)"));
  } else {
    conditions.push_back(
        apps::set_condition("ErrorOccurred", true, "ApplicationGenerationFromParamsError", error));
    conditions.push_back(apps::set_condition("ParametersGenerated", false, "ErrorOccurred", error));
  }
  json status = {{"name", key},
                 {"applicationSet", entry.set.name},
                 {"conditions", conditions},
                 {"revisions", revisions},
                 {"generatedAt", set_now()}};
  // Without it the coordinator leaves the applications as they are.
  if (parameters_generated) status["applications"] = std::move(generated);
  return status;
}

} // namespace capstan::plugins::gitops
