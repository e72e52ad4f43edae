// Reading a repository: revisions, files, trees, history and diffs.
#include "capstan/git/repository.h"

#include <algorithm>
#include <cstring>

#include "libgit2.h"

namespace capstan::git {

using namespace detail;
namespace fs = std::filesystem;

// ---- reading

std::string Repository::resolve(const std::string& revision) const {
  CommitHandle c = peel_commit(repo_, revision);
  return oid_hex(*git_commit_id(c.get()));
}

std::optional<std::string> Repository::try_resolve(const std::string& revision) const {
  try {
    return resolve(revision);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) return std::nullopt;
    throw;
  }
}

std::optional<std::string> Repository::try_read_file(const std::string& revision,
                                                     const std::string& path) const {
  validate_path(path);
  CommitHandle c = peel_commit(repo_, revision);
  TreeHandle tree = commit_tree(c.get());
  git_tree_entry* raw = nullptr;
  int rc = git_tree_entry_bypath(&raw, tree.get(), path.c_str());
  if (rc == GIT_ENOTFOUND) return std::nullopt;
  if (rc < 0) throw_error(rc, "read '" + path + "' at '" + revision + "'");
  TreeEntryHandle entry(raw);
  if (git_tree_entry_type(raw) != GIT_OBJECT_BLOB) {
    throw Error(ErrorKind::kInvalidInput,
                "'" + path + "' at '" + revision + "' is a directory, not a file");
  }
  git_blob* blob = nullptr;
  check(git_blob_lookup(&blob, repo_, git_tree_entry_id(raw)), "read '" + path + "'");
  BlobHandle b(blob);
  const auto* data = static_cast<const char*>(git_blob_rawcontent(blob));
  return std::string(data, static_cast<std::size_t>(git_blob_rawsize(blob)));
}

std::string Repository::read_file(const std::string& revision, const std::string& path) const {
  auto content = try_read_file(revision, path);
  if (!content) {
    throw Error(ErrorKind::kNotFound, "file '" + path + "' not found at '" + revision + "'");
  }
  return *content;
}

std::vector<TreeEntry> Repository::list_tree(const std::string& revision, const std::string& dir,
                                             bool recursive) const {
  CommitHandle c = peel_commit(repo_, revision);
  TreeHandle root = commit_tree(c.get());
  TreeHandle sub;
  git_tree* tree = root.get();
  std::string prefix;
  if (!dir.empty()) {
    validate_path(dir);
    git_tree_entry* raw = nullptr;
    if (git_tree_entry_bypath(&raw, root.get(), dir.c_str()) < 0) {
      throw Error(ErrorKind::kNotFound, "directory '" + dir + "' not found at '" + revision + "'");
    }
    TreeEntryHandle entry(raw);
    if (git_tree_entry_type(raw) != GIT_OBJECT_TREE) {
      throw Error(ErrorKind::kInvalidInput,
                  "'" + dir + "' at '" + revision + "' is not a directory");
    }
    git_tree* t = nullptr;
    check(git_tree_lookup(&t, repo_, git_tree_entry_id(raw)), "read directory '" + dir + "'");
    sub.reset(t);
    tree = t;
    prefix = dir + "/";
  }
  auto make = [](const std::string& path, const git_tree_entry* e) {
    TreeEntry out;
    out.path = path;
    out.oid = oid_hex(*git_tree_entry_id(e));
    switch (git_tree_entry_filemode(e)) {
    case GIT_FILEMODE_TREE:
      out.type = TreeEntry::Type::kDirectory;
      break;
    case GIT_FILEMODE_LINK:
      out.type = TreeEntry::Type::kSymlink;
      break;
    case GIT_FILEMODE_COMMIT:
      out.type = TreeEntry::Type::kSubmodule;
      break;
    case GIT_FILEMODE_BLOB_EXECUTABLE:
      out.executable = true;
      [[fallthrough]];
    default:
      out.type = TreeEntry::Type::kFile;
      break;
    }
    return out;
  };
  std::vector<TreeEntry> out;
  if (!recursive) {
    for (std::size_t i = 0; i < git_tree_entrycount(tree); ++i) {
      const git_tree_entry* e = git_tree_entry_byindex(tree, i);
      out.push_back(make(prefix + git_tree_entry_name(e), e));
    }
    return out;
  }
  struct Walk {
    std::vector<TreeEntry>* out;
    const std::string* prefix;
    decltype(make)* to_entry;
  } walk{&out, &prefix, &make};
  git_tree_walk(
      tree, GIT_TREEWALK_PRE,
      [](const char* root, const git_tree_entry* e, void* payload) -> int {
        auto* w = static_cast<Walk*>(payload);
        if (git_tree_entry_type(e) == GIT_OBJECT_TREE) return 0;
        w->out->push_back((*w->to_entry)(*w->prefix + root + git_tree_entry_name(e), e));
        return 0;
      },
      &walk);
  return out;
}

CommitInfo Repository::commit_info(const std::string& revision) const {
  CommitHandle c = peel_commit(repo_, revision);
  return info_of(c.get());
}

std::vector<CommitInfo> Repository::log(const LogOptions& options) const {
  git_revwalk* raw = nullptr;
  check(git_revwalk_new(&raw, repo_), "log");
  RevwalkHandle walk(raw);
  git_revwalk_sorting(raw, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
  if (options.first_parent) git_revwalk_simplify_first_parent(raw);
  CommitHandle from = peel_commit(repo_, options.from);
  check(git_revwalk_push(raw, git_commit_id(from.get())), "log");
  for (const auto& h : options.hide) {
    CommitHandle hidden = peel_commit(repo_, h);
    check(git_revwalk_hide(raw, git_commit_id(hidden.get())), "log");
  }
  if (!options.path.empty()) validate_path(options.path);
  std::vector<CommitInfo> out;
  git_oid oid;
  while (git_revwalk_next(&oid, raw) == 0) {
    git_commit* c = nullptr;
    check(git_commit_lookup(&c, repo_, &oid), "log");
    CommitHandle commit(c);
    if (!options.path.empty()) {
      TreeHandle tree = commit_tree(c);
      auto mine = entry_oid(tree.get(), options.path);
      bool changed = true;
      if (git_commit_parentcount(c) > 0) {
        git_commit* p = nullptr;
        check(git_commit_parent(&p, c, 0), "log");
        CommitHandle parent(p);
        TreeHandle ptree = commit_tree(p);
        changed = entry_oid(ptree.get(), options.path) != mine;
      } else {
        changed = mine.has_value();
      }
      if (!changed) continue;
    }
    out.push_back(info_of(c));
    if (options.max_count != 0 && out.size() >= options.max_count) break;
  }
  return out;
}

DiffSummary Repository::diff(const std::string& from, const std::string& to) const {
  CommitHandle a = peel_commit(repo_, from);
  CommitHandle b = peel_commit(repo_, to);
  TreeHandle ta = commit_tree(a.get());
  TreeHandle tb = commit_tree(b.get());
  git_diff* raw = nullptr;
  check(git_diff_tree_to_tree(&raw, repo_, ta.get(), tb.get(), nullptr), "diff");
  DiffHandle diff(raw);
  git_diff_find_options find = GIT_DIFF_FIND_OPTIONS_INIT;
  find.flags = GIT_DIFF_FIND_RENAMES;
  check(git_diff_find_similar(raw, &find), "diff");
  DiffSummary summary;
  for (std::size_t i = 0; i < git_diff_num_deltas(raw); ++i) {
    const git_diff_delta* d = git_diff_get_delta(raw, i);
    FileChange fc;
    fc.path = d->new_file.path != nullptr ? d->new_file.path : "";
    fc.old_path = d->old_file.path != nullptr ? d->old_file.path : fc.path;
    switch (d->status) {
    case GIT_DELTA_ADDED:
      fc.status = FileChange::Status::kAdded;
      break;
    case GIT_DELTA_DELETED:
      fc.status = FileChange::Status::kDeleted;
      break;
    case GIT_DELTA_RENAMED:
      fc.status = FileChange::Status::kRenamed;
      break;
    case GIT_DELTA_TYPECHANGE:
      fc.status = FileChange::Status::kTypeChanged;
      break;
    default:
      fc.status = FileChange::Status::kModified;
      break;
    }
    git_patch* p = nullptr;
    check(git_patch_from_diff(&p, raw, i), "diff");
    PatchHandle patch(p);
    if (p != nullptr) {
      std::size_t context = 0;
      std::size_t adds = 0;
      std::size_t dels = 0;
      git_patch_line_stats(&context, &adds, &dels, p);
      fc.additions = static_cast<int>(adds);
      fc.deletions = static_cast<int>(dels);
    }
    fc.binary = (d->flags & GIT_DIFF_FLAG_BINARY) != 0U;
    summary.additions += fc.additions;
    summary.deletions += fc.deletions;
    summary.files.push_back(std::move(fc));
  }
  return summary;
}

bool Repository::is_ancestor(const std::string& ancestor, const std::string& descendant) const {
  CommitHandle a = peel_commit(repo_, ancestor);
  CommitHandle d = peel_commit(repo_, descendant);
  if (git_oid_equal(git_commit_id(a.get()), git_commit_id(d.get())) != 0) return true;
  int rc = git_graph_descendant_of(repo_, git_commit_id(d.get()), git_commit_id(a.get()));
  if (rc < 0) throw_error(rc, "compare history");
  return rc == 1;
}

} // namespace capstan::git
