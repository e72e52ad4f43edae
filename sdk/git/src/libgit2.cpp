// libgit2 glue: one-time init, error mapping, credentials and certificate callbacks.
#include "libgit2.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

namespace capstan::git {

using detail::RemoteHandle;
using detail::RemoteSession;

std::string redact_url(const std::string& url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url; // scp-like user@host:path has no secret
  const std::size_t start = scheme + 3;
  const std::size_t slash = url.find('/', start);
  const std::size_t at = url.rfind('@', slash == std::string::npos ? url.size() : slash);
  if (at == std::string::npos || at < start) return url;
  return url.substr(0, start) + url.substr(at + 1);
}

std::string url_key(const std::string& url) {
  std::string u = redact_url(url);
  std::size_t scheme = u.find("://");
  std::string rest = scheme == std::string::npos ? u : u.substr(scheme + 3);
  std::string scheme_name = scheme == std::string::npos ? "" : u.substr(0, scheme);
  std::transform(scheme_name.begin(), scheme_name.end(), scheme_name.begin(), ::tolower);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.size() > 4 && rest.compare(rest.size() - 4, 4, ".git") == 0)
    rest.resize(rest.size() - 4);
  // FNV-1a 64: stable across builds, unlike std::hash.
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : scheme_name + "://" + rest) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  std::string slug;
  for (char ch : rest) {
    slug.push_back(
        std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '.' || ch == '-' ? ch : '_');
  }
  if (slug.size() > 60) slug = slug.substr(slug.size() - 60);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return slug + "-" + std::string(hex, 12);
}

std::vector<RemoteRef> ls_remote(const RemoteOptions& options) {
  RemoteSession session(options);
  git_remote* raw = nullptr;
  int rc = git_remote_create_detached(&raw, options.url.c_str());
  if (rc < 0) session.fail(rc, "ls-remote");
  RemoteHandle remote(raw);
  git_remote_callbacks cb = session.callbacks();
  git_proxy_options proxy = session.proxy();
  git_strarray headers = detail::headers_of(session);
  rc = git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &cb, &proxy, &headers);
  if (rc < 0) session.fail(rc, "ls-remote");
  const git_remote_head** heads = nullptr;
  std::size_t count = 0;
  rc = git_remote_ls(&heads, &count, remote.get());
  if (rc < 0) session.fail(rc, "ls-remote");
  std::vector<RemoteRef> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    RemoteRef ref;
    ref.name = heads[i]->name;
    ref.oid = detail::oid_hex(heads[i]->oid);
    if (heads[i]->symref_target != nullptr) ref.symref_target = heads[i]->symref_target;
    out.push_back(std::move(ref));
  }
  git_remote_disconnect(remote.get());
  return out;
}

std::optional<std::string> remote_head(const RemoteOptions& remote, const std::string& ref) {
  const auto refs = ls_remote(remote);
  std::vector<std::string> candidates;
  if (ref == "HEAD" || ref.rfind("refs/", 0) == 0) {
    candidates = {ref};
  } else {
    candidates = {"refs/heads/" + ref, "refs/tags/" + ref};
  }
  for (const auto& want : candidates) {
    // A peeled tag ("refs/tags/v1^{}") names the commit; prefer it over the tag object.
    for (const auto& r : refs) {
      if (r.name == want + "^{}") return r.oid;
    }
    for (const auto& r : refs) {
      if (r.name == want) return r.oid;
    }
  }
  return std::nullopt;
}

} // namespace capstan::git
