// Pull-request records carried by a task.
#include "pr_records.h"

namespace capstan::plugins::gitops {

using nlohmann::json;

TaskPrStore::TaskPrStore(std::string repository, long next_number,
                         const std::vector<scm::PrRecord>& known)
    : repository_(std::move(repository)), next_(next_number) {
  for (const auto& r : known) records_[r.pr.number] = r;
}

void TaskPrStore::check(const std::string& repository) const {
  if (repository != repository_) {
    throw scm::Error(scm::ErrorKind::kInternal, "pull-request records of " + repository +
                                                    " are not part of this task (it carries " +
                                                    repository_ + ")");
  }
}

scm::PrRecord TaskPrStore::create(const std::string& repository, scm::PrRecord record) {
  check(repository);
  std::lock_guard lock(mutex_);
  if (next_ <= 0) {
    throw scm::Error(scm::ErrorKind::kInternal,
                     "no pull-request number was reserved for this task: the coordinator "
                     "assigns numbers of `local` pull requests (is it older than this delegate?)");
  }
  if (records_.count(next_) != 0) {
    throw scm::Error(scm::ErrorKind::kInternal, "pull request #" + std::to_string(next_) +
                                                    " already exists in " + repository_);
  }
  record.pr.number = next_++;
  records_[record.pr.number] = record;
  changed_[record.pr.number] = true;
  return record;
}

std::optional<scm::PrRecord> TaskPrStore::get(const std::string& repository, long number) {
  check(repository);
  std::lock_guard lock(mutex_);
  auto it = records_.find(number);
  if (it == records_.end()) return std::nullopt;
  return it->second;
}

bool TaskPrStore::update(const std::string& repository, const scm::PrRecord& record) {
  check(repository);
  std::lock_guard lock(mutex_);
  auto it = records_.find(record.pr.number);
  if (it == records_.end()) return false;
  it->second = record;
  changed_[record.pr.number] = true;
  return true;
}

std::vector<scm::PrRecord> TaskPrStore::list(const std::string& repository) {
  check(repository);
  std::lock_guard lock(mutex_);
  std::vector<scm::PrRecord> out;
  for (const auto& [n, r] : records_) out.push_back(r);
  return out;
}

std::vector<scm::PrRecord> TaskPrStore::changed() const {
  std::lock_guard lock(mutex_);
  std::vector<scm::PrRecord> out;
  for (const auto& [n, yes] : changed_) out.push_back(records_.at(n));
  return out;
}

json entry_to_json(const PrEntry& e) {
  json j = scm::record_to_json(e.record);
  j["repository"] = e.repository;
  j["provider"] = e.provider;
  j["connector"] = e.connector;
  if (!e.commit.empty()) j["commitId"] = e.commit;
  return j;
}

PrEntry entry_from_json(const json& j) {
  PrEntry e;
  e.record = scm::record_from_json(j);
  e.repository = j.value("repository", "");
  e.provider = j.value("provider", "local");
  e.connector = j.value("connector", "");
  e.commit = j.value("commitId", "");
  return e;
}

std::vector<PrEntry> context_entries(const json& context) {
  if (!context.contains("gitOps") || !context["gitOps"].is_object()) return {};
  std::vector<PrEntry> out;
  const json prs = context.value("gitOps", json::object()).value("pullRequests", json::object());
  for (const auto& r : prs.value("records", json::array())) {
    if (r.is_object()) out.push_back(entry_from_json(r));
  }
  return out;
}

long reserved_number(const json& context, const std::string& repository) {
  if (!context.contains("gitOps") || !context["gitOps"].is_object()) return 0;
  const json prs = context.value("gitOps", json::object()).value("pullRequests", json::object());
  const json next = prs.value("next", json::object());
  auto it = next.find(repository);
  if (it == next.end() || !it->is_number_integer()) return 0;
  return it->get<long>();
}

} // namespace capstan::plugins::gitops
