// The engine's state machine (engine thread only): delegate sessions, active executions, the
// queue of steps waiting for a delegate, and the effects to run once a batch is committed.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "capstan/plugin/v1/plugin.pb.h"
#include "capstan/wire/router.h"
#include "engine/engine.h"
#include "engine/metrics.h"
#include "engine/scheduler.h"
#include "engine/tokens.h"
#include "model/pipeline.h"
#include "store/records.h"

namespace capstan::engine {

// An execution that has not finished, with what the engine needs to move it on.
struct Active {
  store::ExecutionRecord record;
  model::Pipeline pipeline;
  std::int64_t log_seq = 0;
  bool dirty = false;            // execution row to write at the end of the batch
  std::set<std::size_t> changed; // step indexes to write
};

class Machine {
public:
  Machine(store::Store& store, ChangeFeed& feed, const EngineOptions& options, wire::Router& router,
          Metrics& metrics);

  // Loads Queued/Running executions after a restart.
  void recover();

  void on_router_event(wire::RouterEvent& event);
  Outcome apply(std::vector<model::Object>& objects, bool dry_run);
  Outcome run(const std::string& pipeline, const std::map<std::string, std::string>& variables);
  Outcome abort(const std::string& execution_id);
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
  // Moves an execution on: queues its next step, or ends it.
  void advance(Active& a);
  void refresh_stages(Active& a);
  void fail_step(Active& a, std::size_t index, const std::string& error_type,
                 const std::string& message, const std::string& status = store::status::kFailed);
  void finish(Active& a, const std::string& status, const std::string& error_type,
              const std::string& message);
  void dispatch(Active& a, std::size_t index, Session& session,
                const plugin::v1::StepRequest& request);
  bool resolve(Active& a, std::size_t index, plugin::v1::StepRequest& request);
  void send(const wire::PeerId& peer, wire::v1::Envelope envelope);

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
    nlohmann::json model;
    model::Pipeline pipeline;
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
  bool views_urgent_ = true;
};

} // namespace capstan::engine
