// Repository: open/clone/fetch, reading revisions, refs, checkout and commits from file edits.
#include "capstan/git/repository.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "libgit2.h"

namespace capstan::git {

using namespace detail;
namespace fs = std::filesystem;

namespace {

std::string full_branch_ref(const std::string& name) {
  return name.rfind("refs/", 0) == 0 ? name : "refs/heads/" + name;
}

ObjectHandle revparse(git_repository* repo, const std::string& revision) {
  git_object* obj = nullptr;
  if (revision.empty()) throw Error(ErrorKind::kInvalidInput, "empty revision");
  int rc = git_revparse_single(&obj, repo, revision.c_str());
  if (rc == GIT_ENOTFOUND || rc == GIT_EINVALIDSPEC) {
    // A bare branch name also means the remote-tracking branch (the cache keeps no local ones).
    const std::string remote = "refs/remotes/origin/" + revision;
    if (revision.rfind("refs/", 0) != 0 && git_revparse_single(&obj, repo, remote.c_str()) == 0) {
      return ObjectHandle(obj);
    }
    if (rc == GIT_EINVALIDSPEC) {
      throw Error(ErrorKind::kInvalidInput, "invalid revision '" + revision + "'");
    }
    throw Error(ErrorKind::kNotFound, "revision '" + revision + "' not found");
  }
  if (rc < 0) throw_error(rc, "resolve revision '" + revision + "'");
  return ObjectHandle(obj);
}

CommitHandle peel_commit(git_repository* repo, const std::string& revision) {
  ObjectHandle obj = revparse(repo, revision);
  git_object* peeled = nullptr;
  if (git_object_peel(&peeled, obj.get(), GIT_OBJECT_COMMIT) < 0) {
    throw Error(ErrorKind::kInvalidInput, "revision '" + revision + "' is not a commit");
  }
  return CommitHandle(reinterpret_cast<git_commit*>(peeled));
}

TreeHandle commit_tree(git_commit* commit) {
  git_tree* tree = nullptr;
  check(git_commit_tree(&tree, commit), "read commit tree");
  return TreeHandle(tree);
}

void validate_path(const std::string& path) {
  bool bad = path.empty() || path.front() == '/' || path.back() == '/' ||
             path.find('\0') != std::string::npos || path.find("//") != std::string::npos;
  std::size_t start = 0;
  while (!bad && start <= path.size()) {
    std::size_t slash = path.find('/', start);
    std::string part =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == "." || part == ".." || part == ".git") bad = true;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (bad) throw Error(ErrorKind::kInvalidInput, "invalid path in repository: '" + path + "'");
}

std::optional<std::string> entry_oid(git_tree* tree, const std::string& path) {
  if (path.empty()) return oid_hex(*git_tree_id(tree));
  git_tree_entry* entry = nullptr;
  if (git_tree_entry_bypath(&entry, tree, path.c_str()) < 0) return std::nullopt;
  TreeEntryHandle handle(entry);
  return oid_hex(*git_tree_entry_id(entry));
}

CommitInfo info_of(const git_commit* c) {
  CommitInfo info;
  info.oid = oid_hex(*git_commit_id(c));
  for (unsigned i = 0; i < git_commit_parentcount(c); ++i) {
    info.parents.push_back(oid_hex(*git_commit_parent_id(c, i)));
  }
  info.author = from_signature(git_commit_author(c));
  info.committer = from_signature(git_commit_committer(c));
  const char* msg = git_commit_message(c);
  info.message = msg != nullptr ? msg : "";
  info.summary = info.message.substr(0, info.message.find('\n'));
  return info;
}

RemoteHandle origin(git_repository* repo, const RemoteOptions& options, RemoteSession& session) {
  git_remote* raw = nullptr;
  int rc = git_remote_lookup(&raw, repo, "origin");
  if (rc == GIT_ENOTFOUND) {
    if (options.url.empty()) {
      throw Error(ErrorKind::kInvalidInput,
                  "the repository has no remote 'origin' and no URL was given");
    }
    rc = git_remote_create(&raw, repo, "origin", options.url.c_str());
  } else if (rc == 0 && !options.url.empty() && options.url != git_remote_url(raw)) {
    git_remote_free(raw);
    raw = nullptr;
    rc = git_remote_set_url(repo, "origin", options.url.c_str());
    if (rc == 0) rc = git_remote_lookup(&raw, repo, "origin");
  }
  if (rc < 0) session.fail(rc, "configure remote");
  return RemoteHandle(raw);
}

} // namespace

// ---- lifecycle

Repository Repository::open(const fs::path& path) {
  ensure_init();
  git_repository* repo = nullptr;
  int rc = git_repository_open_ext(&repo, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr);
  if (rc < 0) throw_error(rc, "open repository " + path.string());
  return Repository(repo);
}

Repository Repository::init(const fs::path& path, bool bare, const std::string& initial_branch) {
  ensure_init();
  git_repository_init_options opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  opts.flags = GIT_REPOSITORY_INIT_MKPATH;
  if (bare) opts.flags |= GIT_REPOSITORY_INIT_BARE;
  opts.initial_head = initial_branch.c_str();
  git_repository* repo = nullptr;
  int rc = git_repository_init_ext(&repo, path.c_str(), &opts);
  if (rc < 0) throw_error(rc, "init repository " + path.string());
  return Repository(repo);
}

Repository Repository::clone(const RemoteOptions& remote, const fs::path& path,
                             const CloneOptions& options) {
  RemoteSession session(remote);
  git_clone_options opts = GIT_CLONE_OPTIONS_INIT;
  opts.bare = options.bare ? 1 : 0;
  if (!options.branch.empty()) opts.checkout_branch = options.branch.c_str();
  opts.fetch_opts.callbacks = session.callbacks();
  opts.fetch_opts.proxy_opts = session.proxy();
  opts.fetch_opts.custom_headers = headers_of(session);
  opts.fetch_opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
  opts.checkout_opts.checkout_strategy = GIT_CHECKOUT_SAFE;
  git_repository* repo = nullptr;
  int rc = git_clone(&repo, remote.url.c_str(), path.c_str(), &opts);
  if (rc < 0) {
    if (rc == GIT_ENOTFOUND && !options.branch.empty() && !session.auth_failed) {
      throw Error(ErrorKind::kNotFound, "clone " + redact_url(remote.url) + ": branch '" +
                                            options.branch + "' not found");
    }
    session.fail(rc, "clone");
  }
  return Repository(repo);
}

Repository::Repository(Repository&& other) noexcept : repo_(other.repo_) {
  other.repo_ = nullptr;
}

Repository& Repository::operator=(Repository&& other) noexcept {
  if (this != &other) {
    if (repo_ != nullptr) git_repository_free(repo_);
    repo_ = other.repo_;
    other.repo_ = nullptr;
  }
  return *this;
}

Repository::~Repository() {
  if (repo_ != nullptr) git_repository_free(repo_);
}

fs::path Repository::path() const {
  return git_repository_path(repo_);
}

bool Repository::bare() const {
  return git_repository_is_bare(repo_) != 0;
}

// ---- remotes

FetchResult Repository::fetch(const RemoteOptions& remote) {
  return fetch(remote, {});
}

FetchResult Repository::fetch(const RemoteOptions& remote,
                              const std::vector<std::string>& refspecs) {
  RemoteSession session(remote);
  RemoteHandle r = origin(repo_, remote, session);
  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  opts.callbacks = session.callbacks();
  opts.proxy_opts = session.proxy();
  opts.custom_headers = headers_of(session);
  opts.prune = refspecs.empty() ? GIT_FETCH_PRUNE : GIT_FETCH_NO_PRUNE;
  opts.download_tags =
      refspecs.empty() ? GIT_REMOTE_DOWNLOAD_TAGS_ALL : GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  std::vector<const char*> ptrs;
  for (const auto& s : refspecs) ptrs.push_back(s.c_str());
  git_strarray specs{const_cast<char**>(ptrs.data()), ptrs.size()};
  int rc = git_remote_fetch(r.get(), refspecs.empty() ? nullptr : &specs, &opts, "fetch");
  if (rc < 0) session.fail(rc, "fetch");
  FetchResult result;
  result.updated = session.updated;
  return result;
}

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

// ---- refs and work tree

namespace {
std::vector<std::string> list_branches(git_repository* repo, git_branch_t type) {
  git_branch_iterator* it = nullptr;
  check(git_branch_iterator_new(&it, repo, type), "list branches");
  std::vector<std::string> out;
  git_reference* ref = nullptr;
  git_branch_t t;
  while (git_branch_next(&ref, &t, it) == 0) {
    RefHandle r(ref);
    const char* name = nullptr;
    if (git_branch_name(&name, ref) == 0 && name != nullptr) out.emplace_back(name);
  }
  git_branch_iterator_free(it);
  std::sort(out.begin(), out.end());
  return out;
}
} // namespace

std::vector<std::string> Repository::branches() const {
  return list_branches(repo_, GIT_BRANCH_LOCAL);
}

std::vector<std::string> Repository::remote_branches() const {
  std::vector<std::string> out;
  for (auto& name : list_branches(repo_, GIT_BRANCH_REMOTE)) {
    if (name.rfind("origin/", 0) != 0 || name == "origin/HEAD") continue;
    out.push_back(name.substr(7));
  }
  return out;
}

void Repository::create_branch(const std::string& name, const std::string& revision, bool force) {
  CommitHandle c = peel_commit(repo_, revision);
  git_reference* ref = nullptr;
  int rc = git_branch_create(&ref, repo_, name.c_str(), c.get(), force ? 1 : 0);
  if (rc == GIT_EEXISTS) {
    throw Error(ErrorKind::kConflict, "branch '" + name + "' already exists");
  }
  if (rc < 0) throw_error(rc, "create branch '" + name + "'");
  git_reference_free(ref);
}

void Repository::delete_branch(const std::string& name) {
  git_reference* ref = nullptr;
  int rc = git_branch_lookup(&ref, repo_, name.c_str(), GIT_BRANCH_LOCAL);
  if (rc == GIT_ENOTFOUND) throw Error(ErrorKind::kNotFound, "branch '" + name + "' not found");
  if (rc < 0) throw_error(rc, "delete branch '" + name + "'");
  RefHandle r(ref);
  check(git_branch_delete(ref), "delete branch '" + name + "'");
}

void Repository::set_ref(const std::string& ref, const std::string& oid,
                         const std::optional<std::string>& expected) {
  const std::string name = full_branch_ref(ref);
  git_oid target = parse_oid(oid);
  git_reference* out = nullptr;
  int rc = 0;
  if (!expected) {
    rc = git_reference_create(&out, repo_, name.c_str(), &target, 1, "capstan: set");
  } else if (expected->empty()) {
    rc = git_reference_create(&out, repo_, name.c_str(), &target, 0, "capstan: create");
    if (rc == GIT_EEXISTS) throw Error(ErrorKind::kConflict, "ref '" + name + "' already exists");
  } else {
    git_oid old = parse_oid(*expected);
    rc = git_reference_create_matching(&out, repo_, name.c_str(), &target, 1, &old,
                                       "capstan: update");
    if (rc == GIT_EMODIFIED || rc == GIT_ENOTFOUND) {
      throw Error(ErrorKind::kConflict, "ref '" + name + "' moved: expected it at " + *expected);
    }
  }
  if (rc < 0) throw_error(rc, "update ref '" + name + "'");
  git_reference_free(out);
}

std::optional<std::string> Repository::current_branch() const {
  if (git_repository_head_detached(repo_) == 1) return std::nullopt;
  git_reference* head = nullptr;
  int rc = git_repository_head(&head, repo_);
  if (rc == GIT_EUNBORNBRANCH || rc == GIT_ENOTFOUND) {
    // An unborn branch: HEAD names it, but it has no commit yet.
    git_reference* sym = nullptr;
    if (git_reference_lookup(&sym, repo_, "HEAD") < 0) return std::nullopt;
    RefHandle s(sym);
    const char* target = git_reference_symbolic_target(sym);
    if (target == nullptr) return std::nullopt;
    std::string t = target;
    return t.rfind("refs/heads/", 0) == 0 ? t.substr(11) : t;
  }
  if (rc < 0) throw_error(rc, "read HEAD");
  RefHandle h(head);
  return std::string(git_reference_shorthand(head));
}

void Repository::checkout(const std::string& revision) {
  if (bare()) {
    throw Error(ErrorKind::kInvalidInput,
                "checkout needs a work tree; use export_tree() on a bare repository");
  }
  git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
  opts.checkout_strategy = GIT_CHECKOUT_FORCE;
  git_reference* ref = nullptr;
  std::string local = revision.rfind("refs/heads/", 0) == 0 ? revision.substr(11) : revision;
  int rc = git_branch_lookup(&ref, repo_, local.c_str(), GIT_BRANCH_LOCAL);
  if (rc != 0) {
    // Only the remote has it: create the local branch tracking origin/<name>.
    const std::string remote = "origin/" + local;
    git_reference* rref = nullptr;
    if (git_branch_lookup(&rref, repo_, remote.c_str(), GIT_BRANCH_REMOTE) == 0) {
      RefHandle r(rref);
      git_object* target = nullptr;
      check(git_reference_peel(&target, rref, GIT_OBJECT_COMMIT), "checkout " + revision);
      ObjectHandle t(target);
      check(git_branch_create(&ref, repo_, local.c_str(), reinterpret_cast<git_commit*>(target), 0),
            "checkout " + revision);
      git_branch_set_upstream(ref, remote.c_str());
      rc = 0;
    }
  }
  if (rc == 0) {
    RefHandle r(ref);
    git_object* target = nullptr;
    check(git_reference_peel(&target, ref, GIT_OBJECT_COMMIT), "checkout " + revision);
    ObjectHandle t(target);
    check(git_checkout_tree(repo_, target, &opts), "checkout " + revision);
    check(git_repository_set_head(repo_, git_reference_name(ref)), "checkout " + revision);
    return;
  }
  CommitHandle c = peel_commit(repo_, revision);
  check(git_checkout_tree(repo_, reinterpret_cast<git_object*>(c.get()), &opts),
        "checkout " + revision);
  check(git_repository_set_head_detached(repo_, git_commit_id(c.get())), "checkout " + revision);
}

void Repository::export_tree(const std::string& revision, const fs::path& directory) const {
  CommitHandle c = peel_commit(repo_, revision);
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec) {
    throw Error(ErrorKind::kInternal, "cannot create " + directory.string() + ": " + ec.message());
  }
  const std::string dir = directory.string();
  git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
  opts.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX;
  opts.target_directory = dir.c_str();
  git_index* index = nullptr;
  check(git_index_new(&index), "export " + revision);
  IndexHandle idx(index);
  opts.baseline_index = index;
  check(git_checkout_tree(repo_, reinterpret_cast<git_object*>(c.get()), &opts),
        "export " + revision + " to " + dir);
}

// ---- commits

std::optional<std::string> Repository::commit_files(const CommitRequest& request) {
  CommitHandle parent;
  TreeHandle base_tree;
  if (!request.parent.empty()) {
    parent = peel_commit(repo_, request.parent);
    base_tree = commit_tree(parent.get());
  }
  git_index* raw = nullptr;
  check(git_index_new(&raw), "commit");
  IndexHandle index(raw);
  if (base_tree) check(git_index_read_tree(raw, base_tree.get()), "commit");
  for (const auto& edit : request.edits) {
    validate_path(edit.path);
    if (!edit.content) {
      if (git_index_get_bypath(raw, edit.path.c_str(), 0) == nullptr) {
        throw Error(ErrorKind::kNotFound,
                    "cannot delete '" + edit.path + "': no such file at '" + request.parent + "'");
      }
      check(git_index_remove(raw, edit.path.c_str(), 0), "delete '" + edit.path + "'");
      continue;
    }
    git_index_entry entry;
    std::memset(&entry, 0, sizeof entry);
    check(git_blob_create_from_buffer(&entry.id, repo_, edit.content->data(), edit.content->size()),
          "write '" + edit.path + "'");
    entry.mode = edit.executable ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
    entry.path = edit.path.c_str();
    // A file replacing a directory (or the reverse) is refused by the index: say so.
    int rc = git_index_add(raw, &entry);
    if (rc < 0) throw_error(rc, "write '" + edit.path + "'");
  }
  git_oid tree_oid;
  check(git_index_write_tree_to(&tree_oid, raw, repo_), "commit");
  if (!request.allow_empty && base_tree &&
      git_oid_equal(&tree_oid, git_tree_id(base_tree.get())) != 0) {
    return std::nullopt;
  }
  if (!request.allow_empty && !base_tree && git_index_entrycount(raw) == 0) return std::nullopt;
  git_tree* tree = nullptr;
  check(git_tree_lookup(&tree, repo_, &tree_oid), "commit");
  TreeHandle t(tree);
  SignatureHandle author = make_signature(request.author);
  SignatureHandle committer = make_signature(request.committer.value_or(request.author));
  const git_commit* parents[1] = {parent.get()};
  git_oid out;
  check(git_commit_create(&out, repo_, nullptr, author.get(), committer.get(), "UTF-8",
                          request.message.c_str(), tree, parent ? 1 : 0, parents),
        "commit");
  const std::string oid = oid_hex(out);
  if (!request.update_ref.empty()) {
    const std::string name = full_branch_ref(request.update_ref);
    git_reference* existing = nullptr;
    const bool exists = git_reference_lookup(&existing, repo_, name.c_str()) == 0;
    git_reference_free(existing);
    // Compare-and-swap: an existing ref must still be at the parent; a new one must stay new.
    std::string expected;
    if (exists) expected = parent ? oid_hex(*git_commit_id(parent.get())) : std::string(40, '0');
    set_ref(name, oid, expected);
  }
  return oid;
}

std::optional<std::string> Repository::commit_worktree(const std::string& message,
                                                       const Signature& author,
                                                       const std::optional<Signature>& committer,
                                                       bool allow_empty) {
  if (bare()) throw Error(ErrorKind::kInvalidInput, "commit_worktree needs a work tree");
  git_index* raw = nullptr;
  check(git_repository_index(&raw, repo_), "commit");
  IndexHandle index(raw);
  char star[] = "*";
  char* paths[] = {star};
  git_strarray spec{paths, 1};
  check(git_index_add_all(raw, &spec, GIT_INDEX_ADD_DEFAULT, nullptr, nullptr), "stage changes");
  check(git_index_update_all(raw, &spec, nullptr, nullptr), "stage changes");
  check(git_index_write(raw), "stage changes");
  git_oid tree_oid;
  check(git_index_write_tree(&tree_oid, raw), "commit");
  CommitHandle parent;
  if (auto head = try_resolve("HEAD")) parent = peel_commit(repo_, *head);
  if (!allow_empty && parent && git_oid_equal(&tree_oid, git_commit_tree_id(parent.get())) != 0) {
    return std::nullopt;
  }
  git_tree* tree = nullptr;
  check(git_tree_lookup(&tree, repo_, &tree_oid), "commit");
  TreeHandle t(tree);
  SignatureHandle a = make_signature(author);
  SignatureHandle c = make_signature(committer.value_or(author));
  const git_commit* parents[1] = {parent.get()};
  git_oid out;
  check(git_commit_create(&out, repo_, "HEAD", a.get(), c.get(), "UTF-8", message.c_str(), tree,
                          parent ? 1 : 0, parents),
        "commit");
  return oid_hex(out);
}

} // namespace capstan::git
