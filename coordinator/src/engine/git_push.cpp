// GitHub and GitLab push payloads.
#include "engine/git_push.h"

#include <algorithm>
#include <stdexcept>

namespace capstan::engine {

using nlohmann::json;

namespace {

std::string text(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

void add_url(GitPush& p, const std::string& url) {
  if (!url.empty()) p.repositories.insert(normalize_repo_url(url));
}

void require(const GitPush& p, const char* what) {
  if (p.ref.empty()) throw std::invalid_argument(std::string(what) + " push without 'ref'");
  if (p.repositories.empty()) {
    throw std::invalid_argument(std::string(what) + " push without a repository URL");
  }
}

bool is_sha(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

} // namespace

std::string normalize_repo_url(const std::string& url) {
  std::string s = url;
  auto scheme = s.find("://");
  if (scheme != std::string::npos) {
    s = s.substr(scheme + 3);
  } else if (auto colon = s.find(':'); colon != std::string::npos && s.find('/') > colon) {
    s[colon] = '/'; // scp-like: git@host:org/repo
  }
  auto slash = s.find('/');
  auto at = s.find('@');
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) s = s.substr(at + 1);
  slash = s.find('/');
  std::transform(s.begin(),
                 slash == std::string::npos ? s.end() : s.begin() + static_cast<long>(slash),
                 s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (!s.empty() && s.back() == '/') s.pop_back();
  if (s.size() > 4 && s.compare(s.size() - 4, 4, ".git") == 0) s.resize(s.size() - 4);
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::optional<GitPush> parse_github_push(const std::string& event, const json& body) {
  if (event != "push") return std::nullopt;
  GitPush p;
  p.ref = text(body, "ref");
  p.after = text(body, "after");
  const json repo = body.value("repository", json::object());
  for (const char* k : {"clone_url", "ssh_url", "git_url", "html_url", "svn_url", "url"}) {
    add_url(p, text(repo, k));
  }
  p.default_branch = text(repo, "default_branch");
  if (p.default_branch.empty()) p.default_branch = text(repo, "master_branch");
  require(p, "GitHub");
  return p;
}

std::optional<GitPush> parse_gitlab_push(const std::string& event, const json& body) {
  if (event != "Push Hook" && event != "Tag Push Hook" && event != "System Hook") {
    return std::nullopt;
  }
  const std::string kind = text(body, "object_kind");
  if (kind != "push" && kind != "tag_push") return std::nullopt;
  GitPush p;
  p.ref = text(body, "ref");
  p.after = text(body, "after");
  const json project = body.value("project", json::object());
  for (const char* k : {"git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url"}) {
    add_url(p, text(project, k));
  }
  const json repo = body.value("repository", json::object());
  for (const char* k : {"git_http_url", "git_ssh_url", "url", "homepage"})
    add_url(p, text(repo, k));
  p.default_branch = text(project, "default_branch");
  require(p, "GitLab");
  return p;
}

bool push_concerns(const GitPush& push, const std::string& target_revision) {
  std::string rev = target_revision;
  if (is_sha(rev)) return false; // pinned to a commit: a push does not move it
  const std::string heads = "refs/heads/";
  const std::string tags = "refs/tags/";
  if (push.ref.rfind(heads, 0) == 0) {
    const std::string branch = push.ref.substr(heads.size());
    if (rev.empty() || rev == "HEAD")
      return push.default_branch.empty() || branch == push.default_branch;
    return rev == branch || rev == push.ref;
  }
  if (push.ref.rfind(tags, 0) == 0) {
    const std::string tag = push.ref.substr(tags.size());
    return rev == tag || rev == push.ref;
  }
  return rev == push.ref;
}

} // namespace capstan::engine
