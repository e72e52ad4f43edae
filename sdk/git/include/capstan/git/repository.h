// A Git repository on local disk (libgit2): clone, fetch, read, commit, merge, revert, push.
//
// Most operations work on commits and refs only, never on a work tree, so they run the same in
// a bare cache repository and in a checkout: commit_files() builds a commit from file edits,
// merge()/revert()/rebase() build commits in memory, push() sends them. checkout() and
// export_tree() exist for callers that need files on disk.
//
// A Repository object must be used by one thread at a time (libgit2's rule); separate objects on
// the same directory are safe only under the repository cache's lock (see cache.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "capstan/git/error.h"
#include "capstan/git/remote.h"

struct git_repository;

namespace capstan::git {

struct Signature {
  std::string name;
  std::string email;
  // Seconds since the epoch and the UTC offset in minutes; unset means "now, local offset 0".
  std::optional<std::int64_t> time;
  int offset_minutes = 0;
};

struct CommitInfo {
  std::string oid;
  std::vector<std::string> parents;
  Signature author;
  Signature committer;
  std::string message; // full message
  std::string summary; // first line
};

struct FileChange {
  enum class Status { kAdded, kModified, kDeleted, kRenamed, kTypeChanged };
  std::string path;
  std::string old_path; // differs from path for renames
  Status status = Status::kModified;
  int additions = 0;
  int deletions = 0;
  bool binary = false;
};

struct DiffSummary {
  std::vector<FileChange> files;
  int additions = 0;
  int deletions = 0;
};

struct TreeEntry {
  enum class Type { kFile, kDirectory, kSymlink, kSubmodule };
  std::string path; // relative to the repository root, '/'-separated
  std::string oid;
  Type type = Type::kFile;
  bool executable = false;
};

// One file change for commit_files(): content replaces the file (creating parents), nullopt
// deletes it (deleting a missing file is an error: kNotFound).
struct FileEdit {
  std::string path;
  std::optional<std::string> content;
  bool executable = false;
};

struct CommitRequest {
  std::string parent; // revision the commit builds on; empty: a root commit
  std::vector<FileEdit> edits;
  std::string message;
  Signature author;
  std::optional<Signature> committer; // defaults to the author
  bool allow_empty = false;           // else a commit that changes nothing is not made
  // Ref to point at the new commit ("refs/heads/x" or a branch name); empty: none. It is moved
  // only if it still points at `parent` (or does not exist), so a racing writer is detected.
  std::string update_ref;
};

enum class MergeMethod {
  kFastForward, // the target must be an ancestor of the source; no new commit
  kMerge,       // always a merge commit with two parents (GitHub's "merge", git merge --no-ff)
  kSquash,      // one commit on the target with the combined change
  kRebase,      // the source's commits replayed one by one on the target
};

const char* to_string(MergeMethod method);
// "merge", "squash", "rebase", "fast-forward"/"fastforward"/"ff" (case-insensitive).
MergeMethod parse_merge_method(const std::string& text);

struct MergeOptions {
  MergeMethod method = MergeMethod::kMerge;
  std::string message; // default: "Merge <source> into <target>" / the squashed summaries
  Signature author;    // committer of rebased commits too
  std::optional<Signature> committer;
};

struct MergeResult {
  std::string oid;         // the commit the target should point at afterwards
  bool up_to_date = false; // the source was already merged; oid is the target
  bool fast_forward = false;
};

struct RevertOptions {
  // For a merge commit: the parent (1-based) whose side is kept, as `git revert -m`.
  // Must be 0 for a normal commit.
  unsigned mainline = 0;
  std::string message; // default: git's "Revert \"<summary>\"\n\nThis reverts commit <oid>."
  Signature author;
  std::optional<Signature> committer;
};

struct LogOptions {
  std::string from = "HEAD";     // start revision
  std::vector<std::string> hide; // revisions whose history is excluded (from..to ranges)
  std::string path;              // only commits that change this file or directory
  std::size_t max_count = 0;     // 0: no limit
  bool first_parent = false;
};

struct CloneOptions {
  bool bare = false;
  std::string branch; // checked out (non-bare) and HEAD; default: the remote's HEAD
};

struct FetchResult {
  // Refs whose target changed (remote-tracking refs and tags), with the new oid ("" if pruned).
  std::vector<std::pair<std::string, std::string>> updated;
  bool changed() const { return !updated.empty(); }
};

struct PushSpec {
  std::string source;      // revision to push; empty deletes the remote ref
  std::string destination; // "main" or "refs/heads/main" or "refs/tags/v1"
  bool force = false;
};

struct RetryPolicy {
  int max_attempts = 6;
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{3000};
};

struct PushResult {
  std::string oid; // what the remote branch points at now
  int attempts = 0;
  bool pushed = false; // false: the remote already had it
};

// Builds the commit to push given the remote branch's current head (nullopt when the branch does
// not exist yet). Called again after every non-fast-forward rejection, with the new head.
using CommitBuilder = std::function<std::string(const std::optional<std::string>& remote_head)>;

class Repository {
public:
  static Repository open(const std::filesystem::path& path);
  static Repository init(const std::filesystem::path& path, bool bare = false,
                         const std::string& initial_branch = "main");
  // Clones into `path` (which must not exist or be empty); the remote is named "origin".
  static Repository clone(const RemoteOptions& remote, const std::filesystem::path& path,
                          const CloneOptions& options = {});

  Repository(Repository&& other) noexcept;
  Repository& operator=(Repository&& other) noexcept;
  Repository(const Repository&) = delete;
  Repository& operator=(const Repository&) = delete;
  ~Repository();

  std::filesystem::path path() const; // the .git directory (or the bare repository)
  bool bare() const;

  // ---- remotes (the remote is "origin"; remote.url, when set, replaces its URL)
  // Fetches all branches into refs/remotes/origin/*, and tags; prunes deleted branches.
  FetchResult fetch(const RemoteOptions& remote);
  // Fetches just these refspecs ("+refs/heads/main:refs/remotes/origin/main").
  FetchResult fetch(const RemoteOptions& remote, const std::vector<std::string>& refspecs);
  // Pushes; a rejected update throws kNonFastForward (stale remote) or kConflict (other refusals).
  void push(const RemoteOptions& remote, const std::vector<PushSpec>& specs);
  // Push with rebuild-and-retry: build(remote head) → push to refs/heads/<branch>; on
  // non-fast-forward, fetch the branch, back off (with jitter) and build again, up to
  // policy.max_attempts. Two writers racing on one branch both land.
  PushResult push_with_retry(const RemoteOptions& remote, const std::string& branch,
                             const CommitBuilder& build, const RetryPolicy& policy = {});
  // push_with_retry whose builder replays the commits base..tip onto the remote head
  // (`git pull --rebase && git push`). Conflicting replays throw kConflict.
  PushResult push_rebasing(const RemoteOptions& remote, const std::string& branch,
                           const std::string& base, const std::string& tip,
                           const Signature& committer, const RetryPolicy& policy = {});

  // ---- reading
  std::string resolve(const std::string& revision) const; // the commit's oid, or kNotFound
  std::optional<std::string> try_resolve(const std::string& revision) const;
  std::string read_file(const std::string& revision, const std::string& path) const;
  std::optional<std::string> try_read_file(const std::string& revision,
                                           const std::string& path) const;
  // Entries under `dir` ("" for the root); recursive lists files only, with full paths.
  std::vector<TreeEntry> list_tree(const std::string& revision, const std::string& dir = "",
                                   bool recursive = true) const;
  CommitInfo commit_info(const std::string& revision) const;
  std::vector<CommitInfo> log(const LogOptions& options) const;
  DiffSummary diff(const std::string& from, const std::string& to) const;
  bool is_ancestor(const std::string& ancestor, const std::string& descendant) const;

  // ---- refs and work tree
  std::vector<std::string> branches() const;        // local branch names
  std::vector<std::string> remote_branches() const; // "main", ... from refs/remotes/origin
  void create_branch(const std::string& name, const std::string& revision, bool force = false);
  void delete_branch(const std::string& name);
  // Points ref at oid; with expected set, only when it still points there ("" = must not exist).
  void set_ref(const std::string& ref, const std::string& oid,
               const std::optional<std::string>& expected = std::nullopt);
  std::optional<std::string> current_branch() const; // nullopt when detached
  // Non-bare repositories: a branch name checks out the local branch (created from
  // origin/<name> when only the remote has it) with HEAD attached; a tag or commit detaches.
  // Local changes are overwritten.
  void checkout(const std::string& revision);
  // Writes the files of `revision` under `directory` (created; existing files overwritten)
  // without touching HEAD or the index: a checkout for bare repositories.
  void export_tree(const std::string& revision, const std::filesystem::path& directory) const;

  // ---- writing commits (no work tree involved)
  // Returns the new commit, or nullopt when nothing changed and allow_empty is false.
  std::optional<std::string> commit_files(const CommitRequest& request);
  // Non-bare: stages every change of the work tree (git add -A) and commits on HEAD.
  std::optional<std::string> commit_worktree(const std::string& message, const Signature& author,
                                             const std::optional<Signature>& committer = {},
                                             bool allow_empty = false);
  // Merges source into target (both revisions) and returns the resulting commit; no ref moves.
  // Conflicts throw kConflict naming the paths.
  MergeResult merge(const std::string& target, const std::string& source,
                    const MergeOptions& options);
  // A commit on `onto` that undoes `commit`. Conflicts throw kConflict.
  std::string revert(const std::string& commit, const std::string& onto,
                     const RevertOptions& options);
  // Replays the commits base..tip (oldest first, merges flattened) onto `onto`; returns the new
  // tip. Authors and messages are kept; the committer is `committer`.
  std::string rebase(const std::string& base, const std::string& tip, const std::string& onto,
                     const Signature& committer);

  git_repository* raw() const { return repo_; }

private:
  explicit Repository(git_repository* repo) : repo_(repo) {}
  git_repository* repo_ = nullptr;
};

} // namespace capstan::git
