// Where pull requests live: a provider interface with GitHub (REST v3), GitLab (REST v4) and
// local (a branch on any Git remote plus a record kept by Capstan) implementations.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "capstan/git/repository.h"

namespace capstan::scm {

enum class ErrorKind {
  kAuthentication, // 401, or 403 that is not a rate limit: the token is wrong or lacks rights
  kNotFound,       // 404: repository, pull request or branch (or the token cannot see it)
  kValidation,     // 422: the request was refused; the message carries the provider's reasons
  kNotMergeable,   // 405/406 (or local conflicts): the pull request cannot be merged as asked
  kConflict,       // 409: the head moved since it was read (sha mismatch)
  kRateLimited,    // the limit resets later than the caller allows waiting
  kConnectivity,   // DNS, refused connection, TLS failure
  kTimeout,        // the request (or a wait) exceeded its deadline
  kCancelled,
  kInvalidInput, // bad configuration or arguments
  kInternal,     // 5xx and anything unexpected
};

const char* to_string(ErrorKind kind);

// Never carries the token. http_status is 0 when no response was received.
class Error : public std::runtime_error {
public:
  Error(ErrorKind kind, const std::string& message, int http_status = 0)
      : std::runtime_error(message), kind_(kind), status_(http_status) {}
  ErrorKind kind() const { return kind_; }
  int http_status() const { return status_; }

private:
  ErrorKind kind_;
  int status_;
};

enum class PrState { kOpen, kClosed, kMerged };
const char* to_string(PrState state); // "open", "closed", "merged"

struct PullRequest {
  long number = 0; // GitHub number, GitLab iid, local number
  std::string title;
  std::string body;
  std::string source; // head branch
  std::string target; // base branch
  PrState state = PrState::kOpen;
  std::string url;          // web page (GitHub html_url, GitLab web_url)
  std::string head_sha;     // the source branch's commit
  std::string merge_commit; // when merged: the commit the target got (merge, squash or tip)
};

struct CreateOptions {
  std::string title;
  std::string body;
  std::string source;
  std::string target;
  bool draft = false;
};

struct MergeOptions {
  git::MergeMethod method = git::MergeMethod::kMerge; // merge | squash | rebase
  bool delete_source_branch = false;
  std::string commit_title;   // default: the provider's
  std::string commit_message; // default: the provider's
  std::string expected_head;  // merge only if the source is still at this commit
};

class Provider {
public:
  virtual ~Provider() = default;
  virtual std::string name() const = 0; // "github", "gitlab", "local"
  virtual PullRequest create(const CreateOptions& options) = 0;
  virtual PullRequest get(long number) = 0;
  // Merges and returns the pull request as it is afterwards (state merged, merge_commit set).
  virtual PullRequest merge(long number, const MergeOptions& options) = 0;
  virtual PullRequest close(long number) = 0;
  virtual void comment(long number, const std::string& body) = 0;
  // Pull requests from this source branch, newest first; state filters when set.
  virtual std::vector<PullRequest> list_by_branch(const std::string& source,
                                                  std::optional<PrState> state = std::nullopt) = 0;
};

// Settings of the github and gitlab providers (what a connector holds).
struct HttpProviderConfig {
  // GitHub: "https://api.github.com" (default) or "https://HOST/api/v3" (Enterprise).
  // GitLab: "https://gitlab.com/api/v4" (default) or "https://HOST/api/v4".
  std::string api_url;
  // GitHub "owner/repo"; GitLab the project's full path "group/sub/project" or its numeric id.
  std::string repository;
  std::string token; // sent as a header, never logged
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  // Longest total wait for rate-limit resets (and GitLab rebases) before giving up with
  // kRateLimited / kTimeout.
  std::chrono::milliseconds max_wait{std::chrono::seconds(60)};
  std::string ca_file; // PEM bundle for self-hosted servers; empty: the system's
  bool insecure_skip_tls_verify = false;
  std::function<bool()> cancelled;
  std::function<void(const std::string&)> log; // progress lines (waits), never secrets
};

std::unique_ptr<Provider> make_github(const HttpProviderConfig& config);
std::unique_ptr<Provider> make_gitlab(const HttpProviderConfig& config);

} // namespace capstan::scm
