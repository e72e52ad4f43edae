// One Update Release Repo or Revert PR per release repository at a time, across delegates.
//
// The lock lives in the step records, so it is persisted with them and survives a restart: a
// step carries its repository's key in state.repositoryLock once it is known, and holds the lock
// while it is out on a delegate (dispatched or running) or its delegate still occupies the slot
// (an aborted or timed-out step that is still stopping). A failed, aborted, finished or requeued
// step, or one whose delegate is gone, holds nothing. Queued steps with a held key stay queued,
// oldest first, with the holder in their message.
#include "engine/gitops.h"
#include "engine/machine.h"

namespace capstan::engine {

namespace st = store::status;
using nlohmann::json;

std::string Machine::repository_lock_key(Active& a, std::size_t index) {
  auto& s = a.record.steps[index];
  if (!opens_pull_requests(s.type)) return "";
  if (auto it = s.state.find("repositoryLock"); it != s.state.end() && it->is_string()) {
    return it->get<std::string>();
  }
  std::string key;
  try {
    // The repository the task's context names (the same one its pull-request number is
    // reserved in), without reserving anything.
    const auto si = static_cast<std::size_t>(s.stage_index);
    StepScope scope(scope_root(a, si, s.step_index), secret_source());
    std::vector<std::string> secrets;
    const auto context = plugin_context(a, si, s.step_index, scope, secrets);
    const std::string repo = release_repository(context.members);
    if (!repo.empty()) key = engine::repository_lock_key(repo);
  } catch (const std::exception&) {
    return ""; // resolve() fails the step with the reason when it leaves
  }
  s.state["repositoryLock"] = key; // "" too: no release repository, nothing to lock
  touch_step(a, index);
  return key;
}

std::string Machine::repository_lock_holder(const Active& a, std::size_t index,
                                            const std::string& key) const {
  for (const auto& [id, other] : active_) {
    for (std::size_t i = 0; i < other.record.steps.size(); ++i) {
      if (&other == &a && i == index) continue;
      const auto& s = other.record.steps[i];
      if (s.delegate_instance.empty() || s.task_id.empty()) continue;
      auto it = s.state.find("repositoryLock");
      if (it == s.state.end() || !it->is_string() || it->get_ref<const std::string&>() != key) {
        continue;
      }
      const bool out = s.status == st::kDispatched || s.status == st::kRunning;
      auto session = scheduler_.sessions().find(s.delegate_instance);
      const bool slot = session != scheduler_.sessions().end() &&
                        session->second.tasks.count(slot_key(s.task_id, s.attempt)) > 0;
      if (!out && !slot) continue;
      return "step " + s.stage_identifier + "." + s.identifier + " of " + other.record.pipeline +
             " #" + std::to_string(other.record.sequence) + " (execution " + id + ") on " +
             s.delegate + (out ? "" : ", still stopping");
    }
  }
  return "";
}

bool Machine::wait_for_repository(Active& a, QueuedTask& task) {
  const std::string key = repository_lock_key(a, task.index);
  if (key.empty()) return false;
  auto& step = a.record.steps[task.index];
  const std::string holder = repository_lock_holder(a, task.index, key);
  if (holder.empty()) {
    if (step.state.erase("repositoryLockHolder") > 0) {
      task.reported = false; // what it waits for next (a delegate) is said by the placement
      touch_step(a, task.index);
    }
    return false;
  }
  const std::string reason = "waiting for release repository " + key + ": " + holder +
                             " is updating it (one Update Release Repo or Revert PR per "
                             "repository at a time)";
  if (step.message != reason) {
    step.message = reason;
    step.state["repositoryLockHolder"] = holder;
    touch_step(a, task.index);
  }
  task.reported = true;
  return true;
}

} // namespace capstan::engine
