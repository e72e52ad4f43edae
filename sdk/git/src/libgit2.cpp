// libgit2 glue: one-time init, error mapping, credentials and certificate callbacks.
#include "libgit2.h"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

namespace capstan::git {

const char* to_string(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::kAuthentication:
    return "Authentication";
  case ErrorKind::kConnectivity:
    return "Connectivity";
  case ErrorKind::kNotFound:
    return "NotFound";
  case ErrorKind::kConflict:
    return "Conflict";
  case ErrorKind::kNonFastForward:
    return "NonFastForward";
  case ErrorKind::kInvalidInput:
    return "InvalidInput";
  case ErrorKind::kTimeout:
    return "Timeout";
  case ErrorKind::kCancelled:
    return "Cancelled";
  case ErrorKind::kInternal:
    return "Internal";
  }
  return "Internal";
}

} // namespace capstan::git

namespace capstan::git::detail {

void ensure_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    git_libgit2_opts(GIT_OPT_SET_USER_AGENT, "capstan-git");
    register_socket_stream();
  });
}

namespace {

bool contains(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

ErrorKind classify(int code, int klass, const std::string& msg) {
  switch (code) {
  case GIT_EAUTH:
    return ErrorKind::kAuthentication;
  case GIT_ECERTIFICATE:
    return ErrorKind::kConnectivity;
  case GIT_ENONFASTFORWARD:
    return ErrorKind::kNonFastForward;
  case GIT_ECONFLICT:
  case GIT_EMERGECONFLICT:
  case GIT_EUNMERGED:
  case GIT_EMODIFIED:
  case GIT_EEXISTS:
  case GIT_ELOCKED:
    return ErrorKind::kConflict;
  case GIT_EINVALIDSPEC:
  case GIT_EINVALID:
  case GIT_EAMBIGUOUS:
  case GIT_EBAREREPO:
    return ErrorKind::kInvalidInput;
  case GIT_EUSER:
    return ErrorKind::kCancelled;
  case GIT_ENOTFOUND:
  case GIT_EUNBORNBRANCH:
    return ErrorKind::kNotFound;
  default:
    break;
  }
  const bool network = klass == GIT_ERROR_NET || klass == GIT_ERROR_SSL || klass == GIT_ERROR_SSH ||
                       klass == GIT_ERROR_HTTP || klass == GIT_ERROR_OS;
  if (contains(msg, "401") || contains(msg, "403") || contains(msg, "authentication") ||
      contains(msg, "Authentication") || contains(msg, "Permission denied (publickey")) {
    return ErrorKind::kAuthentication;
  }
  if (contains(msg, "404") || contains(msg, "not found") || contains(msg, "no such repository") ||
      contains(msg, "not exported") || contains(msg, "does not appear to be a git repository") ||
      contains(msg, "could not find repository") || contains(msg, "failed to resolve path")) {
    return ErrorKind::kNotFound;
  }
  if (network || contains(msg, "failed to connect") || contains(msg, "failed to resolve") ||
      contains(msg, "Connection refused") || contains(msg, "timed out")) {
    return ErrorKind::kConnectivity;
  }
  return ErrorKind::kInternal;
}

std::string mask(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    if (secret.size() < 3) continue; // masking "a" everywhere would garble the message
    for (std::size_t pos = text.find(secret); pos != std::string::npos;
         pos = text.find(secret, pos)) {
      text.replace(pos, secret.size(), "***");
      pos += 3;
    }
  }
  return text;
}

// Removes user-info from every URL inside a message.
std::string redact_urls(std::string text) {
  for (std::size_t pos = text.find("://"); pos != std::string::npos;
       pos = text.find("://", pos + 3)) {
    const std::size_t start = pos + 3;
    std::size_t end = start;
    while (end < text.size() && text[end] != '/' && text[end] != ' ' && text[end] != '\'' &&
           text[end] != '"') {
      ++end;
    }
    const std::size_t at = text.rfind('@', end);
    if (at != std::string::npos && at >= start && at < end) text.erase(start, at + 1 - start);
  }
  return text;
}

} // namespace

void throw_error(int code, const std::string& context, const std::vector<std::string>& secrets) {
  const git_error* e = git_error_last();
  std::string msg = e != nullptr && e->message != nullptr ? e->message : "unknown error";
  const int klass = e != nullptr ? e->klass : 0;
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  const ErrorKind kind = classify(code, klass, msg);
  throw Error(kind, redact_urls(mask(context + ": " + msg, secrets)));
}

std::string oid_hex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

git_oid parse_oid(const std::string& hex) {
  git_oid oid;
  if (hex.size() != GIT_OID_HEXSZ || git_oid_fromstr(&oid, hex.c_str()) < 0) {
    throw Error(ErrorKind::kInvalidInput, "not a commit id: '" + hex + "'");
  }
  return oid;
}

SignatureHandle make_signature(const Signature& s) {
  git_signature* out = nullptr;
  const std::string name = s.name.empty() ? "Capstan" : s.name;
  const std::string email = s.email.empty() ? "capstan@localhost" : s.email;
  int rc = s.time ? git_signature_new(&out, name.c_str(), email.c_str(), *s.time, s.offset_minutes)
                  : git_signature_now(&out, name.c_str(), email.c_str());
  if (rc < 0) {
    throw Error(ErrorKind::kInvalidInput, "invalid signature '" + name + " <" + email + ">'");
  }
  return SignatureHandle(out);
}

Signature from_signature(const git_signature* s) {
  Signature out;
  if (s == nullptr) return out;
  out.name = s->name != nullptr ? s->name : "";
  out.email = s->email != nullptr ? s->email : "";
  out.time = s->when.time;
  out.offset_minutes = s->when.offset;
  return out;
}

// ---- revisions and paths

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

// ---- connect timeout

namespace {

struct Endpoint {
  std::string scheme;
  std::string host;
  std::string port;
};

std::optional<Endpoint> endpoint_of(const std::string& url) {
  Endpoint ep;
  std::string rest;
  const std::size_t sep = url.find("://");
  if (sep == std::string::npos) {
    // scp-like user@host:path is ssh; anything else is a local path.
    const std::size_t colon = url.find(':');
    const std::size_t slash = url.find('/');
    if (colon == std::string::npos || (slash != std::string::npos && slash < colon)) {
      return std::nullopt;
    }
    ep.scheme = "ssh";
    rest = url.substr(0, colon);
  } else {
    ep.scheme = url.substr(0, sep);
    rest = url.substr(sep + 3);
    rest = rest.substr(0, rest.find('/'));
  }
  std::transform(ep.scheme.begin(), ep.scheme.end(), ep.scheme.begin(), ::tolower);
  if (ep.scheme == "git+ssh" || ep.scheme == "ssh+git") ep.scheme = "ssh";
  const std::size_t at = rest.rfind('@');
  if (at != std::string::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest[0] == '[') { // [v6]:port
    const std::size_t close = rest.find(']');
    if (close == std::string::npos) return std::nullopt;
    ep.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') ep.port = rest.substr(close + 2);
  } else {
    const std::size_t colon = rest.rfind(':');
    ep.host = rest.substr(0, colon);
    if (colon != std::string::npos) ep.port = rest.substr(colon + 1);
  }
  if (ep.port.empty()) {
    if (ep.scheme == "git") ep.port = "9418";
    if (ep.scheme == "http") ep.port = "80";
    if (ep.scheme == "https") ep.port = "443";
    if (ep.scheme == "ssh") ep.port = "22";
  }
  if (ep.host.empty() || ep.port.empty()) return std::nullopt;
  return ep;
}

bool proxied(const std::string& scheme) {
  for (const char* var :
       {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0' && (scheme == "http" || scheme == "https")) return true;
  }
  return false;
}

// Outcome of a non-blocking connect: true when it finished (connected or refused) in time.
bool connects_in_time(const addrinfo* ai, std::chrono::milliseconds timeout) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) return true; // let libgit2 report it
  int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
  bool finished = rc == 0 || errno != EINPROGRESS;
  if (!finished) {
    pollfd p{fd, POLLOUT, 0};
    finished = ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
  }
  ::close(fd);
  return finished;
}

} // namespace

void probe_connect(const RemoteOptions& options) {
  if (options.connect_timeout.count() <= 0) return;
  auto ep = endpoint_of(options.url);
  if (!ep || (ep->scheme != "git" && ep->scheme != "http" && ep->scheme != "https" &&
              ep->scheme != "ssh")) {
    return;
  }
  if (proxied(ep->scheme)) return;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(ep->host.c_str(), ep->port.c_str(), &hints, &res) != 0) return; // libgit2 says
  bool any = false;
  for (const addrinfo* ai = res; ai != nullptr && !any; ai = ai->ai_next) {
    any = connects_in_time(ai, options.connect_timeout);
  }
  ::freeaddrinfo(res);
  if (!any) {
    throw Error(ErrorKind::kConnectivity,
                "connect to " + redact_url(options.url) + ": timed out after " +
                    std::to_string(options.connect_timeout.count()) + " ms (" + ep->host + ":" +
                    ep->port + " does not answer)");
  }
}

// ---- remote callbacks

namespace {

bool is_cancelled(RemoteSession* s) {
  if (s->options.cancelled && s->options.cancelled()) {
    s->cancelled = true;
    return true;
  }
  return false;
}

int refuse_auth(RemoteSession* s, const std::string& why) {
  s->auth_failed = true;
  s->auth_detail = why;
  git_error_set_str(GIT_ERROR_NET, why.c_str());
  return GIT_EAUTH;
}

// libssh2 asks for the signature of an RSA user authentication request (see ssh_rsa.h).
int sign_rsa(LIBSSH2_SESSION* /*session*/, unsigned char** sig, size_t* sig_len,
             const unsigned char* data, size_t data_len, void** abstract) {
  const auto* key = static_cast<const RsaSshKey*>(*abstract);
  const std::string signature = key->sign(data, data_len);
  if (signature.empty()) return -1;
  // libgit2 opens libssh2 sessions with the default allocator: libssh2 free()s this.
  *sig = static_cast<unsigned char*>(std::malloc(signature.size()));
  if (*sig == nullptr) return -1;
  std::memcpy(*sig, signature.data(), signature.size());
  *sig_len = signature.size();
  return 0;
}

int on_credentials(git_credential** out, const char* /*url*/, const char* username_from_url,
                   unsigned int allowed, void* payload) {
  auto* s = static_cast<RemoteSession*>(payload);
  if (is_cancelled(s)) return GIT_EUSER;
  const Credentials& c = s->options.credentials;
  ++s->credential_calls;
  std::string user =
      username_from_url != nullptr && *username_from_url != '\0' ? username_from_url : c.username;
  // libgit2 asks again after the server refused what we gave; a second ask means refused.
  if (s->credential_calls > 4) return refuse_auth(s, "credentials were rejected");

  if ((allowed & GIT_CREDENTIAL_SSH_KEY) != 0U && (!c.ssh_private_key.empty() || c.use_ssh_agent)) {
    if (s->credential_calls > 2 && !user.empty()) {
      return refuse_auth(s, "the SSH key was rejected by the server");
    }
    if (user.empty()) user = "git";
    if (s->rsa_key && (allowed & GIT_CREDENTIAL_SSH_CUSTOM) != 0U) {
      const std::string& blob = s->rsa_key->public_blob();
      return git_credential_ssh_custom_new(out, user.c_str(), blob.data(), blob.size(), sign_rsa,
                                           s->rsa_key.get());
    }
    if (!c.ssh_private_key.empty()) {
      const char* pub = c.ssh_public_key.empty() ? nullptr : c.ssh_public_key.c_str();
      int rc = git_credential_ssh_key_memory_new(out, user.c_str(), pub, c.ssh_private_key.c_str(),
                                                 c.ssh_passphrase.c_str());
      if (rc == 0) return 0;
      // libssh2 built without in-memory keys: use a private temporary file (mode 0600).
      if (s->key_file.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        std::string templ =
            std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/capstan-sshkey-XXXXXX";
        int fd = ::mkstemp(templ.data());
        if (fd < 0) return refuse_auth(s, "cannot write the SSH key to a temporary file");
        ::fchmod(fd, 0600);
        const std::string& key = c.ssh_private_key;
        bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size());
        ::close(fd);
        s->key_file = templ;
        if (!ok) return refuse_auth(s, "cannot write the SSH key to a temporary file");
      }
      return git_credential_ssh_key_new(out, user.c_str(), nullptr, s->key_file.c_str(),
                                        c.ssh_passphrase.c_str());
    }
    return git_credential_ssh_key_from_agent(out, user.c_str());
  }
  if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) != 0U) {
    if (c.password.empty() && c.username.empty() && user.empty()) {
      return refuse_auth(s, "the server requires credentials and none are configured");
    }
    if (s->credential_calls > 1) {
      return refuse_auth(s, "the server rejected the username/password (or token)");
    }
    return git_credential_userpass_plaintext_new(out, user.empty() ? "git" : user.c_str(),
                                                 c.password.c_str());
  }
  if ((allowed & GIT_CREDENTIAL_USERNAME) != 0U) {
    return git_credential_username_new(out, user.empty() ? "git" : user.c_str());
  }
  if ((allowed & GIT_CREDENTIAL_SSH_KEY) != 0U) {
    return refuse_auth(s, "the server requires an SSH key and none is configured");
  }
  return refuse_auth(s, "the server asks for an authentication method that is not configured");
}

std::string base64_decode(const std::string& in) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0;
  int bits = -8;
  for (char ch : in) {
    if (ch == '=') break;
    auto pos = chars.find(ch);
    if (pos == std::string::npos) continue;
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

bool host_matches(const std::string& patterns, const std::string& host) {
  std::size_t start = 0;
  while (start <= patterns.size()) {
    std::size_t comma = patterns.find(',', start);
    std::string p =
        patterns.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (p == host || p == "*") return true;
    if (p.rfind("[" + host + "]", 0) == 0) return true; // [host]:port
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return false;
}

// Whether a server certificate (DER) is issued by one of the PEM CAs, valid now, and for host.
bool signed_by_extra_ca(const git_cert_x509* cert, const std::string& ca_pem,
                        const std::string& host) {
  const auto* der = static_cast<const unsigned char*>(cert->data);
  X509* leaf = d2i_X509(nullptr, &der, static_cast<long>(cert->len));
  if (leaf == nullptr) return false;
  bool ok = false;
  const bool host_ok = X509_check_host(leaf, host.c_str(), host.size(), 0, nullptr) == 1 ||
                       X509_check_ip_asc(leaf, host.c_str(), 0) == 1;
  const bool time_ok = X509_cmp_current_time(X509_get0_notBefore(leaf)) < 0 &&
                       X509_cmp_current_time(X509_get0_notAfter(leaf)) > 0;
  BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  while (bio != nullptr && host_ok && time_ok && !ok) {
    X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (ca == nullptr) break;
    EVP_PKEY* key = X509_get0_pubkey(ca);
    ok = key != nullptr && X509_check_issued(ca, leaf) == X509_V_OK && X509_verify(leaf, key) == 1;
    X509_free(ca);
  }
  if (bio != nullptr) BIO_free(bio);
  X509_free(leaf);
  return ok;
}

int on_certificate(git_cert* cert, int valid, const char* host, void* payload) {
  auto* s = static_cast<RemoteSession*>(payload);
  const std::string hostname = host != nullptr ? host : "";
  if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
    if (s->options.insecure_skip_host_key_check) return 0;
    if (s->options.ssh_known_hosts.empty()) return GIT_PASSTHROUGH;
    const auto* hk = reinterpret_cast<git_cert_hostkey*>(cert);
    if ((hk->type & GIT_CERT_SSH_RAW) == 0) {
      git_error_set_str(GIT_ERROR_SSH, "the SSH server's raw host key is not available to check");
      return GIT_ECERTIFICATE;
    }
    const std::string raw(hk->hostkey, hk->hostkey_len);
    std::size_t pos = 0;
    const std::string& kh = s->options.ssh_known_hosts;
    while (pos < kh.size()) {
      std::size_t eol = kh.find('\n', pos);
      std::string line = kh.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
      pos = eol == std::string::npos ? kh.size() : eol + 1;
      if (line.empty() || line[0] == '#') continue;
      char hosts[1024];
      char type[128];
      char key[8192];
      if (std::sscanf(line.c_str(), "%1023s %127s %8191s", hosts, type, key) != 3) continue;
      if (host_matches(hosts, hostname) && base64_decode(key) == raw) return 0;
    }
    git_error_set_str(GIT_ERROR_SSH,
                      ("the SSH host key of " + hostname + " is not in the known hosts").c_str());
    return GIT_ECERTIFICATE;
  }
  if (valid != 0 || s->options.insecure_skip_tls_verify) return 0;
  if (cert->cert_type == GIT_CERT_X509 && !s->options.tls_ca_pem.empty() &&
      signed_by_extra_ca(reinterpret_cast<git_cert_x509*>(cert), s->options.tls_ca_pem, hostname)) {
    return 0;
  }
  git_error_set_str(GIT_ERROR_SSL,
                    ("the TLS certificate of " + hostname + " is not trusted").c_str());
  return GIT_ECERTIFICATE;
}

int on_transfer(const git_indexer_progress* /*stats*/, void* payload) {
  return is_cancelled(static_cast<RemoteSession*>(payload)) ? GIT_EUSER : 0;
}

int on_sideband(const char* /*str*/, int /*len*/, void* payload) {
  return is_cancelled(static_cast<RemoteSession*>(payload)) ? GIT_EUSER : 0;
}

int on_push_transfer(unsigned int /*current*/, unsigned int /*total*/, size_t /*bytes*/,
                     void* payload) {
  return is_cancelled(static_cast<RemoteSession*>(payload)) ? GIT_EUSER : 0;
}

int on_push_update(const char* refname, const char* status, void* payload) {
  auto* s = static_cast<RemoteSession*>(payload);
  if (status != nullptr) s->rejected.emplace_back(refname != nullptr ? refname : "", status);
  return 0;
}

int on_update_tips(const char* refname, const git_oid* /*a*/, const git_oid* b, void* payload) {
  auto* s = static_cast<RemoteSession*>(payload);
  s->updated.emplace_back(refname != nullptr ? refname : "",
                          b == nullptr || git_oid_is_zero(b) != 0 ? "" : oid_hex(*b));
  return 0;
}

} // namespace

RemoteSession::RemoteSession(const RemoteOptions& opts) : options(opts) {
  ensure_init();
  // Read an RSA key before connecting, so an unreadable one fails early and plainly.
  const Credentials& c = opts.credentials;
  if (!c.ssh_private_key.empty()) {
    try {
      rsa_key = RsaSshKey::load(c.ssh_private_key, c.ssh_passphrase);
    } catch (const Error& e) {
      throw Error(e.kind(), "SSH key for " + redact_url(opts.url) + ": " + e.what());
    }
  }
  probe_connect(opts);
}

RemoteSession::~RemoteSession() {
  if (!key_file.empty()) ::unlink(key_file.c_str());
}

git_remote_callbacks RemoteSession::callbacks() {
  git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
  cb.credentials = on_credentials;
  cb.certificate_check = on_certificate;
  cb.transfer_progress = on_transfer;
  cb.sideband_progress = on_sideband;
  cb.push_transfer_progress = on_push_transfer;
  cb.push_update_reference = on_push_update;
  cb.update_tips = on_update_tips;
  cb.payload = this;
  return cb;
}

git_proxy_options RemoteSession::proxy() const {
  git_proxy_options p = GIT_PROXY_OPTIONS_INIT;
  p.type = GIT_PROXY_AUTO; // honours http_proxy/https_proxy like git does
  return p;
}

std::vector<std::string> RemoteSession::secrets() const {
  const Credentials& c = options.credentials;
  return {c.password, c.ssh_private_key, c.ssh_passphrase};
}

void RemoteSession::fail(int code, const std::string& what) {
  const std::string where = what + " " + redact_url(options.url);
  if (cancelled) throw Error(ErrorKind::kCancelled, where + ": cancelled");
  if (timed_out) {
    const git_error* e = git_error_last();
    throw Error(ErrorKind::kTimeout,
                where + ": " + (e != nullptr && e->message != nullptr ? e->message : "timed out"));
  }
  if (auth_failed) throw Error(ErrorKind::kAuthentication, where + ": " + auth_detail);
  throw_error(code, where, secrets());
}

git_strarray headers_of(RemoteSession& session) {
  session.header_ptrs.clear();
  for (const auto& h : session.options.http_headers) session.header_ptrs.push_back(h.c_str());
  git_strarray arr;
  arr.strings = const_cast<char**>(session.header_ptrs.data());
  arr.count = session.header_ptrs.size();
  return arr;
}

} // namespace capstan::git::detail
