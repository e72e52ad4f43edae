// Commits built in memory from other commits: merge, squash, rebase, revert.
#include <git2.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <thread>

#include "capstan/git/repository.h"
#include "libgit2.h"

namespace capstan::git {

using namespace detail;

const char* to_string(MergeMethod method) {
  switch (method) {
  case MergeMethod::kFastForward:
    return "fast-forward";
  case MergeMethod::kMerge:
    return "merge";
  case MergeMethod::kSquash:
    return "squash";
  case MergeMethod::kRebase:
    return "rebase";
  }
  return "merge";
}

MergeMethod parse_merge_method(const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "merge") return MergeMethod::kMerge;
  if (t == "squash") return MergeMethod::kSquash;
  if (t == "rebase") return MergeMethod::kRebase;
  if (t == "fast-forward" || t == "fastforward" || t == "fast_forward" || t == "ff") {
    return MergeMethod::kFastForward;
  }
  throw Error(ErrorKind::kInvalidInput, "unknown merge method '" + text +
                                            "' (expected merge, squash, rebase or fast-forward)");
}

namespace {

std::string short_oid(const git_oid* oid) {
  return oid_hex(*oid).substr(0, 12);
}

CommitHandle lookup(git_repository* repo, const std::string& oid) {
  git_oid id = parse_oid(oid);
  git_commit* c = nullptr;
  check(git_commit_lookup(&c, repo, &id), "read commit " + oid);
  return CommitHandle(c);
}

// The paths an in-memory index has conflicts on, as an error naming them.
[[noreturn]] void throw_conflicts(git_index* index, const std::string& what) {
  std::vector<std::string> paths;
  git_index_conflict_iterator* it = nullptr;
  if (git_index_conflict_iterator_new(&it, index) == 0) {
    const git_index_entry* ancestor = nullptr;
    const git_index_entry* ours = nullptr;
    const git_index_entry* theirs = nullptr;
    while (git_index_conflict_next(&ancestor, &ours, &theirs, it) == 0) {
      const git_index_entry* e = ours != nullptr ? ours : theirs != nullptr ? theirs : ancestor;
      if (e != nullptr) paths.emplace_back(e->path);
    }
    git_index_conflict_iterator_free(it);
  }
  std::string list;
  for (const auto& p : paths) list += (list.empty() ? "" : ", ") + p;
  throw Error(ErrorKind::kConflict, what + ": conflict in " + (list.empty() ? "?" : list));
}

git_oid write_tree(git_repository* repo, git_index* index, const std::string& what) {
  if (git_index_has_conflicts(index) != 0) throw_conflicts(index, what);
  git_oid tree;
  check(git_index_write_tree_to(&tree, index, repo), what);
  return tree;
}

std::string create_commit(git_repository* repo, const git_oid& tree_oid, const std::string& message,
                          const git_signature* author, const git_signature* committer,
                          const std::vector<const git_commit*>& parents) {
  git_tree* tree = nullptr;
  check(git_tree_lookup(&tree, repo, &tree_oid), "commit");
  TreeHandle t(tree);
  git_oid out;
  std::vector<const git_commit*> ps = parents;
  check(git_commit_create(&out, repo, nullptr, author, committer, "UTF-8", message.c_str(), tree,
                          ps.size(), ps.data()),
        "commit");
  return oid_hex(out);
}

std::string ensure_newline(std::string s) {
  if (!s.empty() && s.back() != '\n') s.push_back('\n');
  return s;
}

} // namespace

MergeResult Repository::merge(const std::string& target, const std::string& source,
                              const MergeOptions& options) {
  const std::string target_oid = resolve(target);
  const std::string source_oid = resolve(source);
  MergeResult result;
  if (is_ancestor(source_oid, target_oid)) {
    result.oid = target_oid;
    result.up_to_date = true;
    return result;
  }
  const bool ff_possible = is_ancestor(target_oid, source_oid);
  const std::string what = "merge " + source + " into " + target;
  if (options.method == MergeMethod::kFastForward) {
    if (!ff_possible) {
      throw Error(ErrorKind::kNonFastForward,
                  "cannot fast-forward " + target + " to " + source + ": they have diverged");
    }
    result.oid = source_oid;
    result.fast_forward = true;
    return result;
  }
  SignatureHandle author = make_signature(options.author);
  SignatureHandle committer = make_signature(options.committer.value_or(options.author));
  if (options.method == MergeMethod::kRebase) {
    if (ff_possible) {
      result.oid = source_oid;
      result.fast_forward = true;
      return result;
    }
    git_oid a = parse_oid(target_oid);
    git_oid b = parse_oid(source_oid);
    git_oid base;
    check(git_merge_base(&base, repo_, &a, &b), what);
    result.oid =
        rebase(oid_hex(base), source_oid, target_oid, options.committer.value_or(options.author));
    return result;
  }
  CommitHandle tc = lookup(repo_, target_oid);
  CommitHandle sc = lookup(repo_, source_oid);
  git_merge_options mopts = GIT_MERGE_OPTIONS_INIT;
  mopts.flags = GIT_MERGE_FIND_RENAMES;
  git_index* raw = nullptr;
  check(git_merge_commits(&raw, repo_, tc.get(), sc.get(), &mopts), what);
  IndexHandle index(raw);
  git_oid tree = write_tree(repo_, raw, what);
  std::string message = options.message;
  if (options.method == MergeMethod::kMerge) {
    if (message.empty()) message = "Merge " + source + " into " + target + "\n";
    result.oid =
        create_commit(repo_, tree, message, author.get(), committer.get(), {tc.get(), sc.get()});
  } else {
    if (message.empty()) {
      message = "Squashed commit of the following:\n\n";
      LogOptions lo;
      lo.from = source_oid;
      lo.hide = {target_oid};
      for (const auto& c : log(lo)) message += "* " + c.summary + "\n";
    }
    result.oid = create_commit(repo_, tree, message, author.get(), committer.get(), {tc.get()});
  }
  return result;
}

std::string Repository::revert(const std::string& commit, const std::string& onto,
                               const RevertOptions& options) {
  const std::string commit_oid = resolve(commit);
  CommitHandle c = lookup(repo_, commit_oid);
  CommitHandle o = lookup(repo_, resolve(onto));
  const unsigned parents = git_commit_parentcount(c.get());
  if (parents == 0) {
    throw Error(ErrorKind::kInvalidInput, "cannot revert " + commit + ": it is a root commit");
  }
  if (parents > 1 && options.mainline == 0) {
    throw Error(ErrorKind::kInvalidInput,
                "commit " + commit + " is a merge; say which parent to keep (mainline 1.." +
                    std::to_string(parents) + ")");
  }
  if (parents == 1 && options.mainline != 0) {
    throw Error(ErrorKind::kInvalidInput,
                "commit " + commit + " is not a merge; mainline must not be set");
  }
  if (options.mainline > parents) {
    throw Error(ErrorKind::kInvalidInput,
                "commit " + commit + " has only " + std::to_string(parents) + " parents");
  }
  const std::string what = "revert " + commit + " on " + onto;
  git_merge_options mopts = GIT_MERGE_OPTIONS_INIT;
  git_index* raw = nullptr;
  check(git_revert_commit(&raw, repo_, c.get(), o.get(), options.mainline, &mopts), what);
  IndexHandle index(raw);
  git_oid tree = write_tree(repo_, raw, what);
  if (git_oid_equal(&tree, git_commit_tree_id(o.get())) != 0) {
    throw Error(ErrorKind::kConflict, what + ": nothing to revert (already reverted?)");
  }
  std::string message = options.message;
  if (message.empty()) {
    const char* summary = git_commit_summary(c.get());
    message = "Revert \"" + std::string(summary != nullptr ? summary : "") +
              "\"\n\nThis reverts commit " + commit_oid;
    if (parents > 1) {
      message += ", reversing\nchanges made to " +
                 oid_hex(*git_commit_parent_id(c.get(), options.mainline - 1));
    }
    message += ".\n";
  }
  SignatureHandle author = make_signature(options.author);
  SignatureHandle committer = make_signature(options.committer.value_or(options.author));
  return create_commit(repo_, tree, message, author.get(), committer.get(), {o.get()});
}

std::string Repository::rebase(const std::string& base, const std::string& tip,
                               const std::string& onto, const Signature& committer) {
  git_revwalk* raw = nullptr;
  check(git_revwalk_new(&raw, repo_), "rebase");
  RevwalkHandle walk(raw);
  git_revwalk_sorting(raw, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
  git_revwalk_simplify_first_parent(raw);
  git_oid tip_oid = parse_oid(resolve(tip));
  git_oid base_oid = parse_oid(resolve(base));
  check(git_revwalk_push(raw, &tip_oid), "rebase");
  check(git_revwalk_hide(raw, &base_oid), "rebase");
  std::vector<git_oid> commits;
  git_oid next;
  while (git_revwalk_next(&next, raw) == 0) commits.push_back(next);

  SignatureHandle sig = make_signature(committer);
  CommitHandle current = lookup(repo_, resolve(onto));
  for (const auto& id : commits) {
    git_commit* c = nullptr;
    check(git_commit_lookup(&c, repo_, &id), "rebase");
    CommitHandle commit(c);
    const std::string what = "replay " + short_oid(&id) + " \"" + git_commit_summary(c) +
                             "\" onto " + short_oid(git_commit_id(current.get()));
    git_merge_options mopts = GIT_MERGE_OPTIONS_INIT;
    git_index* idx = nullptr;
    const unsigned mainline = git_commit_parentcount(c) > 1 ? 1 : 0;
    check(git_cherrypick_commit(&idx, repo_, c, current.get(), mainline, &mopts), what);
    IndexHandle index(idx);
    git_oid tree = write_tree(repo_, idx, what);
    if (git_oid_equal(&tree, git_commit_tree_id(current.get())) != 0) continue; // already there
    const std::string oid = create_commit(repo_, tree, ensure_newline(git_commit_message(c)),
                                          git_commit_author(c), sig.get(), {current.get()});
    current = lookup(repo_, oid);
  }
  return oid_hex(*git_commit_id(current.get()));
}

} // namespace capstan::git
