// Changes proposed as pull requests: the Git half of Update Release Repo (edit config files,
// commit on a new branch, open a pull request) and Revert PR (revert a commit on a new branch,
// open a pull request), for any provider.
#pragma once

#include "capstan/configedit/configedit.h"
#include "capstan/git/cache.h"
#include "capstan/scm/provider.h"

namespace capstan::scm {

struct FileUpdate {
  std::string path; // in the repository; JSON or YAML by extension
  std::vector<configedit::Edit> edits;
};

struct ConfigChange {
  std::string target = "main"; // branch the pull request goes to
  std::string branch;          // new branch to create (must not exist on the remote)
  std::string title;
  std::string body;
  std::vector<FileUpdate> files;
  git::Signature author;
  bool allow_empty = false; // commit (and open the PR) even when no file changes
};

struct Proposal {
  PullRequest pr;
  std::string commit; // the commit on the new branch
  std::string branch;
  std::vector<std::string> changed_files;
};

// Reads every file at the target's head, applies its edits (all files are edited before anything
// is written: a malformed file or a missing one fails the whole change and nothing is pushed),
// commits once on `branch`, pushes it and opens the pull request.
// Errors: configedit::Error (bad file or edit), git::Error (remote trouble; kNotFound for a
// missing file or target), scm::Error (provider; kValidation when nothing changes and
// allow_empty is off, or the branch already exists).
Proposal propose_config_change(Provider& provider, git::RepoCache& cache,
                               const git::RemoteOptions& remote, const ConfigChange& change);

struct RevertChange {
  std::string commit;          // the commit to revert (e.g. a merged pull request's merge commit)
  std::string target = "main"; // branch the revert is built on and the pull request goes to
  std::string branch;          // new branch
  unsigned mainline = 0;       // for merge commits: the parent to keep (1 = the target's side)
  std::string title;           // default: git's "Revert \"<summary>\""
  std::string body;
  git::Signature author;
};

Proposal propose_revert(Provider& provider, git::RepoCache& cache, const git::RemoteOptions& remote,
                        const RevertChange& change);

} // namespace capstan::scm
