// Repository: open/init/clone/fetch, refs, checkout and commits from file edits.
#include "capstan/git/repository.h"

#include <algorithm>
#include <cstring>

#include "libgit2.h"

namespace capstan::git {

using namespace detail;
namespace fs = std::filesystem;

namespace {

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
