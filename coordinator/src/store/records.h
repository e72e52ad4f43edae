// What the store keeps: applied objects, executions with their stages and steps, logs, delegates.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace capstan::store {

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
bool terminal(const std::string& s);
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
};

struct StageRecord {
  int index = 0;
  std::string identifier;
  std::string name;
  std::string type;
  std::string status = status::kNotStarted;
  std::int64_t started_at = 0;
  std::int64_t ended_at = 0;
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
  std::uint64_t log_cursor = 0; // lines of the current attempt stored (the delegate's numbering)
};

struct ExecutionRecord {
  std::string id;
  std::string pipeline;
  std::int64_t pipeline_version = 0;
  std::int64_t sequence = 0; // per pipeline, from 1 (<+pipeline.sequenceId>)
  std::string status = status::kQueued;
  nlohmann::json variables = nlohmann::json::object();
  nlohmann::json plan; // the pipeline model as it was when the run started
  std::int64_t created_at = 0;
  std::int64_t started_at = 0;
  std::int64_t ended_at = 0;
  std::string error_type;
  std::string message;
  std::int64_t revision = 0; // grows with every change; the API's watch waits on it
  std::vector<StageRecord> stages;
  std::vector<StepRecord> steps;
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
  std::string delegate; // the last delegate that announced it
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
  std::string token; // the name of the token it presented
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
