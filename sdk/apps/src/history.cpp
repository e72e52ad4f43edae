// Bounded operation history.
#include "capstan/apps/history.h"

namespace capstan::apps {

using nlohmann::json;

json OperationRecord::to_json() const {
  return {{"id", id},
          {"revision", revision},
          {"startedAt", started_at},
          {"finishedAt", finished_at},
          {"phase", phase},
          {"message", message},
          {"initiatedBy", initiated_by},
          {"prune", prune},
          {"dryRun", dry_run},
          {"resources", resources}};
}

OperationRecord OperationRecord::from_json(const json& v) {
  OperationRecord r;
  r.id = v.value("id", std::int64_t{0});
  r.revision = v.value("revision", "");
  r.started_at = v.value("startedAt", "");
  r.finished_at = v.value("finishedAt", "");
  r.phase = v.value("phase", "");
  r.message = v.value("message", "");
  r.initiated_by = v.value("initiatedBy", "");
  r.prune = v.value("prune", false);
  r.dry_run = v.value("dryRun", false);
  r.resources = v.value("resources", json::array());
  return r;
}

const OperationRecord& OperationHistory::add(OperationRecord record) {
  record.id = ++next_id_;
  entries_.push_back(std::move(record));
  trim();
  static const OperationRecord kNone;
  return entries_.empty() ? kNone : entries_.back();
}

void OperationHistory::set_limit(int limit) {
  limit_ = limit < 0 ? 0 : limit;
  trim();
}

void OperationHistory::trim() {
  while (entries_.size() > static_cast<std::size_t>(limit_)) entries_.pop_front();
}

std::optional<OperationRecord> OperationHistory::find(std::int64_t id) const {
  for (const auto& e : entries_) {
    if (e.id == id) return e;
  }
  return std::nullopt;
}

std::optional<OperationRecord> OperationHistory::last() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back();
}

json OperationHistory::to_json() const {
  json out = json::array();
  for (const auto& e : entries_) out.push_back(e.to_json());
  return out;
}

OperationHistory OperationHistory::from_json(const json& value, int limit) {
  OperationHistory h(limit);
  if (!value.is_array()) return h;
  for (const auto& v : value) {
    OperationRecord r = OperationRecord::from_json(v);
    h.next_id_ = std::max(h.next_id_, r.id);
    h.entries_.push_back(std::move(r));
  }
  h.trim();
  return h;
}

} // namespace capstan::apps
