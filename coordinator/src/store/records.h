// What the store keeps: applied objects, executions with their stages and steps, logs, delegates.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace capstan::store {

// Now, as every stored time is kept: milliseconds since the Unix epoch.
inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Statuses, as the API and CLI show them.
namespace status {
inline constexpr const char* kNotStarted = "NotStarted";
inline constexpr const char* kQueued = "Queued";
inline constexpr const char* kDispatched = "Dispatched";
inline constexpr const char* kRunning = "Running";
inline constexpr const char* kSucceeded = "Succeeded";
inline constexpr const char* kFailed = "Failed";
inline constexpr const char* kAborted = "Aborted";
inline constexpr const char* kSkipped = "Skipped";
// Waiting on the coordinator's side: for approvers, a manual intervention, execution inputs, or
// time (a Wait step, a retry's interval).
inline constexpr const char* kApprovalWaiting = "ApprovalWaiting";
inline constexpr const char* kInterventionWaiting = "InterventionWaiting";
inline constexpr const char* kInputWaiting = "InputWaiting";
inline constexpr const char* kWaiting = "Waiting";
// Ended: failed but ignored by a failure strategy; an approval that timed out or was rejected.
inline constexpr const char* kIgnoreFailed = "IgnoreFailed";
inline constexpr const char* kExpired = "Expired";
inline constexpr const char* kApprovalRejected = "ApprovalRejected";
bool terminal(const std::string& s);
// Ended in a way that counts as a failure (Failed, Aborted, Expired, ApprovalRejected).
bool failed_outcome(const std::string& s);
} // namespace status

struct ObjectRecord {
  std::string kind;
  std::string identifier;
  std::int64_t version = 0;
  std::string name;
  std::string yaml;
  nlohmann::json document;
  nlohmann::json model;
  std::string source;
  std::int64_t applied_at = 0; // unix ms
  // Where the document came from: the file as named, the lines before the document in it, and
  // the folder of the file (for Local stores).
  std::string file;
  int line_offset = 0;
  std::string base_dir;
  bool deleted = false; // a tombstone: the object was deleted in this version
  nlohmann::json references = nlohmann::json::array(); // [{kind, identifier, location, ...}]
  std::string applied_by;                              // the user who applied (or deleted) it
  // Why its stored JSON cannot be read (damaged on disk), naming the column, in lists that keep
  // such an object; its other fields are then what could be read.
  std::string unreadable;
};

// Some values of an object's model, read without its document (Store::object_fields).
struct ObjectFields {
  std::string identifier;
  std::int64_t version = 0;
  std::vector<nlohmann::json> values; // one a path asked for; null where the model has none
};

// One entry of the audit trail: who did what to which object or execution, and when.
struct AuditRecord {
  std::int64_t seq = 0;
  std::int64_t time = 0; // unix ms
  std::string user;
  std::string action; // apply, delete, run, approve, reject, abort, intervene, input
  std::string kind;   // "pipeline", "execution", ...
  std::string target; // identifier or execution id
  std::string execution_id;
  nlohmann::json details = nlohmann::json::object(); // secrets masked
  std::string details_text; // when not empty, stored instead of details (already dumped)
  std::string unreadable;   // why the stored details cannot be read (damaged on disk)
};

struct AuditFilter {
  std::string user;
  std::string action;
  std::string kind;
  std::string target;
  std::int64_t before = 0; // seq; 0: newest
  int limit = 100;
};

struct StageRecord {
  int index = 0;
  std::string identifier;
  std::string name;
  std::string type;
  std::string status = status::kNotStarted;
  std::int64_t started_at = 0;
  std::int64_t ended_at = 0;
  int parallel_group = 0; // stages of one parallel block share it
  std::string error_type;
  std::string message;
  std::string lock_key; // infrastructure/release name a Deployment stage holds or waits for
  std::int64_t queued_at = 0;
  // The stage's resolved service, environment and infrastructure (no secret values).
  nlohmann::json context = nlohmann::json::object();
  nlohmann::json state = nlohmann::json::object(); // rollback progress, questions asked
};

struct StepRecord {
  int stage_index = 0;
  int step_index = 0;
  std::string stage_identifier;
  std::string identifier;
  std::string name;
  std::string type;
  std::string status = status::kNotStarted;
  std::uint32_t attempt = 0;
  std::string task_id;
  std::string delegate;          // name
  std::string delegate_instance; // instance id of the delegate process
  std::int64_t queued_at = 0;
  std::int64_t started_at = 0;
  std::int64_t ended_at = 0;
  std::int64_t timeout_ms = 0;
  std::string error_type; // Harness failure type: Timeout, DelegateProvisioning, Unknown, ...
  std::string message;
  nlohmann::json outputs = nlohmann::json::object();
  std::uint64_t log_cursor = 0;  // lines of the current attempt stored (the delegate's numbering)
  std::string kind = "Step";     // Step | StepGroup | Parallel
  int parent = -1;               // step_index of the enclosing group or parallel block
  std::string section = "steps"; // steps | rollback
  int retries = 0;               // retries taken by its failure strategy
  std::int64_t wake_at = 0;      // unix ms: when a wait, retry interval or timeout ends
  // Approval answers, the failure waiting for an intervention, questions asked, handled flags.
  nlohmann::json state = nlohmann::json::object();
};

struct ExecutionRecord {
  std::string id;
  std::string pipeline;
  std::int64_t pipeline_version = 0;
  std::int64_t sequence = 0; // per pipeline, from 1 (<+pipeline.sequenceId>)
  std::string status = status::kQueued;
  nlohmann::json variables = nlohmann::json::object();
  nlohmann::json plan;   // the pipeline model as it was when the run started
  std::string plan_text; // when not empty, stored instead of plan (the engine's runs set it)
  std::int64_t created_at = 0;
  std::int64_t started_at = 0;
  std::int64_t ended_at = 0;
  std::string error_type;
  std::string message;
  std::int64_t revision = 0; // grows with every change; the API's watch waits on it
  std::string triggered_by;  // the user who started it
  nlohmann::json inputs = nlohmann::json::object();        // runtime inputs by full name
  nlohmann::json pending_inputs = nlohmann::json::array(); // execution inputs asked later
  nlohmann::json state = nlohmann::json::object();         // pipeline rollback progress
  std::vector<StageRecord> stages;
  std::vector<StepRecord> steps;
  // Why its stored JSON cannot be read (damaged on disk), naming the column: set by lists only,
  // which keep the plain columns of such a row; reading it alone throws StoredValueDamaged.
  std::string unreadable;
};

struct LogRecord {
  std::int64_t seq = 0; // per execution, from 1
  int stage_index = 0;
  int step_index = 0;
  std::string step; // "stage.step"
  std::int64_t time = 0;
  int level = 1;
  std::string line;
};

struct StepTypeRecord {
  std::string type;
  std::string plugin;
  std::string plugin_version;
  std::string description;
  bool retry_safe = false;
  std::string spec_schema; // JSON Schema text of the step's spec; empty when not announced
  std::string delegate;    // the last delegate that announced it
  std::int64_t last_seen = 0;
};

struct DelegateRecord {
  std::string name;
  std::string instance_id;
  std::string hostname;
  std::string version;
  nlohmann::json tags = nlohmann::json::array();
  nlohmann::json step_types = nlohmann::json::array(); // [{type, plugin, pluginVersion}]
  int slots = 0;
  std::int64_t first_seen = 0;
  std::int64_t last_seen = 0;
  bool connected = false;
  std::string disconnect_reason;
  bool draining = false;
  std::string token;      // the name of the token it presented
  std::string unreadable; // why its stored tags or step types cannot be read (damaged on disk)
};

// A credential delegates present in their Hello. The secret itself is never stored.
struct TokenRecord {
  std::string name;
  std::string hash; // hex SHA-256 of the token
  std::int64_t created_at = 0;
  std::int64_t revoked_at = 0; // 0: valid
  std::int64_t last_used_at = 0;
};

struct ExecutionFilter {
  std::string pipeline; // empty: all
  std::string status;   // empty: all
  int limit = 50;
};

} // namespace capstan::store
