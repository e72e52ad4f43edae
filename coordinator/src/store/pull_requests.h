// Pull requests GitOps steps opened or changed. For the `local` provider these records are the
// pull requests themselves; for GitHub and GitLab they mirror what the step saw. See
// docs/gitops.md for how they travel with tasks and results.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace capstan::store {

struct PullRequestRecord {
  std::string repository; // the repository URL without credentials
  std::int64_t number = 0;
  std::string provider = "local"; // local | github | gitlab
  std::string connector;
  std::string title;
  std::string body;
  std::string source;
  std::string target;
  std::string state = "open"; // open | merged | closed
  std::string url;
  std::string head_sha;
  std::string merge_commit;
  std::string commit_id; // the commit the opening step made
  nlohmann::json comments = nlohmann::json::array();
  std::string execution_id; // the execution that opened it
  std::string step;         // "stage.step" that opened it
  std::string updated_by;   // "execution stage.step" of the last change
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
  // Why a stored value of the row cannot be read (damaged on disk), naming the column; the
  // record then holds what could be read.
  std::string unreadable;
};

struct PullRequestFilter {
  std::string repository;
  std::string state;
  std::string execution_id;
  std::int64_t number = 0; // 0: any
  int limit = 500;
};

// The record as the API, the CLI and the gitops plugin read it (camelCase).
nlohmann::json to_json(const PullRequestRecord& record);

// A record a step reported (StepResult.records, kind "PullRequest"): checked and converted.
// Throws std::invalid_argument saying what is wrong.
PullRequestRecord pull_request_from_step(const nlohmann::json& reported);

} // namespace capstan::store
