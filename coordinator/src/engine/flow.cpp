// Pipeline semantics on the engine thread: stages in order (parallel blocks together), steps in
// sequence, parallel blocks and step groups concurrently, `when` conditions, failure strategies
// (retry, ignore, mark as success/failure, abort, manual intervention, stage and pipeline
// rollback), approvals, waits, execution inputs and the deployment queue per infrastructure and
// release name. Every change is a record change the batch persists before its effects.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/machine.h"
#include "model/duration.h"
#include "model/step_types.h"

namespace capstan::engine {

using nlohmann::json;
namespace st = store::status;

namespace {

using store::now_ms;

bool waiting_status(const std::string& s) {
  return s == st::kApprovalWaiting || s == st::kInterventionWaiting || s == st::kInputWaiting ||
         s == st::kWaiting;
}

std::string duration_text(std::int64_t ms) {
  return model::format_duration(std::chrono::milliseconds(ms));
}

} // namespace

store::StepRecord& Machine::row_record(Active& a, std::size_t si, int row) {
  return a.record.steps[a.offset()[si] + static_cast<std::size_t>(row)];
}

const PlanRow& Machine::plan_row(const Active& a, std::size_t si, int row) const {
  return a.plan()[si].rows[static_cast<std::size_t>(row)];
}

void Machine::set_row(Active& a, std::size_t si, int row) {
  touch_step(a, a.offset()[si] + static_cast<std::size_t>(row));
}

void Machine::set_stage(Active& a, std::size_t si) {
  a.stages_changed.insert(si);
  touch(a);
}

// ---------------------------------------------------------------------------------------------
// Driving an execution to a fixpoint

void Machine::advance(Active& a) {
  pending_advance_.push_back(a.record.id);
  wake_lock_waiters();
}

void Machine::wake_lock_waiters() {
  if (advancing_) return; // the drive under way picks them up
  advancing_ = true;
  while (true) {
    while (!pending_advance_.empty()) {
      auto id = pending_advance_.front();
      pending_advance_.pop_front();
      auto it = active_.find(id);
      if (it == active_.end()) continue;
      for (int guard = 0; guard < 10000; ++guard) {
        if (st::terminal(it->second.record.status)) break;
        if (!drive(it->second)) break;
      }
    }
    if (released_locks_.empty()) break;
    // A deployment ended: the stages queued behind it (in any execution) may go now.
    auto keys = std::move(released_locks_);
    released_locks_.clear();
    for (auto& [id, other] : active_) {
      for (const auto& s : other.record.stages) {
        if (s.status == st::kQueued && keys.count(s.lock_key)) {
          pending_advance_.push_back(id);
          break;
        }
      }
    }
  }
  advancing_ = false;
}

bool Machine::drive(Active& a) {
  auto& stages = a.record.stages;
  if (a.record.state.contains("pipelineRollback")) return drive_pipeline_rollback(a);
  bool changed = false;
  std::size_t si = 0;
  while (si < stages.size()) {
    // One group: the stages of a parallel block, or one stage.
    std::size_t end = si + 1;
    const int group = a.plan()[si].stage->parallel_group;
    while (end < stages.size() && a.plan()[end].stage->parallel_group == group) ++end;
    bool all_done = true;
    for (std::size_t i = si; i < end; ++i) {
      changed |= drive_stage(a, i);
      if (st::terminal(a.record.status)) return true;
      if (a.record.state.contains("pipelineRollback")) return true;
      if (!st::terminal(stages[i].status)) all_done = false;
    }
    if (!all_done) return changed;
    si = end;
  }
  // Every stage ended.
  std::string status = st::kSucceeded, error_type, message;
  for (const auto& s : stages) {
    if (s.status == st::kFailed || s.status == st::kAborted) {
      status = st::kFailed;
      error_type = s.error_type;
      message = "stage " + s.identifier + " failed: " + s.message;
      break;
    }
  }
  finish(a, status, error_type, message);
  return true;
}

bool Machine::stage_failed_before(const Active& a, std::size_t si) const {
  const int group = a.plan()[si].stage->parallel_group;
  for (std::size_t i = 0; i < si; ++i) {
    if (a.plan()[i].stage->parallel_group == group) continue;
    const auto& s = a.record.stages[i].status;
    if (s == st::kFailed || s == st::kAborted) return true;
  }
  return false;
}

bool Machine::drive_stage(Active& a, std::size_t si) {
  auto& stage = a.record.stages[si];
  const auto& model_stage = *a.plan()[si].stage;
  if (stage.status == st::kNotStarted) {
    // `when`: the pipeline's status so far, then the condition.
    model::When when = model_stage.when.value_or(model::When{});
    bool failed = stage_failed_before(a, si);
    std::string skip;
    if (when.status == "Success" && failed) {
      skip = "skipped: an earlier stage failed (when: pipelineStatus: Success)";
    } else if (when.status == "Failure" && !failed) {
      skip = "skipped: no earlier stage failed (when: pipelineStatus: Failure)";
    } else if (!when.condition.empty()) {
      std::string error;
      auto ok = condition_holds(a, si, -1, when.condition, error);
      if (!error.empty()) {
        end_stage(a, si, st::kFailed, when.location + ": " + error, "Unknown");
        return true;
      }
      if (!ok) skip = "skipped: its condition is false (" + when.condition + ")";
    }
    if (!skip.empty()) {
      skip_stage(a, si, skip);
      return true;
    }
    // Execution inputs of the pipeline and the stage are asked for when the stage starts.
    auto questions = pending_questions(a, model_stage.identifier, "", true);
    if (!questions.empty()) {
      stage.status = st::kInputWaiting;
      stage.started_at = stage.started_at ? stage.started_at : now_ms();
      stage.state["inputs"] = questions;
      stage.message = "waiting for execution input: capstan input " + a.record.id;
      set_stage(a, si);
      note_stage(a, si, 1, "waiting for execution input (" + question_names(questions) + ")");
      return true;
    }
    if (model_stage.type == "Deployment") {
      std::string error = start_deployment(a, si);
      if (!error.empty()) {
        end_stage(a, si, st::kFailed, error, "Unknown");
        return true;
      }
      if (!stage.lock_key.empty()) {
        stage.status = st::kQueued;
        stage.queued_at = now_ms();
        stage.started_at = stage.queued_at;
        set_stage(a, si);
        return true; // the next pass takes the lock when it is free
      }
    }
    stage.status = st::kRunning;
    stage.started_at = stage.started_at ? stage.started_at : now_ms();
    stage.message.clear();
    set_stage(a, si);
    return true;
  }
  if (stage.status == st::kInputWaiting) {
    if (pending_questions(a, model_stage.identifier, "", true).empty()) {
      stage.status = st::kNotStarted;
      stage.state.erase("inputs");
      stage.message.clear();
      set_stage(a, si);
      return true;
    }
    return false;
  }
  if (stage.status == st::kQueued) {
    std::string holder;
    if (!lock_available(a, si, holder)) {
      std::string why =
          "queued: another deployment to " + stage.lock_key + " runs (" + holder + ")";
      if (stage.message != why) {
        stage.message = why;
        set_stage(a, si);
        note_stage(a, si, 1, why);
        return true;
      }
      return false;
    }
    stage.status = st::kRunning;
    stage.message.clear();
    set_stage(a, si);
    note_stage(a, si, 1, "deploying to " + stage.lock_key);
    return true;
  }
  if (stage.status != st::kRunning) return false;
  bool changed = false;
  if (stage.state.contains("rollback")) {
    changed |= drive_rollback(a, si);
    return changed;
  }
  auto progress = drive_rows(a, si, a.plan()[si].top, false, changed);
  if (progress == Progress::kPending || stage.state.contains("rollback") ||
      st::terminal(a.record.status) || a.record.state.contains("pipelineRollback")) {
    return changed;
  }
  // Every step ended: the stage failed when a failure was left standing.
  std::string failure;
  std::string error_type;
  for (int r = 0; r < static_cast<int>(a.plan()[si].rows.size()); ++r) {
    const auto& row = plan_row(a, si, r);
    if (row.section != "steps" || row.node->kind != model::NodeKind::kStep) continue;
    const auto& rec = row_record(a, si, r);
    if (st::failed_outcome(rec.status)) {
      failure = "step " + row.path + " " + (rec.status == st::kAborted ? "was aborted" : "failed") +
                ": " + rec.message;
      error_type = rec.error_type;
      break;
    }
  }
  if (failure.empty()) {
    end_stage(a, si, st::kSucceeded, "", "");
  } else {
    end_stage(a, si, st::kFailed, failure, error_type);
  }
  return true;
}

Machine::Progress Machine::drive_rows(Active& a, std::size_t si, const std::vector<int>& rows,
                                      bool parallel, bool& changed) {
  bool pending = false;
  // A failure may start a rollback while these rows run: then it takes over. Rows that are part
  // of a rollback under way go on.
  const bool pipeline_rollback = a.record.state.contains("pipelineRollback");
  const bool stage_rollback = a.record.stages[si].state.contains("rollback");
  for (int r : rows) {
    auto progress = drive_row(a, si, r, changed);
    if (st::terminal(a.record.status) ||
        (!pipeline_rollback && a.record.state.contains("pipelineRollback")) ||
        (!stage_rollback && a.record.stages[si].state.contains("rollback"))) {
      return Progress::kPending; // the failure took over
    }
    if (progress == Progress::kPending) {
      pending = true;
      if (!parallel) return Progress::kPending; // in sequence: the next waits for this one
    }
  }
  return pending ? Progress::kPending : Progress::kDone;
}

Machine::Progress Machine::drive_row(Active& a, std::size_t si, int r, bool& changed) {
  auto& rec = row_record(a, si, r);
  const auto& row = plan_row(a, si, r);
  if (rec.status == st::kNotStarted) {
    changed = true;
    if (!start_row(a, si, r)) return Progress::kDone; // skipped
  }
  if (st::terminal(rec.status)) {
    if (st::failed_outcome(rec.status) && !rec.state.value("handled", false)) {
      changed = true;
      handle_failure(a, si, r);
      if (!st::terminal(rec.status) || rec.status == st::kNotStarted) return Progress::kPending;
    }
    return Progress::kDone;
  }
  if (row.node->kind == model::NodeKind::kStep) return Progress::kPending;
  // A group or parallel block runs while its children do.
  auto progress =
      drive_rows(a, si, row.children, row.node->kind == model::NodeKind::kParallel, changed);
  if (progress == Progress::kPending) return Progress::kPending;
  std::string failure;
  for (int c : row.children) {
    const auto& child = row_record(a, si, c);
    if (st::failed_outcome(child.status)) {
      failure = child.message;
      rec.error_type = child.error_type;
      break;
    }
  }
  rec.status = failure.empty() ? st::kSucceeded : st::kFailed;
  rec.message = failure;
  rec.ended_at = now_ms();
  rec.state["handled"] = true; // the children's failures were handled with this group's strategies
  set_row(a, si, r);
  changed = true;
  return Progress::kDone;
}

bool Machine::row_failed_so_far(const Active& a, std::size_t si, const std::string& section) const {
  for (std::size_t r = 0; r < a.plan()[si].rows.size(); ++r) {
    const auto& row = a.plan()[si].rows[r];
    if (row.section != section || row.node->kind != model::NodeKind::kStep) continue;
    const auto& rec = a.record.steps[a.offset()[si] + r];
    if (st::failed_outcome(rec.status) && rec.state.value("handled", false)) return true;
  }
  return false;
}

bool Machine::start_row(Active& a, std::size_t si, int r) {
  auto& rec = row_record(a, si, r);
  const auto& row = plan_row(a, si, r);
  const auto& node = *row.node;
  const bool again = rec.state.value("started", false); // a retry: `when` was decided already
  if (!again && node.kind != model::NodeKind::kParallel) {
    model::When when = node.when.value_or(model::When{});
    bool failed = row_failed_so_far(a, si, row.section);
    std::string skip;
    if (when.status == "Success" && failed) {
      skip = "skipped: an earlier step failed (when: stageStatus: Success)";
    } else if (when.status == "Failure" && !failed) {
      skip = "skipped: no earlier step failed (when: stageStatus: Failure)";
    } else if (!when.condition.empty()) {
      std::string error;
      bool ok = condition_holds(a, si, r, when.condition, error);
      if (!error.empty()) {
        rec.state["started"] = true;
        fail_row(a, si, r, "Unknown", when.location + ": " + error);
        return true;
      }
      if (!ok) skip = "skipped: its condition is false (" + when.condition + ")";
    }
    if (!skip.empty()) {
      skip_rows(a, si, r, skip);
      return false;
    }
  }
  rec.state["started"] = true;
  rec.queued_at = 0;
  rec.started_at = now_ms();
  rec.ended_at = 0;
  rec.message.clear();
  rec.error_type.clear();
  set_row(a, si, r);
  if (node.kind != model::NodeKind::kStep) {
    rec.status = st::kRunning;
    return true;
  }
  // Execution inputs of this step are asked for when it starts.
  auto questions = pending_questions(a, a.plan()[si].stage->identifier, row.path, false);
  if (!questions.empty()) {
    rec.status = st::kInputWaiting;
    rec.state["inputs"] = questions;
    rec.wake_at = rec.started_at + rec.timeout_ms;
    rec.message = "waiting for execution input: capstan input " + a.record.id;
    note(a, a.offset()[si] + static_cast<std::size_t>(r), 1,
         "waiting for execution input (" + question_names(questions) + ")");
    return true;
  }
  if (node.type == "HarnessApproval") return start_approval(a, si, r);
  if (node.type == "Wait") return start_wait(a, si, r);
  if (node.type == "GitOpsSync") return start_gitops_sync(a, si, r);
  if (node.type == "UpdateGitOpsApp") return start_update_gitops_app(a, si, r);
  rec.status = st::kQueued;
  enqueue(a, a.offset()[si] + static_cast<std::size_t>(r));
  return true;
}

void Machine::skip_rows(Active& a, std::size_t si, int r, const std::string& why) {
  auto& rec = row_record(a, si, r);
  if (rec.status == st::kNotStarted) {
    rec.status = st::kSkipped;
    rec.message = why;
    set_row(a, si, r);
  }
  const auto& row = plan_row(a, si, r);
  for (int c : row.children) skip_rows(a, si, c, why);
}

void Machine::fail_row(Active& a, std::size_t si, int r, const std::string& error_type,
                       const std::string& message) {
  fail_step(a, a.offset()[si] + static_cast<std::size_t>(r), error_type, message);
}

// ---------------------------------------------------------------------------------------------
// Failures

void Machine::handle_failure(Active& a, std::size_t si, int r) {
  auto& rec = row_record(a, si, r);
  const auto& row = plan_row(a, si, r);
  rec.state["handled"] = true;
  set_row(a, si, r);
  if (rec.status == st::kAborted && rec.error_type.empty()) return; // cancelled, not failed
  // Step, then its groups inside out, then the stage; a Deployment stage rolls back by default.
  std::vector<const std::vector<model::FailureStrategy>*> levels;
  levels.push_back(&row.node->failure_strategies);
  for (int anc : row.ancestors) levels.push_back(&plan_row(a, si, anc).node->failure_strategies);
  static const std::vector<model::FailureStrategy> deployment_default = {
      model::default_deployment_strategy()};
  if (row.section == "steps") {
    levels.push_back(&a.plan()[si].stage->failure_strategies);
    if (a.plan()[si].stage->type == "Deployment") levels.push_back(&deployment_default);
  }
  auto resolution = model::resolve_failure(levels, rec.error_type);
  model::FailureAction action;
  action.type = model::action::kMarkAsFailure;
  std::string where = "no failure strategy matches";
  if (resolution) {
    action = resolution->action;
    where = "failure strategy at " + resolution->location;
  }
  apply_action(a, si, r, action, where);
}

void Machine::apply_action(Active& a, std::size_t si, int r, const model::FailureAction& action,
                           const std::string& where) {
  auto& rec = row_record(a, si, r);
  const auto& row = plan_row(a, si, r);
  const std::size_t index = a.offset()[si] + static_cast<std::size_t>(r);
  const std::string what = "step " + row.path + " failed (" +
                           (rec.error_type.empty() ? "Unknown" : rec.error_type) +
                           "): " + rec.message;
  set_row(a, si, r);
  namespace act = model::action;
  if (action.type == act::kRetry) {
    if (rec.retries < action.retry_count) {
      rec.retries += 1;
      auto wait = action.retry_interval(rec.retries).count();
      note(a, index, 2,
           what + "; retry " + std::to_string(rec.retries) + " of " +
               std::to_string(action.retry_count) + " in " + duration_text(wait) + " (" + where +
               ")");
      rec.state["handled"] = false;
      rec.state["wake"] = "retry";
      rec.state["retry"] = action;
      rec.status = st::kWaiting;
      rec.wake_at = now_ms() + wait;
      rec.message = "retry " + std::to_string(rec.retries) + " of " +
                    std::to_string(action.retry_count) + " after: " + rec.message;
      return;
    }
    note(a, index, 2, what + "; no retries left (" + where + ")");
    if (!action.then.empty()) return apply_action(a, si, r, action.then.front(), where);
    return; // stays failed
  }
  if (action.type == act::kIgnore) {
    note(a, index, 2, what + "; ignored (" + where + ")");
    rec.status = st::kIgnoreFailed;
    return;
  }
  if (action.type == act::kMarkAsSuccess) {
    note(a, index, 2, what + "; marked as success (" + where + ")");
    rec.status = st::kSucceeded;
    rec.message = "marked as success after: " + rec.message;
    return;
  }
  if (action.type == act::kMarkAsFailure) {
    if (where != "no failure strategy matches") note(a, index, 2, what + " (" + where + ")");
    return;
  }
  if (action.type == act::kAbort) {
    note(a, index, 3, what + "; the pipeline is aborted (" + where + ")");
    abort_execution(a, what + "; aborted by its failure strategy");
    return;
  }
  if (action.type == act::kManualIntervention) {
    note(a, index, 2,
         what + "; waiting for manual intervention for " + duration_text(action.timeout.count()) +
             ": capstan interventions resolve " + a.record.id + " ACTION (" + where + ")");
    rec.state["handled"] = false;
    rec.state["wake"] = "intervention";
    rec.state["intervention"] = {
        {"errorType", rec.error_type},
        {"message", rec.message},
        {"onTimeout", action.then.empty() ? json(nullptr) : json(action.then.front())},
        {"since", now_ms()}};
    rec.status = st::kInterventionWaiting;
    rec.wake_at = now_ms() + action.timeout.count();
    return;
  }
  if (action.type == act::kStageRollback) {
    note(a, index, 3, what + "; rolling the stage back (" + where + ")");
    a.record.stages[si].error_type = rec.error_type;
    start_stage_rollback(a, si, what);
    return;
  }
  if (action.type == act::kPipelineRollback) {
    note(a, index, 3, what + "; rolling the pipeline back (" + where + ")");
    a.record.stages[si].error_type = rec.error_type;
    start_pipeline_rollback(a, si, what);
    return;
  }
}

void Machine::cancel_rows(Active& a, std::size_t si, const std::string& section,
                          const std::string& why) {
  for (int r = 0; r < static_cast<int>(a.plan()[si].rows.size()); ++r) {
    const auto& row = plan_row(a, si, r);
    if (!section.empty() && row.section != section) continue;
    auto& rec = row_record(a, si, r);
    if (rec.status == st::kNotStarted) {
      rec.status = st::kSkipped;
      rec.message = why;
      set_row(a, si, r);
    } else if (!st::terminal(rec.status)) {
      if (row.node->kind == model::NodeKind::kStep) {
        // A GitOpsSync whose syncs run on delegates: they are terminated (Argo CD's
        // terminate-op), not left to finish.
        gitops_terminate(a, a.offset()[si] + static_cast<std::size_t>(r), why);
        fail_step(a, a.offset()[si] + static_cast<std::size_t>(r), "", why, st::kAborted);
      } else {
        rec.status = st::kAborted;
        rec.message = why;
        rec.ended_at = now_ms();
        set_row(a, si, r);
      }
      rec.state["handled"] = true;
    }
  }
}

std::vector<int> Machine::rollback_segments(const Active& a, std::size_t si) const {
  // Step groups that started, last first, then the stage's own rollbackSteps.
  std::vector<int> out;
  const auto& rows = a.plan()[si].rows;
  for (int r = static_cast<int>(rows.size()) - 1; r >= 0; --r) {
    const auto& row = rows[static_cast<std::size_t>(r)];
    if (row.section != "steps" || row.rollback.empty()) continue;
    const auto& rec = a.record.steps[a.offset()[si] + static_cast<std::size_t>(r)];
    if (rec.started_at == 0) continue;
    out.push_back(r);
  }
  if (!a.plan()[si].rollback_top.empty()) out.push_back(-1);
  return out;
}

void Machine::start_stage_rollback(Active& a, std::size_t si, const std::string& reason) {
  auto& stage = a.record.stages[si];
  cancel_rows(a, si, "steps", "cancelled: the stage rolls back");
  // Rollback rows were marked skipped when the stage ended well; now they are to run.
  for (int r = 0; r < static_cast<int>(a.plan()[si].rows.size()); ++r) {
    auto& rec = row_record(a, si, r);
    if (plan_row(a, si, r).section == "rollback" && rec.status == st::kSkipped &&
        rec.started_at == 0) {
      rec.status = st::kNotStarted;
      rec.message.clear();
      set_row(a, si, r);
    }
  }
  stage.state["rollback"] = {{"status", st::kRunning},
                             {"reason", reason},
                             {"segments", rollback_segments(a, si)},
                             {"current", 0}};
  stage.status = st::kRunning;
  stage.message = "rolling back: " + reason;
  set_stage(a, si);
}

void Machine::start_pipeline_rollback(Active& a, std::size_t si, const std::string& reason) {
  // Every other stage that ran (or runs) rolls back too, last first, after this one.
  json order = json::array({si});
  for (std::size_t i = a.record.stages.size(); i-- > 0;) {
    if (i == si) continue;
    auto& s = a.record.stages[i];
    if (s.status == st::kNotStarted || s.status == st::kSkipped) continue;
    if (s.status == st::kQueued || s.status == st::kInputWaiting) {
      end_stage(a, i, st::kAborted, "cancelled: the pipeline rolls back", "");
      continue;
    }
    if (s.state.contains("rollback")) continue;
    if (s.status == st::kRunning) cancel_rows(a, i, "steps", "cancelled: the pipeline rolls back");
    order.push_back(i);
  }
  for (std::size_t i = 0; i < a.record.stages.size(); ++i) {
    auto& s = a.record.stages[i];
    if (s.status == st::kNotStarted) skip_stage(a, i, "skipped: the pipeline rolled back");
  }
  a.record.state["pipelineRollback"] = {{"reason", reason}, {"stages", order}, {"current", 0}};
  touch(a);
  start_stage_rollback(a, si, reason);
}

bool Machine::drive_rollback(Active& a, std::size_t si) {
  auto& stage = a.record.stages[si];
  auto& rb = stage.state["rollback"];
  if (rb.value("status", "") != st::kRunning) return false;
  bool changed = false;
  auto segments = rb["segments"].get<std::vector<int>>();
  auto current = rb.value("current", 0);
  bool failed = false;
  while (current < static_cast<int>(segments.size())) {
    int seg = segments[static_cast<std::size_t>(current)];
    const auto& rows = seg < 0 ? a.plan()[si].rollback_top : plan_row(a, si, seg).rollback;
    if (drive_rows(a, si, rows, false, changed) == Progress::kPending) return changed;
    for (int r : rows) {
      if (st::failed_outcome(row_record(a, si, r).status)) failed = true;
    }
    if (failed) break;
    ++current;
    rb["current"] = current;
    set_stage(a, si);
    changed = true;
  }
  rb["status"] = failed ? st::kFailed : st::kSucceeded;
  std::string reason = rb.value("reason", "");
  if (segments.empty()) {
    note_stage(a, si, 2, "nothing to roll back: the stage has no rollback steps");
  }
  end_stage(a, si, st::kFailed,
            reason + (failed             ? "; the rollback failed"
                      : segments.empty() ? ""
                                         : "; rolled back"),
            stage.error_type);
  return true;
}

bool Machine::drive_pipeline_rollback(Active& a) {
  auto& pr = a.record.state["pipelineRollback"];
  auto order = pr["stages"].get<std::vector<std::size_t>>();
  auto current = pr.value("current", 0);
  bool changed = false;
  while (current < static_cast<int>(order.size())) {
    auto si = order[static_cast<std::size_t>(current)];
    auto& stage = a.record.stages[si];
    if (!stage.state.contains("rollback")) {
      // A stage that ran before the failure: it rolls back now.
      start_stage_rollback(a, si, "the pipeline rolls back");
      changed = true;
    }
    if (stage.status == st::kRunning) {
      changed |= drive_rollback(a, si);
      if (!st::terminal(stage.status)) return changed;
    }
    ++current;
    pr["current"] = current;
    touch(a);
    changed = true;
  }
  auto reason = pr.value("reason", "");
  finish(a, st::kFailed, "", "pipeline rolled back after: " + reason);
  return true;
}

void Machine::end_stage(Active& a, std::size_t si, const std::string& status,
                        const std::string& message, const std::string& error_type) {
  auto& stage = a.record.stages[si];
  if (status != st::kSucceeded) cancel_rows(a, si, "", "skipped: the stage ended");
  for (int r = 0; r < static_cast<int>(a.plan()[si].rows.size()); ++r) {
    auto& rec = row_record(a, si, r);
    if (rec.status == st::kNotStarted) {
      rec.status = st::kSkipped;
      set_row(a, si, r);
    }
  }
  stage.status = status;
  stage.message = message;
  stage.error_type = error_type;
  stage.ended_at = now_ms();
  if (!stage.started_at) stage.started_at = stage.ended_at;
  set_stage(a, si);
  if (!stage.lock_key.empty()) released_locks_.insert(stage.lock_key);
  spdlog::info("execution {}: stage {} {}{}", a.record.id, stage.identifier, status,
               message.empty() ? "" : ": " + message);
}

void Machine::skip_stage(Active& a, std::size_t si, const std::string& why) {
  auto& stage = a.record.stages[si];
  for (int r = 0; r < static_cast<int>(a.plan()[si].rows.size()); ++r) {
    auto& rec = row_record(a, si, r);
    if (rec.status == st::kNotStarted) {
      rec.status = st::kSkipped;
      set_row(a, si, r);
    }
  }
  stage.status = st::kSkipped;
  stage.message = why;
  stage.ended_at = now_ms();
  set_stage(a, si);
}

void Machine::abort_execution(Active& a, const std::string& message) {
  for (std::size_t si = 0; si < a.record.stages.size(); ++si) {
    auto& stage = a.record.stages[si];
    if (st::terminal(stage.status)) continue;
    if (stage.status == st::kNotStarted) {
      skip_stage(a, si, "skipped: the pipeline was aborted");
      continue;
    }
    cancel_rows(a, si, "", "aborted");
    stage.status = st::kAborted;
    stage.message = message;
    stage.ended_at = now_ms();
    set_stage(a, si);
    if (!stage.lock_key.empty()) released_locks_.insert(stage.lock_key);
  }
  finish(a, st::kAborted, "", message);
}

// ---------------------------------------------------------------------------------------------
// The deployment queue: one deployment at a time per infrastructure and release name

bool Machine::lock_available(const Active& a, std::size_t si, std::string& holder) const {
  const auto& mine = a.record.stages[si];
  for (const auto& [id, other] : active_) {
    for (std::size_t i = 0; i < other.record.stages.size(); ++i) {
      const auto& s = other.record.stages[i];
      if (&s == &mine || s.lock_key != mine.lock_key) continue;
      if (s.status == st::kRunning) {
        holder = "execution " + other.record.id + " of " + other.record.pipeline + " #" +
                 std::to_string(other.record.sequence) + ", stage " + s.identifier;
        return false;
      }
      if (s.status == st::kQueued &&
          std::tie(s.queued_at, other.record.created_at, other.record.id, i) <
              std::tie(mine.queued_at, a.record.created_at, a.record.id, si)) {
        holder = "execution " + other.record.id + " queued first";
        return false;
      }
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Coordinator steps: approvals and waits

bool Machine::start_wait(Active& a, std::size_t si, int r) {
  auto& rec = row_record(a, si, r);
  const auto& node = *plan_row(a, si, r).node;
  std::string error;
  auto spec = rendered_spec(a, si, r, error);
  if (!error.empty()) {
    fail_row(a, si, r, "Unknown", error);
    return true;
  }
  auto text = spec.value("duration", "");
  auto d = model::parse_duration(text);
  if (!d) {
    fail_row(a, si, r, "Unknown",
             node.location + ": the Wait step's duration '" + text + "' is not a duration");
    return true;
  }
  rec.status = st::kWaiting;
  rec.state["wake"] = "wait";
  rec.wake_at = rec.started_at + d->count();
  rec.message = "waiting " + model::format_duration(*d);
  note(a, a.offset()[si] + static_cast<std::size_t>(r), 1,
       "waiting " + model::format_duration(*d) +
           " (until the wait ends, or: capstan interventions "
           "resolve " +
           a.record.id + " MarkAsSuccess)");
  return true;
}

bool Machine::start_approval(Active& a, std::size_t si, int r) {
  auto& rec = row_record(a, si, r);
  std::string error;
  auto spec = rendered_spec(a, si, r, error);
  if (!error.empty()) {
    fail_row(a, si, r, "Unknown", error);
    return true;
  }
  const json approvers = spec.value("approvers", json::object());
  json groups = json::array();
  for (const auto& g : approvers.value("userGroups", json::array())) {
    if (g.is_string()) groups.push_back(model::strip_scope(g.get<std::string>()));
  }
  int minimum = 1;
  if (approvers.contains("minimumCount")) {
    const auto& m = approvers["minimumCount"];
    if (m.is_number_integer()) minimum = m.get<int>();
    if (m.is_string()) minimum = std::max(1, std::atoi(m.get<std::string>().c_str()));
  }
  json inputs = json::array();
  for (const auto& i : spec.value("approverInputs", json::array())) {
    inputs.push_back({{"name", i.value("name", "")},
                      {"defaultValue", i.contains("defaultValue") && !i["defaultValue"].is_null()
                                           ? expression::to_text(i["defaultValue"])
                                           : ""}});
  }
  rec.state["wake"] = "approval";
  rec.state["approval"] = {
      {"message", spec.value("approvalMessage", "")},
      {"userGroups", groups},
      {"users", approvers.value("users", json::array())},
      {"minimumCount", minimum},
      {"disallowPipelineExecutor", approvers.value("disallowPipelineExecutor", false)},
      {"inputs", inputs},
      {"activities", json::array()}};
  rec.status = st::kApprovalWaiting;
  rec.wake_at = rec.started_at + rec.timeout_ms;
  rec.message = "waiting for approval: capstan approve " + a.record.id;
  note(a, a.offset()[si] + static_cast<std::size_t>(r), 1,
       "approval needed (" + std::to_string(minimum) + " of " +
           approver_summary(rec.state["approval"]) + "): " + spec.value("approvalMessage", ""));
  audit(a, "", "approval-requested",
        {{"step", a.plan()[si].stage->identifier + "." + plan_row(a, si, r).path}});
  return true;
}

// ---------------------------------------------------------------------------------------------
// Timers

void Machine::tick_flow() {
  const auto wall = now_ms();
  std::vector<std::string> touched;
  for (auto& [id, a] : active_) {
    if (st::terminal(a.record.status)) continue;
    bool changed = false;
    for (std::size_t si = 0; si < a.plan().size(); ++si) {
      for (int r = 0; r < static_cast<int>(a.plan()[si].rows.size()); ++r) {
        auto& rec = row_record(a, si, r);
        if (rec.wake_at == 0 || wall < rec.wake_at || !waiting_status(rec.status)) continue;
        const std::size_t index = a.offset()[si] + static_cast<std::size_t>(r);
        rec.wake_at = 0;
        changed = true;
        set_row(a, si, r);
        const auto wake = rec.state.value("wake", "");
        if (rec.status == st::kWaiting && wake == "retry") {
          rec.status = st::kNotStarted; // start_row runs it again
          rec.state.erase("wake");
        } else if (rec.status == st::kWaiting) {
          rec.status = st::kSucceeded;
          rec.ended_at = wall;
          rec.message.clear();
          note(a, index, 1, "the wait is over");
        } else if (rec.status == st::kApprovalWaiting) {
          rec.status = st::kExpired;
          rec.error_type = "Timeout";
          rec.message = "no approval within " + duration_text(rec.timeout_ms);
          rec.ended_at = wall;
          rec.state["handled"] = false;
          note(a, index, 2, rec.message);
        } else if (rec.status == st::kInputWaiting) {
          rec.status = st::kFailed;
          rec.error_type = "InputTimeoutError";
          rec.message = "no execution input within " + duration_text(rec.timeout_ms);
          rec.ended_at = wall;
          rec.state["handled"] = false;
          note(a, index, 2, rec.message);
        } else if (rec.status == st::kInterventionWaiting) {
          const auto& iv = rec.state["intervention"];
          model::FailureAction next;
          next.type = model::action::kMarkAsFailure;
          if (iv.contains("onTimeout") && !iv["onTimeout"].is_null()) {
            next = iv["onTimeout"].get<model::FailureAction>();
          }
          rec.status = st::kFailed;
          rec.error_type = iv.value("errorType", rec.error_type);
          rec.message = iv.value("message", rec.message);
          rec.ended_at = wall;
          rec.state["handled"] = true;
          rec.state.erase("wake");
          note(a, index, 2, "no one intervened in time: " + next.type);
          apply_action(a, si, r, next, "the manual intervention timed out");
        }
      }
    }
    if (changed) touched.push_back(id);
  }
  for (const auto& id : touched) {
    auto it = active_.find(id);
    if (it != active_.end()) advance(it->second);
  }
  wake_lock_waiters();
}

} // namespace capstan::engine
