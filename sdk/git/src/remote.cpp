// Remotes: ls-remote without fetching, and URL helpers.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "libgit2.h"

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
