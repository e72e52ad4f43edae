// The engine's state machine (engine thread only): delegate sessions, active executions, the
// queue of steps waiting for a delegate, and the effects to run once a batch is committed.
//
// One class, several files: machine.cpp (sessions, tasks, results, dispatch, timers of tasks),
// flow.cpp (pipeline semantics: stages, steps, groups, parallel blocks, conditions, failure
// strategies, rollback, approvals, waits, the deployment queue), scope.cpp (what expressions
// see and what plugins get), commands.cpp (runs, aborts, approvals, interventions, inputs).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "capstan/plugin/v1/plugin.pb.h"
#include "capstan/wire/router.h"
#include "capstan/yaml/yaml.h"
#include "engine/context.h"
#include "engine/engine.h"
#include "engine/metrics.h"
#include "engine/plan.h"
#include "engine/scheduler.h"
#include "engine/tokens.h"
#include "model/inputs.h"
#include "model/pipeline.h"
#include "secrets/secret_box.h"
#include "store/applications.h"
#include "store/records.h"

namespace capstan::engine {

// An execution that has not finished, with what the engine needs to move it on.
struct Active {
  store::ExecutionRecord record;
  model::Pipeline pipeline;
  std::vector<StagePlan> plan;     // points into `pipeline`
  std::vector<std::size_t> offset; // each stage's first row in record.steps
  std::int64_t log_seq = 0;
  bool dirty = false; // execution row to write at the end of the batch
  bool stored = true; // false until the batch that created it inserts its rows (as they end up)
  std::set<std::size_t> changed;        // step indexes to write
  std::set<std::size_t> stages_changed; // stage indexes to write
};

class Machine {
public:
  Machine(store::Store& store, ChangeFeed& feed, const EngineOptions& options, wire::Router& router,
          Metrics& metrics);

  // Loads Queued/Running executions after a restart.
  void recover();

  void on_router_event(wire::RouterEvent& event);
  Outcome apply(std::vector<model::Object>& objects, bool dry_run, const std::string& user);
  // Deletes an object unless others still refer to it.
  Outcome remove(const std::string& kind, const std::string& identifier, const std::string& user);
  Outcome run(const RunRequest& request);
  Outcome abort(const std::string& execution_id, const std::string& user);
  Outcome approve(const ApprovalRequest& request);
  Outcome intervene(const InterventionRequest& request);
  Outcome answer(const InputAnswer& request);
  void app_operation(const AppOperationRequest& request, std::promise<Outcome> done);
  Outcome git_push(const GitPush& push);
  Outcome create_token(const std::string& name);
  Outcome revoke_token(const std::string& name);

  // Timers (timeouts, delegate waits, re-attach windows), then dispatch of queued steps.
  void tick();
  void schedule();
  // Writes what the batch changed (inside the caller's transaction).
  void flush();
  // After commit: sends, answers, notifications.
  void run_effects();
  // When the next timer is due.
  Clock::time_point next_wakeup() const;

  bool views_changed() const { return views_changed_; }
  // Sessions came, went or started draining (not just slot counts): show it at once.
  bool views_urgent() const { return views_urgent_; }
  std::vector<DelegateView> views();
  bool waits_changed() const { return waits_changed_; }
  // What active executions wait for, for the API (approvals, interventions, inputs, queue).
  std::vector<nlohmann::json> waits();
  // Gauges for /metrics (counters are kept in `metrics` as they happen).
  void sample(Metrics& metrics) const;

private:
  void on_hello(const wire::PeerId& peer, const wire::v1::Hello& hello);
  void on_peer_lost(const wire::PeerId& peer, const std::string& reason);
  void on_accepted(const wire::v1::Accepted& accepted);
  void on_log(const wire::PeerId& peer, const wire::v1::Log& log);
  void on_result(const wire::PeerId& peer, const wire::v1::Result& result);
  // Ends a session: its running tasks fail with "delegate lost" or are queued again.
  void lose_session(const wire::PeerId& peer, const std::string& reason);
  // A task whose delegate is gone: queued again when its step type is safe to retry (and it
  // has attempts left), failed otherwise. `started`: it may have run (false: it never did).
  void delegate_gone(Active& a, std::size_t index, const std::string& why, bool started);
  void requeue(Active& a, std::size_t index, const std::string& why);
  void enqueue(Active& a, std::size_t index);
  TaskNeeds needs_of(const Active& a, std::size_t index) const;
  void note(Active& a, std::size_t index, int level, const std::string& line);

  store::StepRecord* step_for_task(const std::string& task_id, std::uint32_t attempt,
                                   Active** active);
  void release_slot(const std::string& instance_id, const std::string& task_id,
                    std::uint32_t attempt);
  void touch(Active& a);
  void touch_step(Active& a, std::size_t index);
  // Moves an execution on as far as it goes (and the executions its moves wake).
  void advance(Active& a);
  void fail_step(Active& a, std::size_t index, const std::string& error_type,
                 const std::string& message, const std::string& status = store::status::kFailed);
  void finish(Active& a, const std::string& status, const std::string& error_type,
              const std::string& message);
  void dispatch(Active& a, std::size_t index, Session& session,
                const plugin::v1::StepRequest& request);
  bool resolve(Active& a, std::size_t index, plugin::v1::StepRequest& request);
  void send(const wire::PeerId& peer, wire::v1::Envelope envelope);
  bool scheduler_provides(const std::string& type) const { return scheduler_.provides(type); }
  std::string delegates_summary() const { return scheduler_.summary(); }

  // --- repository_lock.cpp: one Update Release Repo or Revert PR per release repository ---
  // The step's repository lock key (computed once, kept in its state); "" when it takes none.
  std::string repository_lock_key(Active& a, std::size_t index);
  // Who holds `key` besides the step, for messages; "" when nobody.
  std::string repository_lock_holder(const Active& a, std::size_t index,
                                     const std::string& key) const;
  // True when the queued task must keep waiting for its repository (its message says why).
  bool wait_for_repository(Active& a, QueuedTask& task);

  // --- flow.cpp: pipeline semantics ---
  enum class Progress { kPending, kDone };
  store::StepRecord& row_record(Active& a, std::size_t si, int row);
  const PlanRow& plan_row(const Active& a, std::size_t si, int row) const;
  void set_row(Active& a, std::size_t si, int row);
  void set_stage(Active& a, std::size_t si);
  bool drive(Active& a);
  bool drive_stage(Active& a, std::size_t si);
  Progress drive_rows(Active& a, std::size_t si, const std::vector<int>& rows, bool parallel,
                      bool& changed);
  Progress drive_row(Active& a, std::size_t si, int row, bool& changed);
  bool start_row(Active& a, std::size_t si, int row);
  bool start_wait(Active& a, std::size_t si, int row);
  bool start_approval(Active& a, std::size_t si, int row);
  void skip_rows(Active& a, std::size_t si, int row, const std::string& why);
  void fail_row(Active& a, std::size_t si, int row, const std::string& error_type,
                const std::string& message);
  bool stage_failed_before(const Active& a, std::size_t si) const;
  bool row_failed_so_far(const Active& a, std::size_t si, const std::string& section) const;
  void handle_failure(Active& a, std::size_t si, int row);
  void apply_action(Active& a, std::size_t si, int row, const model::FailureAction& action,
                    const std::string& where);
  void cancel_rows(Active& a, std::size_t si, const std::string& section, const std::string& why);
  std::vector<int> rollback_segments(const Active& a, std::size_t si) const;
  void start_stage_rollback(Active& a, std::size_t si, const std::string& reason);
  void start_pipeline_rollback(Active& a, std::size_t si, const std::string& reason);
  bool drive_rollback(Active& a, std::size_t si);
  bool drive_pipeline_rollback(Active& a);
  void end_stage(Active& a, std::size_t si, const std::string& status, const std::string& message,
                 const std::string& error_type);
  void skip_stage(Active& a, std::size_t si, const std::string& why);
  void abort_execution(Active& a, const std::string& message);
  bool lock_available(const Active& a, std::size_t si, std::string& holder) const;
  void wake_lock_waiters();
  void tick_flow();

  // --- scope.cpp: expressions and plugin contexts ---
  secrets::SecretBox& secret_box();
  SecretSource& secret_source();
  const secrets::Masker& masker();
  std::string mask(const std::string& text);
  nlohmann::json variable_values(const std::vector<model::Variable>& vars,
                                 const nlohmann::json& given, const std::string& fqn_prefix,
                                 const nlohmann::json& inputs);
  nlohmann::json scope_root(Active& a, std::size_t si, int row);
  // What a step's task needs of the scope: scope_root(), or only the pipeline's and stage's
  // variables when neither they nor the step's spec hold an expression and the stage has no
  // service, environment or infrastructure (nothing is evaluated then).
  nlohmann::json task_scope_root(Active& a, std::size_t si, int row, const nlohmann::json& spec);
  bool condition_holds(Active& a, std::size_t si, int row, const std::string& condition,
                       std::string& error);
  void fill_inputs(const Active& a, std::size_t si, int row, nlohmann::json& spec) const;
  nlohmann::json rendered_spec(Active& a, std::size_t si, int row, std::string& error);
  // Resolves a Deployment stage's objects, namespace, release name and artifact, and its place
  // in the deployment queue; returns why it cannot start ("" when it can).
  std::string start_deployment(Active& a, std::size_t si);
  nlohmann::json plugin_context(Active& a, std::size_t si, int row, StepScope& scope,
                                std::vector<std::string>& secrets_used);

  // --- applications.cpp: GitOps applications assigned to delegates ---
  struct AppRuntime {
    store::AppStateRecord state;
    std::string sent; // digest of the last AppAssign payload sent for this epoch
    std::optional<Clock::time_point> orphaned_since; // its delegate was lost or drains
    bool dirty = false;                              // state to write at flush
    bool delete_resources = false; // its document asks for cascading deletion (a finalizer)
    bool follow = false;           // an ApplicationSet whose report is still to be followed
  };
  void apps_recover();
  void apps_on_hello(Session& s, const wire::v1::Hello& hello, bool new_connection);
  void apps_on_session_lost(const std::string& instance_id);
  void apps_on_status(const wire::PeerId& peer, const wire::v1::AppStatus& status);
  // After an apply or delete: new, changed and deleted applications, and changed clusters.
  void apps_changed();
  void apps_tick();
  void apps_flush();
  void apps_on_operation_result(const wire::PeerId& peer,
                                const wire::v1::AppOperationResult& result);
  // Answers the pending operations of an application (or of all held by an instance).
  void apps_fail_operations(const std::string& app, const std::string& instance_id,
                            const std::string& why);
  // Gives the application to the least-loaded eligible delegate (a new epoch), or records why
  // none can take it.
  void apps_place(AppRuntime& app);
  void apps_send_assign(AppRuntime& app, const Session& s, bool force);
  void apps_unassign(AppRuntime& app, const std::string& reason, bool delete_resources = false);
  void apps_problem(AppRuntime& app, const std::string& message);
  // The AppAssign payload of an application now: cluster JSON, secrets to mask, selectors.
  struct AppTarget {
    std::string error;
    std::string application_json;
    std::string cluster_json;
    std::vector<std::string> mask;
    std::vector<std::string> selectors;
  };
  AppTarget apps_target(const std::string& name);
  // A MergePR or RevertPR step moved branches of a repository: the applications following them
  // refresh at once, as a push webhook would make them.
  void apps_refresh_after_step(const std::string& step_type, const plugin::v1::StepResult& result,
                               const std::string& execution_id);

  // --- application_sets.cpp: ApplicationSets (runtime key "applicationset/<name>") ---
  static bool appsets_is_key(const std::string& key);
  static std::string appsets_key(const std::string& set);
  AppTarget appsets_target(const std::string& key);
  // Creates, updates and deletes the set's applications as its last report says; false when
  // it must look again after this batch's commit.
  bool appsets_follow(AppRuntime& rt, std::set<std::string>& written);
  void appsets_tick();
  void appsets_delete_owned(const std::string& set);
  void appsets_put_application(const std::string& set, const model::Object& o,
                               const std::string& action);
  void appsets_delete_application(const std::string& set, const std::string& name,
                                  const std::string& why);
  void appsets_git_push(const GitPush& push, nlohmann::json& refreshed, nlohmann::json& waiting);

  // --- gitops_steps.cpp: GitOpsSync and UpdateGitOpsApp, run by the coordinator ---
  // The step's spec with its expressions resolved; nullopt when that failed (the row failed).
  std::optional<nlohmann::json> gitops_step_spec(Active& a, std::size_t si, int row);
  bool start_gitops_sync(Active& a, std::size_t si, int row);
  bool start_update_gitops_app(Active& a, std::size_t si, int row);
  bool rollback_update_gitops_app(Active& a, std::size_t si, int row);
  // Sends a sync of `app` for the step (a new attempt) and keeps its answer's future.
  void gitops_send_sync(Active& a, std::size_t index, const std::string& app);
  bool gitops_sync_progress(Active& a, std::size_t index, std::int64_t wall);
  // Running GitOpsSync steps: answers, statuses, retries and timeouts.
  void tick_gitops_steps();
  // Why no delegate can take an operation on `app` now; "" when one can.
  std::string gitops_unheld(const std::string& app);
  // The applications whose destination is one of `clusters` (a stage's context.gitOps
  // clusters), with their live status, for FetchLinkedApps.
  nlohmann::json live_applications(const nlohmann::json& clusters);

  // --- commands.cpp ---
  void index_plan(Active& a);
  Active* active_execution(const std::string& id_or_prefix, Outcome& error);
  void audit(Active& a, const std::string& user, const std::string& action, nlohmann::json details);
  void note_stage(Active& a, std::size_t si, int level, const std::string& line);
  nlohmann::json pending_questions(const Active& a, const std::string& stage,
                                   const std::string& step, bool stage_level) const;
  static std::string question_names(const nlohmann::json& questions);
  static std::string approver_summary(const nlohmann::json& approval);

  store::Store& store_;
  ChangeFeed& feed_;
  const EngineOptions& options_;
  wire::Router& router_;
  Clock::time_point started_ = Clock::now();
  Scheduler scheduler_;
  Tokens tokens_;
  Metrics& metrics_;
  Clock::time_point next_timers_ = Clock::now();
  struct StoredPipeline {
    std::int64_t version = 0;
    yaml::Document document; // as applied, with its original line numbers
    model::Pipeline pipeline;
    std::vector<model::InputSite> sites; // the runtime inputs the document itself holds
    // Without runtime inputs of its own every run parses the same document the same way: the
    // parsed pipeline and its plan are kept (set by the first such run).
    std::optional<model::Pipeline> as_run;
    nlohmann::json plan;
  };
  std::unordered_map<std::string, StoredPipeline> pipelines_; // applied pipelines, parsed
  std::unordered_map<std::string, std::int64_t> sequences_;   // last run number per pipeline
  std::map<std::string, Active> active_;                      // by execution id
  std::set<std::string> dirty_;                               // executions changed in this batch
  // task id -> (execution id, step index), for the steps of active executions.
  std::unordered_map<std::string, std::pair<std::string, std::size_t>> tasks_;
  std::vector<std::function<void()>> effects_;
  std::map<std::string, std::vector<store::LogRecord>> logs_; // appended at flush
  std::vector<std::string> finished_;                         // executions ended in this batch
  bool views_changed_ = true;
  bool waits_changed_ = true;
  std::unique_ptr<secrets::SecretBox> secret_box_; // opened on first use
  std::unique_ptr<SecretSource> secret_source_;
  secrets::Masker masker_;
  bool secrets_changed_ = true; // the masker must be rebuilt
  // advance(): executions to drive, and whether a drive is under way (it wakes others).
  std::deque<std::string> pending_advance_;
  bool advancing_ = false;
  std::set<std::string> released_locks_; // deployment queue keys freed in this batch
  // Secret values each task's spec and context carry, for the delegate to mask (by task id).
  std::unordered_map<std::string, std::vector<std::string>> task_secrets_;
  bool views_urgent_ = true;
  std::map<std::string, AppRuntime> apps_; // GitOps applications by name
  Clock::time_point apps_next_place_ = Clock::now();
  bool apps_written_ = false; // applications or what they use changed in this batch
  bool apps_dirty_ = false;   // ... in a committed batch: to look at now
  struct PendingOperation {
    std::string app;
    std::string instance_id;
    std::uint64_t epoch = 0;
    Clock::time_point deadline;
    std::shared_ptr<std::promise<Outcome>> done;
  };
  std::map<std::string, PendingOperation> app_operations_; // by operation id
  // Answers of the syncs GitOpsSync steps started, by "execution\x1fstep index\x1fapp" (not
  // kept across restarts: the application's last operation tells then).
  std::map<std::string, std::future<Outcome>> gitops_ops_;
  std::uint64_t app_operation_seq_ = 0;
};

} // namespace capstan::engine
