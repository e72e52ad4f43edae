// Remotes: where a repository lives, how to authenticate, and cheap lookups of its heads.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace capstan::git {

// Credential values come from the caller (the connector's secrets) and are never logged, nor put
// in errors. Which ones apply depends on the URL's scheme:
//  - http(s): username + password (a personal access token goes in `password`; when `username`
//    is empty "git" is sent, which GitHub, GitLab and Gitea all accept with a token).
//  - ssh: ssh_private_key (PEM/OpenSSH text, optionally with ssh_passphrase) or, when no key is
//    given and use_ssh_agent is set, the keys of the agent at $SSH_AUTH_SOCK. The user comes
//    from the URL (ssh://git@host/...) or `username`.
struct Credentials {
  std::string username;
  std::string password;
  std::string ssh_private_key;
  std::string ssh_public_key; // optional; derived from the private key when empty
  std::string ssh_passphrase;
  bool use_ssh_agent = false;
  bool empty() const {
    return username.empty() && password.empty() && ssh_private_key.empty() && !use_ssh_agent;
  }
};

struct RemoteOptions {
  std::string url; // file://, /abs/path, git://, http://, https://, ssh://, user@host:path
  Credentials credentials;
  // TLS: PEM certificates of extra certificate authorities to trust (a private CA of a
  // self-hosted server); the server's certificate must be signed by one of them directly, be
  // valid now and name the host. The system's trust store applies as well.
  std::string tls_ca_pem;
  // TLS: skip certificate verification (self-signed test servers only).
  bool insecure_skip_tls_verify = false;
  // SSH host keys, as lines of an OpenSSH known_hosts file ("host keytype base64"). When empty,
  // libgit2's own check applies (~/.ssh/known_hosts) unless insecure_skip_host_key_check is set.
  std::string ssh_known_hosts;
  bool insecure_skip_host_key_check = false;
  // Longest wait for the TCP connection to a git://, http(s):// or ssh:// host (0: the
  // system's). A host that silently drops packets is reported as kConnectivity after it instead
  // of after the operating system's TCP timeout. Not applied through an HTTP proxy.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  // Longest wait for the server to send (or take) any data mid-operation over git://, http://
  // and https:// (0: none). A server that stalls longer fails the operation with kTimeout
  // instead of holding it forever; a long pack computation keeps the connection busy with
  // progress messages, so this only trips on servers that went silent.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(60)};
  // Polled during transfers and between retries; returning true aborts with ErrorKind::kCancelled.
  std::function<bool()> cancelled;
  // Extra HTTP headers ("Name: value") sent with every request (http(s) only).
  std::vector<std::string> http_headers;
};

// One advertised ref of a remote, as `git ls-remote` prints it.
struct RemoteRef {
  std::string name;          // refs/heads/main, refs/tags/v1, HEAD
  std::string oid;           // 40 hex digits
  std::string symref_target; // for HEAD: the branch it points at, when the server says
};

// The remote's refs without fetching any object: one connection, the ref advertisement, done.
// This is what GitOps polling calls every few seconds.
std::vector<RemoteRef> ls_remote(const RemoteOptions& remote);

// The commit a branch, tag or full ref name points at on the remote (tags are peeled), or
// nullopt when the remote has no such ref. "HEAD" gives the default branch's commit.
std::optional<std::string> remote_head(const RemoteOptions& remote, const std::string& ref);

// The URL with any user-info (user:password@) removed, for logs and messages.
std::string redact_url(const std::string& url);

// A stable directory name for a remote URL (scheme, host, path; credentials ignored), used by
// the repository cache.
std::string url_key(const std::string& url);

} // namespace capstan::git
