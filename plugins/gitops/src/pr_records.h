// Pull-request records of the `local` provider as they travel with a task: the coordinator keeps
// them, sends the ones a step needs (and a reserved number for a new one) in the task's context,
// and stores what the step hands back in its result. See docs/gitops.md.
#pragma once

#include <capstan/scm/local.h>
#include <nlohmann/json.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace capstan::plugins::gitops {

// A PrStore over the records of one task: those the context carried, plus those the step creates
// (numbered from the number the coordinator reserved) or changes, which changed() returns.
class TaskPrStore : public scm::PrStore {
public:
  // next_number 0: the context reserved none, so creating a record fails.
  TaskPrStore(std::string repository, long next_number, const std::vector<scm::PrRecord>& known);

  scm::PrRecord create(const std::string& repository, scm::PrRecord record) override;
  std::optional<scm::PrRecord> get(const std::string& repository, long number) override;
  bool update(const std::string& repository, const scm::PrRecord& record) override;
  std::vector<scm::PrRecord> list(const std::string& repository) override;

  std::vector<scm::PrRecord> changed() const;

private:
  void check(const std::string& repository) const;
  std::string repository_;
  long next_;
  mutable std::mutex mutex_;
  std::map<long, scm::PrRecord> records_;
  std::map<long, bool> changed_;
};

// One pull request as a step reports it (StepResult.records, kind "PullRequest") and as the
// coordinator sends it back: the record plus where it lives.
struct PrEntry {
  std::string repository; // the repository's URL without credentials
  std::string provider;   // local | github | gitlab
  std::string connector;
  scm::PrRecord record;
  std::string commit; // the commit the step made for it (update or revert)
};
nlohmann::json entry_to_json(const PrEntry& entry);
PrEntry entry_from_json(const nlohmann::json& json);

// context.gitOps.pullRequests: {"records": [PrEntry...], "next": {"<repository>": N}}.
std::vector<PrEntry> context_entries(const nlohmann::json& context);
long reserved_number(const nlohmann::json& context, const std::string& repository);

} // namespace capstan::plugins::gitops
