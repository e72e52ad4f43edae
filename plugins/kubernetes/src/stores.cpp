// Fetching manifest stores.
#include "stores.h"

#include <capstan/git/remote.h>
#include <capstan/manifest/error.h>

#include <fstream>
#include <sstream>

#include "errors.h"
#include "expressions.h"

namespace capstan::plugins::kubernetes {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string text(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A store-relative path that stays inside the store.
fs::path inside(const std::string& rel, const std::string& store) {
  fs::path p = fs::path(rel).lexically_normal();
  if (p.is_absolute() || (!p.empty() && *p.begin() == "..")) {
    throw invalid(store + ": path \"" + rel + "\" must stay inside the store");
  }
  return p;
}

bool is_text_manifest(const fs::path& p) {
  std::string e = p.extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e == ".yaml" || e == ".yml" || e == ".tpl" || e == ".json";
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
  if (!out) throw sdk::StepError("cannot write " + p.string());
}

} // namespace

StoreFetcher::StoreFetcher(git::RepoCache& repos, const StageContext& stage,
                           const sdk::StepContext& ctx)
    : repos_(repos), stage_(stage), ctx_(ctx) {}

git::RemoteOptions StoreFetcher::remote_for(const manifest::ManifestSpec& spec,
                                            std::string& revision) {
  const json& s = spec.store.spec;
  std::string ref = text(s, "connectorRef");
  std::string where = spec.origin + " manifest " + spec.identifier;
  const json* c = stage_.connector(ref);
  if (c == nullptr) {
    throw invalid(where + ": its Git connector '" + ref + "' was not sent with the step");
  }
  git::RemoteOptions r;
  r.url = text(*c, "url");
  if (text(*c, "connectionType") == "Account") {
    std::string repo = text(s, "repoName");
    if (repo.empty()) throw invalid(where + ": an Account-level Git connector needs repoName");
    while (!r.url.empty() && r.url.back() == '/') r.url.pop_back();
    r.url += "/" + repo;
  }
  if (r.url.empty()) throw invalid(where + ": connector '" + ref + "' has no url");
  const json auth = c->value("auth", json::object());
  std::string at = text(auth, "type");
  if (at == "Ssh") {
    r.credentials.ssh_private_key = text(auth, "sshKey");
    ctx_.mask(r.credentials.ssh_private_key);
  } else {
    r.credentials.username = text(auth, "username");
    r.credentials.password = text(auth, "password");
    if (r.credentials.password.empty()) r.credentials.password = text(auth, "token");
    ctx_.mask(r.credentials.password);
  }
  r.cancelled = [this] { return ctx_.cancelled(); };
  std::string fetch_type = text(s, "gitFetchType");
  if (fetch_type == "Commit") {
    revision = text(s, "commitId");
    if (revision.empty()) throw invalid(where + ": gitFetchType Commit needs a commitId");
  } else {
    revision = text(s, "branch");
    if (revision.empty()) throw invalid(where + ": gitFetchType Branch needs a branch");
  }
  return r;
}

manifest::FileTexts StoreFetcher::resolve_in(const fs::path& root,
                                             const std::vector<std::string>& paths,
                                             const std::string& name) {
  manifest::FileTexts texts;
  auto one = [&](const fs::path& file) {
    if (!is_text_manifest(file)) return;
    std::string before = read(file);
    if (before.find("<+") == std::string::npos) return;
    std::string rel = fs::relative(file, root).generic_string();
    texts[rel] = resolve_references(before, stage_.scope, rel);
  };
  for (const auto& p : paths) {
    fs::path full = root / inside(p, name);
    std::error_code ec;
    if (fs::is_directory(full, ec)) {
      for (auto it = fs::recursive_directory_iterator(full, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file()) one(it->path());
      }
    } else if (fs::is_regular_file(full, ec)) {
      one(full);
    }
  }
  return texts;
}

FetchedStore StoreFetcher::fetch(const manifest::ManifestSpec& spec,
                                 std::vector<std::string>& paths,
                                 const std::vector<std::string>& optional) {
  const std::string& type = spec.store.type;
  std::string name = spec.origin + " manifest " + spec.identifier;
  fs::path root = ctx_.work_dir() / "stores" / std::to_string(++count_);
  if (type != "Local") fs::create_directories(root);
  if (type == "Inline") {
    write(root / "inline.yaml", spec.store.content);
    paths.push_back("inline.yaml");
  } else if (type == "Local") {
    fs::path base = spec.origin.rfind("environment", 0) == 0 && !stage_.environment_dir.empty()
                        ? stage_.environment_dir
                        : stage_.service_dir;
    if (base.empty()) {
      throw invalid(name + ": a Local store's paths are relative to the folder the service was "
                           "applied from, and the stage does not say which folder that is");
    }
    // Read in place: copying a folder of many small files costs more than rendering them,
    // and references are resolved in memory, so the service's folder is never written.
    for (const auto& p : paths) {
      std::error_code ec;
      if (!fs::exists(base / inside(p, name), ec)) {
        throw invalid(name + ": \"" + p + "\" does not exist in " + base.string());
      }
    }
    root = base;
  } else if (type == "Git" || type == "Github" || type == "Gitlab" || type == "Bitbucket") {
    std::string revision;
    git::RemoteOptions remote = remote_for(spec, revision);
    ctx_.info("Fetching " + name + " from " + git::redact_url(remote.url) + " at " + revision);
    auto lease = repos_.acquire(remote);
    std::string commit = lease->resolve(revision);
    lease->export_tree(commit, root);
    ctx_.info("  commit " + commit.substr(0, 12));
  } else {
    throw invalid(name + ": store type " + type +
                  " is not supported (Git, Github, Gitlab, "
                  "Bitbucket, Local or Inline)");
  }
  std::vector<std::string> all = paths;
  for (const auto& p : optional) {
    std::error_code ec;
    if (fs::exists(root / inside(p, name), ec)) all.push_back(p);
  }
  return {root, resolve_in(root, all, name)};
}

} // namespace capstan::plugins::kubernetes
