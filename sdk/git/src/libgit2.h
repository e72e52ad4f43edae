// Private glue to libgit2: one-time init, RAII handles, error mapping, remote callbacks.
#pragma once

#include <git2.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "capstan/git/error.h"
#include "capstan/git/remote.h"
#include "capstan/git/repository.h"
#include "ssh_rsa.h"

namespace capstan::git::detail {

// git_libgit2_init() exactly once per process (thread-safe); never shut down, because other
// threads may still hold libgit2 objects at exit.
void ensure_init();

template <typename T, void (*Free)(T*)> struct Deleter {
  void operator()(T* p) const {
    if (p != nullptr) Free(p);
  }
};
template <typename T, void (*Free)(T*)> using Handle = std::unique_ptr<T, Deleter<T, Free>>;

using RepoHandle = Handle<git_repository, git_repository_free>;
using RemoteHandle = Handle<git_remote, git_remote_free>;
using CommitHandle = Handle<git_commit, git_commit_free>;
using TreeHandle = Handle<git_tree, git_tree_free>;
using TreeEntryHandle = Handle<git_tree_entry, git_tree_entry_free>;
using BlobHandle = Handle<git_blob, git_blob_free>;
using ObjectHandle = Handle<git_object, git_object_free>;
using IndexHandle = Handle<git_index, git_index_free>;
using RefHandle = Handle<git_reference, git_reference_free>;
using RevwalkHandle = Handle<git_revwalk, git_revwalk_free>;
using DiffHandle = Handle<git_diff, git_diff_free>;
using PatchHandle = Handle<git_patch, git_patch_free>;
using SignatureHandle = Handle<git_signature, git_signature_free>;
using TreeBuilderHandle = Handle<git_treebuilder, git_treebuilder_free>;
using ConfigHandle = Handle<git_config, git_config_free>;

// Maps a libgit2 return code plus git_error_last() to a typed Error; `context` says what was
// being done ("fetch from https://host/repo"). Secrets in `secrets` are masked in the message.
[[noreturn]] void throw_error(int code, const std::string& context,
                              const std::vector<std::string>& secrets = {});
inline void check(int code, const std::string& context) {
  if (code < 0) throw_error(code, context);
}

std::string oid_hex(const git_oid& oid);
git_oid parse_oid(const std::string& hex); // throws kInvalidInput

SignatureHandle make_signature(const Signature& s);
Signature from_signature(const git_signature* s);

// Throws kConnectivity when the remote's host does not accept a TCP connection within
// options.connect_timeout (libgit2 1.5 has no connect timeout of its own).
void probe_connect(const RemoteOptions& options);

// Registers the socket stream with connect and read timeouts (stream.cpp); once, at init.
void register_socket_stream();

struct RemoteSession;
// Makes `session` the one whose options (timeouts, cancellation) the socket stream applies on
// this thread, for the scope's lifetime.
class StreamScope {
public:
  explicit StreamScope(RemoteSession* session);
  ~StreamScope();
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

private:
  RemoteSession* previous_;
};

// State shared by the callbacks of one network operation.
struct RemoteSession {
  explicit RemoteSession(const RemoteOptions& options);
  ~RemoteSession();
  RemoteSession(const RemoteSession&) = delete;
  RemoteSession& operator=(const RemoteSession&) = delete;

  git_remote_callbacks callbacks(); // with payload = this
  git_proxy_options proxy() const;
  // Rethrows a failure with what the callbacks learnt (auth refused, cancelled, rejected refs).
  [[noreturn]] void fail(int code, const std::string& what);
  std::vector<std::string> secrets() const;

  const RemoteOptions& options;
  int credential_calls = 0;
  bool auth_failed = false;
  bool cancelled = false;
  bool timed_out = false; // the socket stream gave up on a stalled server
  std::string auth_detail;
  std::vector<std::pair<std::string, std::string>> rejected; // ref, server status
  std::vector<std::pair<std::string, std::string>> updated;  // ref, new oid (fetch)
  std::vector<const char*> header_ptrs;
  std::string key_file; // temporary private key file when libssh2 lacks memory keys
  // An RSA private key, signed here with SHA-2 because libssh2 1.10 signs RSA only with SHA-1.
  std::unique_ptr<RsaSshKey> rsa_key;
  StreamScope stream_scope{this};
};

git_strarray headers_of(RemoteSession& session);

// Revisions, trees and paths shared by the repository operations.
std::string full_branch_ref(const std::string& name); // "main" → "refs/heads/main"
// A branch name also means origin/<name> when no local branch has it (the cache keeps none).
ObjectHandle revparse(git_repository* repo, const std::string& revision);
CommitHandle peel_commit(git_repository* repo, const std::string& revision);
TreeHandle commit_tree(git_commit* commit);
void validate_path(const std::string& path); // kInvalidInput for absolute, "..", ".git", "//"
std::optional<std::string> entry_oid(git_tree* tree, const std::string& path);
CommitInfo info_of(const git_commit* commit);

} // namespace capstan::git::detail
