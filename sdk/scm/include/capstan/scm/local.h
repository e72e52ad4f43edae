// The `local` provider: a pull request is a source branch pushed to any Git remote plus a record
// (number, title, source, target, state, merge commit) in a store. The coordinator keeps the
// records in production; MemoryPrStore and FilePrStore serve tests and single-process use.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <mutex>

#include "capstan/git/cache.h"
#include "capstan/scm/provider.h"

namespace capstan::scm {

struct PrRecord {
  PullRequest pr;
  std::vector<std::string> comments;
};

// A record as JSON: {number, title, body, source, target, state, url, headSha, mergeCommit,
// comments} (the shape stores, steps and the coordinator exchange). record_from_json fills
// missing fields with defaults.
nlohmann::json record_to_json(const PrRecord& record);
PrRecord record_from_json(const nlohmann::json& json);
PrState parse_state(const std::string& text); // "open" (default), "closed", "merged"

// Records of one or more repositories, keyed by a repository id (e.g. the connector's).
// Implementations must be safe to call from several threads.
class PrStore {
public:
  virtual ~PrStore() = default;
  // Stores a new record, giving it the repository's next number (1, 2, ...); returns it.
  virtual PrRecord create(const std::string& repository, PrRecord record) = 0;
  virtual std::optional<PrRecord> get(const std::string& repository, long number) = 0;
  // Replaces a record; fails (returns false) when it does not exist.
  virtual bool update(const std::string& repository, const PrRecord& record) = 0;
  virtual std::vector<PrRecord> list(const std::string& repository) = 0;
};

class MemoryPrStore : public PrStore {
public:
  PrRecord create(const std::string& repository, PrRecord record) override;
  std::optional<PrRecord> get(const std::string& repository, long number) override;
  bool update(const std::string& repository, const PrRecord& record) override;
  std::vector<PrRecord> list(const std::string& repository) override;

private:
  std::mutex mutex_;
  std::map<std::string, std::map<long, PrRecord>> records_;
};

// One JSON file, locked (flock) around every read-modify-write, so several processes can share
// it; writes go to a temporary file renamed into place.
class FilePrStore : public PrStore {
public:
  explicit FilePrStore(std::filesystem::path file);
  PrRecord create(const std::string& repository, PrRecord record) override;
  std::optional<PrRecord> get(const std::string& repository, long number) override;
  bool update(const std::string& repository, const PrRecord& record) override;
  std::vector<PrRecord> list(const std::string& repository) override;

private:
  std::filesystem::path file_;
  std::mutex mutex_;
};

struct LocalProviderConfig {
  git::RemoteOptions remote;
  std::string repository;      // key in the store (default: the remote URL without credentials)
  git::Signature merger;       // author/committer of merge, squash and rebased commits
  git::RetryPolicy push_retry; // when the target moves during a merge
};

class LocalProvider : public Provider {
public:
  LocalProvider(LocalProviderConfig config, git::RepoCache& cache, PrStore& store);
  std::string name() const override { return "local"; }
  PullRequest create(const CreateOptions& options) override;
  PullRequest get(long number) override;
  PullRequest merge(long number, const MergeOptions& options) override;
  PullRequest close(long number) override;
  void comment(long number, const std::string& body) override;
  std::vector<PullRequest> list_by_branch(const std::string& source,
                                          std::optional<PrState> state = std::nullopt) override;

private:
  PrRecord record(long number);
  LocalProviderConfig config_;
  git::RepoCache& cache_;
  PrStore& store_;
};

} // namespace capstan::scm
