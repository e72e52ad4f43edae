// Config changes and reverts proposed as pull requests, end to end against a git daemon remote.
#include <gtest/gtest.h>

#include <thread>

#include "capstan/scm/changes.h"
#include "capstan/scm/local.h"
#include "capstan/testing/git_servers.h"

namespace fs = std::filesystem;
using capstan::testing::git;
using capstan::testing::make_remote;
using capstan::testing::TempDir;
using namespace capstan::scm;

namespace {

const std::string kConfig = "{\n  \"imageTag\": \"v1.9.0\",\n  \"replicas\": 2\n}\n";

struct Release {
  TempDir dir{"capstan-scm-changes"};
  fs::path root = dir / "srv";
  fs::path bare = make_remote(root, "release.git",
                              {{{"cluster-config/dev/config.json", kConfig},
                                {"cluster-config/staging/config.json", kConfig},
                                {"cluster-config/prod/config.json", kConfig},
                                {"cluster-config/prod/values.yaml",
                                 "# prod overrides\nimage:\n  tag: v1.9.0 # pinned\n"}}});
  capstan::testing::GitDaemon daemon{root};
  MemoryPrStore store;
  capstan::git::RemoteOptions remote() const {
    capstan::git::RemoteOptions r;
    r.url = daemon.url("release.git");
    return r;
  }
  LocalProviderConfig provider_config() const {
    LocalProviderConfig c;
    c.remote = remote();
    c.merger = {"Capstan", "capstan@example.com", std::nullopt, 0};
    return c;
  }
};

ConfigChange set_tag(const std::string& branch, const std::string& tag,
                     const std::vector<std::string>& envs) {
  ConfigChange c;
  c.branch = branch;
  c.title = "Update imageTag to " + tag;
  c.author = {"Pipeline", "pipeline@example.com", std::nullopt, 0};
  for (const auto& env : envs) {
    c.files.push_back(
        {"cluster-config/" + env + "/config.json", {{"imageTag", tag}, {"replicas", "3"}}});
  }
  return c;
}

} // namespace

TEST(ProposeChange, UpdatesThreeEnvironmentsMergesAndReverts) {
  Release r;
  capstan::git::RepoCache cache(r.dir / "cache");
  LocalProvider provider(r.provider_config(), cache, r.store);
  ConfigChange change = set_tag("update-v2", "v2.0.0", {"dev", "staging", "prod"});
  change.files.push_back({"cluster-config/prod/values.yaml", {{"image.tag", "v2.0.0"}}});
  Proposal p = propose_config_change(provider, cache, r.remote(), change);
  EXPECT_EQ(p.pr.number, 1);
  EXPECT_EQ(p.changed_files.size(), 4U);
  EXPECT_EQ(git({"rev-parse", "update-v2"}, r.bare), p.commit);
  EXPECT_EQ(git({"show", "update-v2:cluster-config/prod/config.json"}, r.bare),
            "{\n  \"imageTag\": \"v2.0.0\",\n  \"replicas\": 3\n}");
  EXPECT_EQ(git({"show", "update-v2:cluster-config/prod/values.yaml"}, r.bare),
            "# prod overrides\nimage:\n  tag: v2.0.0 # pinned");
  EXPECT_EQ(git({"show", "main:cluster-config/prod/config.json"}, r.bare),
            kConfig.substr(0, kConfig.size() - 1));

  PullRequest merged = provider.merge(p.pr.number, {});
  EXPECT_EQ(git({"show", "main:cluster-config/dev/config.json"}, r.bare),
            "{\n  \"imageTag\": \"v2.0.0\",\n  \"replicas\": 3\n}");

  RevertChange revert;
  revert.commit = merged.merge_commit;
  revert.mainline = 1;
  revert.branch = "revert-v2";
  revert.author = change.author;
  Proposal rp = propose_revert(provider, cache, r.remote(), revert);
  EXPECT_EQ(rp.pr.title, "Revert \"Merge pull request #1 from update-v2\"");
  EXPECT_EQ(rp.changed_files.size(), 4U);
  provider.merge(rp.pr.number, {});
  EXPECT_EQ(git({"show", "main:cluster-config/prod/config.json"}, r.bare),
            kConfig.substr(0, kConfig.size() - 1));

  // Nothing to change: refused unless empty commits are allowed.
  ConfigChange same = set_tag("noop", "v1.9.0", {"dev"});
  same.files[0].edits.pop_back();
  try {
    propose_config_change(provider, cache, r.remote(), same);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kValidation);
  }
  same.allow_empty = true;
  EXPECT_EQ(propose_config_change(provider, cache, r.remote(), same).changed_files.size(), 0U);
}

TEST(ProposeChange, MalformedOrMissingFilesPushNothing) {
  Release r;
  const fs::path work = r.dir / "w";
  git({"clone", "-q", r.bare.string(), work.string()});
  capstan::testing::write_file(work / "cluster-config/staging/config.json",
                               "{\n  \"imageTag\": \"v1\",\n}\n");
  git({"commit", "-q", "-am", "break staging"}, work);
  git({"push", "-q", "origin", "main"}, work);
  capstan::git::RepoCache cache(r.dir / "cache");
  LocalProvider provider(r.provider_config(), cache, r.store);
  try {
    propose_config_change(provider, cache, r.remote(),
                          set_tag("b1", "v2", {"dev", "staging", "prod"}));
    ADD_FAILURE() << "no error";
  } catch (const capstan::configedit::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cluster-config/staging/config.json:3:1: expected a quoted key");
  }
  try {
    propose_config_change(provider, cache, r.remote(), set_tag("b2", "v2", {"dev", "qa"}));
    ADD_FAILURE() << "no error";
  } catch (const capstan::git::Error& e) {
    EXPECT_EQ(e.kind(), capstan::git::ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("cluster-config/qa/config.json"), std::string::npos);
  }
  EXPECT_EQ(git({"branch", "--list"}, r.bare), "* main");
  EXPECT_TRUE(r.store.list(capstan::git::redact_url(r.remote().url)).empty());
}

TEST(ProposeChange, ConcurrentUpdatesFromTwoDelegatesBothLand) {
  Release r;
  // Two delegates: their own caches, one shared record store (the coordinator's role).
  capstan::git::RepoCache cache_a(r.dir / "cache-a");
  capstan::git::RepoCache cache_b(r.dir / "cache-b");
  LocalProvider a(r.provider_config(), cache_a, r.store);
  LocalProvider b(r.provider_config(), cache_b, r.store);
  std::string err_a;
  std::string err_b;
  auto run = [&](Provider& p, capstan::git::RepoCache& cache, const std::string& env,
                 std::string& err) {
    try {
      Proposal prop =
          propose_config_change(p, cache, r.remote(), set_tag("update-" + env, "v3", {env}));
      p.merge(prop.pr.number, {});
    } catch (const std::exception& e) {
      err = e.what();
    }
  };
  std::thread ta([&] { run(a, cache_a, "dev", err_a); });
  std::thread tb([&] { run(b, cache_b, "prod", err_b); });
  ta.join();
  tb.join();
  EXPECT_EQ(err_a, "");
  EXPECT_EQ(err_b, "");
  for (const std::string env : {"dev", "prod"}) {
    EXPECT_EQ(git({"show", "main:cluster-config/" + env + "/config.json"}, r.bare),
              "{\n  \"imageTag\": \"v3\",\n  \"replicas\": 3\n}");
  }
  EXPECT_EQ(git({"show", "main:cluster-config/staging/config.json"}, r.bare),
            kConfig.substr(0, kConfig.size() - 1));
}
