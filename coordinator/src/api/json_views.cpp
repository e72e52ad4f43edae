// The JSON shapes the API returns for stored records.
#include "api/json_views.h"

namespace capstan::api {

using nlohmann::json;

namespace {
json duration(std::int64_t start, std::int64_t end) {
  if (start == 0 || end == 0) return nullptr;
  return end - start;
}
json time_or_null(std::int64_t t) {
  return t == 0 ? json(nullptr) : json(t);
}
} // namespace

json to_json(const store::ExecutionRecord& e, bool with_steps) {
  json j = {{"id", e.id},
            {"pipeline", e.pipeline},
            {"pipelineVersion", e.pipeline_version},
            {"sequence", e.sequence},
            {"status", e.status},
            {"triggeredBy", e.triggered_by},
            {"variables", e.variables},
            {"createdAt", time_or_null(e.created_at)},
            {"startedAt", time_or_null(e.started_at)},
            {"endedAt", time_or_null(e.ended_at)},
            {"durationMs", duration(e.started_at, e.ended_at)},
            {"errorType", e.error_type},
            {"message", e.message},
            {"revision", e.revision}};
  if (!e.unreadable.empty()) j["unreadable"] = e.unreadable;
  if (!with_steps) return j;
  j["inputs"] = e.inputs;
  if (e.state.contains("pipelineRollback")) j["pipelineRollback"] = e.state["pipelineRollback"];
  json stages = json::array();
  for (const auto& s : e.stages) {
    json steps = json::array();
    for (const auto& t : e.steps) {
      if (t.stage_index != s.index) continue;
      json step = {{"identifier", t.identifier},
                   {"name", t.name},
                   {"type", t.type},
                   {"kind", t.kind},
                   {"parent", t.parent},
                   {"section", t.section},
                   {"status", t.status},
                   {"attempt", t.attempt},
                   {"retries", t.retries},
                   {"taskId", t.task_id},
                   {"delegate", t.delegate},
                   {"queuedAt", time_or_null(t.queued_at)},
                   {"startedAt", time_or_null(t.started_at)},
                   {"endedAt", time_or_null(t.ended_at)},
                   {"durationMs", duration(t.started_at, t.ended_at)},
                   {"timeoutMs", t.timeout_ms},
                   {"wakeAt", time_or_null(t.wake_at)},
                   {"errorType", t.error_type},
                   {"message", t.message},
                   {"outputs", t.outputs}};
      if (t.state.contains("approval")) step["approval"] = t.state["approval"];
      if (t.state.contains("intervention")) step["intervention"] = t.state["intervention"];
      if (t.state.contains("inputs")) step["inputs"] = t.state["inputs"];
      if (!t.state.value("repositoryLock", "").empty()) {
        step["releaseRepository"] = t.state["repositoryLock"]; // one such step at a time
      }
      steps.push_back(std::move(step));
    }
    json stage = {{"identifier", s.identifier},
                  {"name", s.name},
                  {"type", s.type},
                  {"status", s.status},
                  {"parallelGroup", s.parallel_group},
                  {"message", s.message},
                  {"errorType", s.error_type},
                  {"startedAt", time_or_null(s.started_at)},
                  {"endedAt", time_or_null(s.ended_at)},
                  {"durationMs", duration(s.started_at, s.ended_at)},
                  {"steps", std::move(steps)}};
    if (!s.lock_key.empty()) {
      stage["deploysTo"] = s.lock_key;
      stage["queuedAt"] = time_or_null(s.queued_at);
    }
    if (s.state.contains("rollback")) stage["rollback"] = s.state["rollback"];
    if (s.state.contains("inputs")) stage["inputs"] = s.state["inputs"];
    if (s.context.contains("service")) {
      json resolved = {{"service", s.context["service"].value("identifier", "")},
                       {"serviceVersion", s.context["service"].value("version", 0)}};
      if (s.context.contains("environment")) {
        resolved["environment"] = s.context["environment"].value("identifier", "");
      }
      if (s.context.contains("infrastructure")) {
        resolved["infrastructure"] = s.context["infrastructure"].value("identifier", "");
        resolved["namespace"] = s.context.value("namespace", "");
        resolved["releaseName"] = s.context.value("releaseName", "");
      }
      if (s.context.contains("artifact")) {
        resolved["artifact"] = s.context["artifact"].value("image", "");
      }
      stage["resolved"] = std::move(resolved);
    }
    stages.push_back(std::move(stage));
  }
  j["stages"] = std::move(stages);
  return j;
}

json to_json(const store::LogRecord& l) {
  static const char* levels[] = {"debug", "info", "warn", "error"};
  return {{"seq", l.seq},
          {"step", l.step},
          {"time", l.time},
          {"level", levels[std::clamp(l.level, 0, 3)]},
          {"line", l.line}};
}

json to_json(const store::ObjectRecord& o, bool with_content) {
  json j = {{"kind", o.kind},           {"identifier", o.identifier}, {"name", o.name},
            {"version", o.version},     {"source", o.source},         {"appliedAt", o.applied_at},
            {"appliedBy", o.applied_by}};
  if (o.deleted) j["deleted"] = true;
  if (!o.unreadable.empty()) j["unreadable"] = o.unreadable;
  if (with_content) {
    j["yaml"] = o.yaml;
    j["document"] = o.document;
  }
  return j;
}

json to_json(const store::AuditRecord& a) {
  json j = {{"seq", a.seq},   {"time", a.time},     {"user", a.user},      {"action", a.action},
            {"kind", a.kind}, {"target", a.target}, {"details", a.details}};
  if (!a.execution_id.empty()) j["executionId"] = a.execution_id;
  if (!a.unreadable.empty()) j["unreadable"] = a.unreadable;
  return j;
}

json to_json(const engine::DelegateView& d) {
  return {{"name", d.name},
          {"connected", true},
          {"instanceId", d.instance_id},
          {"hostname", d.hostname},
          {"version", d.version},
          {"tags", d.tags},
          {"stepTypes", d.step_types},
          {"slots", d.slots},
          {"running", d.running},
          {"status", d.draining ? "Draining" : "Connected"},
          {"draining", d.draining},
          {"token", d.token},
          {"connectedAt", d.connected_at},
          {"lastSeen", nullptr},
          {"disconnectReason", ""}};
}

json to_json(const store::DelegateRecord& d) {
  json j = {{"name", d.name},
            {"connected", false},
            {"instanceId", d.instance_id},
            {"hostname", d.hostname},
            {"version", d.version},
            {"tags", d.tags},
            {"stepTypes", d.step_types},
            {"slots", d.slots},
            {"running", 0},
            {"status", "Disconnected"},
            {"draining", false},
            {"token", d.token},
            {"connectedAt", nullptr},
            {"lastSeen", d.last_seen},
            {"disconnectReason", d.disconnect_reason}};
  if (!d.unreadable.empty()) j["unreadable"] = d.unreadable;
  return j;
}

} // namespace capstan::api
