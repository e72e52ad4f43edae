// The pipeline engine: a persisted state machine on one thread. Every change to executions,
// stages and steps is written to the store and committed before it takes effect (a message to
// a delegate, an answer to the API), so a restarted coordinator resumes from the store.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "capstan/wire/router.h"
#include "engine/change_feed.h"
#include "engine/git_push.h"
#include "engine/metrics.h"
#include "model/object.h"
#include "store/store.h"

namespace capstan::engine {

class Machine;

struct EngineOptions {
  std::string coordinator_id;
  wire::Liveness liveness;
  // How long a step waits for a connected delegate that provides its type before it fails.
  std::chrono::milliseconds delegate_wait{std::chrono::seconds(30)};
  // After a restart, how long tasks that were running wait for their delegate to re-attach.
  std::chrono::milliseconds reattach_window{std::chrono::seconds(15)};
  // Slack over a step's timeout before the coordinator fails it itself: the delegate enforces
  // the timeout first, and abandons a plugin that ignores it after its --cancel-grace.
  std::chrono::milliseconds timeout_grace{std::chrono::seconds(30)};
  // How long a step may wait in the queue for a free slot on an eligible delegate.
  std::chrono::milliseconds queue_timeout{std::chrono::minutes(30)};
  // Attempts of one step that was lost with its delegate (retry-safe types) or never reached
  // one, before it fails.
  std::uint32_t max_attempts = 3;
  // On first start (no delegate token yet) a token named "default" is created and written here.
  std::filesystem::path initial_token_file;
  // Called on the engine thread after an execution's end is committed (benchmarks, embedding).
  std::function<void(const std::string& execution_id, const std::string& status)> on_finished;
  // Called on the engine thread after a task's dispatch is committed (its Assign is handed to
  // the wire next) and when its Result is read, before anything is committed for it: where an
  // execution's time goes (benchmarks). Unset, it costs a test per task.
  enum class TaskMoment { kDispatched, kResultRead };
  std::function<void(const std::string& execution_id, TaskMoment moment)> on_task;
};

// A connected delegate, as the API shows it.
struct DelegateView {
  std::string name;
  std::string instance_id;
  std::string hostname;
  std::string version;
  std::vector<std::string> tags;
  nlohmann::json step_types = nlohmann::json::array(); // [{type, plugin, pluginVersion}]
  int slots = 0;
  int running = 0;
  std::int64_t connected_at = 0;
  bool draining = false;
  std::string token; // name of the token it presented
};

// A run as the API asks for it.
struct RunRequest {
  std::string pipeline;
  std::map<std::string, std::string> set; // --set NAME=VALUE: runtime inputs and variables
  std::string inputs_yaml;                // --inputs FILE: Harness's inputs YAML
  std::string inputs_name;                // the file's name, for messages
  std::string user;                       // who runs it
};

// An answer to a HarnessApproval step.
struct ApprovalRequest {
  std::string execution;
  std::string step; // "" when only one approval waits
  std::string user;
  bool reject = false;
  std::string comment;
  std::map<std::string, std::string> inputs; // approverInputs
};

// The action chosen for a step that waits for manual intervention (or a Wait step).
struct InterventionRequest {
  std::string execution;
  std::string step;
  std::string user;
  std::string action; // Retry, Ignore, MarkAsSuccess, MarkAsFailure, Abort, StageRollback, ...
  std::string comment;
};

// Values for the execution inputs a stage or step asks for.
struct InputAnswer {
  std::string execution;
  std::string step;
  std::string user;
  std::map<std::string, std::string> values;
};

// An operation on a GitOps application, run by the delegate that reconciles it.
struct AppOperationRequest {
  std::string app;
  std::string op;                                   // "sync", "refresh", "rollback"
  nlohmann::json params = nlohmann::json::object(); // ReconcilerCall params_json
  std::string user;
};

// The answer to an API command: an HTTP status, a machine-readable code and a message, plus a
// body on success.
struct Outcome {
  int status = 200;
  std::string code;    // "" on success; "NotFound", "InvalidInput", "NoEligibleDelegate", ...
  std::string message; // one line
  nlohmann::json details = nlohmann::json::array(); // problems: [{location, message}]
  nlohmann::json body;
  bool ok() const { return status < 300; }
};

class Engine {
public:
  Engine(store::Store& store, ChangeFeed& feed, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Connects the engine to the wire and starts its thread: recovers active executions first. The
  // router must have no thread of its own (RouterOptions::own_thread false): the engine's thread
  // drives its socket between batches, so a message crosses no thread between libzmq and the
  // engine. Stop the engine before destroying the router.
  void start(wire::Router& router);
  void stop();

  // The router's sink: called on the router thread, queues the event.
  void post(wire::RouterEvent&& event);
  // The same for a burst of events: queued together, one wake-up.
  void post(std::vector<wire::RouterEvent>&& events);

  // API commands, answered after their effects are committed.
  std::future<Outcome> apply(std::vector<model::Object> objects, bool dry_run, std::string user);
  // cascade=false deletes an application at once, leaving its resources (Argo CD's
  // --cascade=false); otherwise one with the resources finalizer waits for them to go.
  std::future<Outcome> remove(std::string kind, std::string identifier, std::string user,
                              bool cascade = true);
  std::future<Outcome> run(RunRequest request);
  std::future<Outcome> abort(std::string execution_id, std::string user);
  std::future<Outcome> approve(ApprovalRequest request);
  std::future<Outcome> intervene(InterventionRequest request);
  std::future<Outcome> answer(InputAnswer request);
  // Sent to the application's delegate; answered when it reports back (a sync: when it ended),
  // or with an error when the application has no delegate or its delegate is lost.
  std::future<Outcome> app_operation(AppOperationRequest request);
  // A Git host reported a push: the applications following that repository and ref refresh at
  // once. Answers {"refreshed": [names]}.
  std::future<Outcome> git_push(GitPush push);
  // What active executions wait for (approvals, interventions, inputs, the deployment queue).
  std::vector<nlohmann::json> waits() const;
  // Delegate tokens: create answers {name, token} (the only time the token is shown); revoke
  // drops the delegates that use it at once.
  std::future<Outcome> create_token(std::string name);
  std::future<Outcome> revoke_token(std::string name);

  Metrics& metrics() { return metrics_; }

  std::vector<DelegateView> delegates() const;

private:
  struct ApplyCommand {
    std::vector<model::Object> objects;
    bool dry_run = false;
    std::string user;
    std::promise<Outcome> done;
  };
  struct DeleteCommand {
    std::string kind;
    std::string identifier;
    std::string user;
    bool cascade = true;
    std::promise<Outcome> done;
  };
  struct RunCommand {
    RunRequest request;
    std::promise<Outcome> done;
  };
  struct AbortCommand {
    std::string execution_id;
    std::string user;
    std::promise<Outcome> done;
  };
  struct TokenCommand {
    std::string name;
    bool revoke = false;
    std::promise<Outcome> done;
  };
  struct ApprovalCommand {
    ApprovalRequest request;
    std::promise<Outcome> done;
  };
  struct InterventionCommand {
    InterventionRequest request;
    std::promise<Outcome> done;
  };
  struct InputCommand {
    InputAnswer request;
    std::promise<Outcome> done;
  };
  struct AppOperationCommand {
    AppOperationRequest request;
    std::promise<Outcome> done;
  };
  struct GitPushCommand {
    GitPush push;
    std::promise<Outcome> done;
  };
  using Event = std::variant<wire::RouterEvent, ApplyCommand, DeleteCommand, RunCommand,
                             AbortCommand, TokenCommand, ApprovalCommand, InterventionCommand,
                             InputCommand, AppOperationCommand, GitPushCommand>;

  void push(Event event);
  void loop();
  void process(std::vector<Event>& events);

  store::Store& store_;
  ChangeFeed& feed_;
  EngineOptions options_;
  wire::Router* router_ = nullptr;

  bool may_sleep();
  void woke();

  // Guards events_ and the flags below: posted from API threads (and the engine's own, for what
  // the router reads).
  std::mutex queue_mutex_;
  std::deque<Event> events_;
  bool stopping_ = false;
  bool asleep_ = false;    // the engine thread is about to wait, or waits, on wake_fd_
  bool signalled_ = false; // wake_fd_ was written and not read yet
  int wake_fd_ = -1;       // eventfd the engine thread waits on next to the router's

  mutable std::mutex view_mutex_; // guards views_ and waits_: written by the engine, read by API
                                  // threads
  std::vector<DelegateView> views_;
  std::vector<nlohmann::json> waits_;
  std::chrono::steady_clock::time_point views_at_; // engine thread only

  Metrics metrics_;
  std::unique_ptr<Machine> machine_; // touched only by the engine thread
  std::thread thread_;
};

} // namespace capstan::engine
