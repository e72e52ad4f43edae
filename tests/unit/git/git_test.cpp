// capstan::git against real repositories built and checked with the git CLI (file:// remotes).
#include <gtest/gtest.h>

#include "capstan/testing/errors.h"

#include "capstan/git/cache.h"
#include "capstan/git/repository.h"
#include "capstan/testing/git_servers.h"

namespace fs = std::filesystem;
using capstan::testing::FileSet;
using capstan::testing::git;
using capstan::testing::make_remote;
using capstan::testing::TempDir;
using namespace capstan::git;

namespace {

ErrorKind kind_of(const std::function<void()>& f) {
  return capstan::testing::error_of<Error>(f, ErrorKind::kInternal, "none").kind();
}

Signature bot() {
  return Signature{"Release Bot", "bot@example.com", std::nullopt, 0};
}

RemoteOptions file_remote(const fs::path& bare) {
  RemoteOptions r;
  r.url = "file://" + bare.string();
  return r;
}

// A bare remote with cluster-config/{dev,prod}/config.json, then a clone of it.
struct Fixture {
  TempDir dir{"capstan-git"};
  fs::path bare = make_remote(dir.path(), "release.git",
                              {{{"cluster-config/dev/config.json", "{\"imageTag\": \"v1\"}\n"},
                                {"cluster-config/prod/config.json", "{\"imageTag\": \"v1\"}\n"}},
                               {{"README.md", "release repo\n"}}});
  RemoteOptions remote = file_remote(bare);
};

} // namespace

TEST(GitRepository, ClonesAndReadsFilesAtRevisions) {
  Fixture f;
  Repository repo = Repository::clone(f.remote, f.dir / "clone");
  EXPECT_FALSE(repo.bare());
  EXPECT_EQ(repo.current_branch().value_or(""), "main");
  EXPECT_EQ(repo.resolve("main"), git({"rev-parse", "main"}, f.bare));
  EXPECT_EQ(repo.read_file("main", "cluster-config/dev/config.json"), "{\"imageTag\": \"v1\"}\n");
  EXPECT_EQ(repo.read_file("HEAD~1", "cluster-config/prod/config.json"),
            "{\"imageTag\": \"v1\"}\n");
  EXPECT_FALSE(repo.try_read_file("HEAD~1", "README.md").has_value());
  EXPECT_EQ(kind_of([&] { repo.read_file("main", "cluster-config/qa/config.json"); }),
            ErrorKind::kNotFound);
  EXPECT_EQ(kind_of([&] { repo.read_file("no-such-branch", "README.md"); }), ErrorKind::kNotFound);
  EXPECT_EQ(kind_of([&] { repo.read_file("main", "cluster-config"); }), ErrorKind::kInvalidInput);
  EXPECT_EQ(kind_of([&] { repo.read_file("main", "../etc/passwd"); }), ErrorKind::kInvalidInput);

  auto files = repo.list_tree("main", "cluster-config");
  ASSERT_EQ(files.size(), 2U);
  EXPECT_EQ(files[0].path, "cluster-config/dev/config.json");
  EXPECT_EQ(files[1].path, "cluster-config/prod/config.json");
  auto top = repo.list_tree("main", "", false);
  ASSERT_EQ(top.size(), 2U);
  EXPECT_EQ(top[1].type, TreeEntry::Type::kDirectory);
}

TEST(GitRepository, MissingRepositoryIsNotFound) {
  TempDir dir;
  EXPECT_EQ(kind_of([&] { Repository::clone(file_remote(dir / "nope.git"), dir / "c"); }),
            ErrorKind::kNotFound);
  Fixture f;
  CloneOptions co;
  co.branch = "no-such-branch";
  EXPECT_EQ(kind_of([&] { Repository::clone(f.remote, f.dir / "c", co); }), ErrorKind::kNotFound);
}

TEST(GitRepository, CommitFilesWithoutWorkTreeAndPush) {
  Fixture f;
  Repository repo = Repository::clone(f.remote, f.dir / "cache", CloneOptions{true, ""});
  const std::string base = repo.resolve("main");
  CommitRequest req;
  req.parent = base;
  req.edits = {{"cluster-config/prod/config.json", std::string("{\"imageTag\": \"v2\"}\n"), false},
               {"cluster-config/qa/config.json", std::string("{}\n"), false},
               {"README.md", std::nullopt, false}};
  req.message = "Update prod to v2";
  req.author = {"Alice", "alice@example.com", 1700000000, 60};
  req.committer = bot();
  req.update_ref = "update-prod";
  auto oid = repo.commit_files(req);
  ASSERT_TRUE(oid.has_value());
  EXPECT_EQ(repo.resolve("refs/heads/update-prod"), *oid);

  repo.push(f.remote, {{"update-prod", "update-prod", false}});
  EXPECT_EQ(git({"rev-parse", "update-prod"}, f.bare), *oid);
  EXPECT_EQ(git({"log", "-1", "--format=%an <%ae> %at %ai|%cn <%ce>|%s", "update-prod"}, f.bare),
            "Alice <alice@example.com> 1700000000 2023-11-14 23:13:20 +0100|Release Bot "
            "<bot@example.com>|Update prod to v2");
  EXPECT_EQ(git({"show", "update-prod:cluster-config/prod/config.json"}, f.bare),
            "{\"imageTag\": \"v2\"}");
  EXPECT_EQ(git({"ls-tree", "-r", "--name-only", "update-prod"}, f.bare),
            "cluster-config/dev/config.json\ncluster-config/prod/config.json\n"
            "cluster-config/qa/config.json");

  // Nothing changes: no commit unless allowed.
  CommitRequest same;
  same.parent = *oid;
  same.edits = {
      {"cluster-config/prod/config.json", std::string("{\"imageTag\": \"v2\"}\n"), false}};
  same.message = "noop";
  same.author = bot();
  EXPECT_FALSE(repo.commit_files(same).has_value());
  same.allow_empty = true;
  auto empty = repo.commit_files(same);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(repo.commit_info(*empty).parents, std::vector<std::string>{*oid});
  EXPECT_TRUE(repo.diff(*oid, *empty).files.empty());

  // The ref moved since the parent was read: compare-and-swap refuses.
  CommitRequest stale = req;
  stale.parent = base;
  stale.edits = {{"x.txt", std::string("x\n"), false}};
  EXPECT_EQ(kind_of([&] { repo.commit_files(stale); }), ErrorKind::kConflict);

  CommitRequest del;
  del.parent = *oid;
  del.edits = {{"missing.txt", std::nullopt, false}};
  del.author = bot();
  EXPECT_EQ(kind_of([&] { repo.commit_files(del); }), ErrorKind::kNotFound);
}

TEST(GitRepository, PushOfStaleBranchIsNonFastForward) {
  Fixture f;
  Repository a = Repository::clone(f.remote, f.dir / "a", CloneOptions{true, ""});
  const std::string base = a.resolve("main");
  // Someone else lands a commit first.
  const fs::path other = f.dir / "other";
  git({"clone", "-q", f.bare.string(), other.string()});
  capstan::testing::write_file(other / "other.txt", "theirs\n");
  git({"add", "-A"}, other);
  git({"commit", "-q", "-m", "theirs"}, other);
  git({"push", "-q", "origin", "main"}, other);

  CommitRequest req;
  req.parent = base;
  req.edits = {{"mine.txt", std::string("mine\n"), false}};
  req.message = "mine";
  req.author = bot();
  auto mine = a.commit_files(req);
  ASSERT_TRUE(mine);
  EXPECT_EQ(kind_of([&] {
              a.push(f.remote, {{*mine, "main", false}});
            }),
            ErrorKind::kNonFastForward);
  EXPECT_NE(git({"rev-parse", "main"}, f.bare), *mine);

  // With rebase-and-retry it lands on top of theirs.
  auto landed = a.push_rebasing(f.remote, "main", base, *mine, bot());
  EXPECT_TRUE(landed.pushed);
  EXPECT_EQ(landed.attempts, 2);
  EXPECT_EQ(git({"rev-parse", "main"}, f.bare), landed.oid);
  EXPECT_EQ(git({"log", "--format=%s", "-3", "main"}, f.bare), "mine\ntheirs\nseed 2");
  EXPECT_EQ(git({"show", "main:other.txt"}, f.bare), "theirs");
}

TEST(GitRepository, MergeMethods) {
  Fixture f;
  Repository repo = Repository::clone(f.remote, f.dir / "r", CloneOptions{true, ""});
  const std::string base = repo.resolve("main");
  auto commit = [&](const std::string& parent, const std::string& path, const std::string& text,
                    const std::string& msg) {
    CommitRequest r;
    r.parent = parent;
    r.edits = {{path, text, false}};
    r.message = msg;
    r.author = bot();
    return *repo.commit_files(r);
  };
  const std::string f1 = commit(base, "feature.txt", "one\n", "feature one");
  const std::string f2 = commit(f1, "feature.txt", "one\ntwo\n", "feature two");

  MergeOptions ff{MergeMethod::kFastForward, "", bot(), std::nullopt};
  auto r = repo.merge(base, f2, ff);
  EXPECT_TRUE(r.fast_forward);
  EXPECT_EQ(r.oid, f2);
  EXPECT_TRUE(repo.merge(f2, base, ff).up_to_date);

  const std::string m1 = commit(base, "main.txt", "main\n", "main moved");
  EXPECT_EQ(kind_of([&] { repo.merge(m1, f2, ff); }), ErrorKind::kNonFastForward);

  auto merged = repo.merge(m1, f2, {MergeMethod::kMerge, "Merge feature", bot(), std::nullopt});
  auto info = repo.commit_info(merged.oid);
  EXPECT_EQ(info.parents, (std::vector<std::string>{m1, f2}));
  EXPECT_EQ(info.summary, "Merge feature");
  EXPECT_EQ(repo.read_file(merged.oid, "feature.txt"), "one\ntwo\n");
  EXPECT_EQ(repo.read_file(merged.oid, "main.txt"), "main\n");

  auto squashed = repo.merge(m1, f2, {MergeMethod::kSquash, "", bot(), std::nullopt});
  auto sinfo = repo.commit_info(squashed.oid);
  EXPECT_EQ(sinfo.parents, std::vector<std::string>{m1});
  EXPECT_NE(sinfo.message.find("* feature two"), std::string::npos);
  EXPECT_EQ(repo.read_file(squashed.oid, "feature.txt"), "one\ntwo\n");

  auto rebased = repo.merge(m1, f2, {MergeMethod::kRebase, "", bot(), std::nullopt});
  LogOptions lo;
  lo.from = rebased.oid;
  lo.hide = {m1};
  auto replayed = repo.log(lo);
  ASSERT_EQ(replayed.size(), 2U);
  EXPECT_EQ(replayed[0].summary, "feature two");
  EXPECT_EQ(replayed[1].summary, "feature one");
  EXPECT_EQ(replayed[1].parents, std::vector<std::string>{m1});

  // Both sides change the same line: a conflict naming the file, for every method but ff.
  const std::string c1 =
      commit(base, "cluster-config/dev/config.json", "{\"imageTag\": \"a\"}\n", "a");
  const std::string c2 =
      commit(base, "cluster-config/dev/config.json", "{\"imageTag\": \"b\"}\n", "b");
  for (auto method : {MergeMethod::kMerge, MergeMethod::kSquash, MergeMethod::kRebase}) {
    try {
      repo.merge(c1, c2, {method, "", bot(), std::nullopt});
      ADD_FAILURE() << "no conflict for " << to_string(method);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kConflict);
      EXPECT_NE(std::string(e.what()).find("cluster-config/dev/config.json"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(parse_merge_method("Squash"), MergeMethod::kSquash);
  EXPECT_EQ(kind_of([] { parse_merge_method("octopus"); }), ErrorKind::kInvalidInput);
}

TEST(GitRepository, RevertNormalAndMergeCommits) {
  Fixture f;
  Repository repo = Repository::clone(f.remote, f.dir / "r", CloneOptions{true, ""});
  const std::string base = repo.resolve("main");
  CommitRequest r;
  r.parent = base;
  r.edits = {{"cluster-config/prod/config.json", std::string("{\"imageTag\": \"v2\"}\n"), false}};
  r.message = "prod v2";
  r.author = bot();
  const std::string v2 = *repo.commit_files(r);

  const std::string reverted = repo.revert(v2, v2, {0, "", bot(), std::nullopt});
  EXPECT_EQ(repo.read_file(reverted, "cluster-config/prod/config.json"),
            "{\"imageTag\": \"v1\"}\n");
  auto info = repo.commit_info(reverted);
  EXPECT_EQ(info.summary, "Revert \"prod v2\"");
  EXPECT_NE(info.message.find("This reverts commit " + v2 + "."), std::string::npos);
  EXPECT_EQ(kind_of([&] {
              repo.revert(v2, reverted, {0, "", bot(), std::nullopt});
            }),
            ErrorKind::kConflict); // nothing left to revert
  EXPECT_EQ(kind_of([&] {
              repo.revert(v2, v2, {1, "", bot(), std::nullopt});
            }),
            ErrorKind::kInvalidInput);

  // A merge commit (a merged pull request): mainline 1 keeps the target's side.
  CommitRequest side;
  side.parent = base;
  side.edits = {{"other.txt", std::string("other\n"), false}};
  side.message = "other";
  side.author = bot();
  const std::string other = *repo.commit_files(side);
  auto merge = repo.merge(other, v2, {MergeMethod::kMerge, "Merge PR #1", bot(), std::nullopt});
  EXPECT_EQ(kind_of([&] {
              repo.revert(merge.oid, merge.oid, {0, "", bot(), std::nullopt});
            }),
            ErrorKind::kInvalidInput);
  const std::string undo = repo.revert(merge.oid, merge.oid, {1, "", bot(), std::nullopt});
  EXPECT_EQ(repo.read_file(undo, "cluster-config/prod/config.json"), "{\"imageTag\": \"v1\"}\n");
  EXPECT_EQ(repo.read_file(undo, "other.txt"), "other\n");
  EXPECT_NE(repo.commit_info(undo).message.find("reversing\nchanges made to " + other),
            std::string::npos);
}

TEST(GitRepository, DiffSummaryMatchesGitNumstat) {
  Fixture f;
  const fs::path work = f.dir / "w";
  git({"clone", "-q", f.bare.string(), work.string()});
  capstan::testing::write_file(work / "a.txt", "1\n2\n3\n");
  git({"add", "-A"}, work);
  git({"commit", "-q", "-m", "a"}, work);
  const std::string from = git({"rev-parse", "HEAD"}, work);
  capstan::testing::write_file(work / "a.txt", "1\nTWO\n3\n4\n");
  capstan::testing::write_file(work / "b.bin", std::string("\0\1\2", 3));
  fs::remove(work / "README.md");
  git({"add", "-A"}, work);
  git({"commit", "-q", "-m", "b"}, work);
  const std::string to = git({"rev-parse", "HEAD"}, work);

  Repository repo = Repository::open(work);
  auto d = repo.diff(from, to);
  EXPECT_EQ(git({"diff", "--numstat", from, to}, work),
            "0\t1\tREADME.md\n2\t1\ta.txt\n-\t-\tb.bin");
  ASSERT_EQ(d.files.size(), 3U);
  int checked = 0;
  for (const auto& fc : d.files) {
    if (fc.path == "a.txt") {
      EXPECT_EQ(fc.status, FileChange::Status::kModified);
      EXPECT_EQ(fc.additions, 2);
      EXPECT_EQ(fc.deletions, 1);
      ++checked;
    } else if (fc.path == "b.bin") {
      EXPECT_EQ(fc.status, FileChange::Status::kAdded);
      EXPECT_TRUE(fc.binary);
      ++checked;
    } else if (fc.path == "README.md") {
      EXPECT_EQ(fc.status, FileChange::Status::kDeleted);
      EXPECT_EQ(fc.deletions, 1);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3);
  EXPECT_EQ(d.additions, 2);
  EXPECT_EQ(d.deletions, 2);
}

TEST(GitRepository, LogFiltersByPathAndCount) {
  Fixture f;
  Repository repo = Repository::clone(f.remote, f.dir / "r", CloneOptions{true, ""});
  std::string tip = repo.resolve("main");
  for (int i = 0; i < 5; ++i) {
    CommitRequest r;
    r.parent = tip;
    const std::string env = i % 2 == 0 ? "dev" : "prod";
    r.edits = {
        {"cluster-config/" + env + "/config.json", "{\"n\": " + std::to_string(i) + "}\n", false}};
    r.message = "step " + std::to_string(i);
    r.author = bot();
    tip = *repo.commit_files(r);
  }
  LogOptions all;
  all.from = tip;
  EXPECT_EQ(repo.log(all).size(), 7U);
  LogOptions prod;
  prod.from = tip;
  prod.path = "cluster-config/prod";
  auto p = repo.log(prod);
  ASSERT_EQ(p.size(), 3U); // steps 3, 1 and the seed
  EXPECT_EQ(p[0].summary, "step 3");
  EXPECT_EQ(p[1].summary, "step 1");
  EXPECT_EQ(p[2].summary, "seed 1");
  prod.max_count = 1;
  EXPECT_EQ(repo.log(prod).size(), 1U);
}

TEST(GitRepository, CheckoutBranchTagAndCommitAndExport) {
  Fixture f;
  git({"tag", "v1", "main~1"}, f.bare);
  git({"branch", "release", "main~1"}, f.bare);
  Repository repo = Repository::clone(f.remote, f.dir / "wt");
  const fs::path wt = f.dir / "wt";
  EXPECT_TRUE(fs::exists(wt / "README.md"));
  repo.checkout("release");
  EXPECT_EQ(repo.current_branch().value_or(""), "release");
  EXPECT_FALSE(fs::exists(wt / "README.md"));
  repo.checkout("main");
  EXPECT_TRUE(fs::exists(wt / "README.md"));
  repo.checkout("v1");
  EXPECT_FALSE(repo.current_branch().has_value());
  EXPECT_FALSE(fs::exists(wt / "README.md"));
  repo.checkout(git({"rev-parse", "main"}, f.bare));
  EXPECT_TRUE(fs::exists(wt / "README.md"));
  EXPECT_EQ(kind_of([&] { repo.checkout("nope"); }), ErrorKind::kNotFound);

  // Work-tree commit, like `git add -A && git commit`.
  repo.checkout("main");
  capstan::testing::write_file(wt / "new.txt", "new\n");
  fs::remove(wt / "README.md");
  auto oid = repo.commit_worktree("work tree change", bot());
  ASSERT_TRUE(oid);
  EXPECT_EQ(repo.resolve("main"), *oid);
  EXPECT_FALSE(repo.commit_worktree("nothing", bot()).has_value());
  auto d = repo.diff("origin/main", "main");
  EXPECT_EQ(d.files.size(), 2U);

  Repository bare = Repository::clone(f.remote, f.dir / "bare", CloneOptions{true, ""});
  bare.export_tree("v1", f.dir / "export");
  EXPECT_EQ(capstan::testing::read_file(f.dir / "export" / "cluster-config/dev/config.json"),
            "{\"imageTag\": \"v1\"}\n");
  EXPECT_FALSE(fs::exists(f.dir / "export" / "README.md"));
}

TEST(GitCache, ClonesOnceThenFetches) {
  Fixture f;
  RepoCache cache(f.dir / "cache");
  {
    RepoLease lease = cache.acquire(f.remote);
    EXPECT_TRUE(lease.cloned());
    EXPECT_TRUE(lease->bare());
    EXPECT_EQ(lease->resolve("main"), git({"rev-parse", "main"}, f.bare));
    EXPECT_TRUE(lease->branches().empty()); // the cache keeps only remote-tracking refs
    // Scratch branches die with the lease.
    lease->create_branch("scratch", "main");
  }
  {
    RepoLease lease = cache.acquire(f.remote);
    EXPECT_FALSE(lease.cloned());
    EXPECT_FALSE(lease.fetched().changed());
    EXPECT_TRUE(lease->branches().empty());
  }
  const fs::path work = f.dir / "w";
  git({"clone", "-q", f.bare.string(), work.string()});
  capstan::testing::write_file(work / "n.txt", "n\n");
  git({"add", "-A"}, work);
  git({"commit", "-q", "-m", "n"}, work);
  git({"push", "-q", "origin", "main"}, work);
  {
    RepoLease lease = cache.acquire(f.remote);
    EXPECT_FALSE(lease.cloned());
    EXPECT_TRUE(lease.fetched().changed());
    EXPECT_EQ(lease->read_file("main", "n.txt"), "n\n");
  }
  // A cache entry that is not a repository any more is rebuilt.
  fs::remove_all(cache.directory_for(f.remote.url) / "objects");
  fs::remove_all(cache.directory_for(f.remote.url) / "HEAD");
  RepoLease lease = cache.acquire(f.remote);
  EXPECT_TRUE(lease.cloned());
  EXPECT_EQ(lease->read_file("main", "n.txt"), "n\n");
}

TEST(GitCache, LockIsExclusiveAcrossCacheInstances) {
  Fixture f;
  RepoCache first(f.dir / "cache");
  RepoCache second(f.dir / "cache"); // another delegate process sharing the directory
  RepoLease held = first.acquire(f.remote);
  AcquireOptions quick;
  quick.lock_timeout = std::chrono::milliseconds(300);
  EXPECT_EQ(kind_of([&] { second.acquire(f.remote, quick); }), ErrorKind::kTimeout);
  EXPECT_EQ(kind_of([&] { first.acquire(f.remote, quick); }), ErrorKind::kTimeout);
  // Another URL is not blocked.
  TempDir other;
  auto bare2 = make_remote(other.path(), "x.git", {{{"a", "a\n"}}});
  EXPECT_NO_THROW(second.acquire(file_remote(bare2), quick));
}

TEST(GitCache, ConcurrentStepsOnOneDelegateAllLand) {
  Fixture f;
  RepoCache cache(f.dir / "cache");
  constexpr int kSteps = 6;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kSteps);
  for (int i = 0; i < kSteps; ++i) {
    threads.emplace_back([&, i] {
      try {
        RepoLease lease = cache.acquire(f.remote);
        const std::string base = lease->resolve("main");
        CommitRequest r;
        r.parent = base;
        r.edits = {{"steps/" + std::to_string(i) + ".txt", std::string("done\n"), false}};
        r.message = "step " + std::to_string(i);
        r.author = bot();
        auto tip = lease->commit_files(r);
        lease->push_rebasing(f.remote, "main", base, *tip, bot());
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(git({"ls-tree", "--name-only", "main", "steps/"}, f.bare),
            "steps/0.txt\nsteps/1.txt\nsteps/2.txt\nsteps/3.txt\nsteps/4.txt\nsteps/5.txt");
  EXPECT_EQ(git({"fsck", "--strict"}, f.bare), "");
}

TEST(GitRepository, CancelledTransferStops) {
  Fixture f;
  RemoteOptions r = f.remote;
  r.cancelled = [] { return true; };
  Repository repo = Repository::init(f.dir / "empty", true);
  EXPECT_EQ(kind_of([&] { repo.fetch(r); }), ErrorKind::kCancelled);
}
