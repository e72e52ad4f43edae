// Update Release Repo's Git work across 100 environment folders: capstan::git + configedit
// (cold cache: clone; warm cache: fetch) against the git CLI script, in the same run, against the
// same git daemon. Prints wall times and ratios.
// Usage: release_repo_bench REPO_DIR SCRIPT_DIR [ROUNDS=5]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "capstan/configedit/configedit.h"
#include "capstan/git/cache.h"
#include "capstan/testing/git_servers.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// One Update Release Repo pass: every cluster-config/*/config.json gets imageTag, one commit on a
// new branch, pushed.
void library_update(capstan::git::RepoCache& cache, const capstan::git::RemoteOptions& remote,
                    const std::string& branch, const std::string& tag) {
  auto lease = cache.acquire(remote);
  const std::string base = lease->resolve("main");
  capstan::git::CommitRequest req;
  req.parent = base;
  for (const auto& entry : lease->list_tree(base, "cluster-config")) {
    if (entry.path.size() < 12 || entry.path.substr(entry.path.size() - 12) != "/config.json")
      continue;
    const std::string text = lease->read_file(base, entry.path);
    auto result = capstan::configedit::apply(text, capstan::configedit::Format::kJson,
                                             {{"imageTag", tag}}, entry.path);
    if (result.changed) req.edits.push_back({entry.path, result.text, false});
  }
  req.message = "Update imageTag to " + tag;
  req.author = {"Bench", "bench@example.com", std::nullopt, 0};
  auto tip = lease->commit_files(req);
  if (!tip || req.edits.size() != 100) throw std::runtime_error("expected 100 edited files");
  lease->push(remote, {{*tip, branch, false}});
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: release_repo_bench REPO_DIR SCRIPT_DIR [ROUNDS]\n";
    return 2;
  }
  const fs::path repo = fs::absolute(argv[1]);
  const fs::path scripts = fs::absolute(argv[2]);
  const int rounds = argc > 3 ? std::stoi(argv[3]) : 5;
  capstan::testing::GitDaemon daemon(repo.parent_path());
  capstan::git::RemoteOptions remote;
  remote.url = daemon.url(repo.filename().string());
  capstan::testing::TempDir work("capstan-bench");

  std::vector<double> cli;
  std::vector<double> cold;
  std::vector<double> warm;
  capstan::git::RepoCache warm_cache(work / "warm-cache");
  library_update(warm_cache, remote, "bench-warmup", "v9.9.9"); // fills the warm cache
  for (int i = 0; i < rounds; ++i) {
    const std::string tag = "v2.0." + std::to_string(i);
    auto t0 = Clock::now();
    auto r = capstan::testing::run({(scripts / "git-cli-update.sh").string(), remote.url,
                                    (work / "cli").string(), "cli-" + std::to_string(i), tag},
                                   {{"GIT_CONFIG_GLOBAL", "/dev/null"}}, std::chrono::minutes(5));
    cli.push_back(ms_since(t0));
    if (!r.status.success()) {
      std::cerr << "baseline failed: " << r.err << "\n";
      return 1;
    }
    t0 = Clock::now();
    {
      capstan::git::RepoCache cache(work / ("cold-" + std::to_string(i)));
      library_update(cache, remote, "cold-" + std::to_string(i), tag);
    }
    cold.push_back(ms_since(t0));
    t0 = Clock::now();
    library_update(warm_cache, remote, "warm-" + std::to_string(i), tag);
    warm.push_back(ms_since(t0));
  }
  const double c = median(cli);
  const double k = median(cold);
  const double w = median(warm);
  std::printf("release repo: %s (median of %d rounds)\n", repo.filename().c_str(), rounds);
  std::printf("  git CLI script (clone, edit 100 files, commit, push): %8.1f ms\n", c);
  std::printf("  capstan, cold cache (clone):                          %8.1f ms  (%.2fx)\n", k,
              c / k);
  std::printf("  capstan, warm cache (fetch):                          %8.1f ms  (%.2fx)\n", w,
              c / w);
  return 0;
}
