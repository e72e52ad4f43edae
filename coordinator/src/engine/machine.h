// The engine's state machine (engine thread only): delegate sessions, active executions, the
// queue of steps waiting for a delegate, and the effects to run once a batch is committed.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "capstan/plugin/v1/plugin.pb.h"
#include "capstan/wire/router.h"
#include "engine/engine.h"
#include "model/pipeline.h"
#include "secrets/secret_box.h"
#include "store/records.h"

namespace capstan::engine {

using Clock = std::chrono::steady_clock;

// A delegate process with an open session.
struct Session {
  wire::PeerId peer;
  std::string name;
  std::string instance_id;
  std::string hostname;
  std::string version;
  std::vector<std::string> tags;
  std::map<std::string, wire::v1::StepTypeAd> types;
  int slots = 1;
  std::set<std::string> tasks; // "task#attempt" occupying a slot
  std::int64_t connected_at = 0;
};

// An execution that has not finished, with what the engine needs to move it on.
struct Active {
  store::ExecutionRecord record;
  model::Pipeline pipeline;
  std::int64_t log_seq = 0;
  bool dirty = false;            // execution row to write at the end of the batch
  std::set<std::size_t> changed; // step indexes to write
  std::map<std::size_t, Clock::time_point> waiting_since; // queued steps without a delegate
};

class Machine {
public:
  Machine(store::Store& store, ChangeFeed& feed, const EngineOptions& options,
          wire::Router& router);

  // Loads Queued/Running executions after a restart.
  void recover();

  void on_router_event(wire::RouterEvent& event);
  Outcome apply(std::vector<model::Object>& objects, bool dry_run, const std::string& user);
  // Deletes an object unless others still refer to it.
  Outcome remove(const std::string& kind, const std::string& identifier, const std::string& user);
  Outcome run(const std::string& pipeline, const std::map<std::string, std::string>& variables);
  Outcome abort(const std::string& execution_id);

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
  std::vector<DelegateView> views();

private:
  void on_hello(const wire::PeerId& peer, const wire::v1::Hello& hello);
  void on_peer_lost(const wire::PeerId& peer, const std::string& reason);
  void on_accepted(const wire::v1::Accepted& accepted);
  void on_log(const wire::v1::Log& log);
  void on_result(const wire::PeerId& peer, const wire::v1::Result& result);

  Session* session_for_peer(const wire::PeerId& peer);
  store::StepRecord* step_for_task(const std::string& task_id, std::uint32_t attempt,
                                   Active** active);
  void release_slot(const std::string& instance_id, const std::string& key);
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
  std::string connected_summary() const;
  secrets::SecretBox& secret_box();
  void send(const wire::PeerId& peer, wire::v1::Envelope envelope);

  store::Store& store_;
  ChangeFeed& feed_;
  const EngineOptions& options_;
  wire::Router& router_;
  Clock::time_point started_ = Clock::now();
  std::unordered_map<std::string, Session> sessions_;       // by instance id
  std::unordered_map<wire::PeerId, std::string> instances_; // peer -> instance id
  std::map<std::string, Active> active_;                    // by execution id
  // task id -> (execution id, step index), for the steps of active executions.
  std::unordered_map<std::string, std::pair<std::string, std::size_t>> tasks_;
  std::deque<std::pair<std::string, std::size_t>> queue_; // steps waiting for a delegate
  std::vector<std::function<void()>> effects_;
  std::map<std::string, std::vector<store::LogRecord>> logs_; // appended at flush
  std::vector<std::string> finished_;                         // executions ended in this batch
  bool views_changed_ = true;
  std::unique_ptr<secrets::SecretBox> secret_box_; // opened on first use
  bool secrets_changed_ = true;                    // the masker must be rebuilt
};

} // namespace capstan::engine
