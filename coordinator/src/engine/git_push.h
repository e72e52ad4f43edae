// Push notifications from Git hosts (GitHub and GitLab webhooks): which repository and ref
// moved, and which applications that concerns.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>

namespace capstan::engine {

struct GitPush {
  std::set<std::string> repositories; // normalize_repo_url() of every URL the payload names
  std::string ref;                    // "refs/heads/main", "refs/tags/v1"
  std::string default_branch;         // "" when the payload does not say
  std::string after;                  // the new commit
};

// One spelling per repository: no scheme, no user-info, no ".git" or trailing "/", lower-case
// host; "git@host:path" becomes "host/path".
std::string normalize_repo_url(const std::string& url);

// A push event's payload; nullopt when it is not a push (a ping, another event). Throws
// std::invalid_argument naming the field when a push payload lacks what it needs.
std::optional<GitPush> parse_github_push(const std::string& event, const nlohmann::json& body);
std::optional<GitPush> parse_gitlab_push(const std::string& event, const nlohmann::json& body);

// Whether an application following `target_revision` must look again after this push.
bool push_concerns(const GitPush& push, const std::string& target_revision);

} // namespace capstan::engine
