// The local provider: pull requests as branches on a real Git remote plus stored records.
#include <gtest/gtest.h>

#include "capstan/testing/errors.h"

#include "capstan/scm/local.h"
#include "capstan/testing/git_servers.h"

namespace fs = std::filesystem;
using capstan::testing::git;
using capstan::testing::make_remote;
using capstan::testing::TempDir;
using namespace capstan::scm;

namespace {

Error error_of(const std::function<void()>& f) {
  return capstan::testing::error_of<Error>(f, ErrorKind::kInternal, "none");
}

struct Local {
  TempDir dir{"capstan-scm-local"};
  fs::path bare = make_remote(dir.path(), "release.git",
                              {{{"cluster-config/prod/config.json", "{\"imageTag\": \"v1\"}\n"}}});
  capstan::git::RepoCache cache{dir / "cache"};
  MemoryPrStore store;
  LocalProviderConfig cfg() {
    LocalProviderConfig c;
    c.remote.url = "file://" + bare.string();
    c.merger = {"Capstan", "capstan@example.com", std::nullopt, 0};
    return c;
  }
  // Pushes a branch changing prod's config.json from main.
  void branch(const std::string& name, const std::string& tag) {
    const fs::path work = dir / ("w-" + name);
    git({"clone", "-q", bare.string(), work.string()});
    git({"checkout", "-q", "-b", name}, work);
    capstan::testing::write_file(work / "cluster-config/prod/config.json",
                                 "{\"imageTag\": \"" + tag + "\"}\n");
    git({"commit", "-q", "-am", "prod " + tag}, work);
    git({"push", "-q", "origin", name}, work);
  }
};

} // namespace

TEST(LocalProvider, CreateMergeWithMergeCommitAndDeleteBranch) {
  Local l;
  LocalProvider p(l.cfg(), l.cache, l.store);
  EXPECT_EQ(error_of([&] {
              p.create({"Update", "", "update-prod", "main", false});
            }).kind(),
            ErrorKind::kNotFound); // not pushed yet
  l.branch("update-prod", "v2");
  PullRequest pr = p.create({"Update prod to v2", "", "update-prod", "main", false});
  EXPECT_EQ(pr.number, 1);
  EXPECT_EQ(pr.state, PrState::kOpen);
  EXPECT_EQ(pr.head_sha, git({"rev-parse", "update-prod"}, l.bare));
  EXPECT_EQ(error_of([&] {
              p.create({"again", "", "update-prod", "main", false});
            }).kind(),
            ErrorKind::kValidation);

  // main moves after the PR was opened: the merge is rebuilt on the new head.
  const fs::path work = l.dir / "other";
  git({"clone", "-q", l.bare.string(), work.string()});
  capstan::testing::write_file(work / "README.md", "hi\n");
  git({"add", "-A"}, work);
  git({"commit", "-q", "-m", "readme"}, work);
  git({"push", "-q", "origin", "main"}, work);

  MergeOptions mo;
  mo.delete_source_branch = true;
  PullRequest merged = p.merge(1, mo);
  EXPECT_EQ(merged.state, PrState::kMerged);
  EXPECT_EQ(merged.merge_commit, git({"rev-parse", "main"}, l.bare));
  EXPECT_EQ(git({"log", "-1", "--format=%P|%s|%an", "main"}, l.bare),
            git({"rev-parse", "main~1"}, l.bare) + " " + pr.head_sha +
                "|Merge pull request #1 from update-prod|Capstan");
  EXPECT_EQ(git({"show", "main:cluster-config/prod/config.json"}, l.bare),
            "{\"imageTag\": \"v2\"}");
  EXPECT_EQ(git({"show", "main:README.md"}, l.bare), "hi");
  EXPECT_EQ(git({"branch", "--list", "update-prod"}, l.bare), "");
  EXPECT_EQ(p.get(1).state, PrState::kMerged);
  EXPECT_EQ(error_of([&] { p.merge(1, {}); }).kind(), ErrorKind::kNotMergeable);
}

TEST(LocalProvider, SquashConflictsCloseCommentAndList) {
  Local l;
  LocalProvider p(l.cfg(), l.cache, l.store);
  l.branch("a", "va");
  l.branch("b", "vb");
  PullRequest a = p.create({"A", "", "a", "main", false});
  PullRequest b = p.create({"B", "", "b", "main", false});
  MergeOptions squash;
  squash.method = capstan::git::MergeMethod::kSquash;
  PullRequest ma = p.merge(a.number, squash);
  EXPECT_EQ(git({"log", "-1", "--format=%P|%s", "main"}, l.bare),
            git({"rev-parse", "main~1"}, l.bare) + "|A (#1)");
  EXPECT_EQ(ma.merge_commit, git({"rev-parse", "main"}, l.bare));
  // b edits the same line: not mergeable, nothing pushed.
  const std::string before = git({"rev-parse", "main"}, l.bare);
  Error e = error_of([&] { p.merge(b.number, {}); });
  EXPECT_EQ(e.kind(), ErrorKind::kNotMergeable);
  EXPECT_NE(std::string(e.what()).find("cluster-config/prod/config.json"), std::string::npos)
      << e.what();
  EXPECT_EQ(git({"rev-parse", "main"}, l.bare), before);
  EXPECT_EQ(p.get(b.number).state, PrState::kOpen);

  MergeOptions stale;
  stale.expected_head = std::string(40, '0');
  EXPECT_EQ(error_of([&] { p.merge(b.number, stale); }).kind(), ErrorKind::kConflict);

  p.comment(b.number, "conflicts with #1");
  EXPECT_EQ(l.store.get(l.cfg().remote.url, b.number)->comments,
            std::vector<std::string>{"conflicts with #1"});
  EXPECT_EQ(p.close(b.number).state, PrState::kClosed);
  EXPECT_EQ(p.list_by_branch("b").size(), 1U);
  EXPECT_EQ(p.list_by_branch("b", PrState::kOpen).size(), 0U);
  EXPECT_EQ(p.list_by_branch("a", PrState::kMerged).size(), 1U);
  EXPECT_EQ(error_of([&] { p.get(42); }).kind(), ErrorKind::kNotFound);
}

TEST(LocalProvider, FileStoreKeepsRecordsAcrossInstances) {
  TempDir dir;
  {
    FilePrStore store(dir / "prs.json");
    PrRecord r;
    r.pr.title = "one";
    r.pr.source = "s";
    r.pr.target = "main";
    EXPECT_EQ(store.create("repo", r).pr.number, 1);
    EXPECT_EQ(store.create("repo", r).pr.number, 2);
    EXPECT_EQ(store.create("other", r).pr.number, 1);
  }
  FilePrStore again(dir / "prs.json");
  auto rec = again.get("repo", 2);
  ASSERT_TRUE(rec);
  rec->pr.state = PrState::kMerged;
  rec->pr.merge_commit = "abc";
  EXPECT_TRUE(again.update("repo", *rec));
  EXPECT_EQ(again.get("repo", 2)->pr.merge_commit, "abc");
  EXPECT_EQ(again.list("repo").size(), 2U);
  PrRecord missing;
  missing.pr.number = 9;
  EXPECT_FALSE(again.update("repo", missing));
}
