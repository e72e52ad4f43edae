// An application's deployment history, as Argo CD's status.history: one entry per sync that
// succeeded (id, revision, times, who started it), newest last, at most revisionHistoryLimit
// entries kept. An operation record also describes the last operation, whatever its outcome
// (status.operationState).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

namespace capstan::apps {

struct OperationRecord {
  std::int64_t id = 0;     // increasing, never reused
  std::string revision;    // the commit synced
  std::string started_at;  // RFC 3339
  std::string finished_at; // RFC 3339
  std::string phase;       // Running (operation state only), Succeeded, Failed, Error
  std::string message;
  std::string initiated_by; // "automated", a user, a pipeline
  bool prune = false;
  bool dry_run = false;
  nlohmann::json resources = nlohmann::json::array(); // per-object results
  nlohmann::json to_json() const;
  static OperationRecord from_json(const nlohmann::json& value);
};

class OperationHistory {
public:
  explicit OperationHistory(int limit = 10) : limit_(limit < 0 ? 0 : limit) {}

  // Appends the record (giving it the next id) and drops the oldest beyond the limit.
  const OperationRecord& add(OperationRecord record);
  void set_limit(int limit);
  int limit() const { return limit_; }
  const std::deque<OperationRecord>& entries() const { return entries_; }
  std::optional<OperationRecord> find(std::int64_t id) const;
  std::optional<OperationRecord> last() const;

  nlohmann::json to_json() const;
  static OperationHistory from_json(const nlohmann::json& value, int limit);

private:
  void trim();
  int limit_;
  std::int64_t next_id_ = 0;
  std::deque<OperationRecord> entries_;
};

} // namespace capstan::apps
