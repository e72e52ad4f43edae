// Config edits and reverts proposed as pull requests.
#include "capstan/scm/changes.h"

namespace capstan::scm {

namespace {

void require_new_branch(git::Repository& repo, const std::string& branch) {
  if (branch.empty()) throw Error(ErrorKind::kInvalidInput, "no branch name for the change");
  if (repo.try_resolve("refs/remotes/origin/" + branch)) {
    throw Error(ErrorKind::kValidation,
                "branch '" + branch + "' already exists on the remote; pick another name");
  }
}

Proposal publish(Provider& provider, git::Repository& repo, const git::RemoteOptions& remote,
                 const std::string& commit, const std::string& branch, const std::string& target,
                 const std::string& title, const std::string& body) {
  repo.push(remote, {{commit, branch, false}});
  Proposal out;
  out.commit = commit;
  out.branch = branch;
  out.pr = provider.create({title, body, branch, target, false});
  return out;
}

} // namespace

Proposal propose_config_change(Provider& provider, git::RepoCache& cache,
                               const git::RemoteOptions& remote, const ConfigChange& change) {
  git::RepoLease lease = cache.acquire(remote);
  require_new_branch(lease.repo(), change.branch);
  const std::string base = lease->resolve(change.target);
  git::CommitRequest req;
  req.parent = base;
  std::vector<std::string> changed;
  for (const auto& file : change.files) {
    const std::string text = lease->read_file(base, file.path);
    auto result = configedit::apply(text, configedit::format_for(file.path), file.edits, file.path);
    if (!result.changed) continue;
    req.edits.push_back({file.path, result.text, false});
    changed.push_back(file.path);
  }
  if (req.edits.empty() && !change.allow_empty) {
    throw Error(ErrorKind::kValidation,
                "the files already hold these values; nothing to commit (allow empty commits to "
                "open the pull request anyway)");
  }
  req.message = change.title + (change.body.empty() ? "" : "\n\n" + change.body) + "\n";
  req.author = change.author;
  req.allow_empty = change.allow_empty;
  auto commit = lease->commit_files(req);
  Proposal out = publish(provider, lease.repo(), remote, *commit, change.branch, change.target,
                         change.title, change.body);
  out.changed_files = std::move(changed);
  return out;
}

Proposal propose_revert(Provider& provider, git::RepoCache& cache, const git::RemoteOptions& remote,
                        const RevertChange& change) {
  git::RepoLease lease = cache.acquire(remote);
  require_new_branch(lease.repo(), change.branch);
  const std::string base = lease->resolve(change.target);
  git::RevertOptions ro;
  ro.mainline = change.mainline;
  ro.author = change.author;
  const std::string commit = lease->revert(change.commit, base, ro);
  const std::string title =
      change.title.empty() ? lease->commit_info(commit).summary : change.title;
  Proposal out = publish(provider, lease.repo(), remote, commit, change.branch, change.target,
                         title, change.body);
  out.changed_files.clear();
  for (const auto& f : lease->diff(base, commit).files) out.changed_files.push_back(f.path);
  return out;
}

} // namespace capstan::scm
