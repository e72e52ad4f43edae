// The engine's state machine: sessions, dispatch, results, timers, recovery.
#include "engine/machine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <string_view>
#include <unordered_set>

#include <capstan/apps/application.h>

#include "capstan/expression/expression.h"
#include "capstan/yaml/yaml.h"
#include "engine/gitops.h"
#include "model/catalog.h"
#include "model/duration.h"
#include "model/gitops_steps.h"
#include "model/selectors.h"
#include "model/step_specs.h"
#include "model/step_types.h"

namespace capstan::engine {

using nlohmann::json;
namespace st = store::status;
namespace v1 = wire::v1;

namespace {

using store::now_ms;

std::string error_type_name(plugin::v1::ErrorType t) {
  switch (t) {
  case plugin::v1::ERROR_TYPE_TIMEOUT:
    return "Timeout";
  case plugin::v1::ERROR_TYPE_CONNECTIVITY:
    return "Connectivity";
  case plugin::v1::ERROR_TYPE_AUTHENTICATION:
    return "Authentication";
  case plugin::v1::ERROR_TYPE_AUTHORIZATION:
    return "Authorization";
  case plugin::v1::ERROR_TYPE_DELEGATE_PROVISIONING:
    return "DelegateProvisioning";
  case plugin::v1::ERROR_TYPE_VERIFICATION:
    return "Verification";
  case plugin::v1::ERROR_TYPE_POLICY_EVALUATION:
    return "PolicyEvaluationFailure";
  case plugin::v1::ERROR_TYPE_INVALID_INPUT:
    return "InvalidInput";
  default:
    return "Unknown";
  }
}

Outcome failure(int status, std::string code, std::string message, json details = json::array()) {
  Outcome o;
  o.status = status;
  o.code = std::move(code);
  o.message = std::move(message);
  o.details = std::move(details);
  return o;
}

// A task out on a delegate (groups, parallel blocks and coordinator steps never are).
bool in_flight(const store::StepRecord& s) {
  return (s.status == st::kDispatched || s.status == st::kRunning) && !s.delegate_instance.empty();
}

} // namespace

Machine::Machine(store::Store& store, ChangeFeed& feed, const EngineOptions& options,
                 wire::Router& router, Metrics& metrics)
    : store_(store), feed_(feed), options_(options), router_(router), tokens_(store),
      metrics_(metrics) {}

void Machine::send(const wire::PeerId& peer, v1::Envelope envelope) {
  outgoing_.push_back({peer, std::move(envelope)});
}

void Machine::recover() {
  tokens_.load();
  if (tokens_.empty() && !options_.initial_token_file.empty()) {
    // First start: one token for the local delegate, in a file only the owner can read.
    auto token = tokens_.create("default", now_ms());
    Tokens::save(options_.initial_token_file, token);
    spdlog::info("created delegate token 'default' in {}", options_.initial_token_file.string());
  }
  store_.mark_all_delegates_disconnected("coordinator restarted");
  // An execution that cannot be read back whole (a damaged stored value) ends as Failed, its
  // row otherwise as stored; the others resume. Without this one bad row would stop every start.
  auto fail_unreadable = [&](const std::string& id, const std::string& why) {
    spdlog::error("execution {} cannot be resumed: {}", id, why);
    store_.fail_as_stored(
        id, "the coordinator could not resume this execution after a restart (" + why + ")",
        now_ms());
  };
  std::vector<store::Store::Unreadable> unreadable;
  auto active = store_.active_executions(&unreadable);
  for (const auto& u : unreadable) fail_unreadable(u.id, u.error);
  for (auto& record : active) {
    const std::string id = record.id;
    Active a;
    try {
      a.shape = make_execution_plan(model::pipeline_from_json(record.plan));
    } catch (const std::exception& e) {
      fail_unreadable(id, "its stored plan cannot be read: " + store::unreadable_because(e));
      continue;
    }
    a.log_seq = store_.last_log_seq(record.id);
    a.record = std::move(record);
    auto [it, _] = active_.emplace(id, std::move(a));
    auto& act = it->second;
    std::size_t rows = 0;
    for (const auto& sp : act.plan()) rows += sp.rows.size();
    if (rows != act.record.steps.size() || act.plan().size() != act.record.stages.size()) {
      // Stored by a release that laid executions out differently: it cannot be resumed.
      spdlog::error("execution {} cannot be resumed: its stored steps do not match its plan", id);
      act.record.status = st::kFailed;
      act.record.message = "the coordinator could not resume this execution after a restart "
                           "(its stored steps do not match its plan)";
      act.record.ended_at = now_ms();
      touch(act);
      finished_.push_back(id);
      continue;
    }
    for (std::size_t i = 0; i < act.record.steps.size(); ++i) {
      auto& s = act.record.steps[i];
      if (!s.task_id.empty()) tasks_[s.task_id] = {id, i};
      if (s.status == st::kQueued && s.kind == "Step") {
        enqueue(act, i, true);
      }
    }
    spdlog::info("resuming execution {} of pipeline {} (#{})", id, act.record.pipeline,
                 act.record.sequence);
    touch(act);
  }
  for (auto& [id, act] : active_) advance(act);
  apps_recover();
}

// ---------------------------------------------------------------------------------------------
// Wire events

void Machine::on_router_event(wire::RouterEvent& event) {
  if (event.kind == wire::RouterEvent::Kind::kPeerLost) {
    lose_session(event.peer, event.reason);
    return;
  }
  const auto& env = event.envelope;
  switch (env.body_case()) {
  case v1::Envelope::kHello:
    on_hello(event.peer, env.hello());
    return;
  case v1::Envelope::kAccepted:
    on_accepted(env.accepted());
    return;
  case v1::Envelope::kLog:
    on_log(event.peer, env.log());
    return;
  case v1::Envelope::kResult:
    on_result(event.peer, env.result());
    return;
  case v1::Envelope::kAppStatus:
    apps_on_status(event.peer, env.app_status());
    return;
  case v1::Envelope::kAppOperationResult:
    apps_on_operation_result(event.peer, env.app_operation_result());
    return;
  case v1::Envelope::kAppDeleted:
    apps_on_deleted(event.peer, env.app_deleted());
    return;
  default:
    spdlog::debug("ignoring {} from a delegate", wire::body_name(env));
    return;
  }
}

void Machine::on_hello(const wire::PeerId& peer, const v1::Hello& hello) {
  auto refuse = [&](v1::Refuse::Code code, const std::string& why, const std::string& log) {
    v1::Envelope env;
    env.mutable_refuse()->set_code(code);
    env.mutable_refuse()->set_message(why);
    send(peer, std::move(env));
    metrics_.hellos_refused.inc();
    // Rate-limited: a peer repeating a bad Hello must not flood the log.
    auto n = metrics_.hellos_refused.value();
    if (n <= 20 || n % 1000 == 0) {
      spdlog::warn("refused a delegate session: {} ({} refused so far)", log.empty() ? why : log,
                   n);
    }
    // A connection that had a session under a token now revoked loses it.
    if (scheduler_.by_peer(peer) != nullptr) lose_session(peer, why);
  };
  auto token = tokens_.verify(hello.token());
  if (!token) {
    // Nothing else is said to a peer without a valid token.
    return refuse(v1::Refuse::CODE_UNAUTHENTICATED,
                  hello.token().empty() ? "this delegate presented no token"
                                        : "the delegate token is not valid (unknown or revoked)",
                  "delegate '" + hello.name().substr(0, 64) + "' presented " +
                      (hello.token().empty() ? "no token" : "an invalid or revoked token"));
  }
  if (hello.name().empty())
    return refuse(v1::Refuse::CODE_INVALID, "Hello without a delegate name", "");
  if (hello.instance_id().empty())
    return refuse(v1::Refuse::CODE_INVALID, "Hello without an instance id", "");
  if (hello.slots() == 0)
    return refuse(v1::Refuse::CODE_INVALID, "delegate '" + hello.name() + "' offers 0 slots", "");

  // A connection that said Hello before under another identity is replaced.
  if (auto* old = scheduler_.by_peer(peer);
      old != nullptr && old->instance_id != hello.instance_id()) {
    lose_session(peer, "replaced by a new session on the same connection");
  }
  auto now = now_ms();
  bool fresh = false;
  Session& s = scheduler_.session(hello.instance_id(), &fresh);
  bool new_connection = fresh || s.peer != peer;
  bool was_draining = s.draining;
  s.name = hello.name();
  s.hostname = hello.hostname();
  s.version = hello.version();
  s.token = *token;
  s.tags.assign(hello.tags().begin(), hello.tags().end());
  s.slots = static_cast<int>(hello.slots());
  s.draining = hello.draining();
  s.types.clear();
  for (const auto& t : hello.step_types()) s.types[t.type()] = t;
  if (fresh) s.connected_at = now;
  if (auto old_peer = scheduler_.bind(s, peer)) {
    // The same process on a new connection: forget the old one quietly.
    outgoing_.push_back({*old_peer, std::nullopt});
  }
  if (!fresh && new_connection) metrics_.delegate_reconnects.inc();

  // Sent after the Welcome: a delegate takes no message before it.
  std::vector<v1::Envelope> cancels;
  if (new_connection) {
    // What the delegate still runs occupies its slots; anything we no longer expect from it is
    // cancelled.
    std::set<std::string> known;
    s.tasks.clear();
    for (const auto& ref : hello.running()) {
      known.insert(slot_key(ref.task_id(), ref.attempt()));
      s.tasks.insert(slot_key(ref.task_id(), ref.attempt()));
      Active* a = nullptr;
      auto* step = step_for_task(ref.task_id(), ref.attempt(), &a);
      if (step == nullptr || !in_flight(*step) || step->delegate_instance != s.instance_id) {
        v1::Envelope cancel;
        cancel.mutable_cancel()->set_task_id(ref.task_id());
        cancel.mutable_cancel()->set_attempt(ref.attempt());
        cancel.mutable_cancel()->set_reason("the coordinator no longer expects this task");
        cancels.push_back(std::move(cancel));
      }
    }
    for (const auto& ref : hello.finished()) known.insert(slot_key(ref.task_id(), ref.attempt()));
    // Tasks we sent this process that it neither runs nor finished never reached it (the
    // coordinator stopped between recording and sending, or the connection dropped the
    // Assign): they never started, so they are queued again.
    for (auto& [id, a] : active_) {
      for (std::size_t i = 0; i < a.record.steps.size(); ++i) {
        auto& step = a.record.steps[i];
        if (in_flight(step) && step.delegate_instance == s.instance_id &&
            !known.count(slot_key(step.task_id, step.attempt))) {
          delegate_gone(a, i, "the task never reached delegate " + s.name, false);
          advance(a);
        }
      }
    }
  }

  if (s.draining && !was_draining) spdlog::info("delegate {} is draining", s.name);
  if (!s.draining || new_connection) {
    store_.touch_token(s.token, now);
  }
  store::DelegateRecord rec;
  rec.name = s.name;
  rec.instance_id = s.instance_id;
  rec.hostname = s.hostname;
  rec.version = s.version;
  rec.tags = s.tags;
  rec.slots = s.slots;
  rec.first_seen = now;
  rec.last_seen = now;
  rec.connected = true;
  rec.draining = s.draining;
  rec.token = s.token;
  for (const auto& [type, ad] : s.types) {
    rec.step_types.push_back(
        {{"type", type}, {"plugin", ad.plugin()}, {"pluginVersion", ad.plugin_version()}});
    store::StepTypeRecord t;
    t.type = type;
    t.plugin = ad.plugin();
    t.plugin_version = ad.plugin_version();
    t.description = ad.description();
    t.retry_safe = ad.retry_safe();
    t.spec_schema = ad.spec_schema();
    t.delegate = s.name;
    t.last_seen = now;
    store_.put_step_type(t);
  }
  store_.put_delegate(rec);

  v1::Envelope welcome;
  welcome.mutable_welcome()->set_coordinator_id(options_.coordinator_id);
  welcome.mutable_welcome()->set_heartbeat_interval_ms(
      static_cast<std::uint32_t>(options_.liveness.interval.count()));
  welcome.mutable_welcome()->set_heartbeat_misses(options_.liveness.misses);
  send(peer, std::move(welcome));
  for (auto& cancel : cancels) send(peer, std::move(cancel));
  apps_on_hello(s, hello, new_connection);
  views_changed_ = true;
  views_urgent_ = true;
  if (new_connection) {
    spdlog::info("delegate {} {} ({} slots, step types: {}{})", s.name,
                 fresh ? "connected" : "re-attached", s.slots, s.types.size(),
                 hello.running_size() ? ", running " + std::to_string(hello.running_size()) : "");
  }
}

void Machine::lose_session(const wire::PeerId& peer, const std::string& reason) {
  auto lost = scheduler_.detach(peer);
  if (!lost) return;
  views_changed_ = true;
  views_urgent_ = true;
  metrics_.delegates_lost.inc();
  store_.mark_delegate_disconnected(lost->name, lost->instance_id, now_ms(), reason);
  spdlog::warn("delegate {} lost: {}", lost->name, reason);
  apps_on_session_lost(lost->instance_id);
  for (auto& [id, a] : active_) {
    bool changed = false;
    for (std::size_t i = 0; i < a.record.steps.size(); ++i) {
      auto& s = a.record.steps[i];
      if (in_flight(s) && s.delegate_instance == lost->instance_id) {
        delegate_gone(a, i, "delegate lost: " + lost->name + " (" + reason + ")", true);
        changed = true;
      }
    }
    if (changed) advance(a);
  }
}

void Machine::delegate_gone(Active& a, std::size_t index, const std::string& why, bool started) {
  auto& s = a.record.steps[index];
  scheduler_.release(s.delegate_instance, s.task_id, s.attempt);
  if (!started) {
    if (s.attempt < options_.max_attempts) return requeue(a, index, why + "; queued again");
  } else if (scheduler_.retry_safe(s.type) && s.attempt < options_.max_attempts) {
    return requeue(a, index,
                   why + "; step type '" + s.type + "' is safe to retry, queued again (attempt " +
                       std::to_string(s.attempt + 1) + " of at most " +
                       std::to_string(options_.max_attempts) + ")");
  }
  metrics_.tasks_failed.inc();
  fail_step(a, index, "DelegateProvisioning", why);
}

void Machine::requeue(Active& a, std::size_t index, const std::string& why) {
  auto& s = a.record.steps[index];
  note(a, index, 2, why);
  spdlog::warn("task {} attempt {}: {}", s.task_id, s.attempt, why);
  metrics_.tasks_requeued.inc();
  s.status = st::kQueued;
  s.delegate.clear();
  s.delegate_instance.clear();
  s.started_at = 0;
  s.message = why;
  s.log_cursor = 0;
  enqueue(a, index);
}

void Machine::enqueue(Active& a, std::size_t index, bool recovered) {
  auto& s = a.record.steps[index];
  if (!recovered) {
    s.queued_at = now_ms();
    touch_step(a, index);
  }
  QueuedTask task;
  task.execution = a.record.id;
  task.index = index;
  task.queued_at = s.queued_at;
  task.reported = recovered; // its message was recorded before the restart
  task.needs = needs_of(a, index);
  scheduler_.enqueue(std::move(task));
}

void Machine::note(Active& a, std::size_t index, int level, const std::string& line) {
  const auto& step = a.record.steps[index];
  store::LogRecord r;
  r.seq = ++a.log_seq;
  r.stage_index = step.stage_index;
  r.step_index = step.step_index;
  r.step = step.stage_identifier + "." + step.identifier;
  r.time = now_ms();
  r.level = level;
  r.line = "[capstan] " + mask(line);
  logs_[a.record.id].push_back(std::move(r));
  touch(a);
}

void Machine::on_accepted(const v1::Accepted& accepted) {
  Active* a = nullptr;
  auto* step = step_for_task(accepted.task_id(), accepted.attempt(), &a);
  if (step == nullptr || step->status != st::kDispatched) return;
  step->status = st::kRunning;
  touch_step(*a, static_cast<std::size_t>(&*step - &a->record.steps[0]));
}

void Machine::on_log(const wire::PeerId& peer, const v1::Log& log) {
  Active* a = nullptr;
  auto* step = step_for_task(log.task_id(), log.attempt(), &a);
  if (step == nullptr || store::status::terminal(step->status)) return;
  if (!in_flight(*step)) return;
  // Lines are numbered per attempt by the delegate (first_seq 0: an unnumbered sender). Only
  // the next line in order is taken: lines sent again after a reconnect are dropped, and lines
  // past a gap wait for the resend that follows every reconnect.
  std::uint64_t seq = log.first_seq();
  auto index = static_cast<std::size_t>(step - &a->record.steps[0]);
  bool took = false;
  if (seq != 0 && log.oldest_kept() > step->log_cursor + 1) {
    auto lost = log.oldest_kept() - step->log_cursor - 1;
    note(*a, index, 2,
         std::to_string(lost) + " log line(s) of this step were lost: the delegate could not keep "
                                "them while the coordinator was unreachable");
    step->log_cursor = log.oldest_kept() - 1;
    took = true;
  }
  std::string name = step->stage_identifier + "." + step->identifier;
  for (const auto& line : log.lines()) {
    if (seq != 0) {
      if (seq <= step->log_cursor) {
        ++seq;
        continue;
      }
      if (seq > step->log_cursor + 1) break;
      step->log_cursor = seq++;
    }
    store::LogRecord r;
    r.seq = ++a->log_seq;
    r.stage_index = step->stage_index;
    r.step_index = step->step_index;
    r.step = name;
    r.time = line.time_unix_ms() ? line.time_unix_ms() : now_ms();
    r.level = static_cast<int>(std::min<std::uint32_t>(line.level(), 3));
    r.line = mask(line.text());
    logs_[a->record.id].push_back(std::move(r));
    took = true;
  }
  if (took) dirty_.insert(a->record.id);
  if (log.first_seq() != 0) {
    // The cursor is written with the lines, in the same transaction.
    if (took) a->changed.insert(index);
    v1::Envelope ack;
    ack.mutable_log_ack()->set_task_id(log.task_id());
    ack.mutable_log_ack()->set_attempt(log.attempt());
    ack.mutable_log_ack()->set_seq(step->log_cursor);
    send(peer, std::move(ack));
  }
}

void Machine::on_result(const wire::PeerId& peer, const v1::Result& result) {
  // Acknowledge even stale results, so the delegate stops repeating them.
  v1::Envelope ack;
  ack.mutable_result_ack()->set_task_id(result.task_id());
  ack.mutable_result_ack()->set_attempt(result.attempt());
  held_acks_.push_back({{peer, std::move(ack)}, Clock::now()});
  if (auto* s = scheduler_.by_peer(peer)) {
    release_slot(s->instance_id, result.task_id(), result.attempt());
  }
  Active* a = nullptr;
  auto* step = step_for_task(result.task_id(), result.attempt(), &a);
  if (step == nullptr || !in_flight(*step)) return; // late or fenced off: ignored
  if (options_.on_task) options_.on_task(a->record.id, EngineOptions::TaskMoment::kResultRead);
  auto index = static_cast<std::size_t>(step - &a->record.steps[0]);
  if (result.refused()) {
    // The delegate never started it (draining, or its slots were full after all).
    plugin::v1::StepResult why;
    why.ParseFromString(result.step_result());
    delegate_gone(*a, index,
                  "delegate " + step->delegate + " did not take the task (" + why.message() + ")",
                  false);
    advance(*a);
    return;
  }
  plugin::v1::StepResult r;
  if (!r.ParseFromString(result.step_result())) {
    fail_step(*a, index, "Unknown", "the delegate sent a result that could not be decoded");
    advance(*a);
    return;
  }
  step->ended_at = result.finished_unix_ms() ? result.finished_unix_ms() : now_ms();
  step->outputs = json::object();
  for (const auto& [k, v] : result.outputs()) step->outputs[k] = mask(v);
  // Pull requests the step opened or changed: kept whatever the step's outcome.
  if (r.records_size() > 0) {
    for (const auto& why : store_step_records(store_, r, a->record.id,
                                              step->stage_identifier + "." + step->identifier)) {
      spdlog::warn("execution {} step {}: {}", a->record.id, step->identifier, why);
    }
  }
  switch (r.status()) {
  case plugin::v1::StepResult::STATUS_SUCCEEDED:
    step->status = st::kSucceeded;
    step->message = mask(r.message());
    step->error_type.clear();
    apps_refresh_after_step(step->type, r, a->record.id);
    break;
  case plugin::v1::StepResult::STATUS_CANCELLED:
    step->status = st::kAborted;
    step->message = r.message().empty() ? "cancelled" : r.message();
    break;
  case plugin::v1::StepResult::STATUS_FAILED:
    step->status = st::kFailed;
    step->error_type = error_type_name(r.error_type());
    step->message = r.message().empty() ? "the step failed without a message" : mask(r.message());
    step->state["handled"] = false;
    break;
  default:
    step->status = st::kFailed;
    step->error_type = "Unknown";
    step->message = "the step ended with an unknown status";
    break;
  }
  (step->status == st::kSucceeded ? metrics_.tasks_succeeded : metrics_.tasks_failed).inc();
  if (result.started_unix_ms() > 0 && result.finished_unix_ms() >= result.started_unix_ms()) {
    metrics_.task_duration.observe(
        static_cast<double>(result.finished_unix_ms() - result.started_unix_ms()) / 1000.0);
  }
  touch_step(*a, index);
  advance(*a);
}

store::StepRecord* Machine::step_for_task(const std::string& task_id, std::uint32_t attempt,
                                          Active** active) {
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return nullptr;
  auto ait = active_.find(it->second.first);
  if (ait == active_.end()) return nullptr;
  auto& step = ait->second.record.steps[it->second.second];
  if (step.attempt != attempt) return nullptr;
  *active = &ait->second;
  return &step;
}

void Machine::release_slot(const std::string& instance_id, const std::string& task_id,
                           std::uint32_t attempt) {
  if (scheduler_.release(instance_id, task_id, attempt)) views_changed_ = true;
}

// ---------------------------------------------------------------------------------------------
// Execution state

void Machine::touch(Active& a) {
  a.dirty = true;
  dirty_.insert(a.record.id);
  ++a.record.revision;
}

void Machine::touch_step(Active& a, std::size_t index) {
  a.changed.insert(index);
  touch(a);
}

void Machine::fail_step(Active& a, std::size_t index, const std::string& error_type,
                        const std::string& message, const std::string& status) {
  auto& s = a.record.steps[index];
  if (in_flight(s)) {
    // The delegate may still be running it: ask it to stop. The slot is freed by its Result.
    if (auto* session = scheduler_.by_instance(s.delegate_instance)) {
      v1::Envelope cancel;
      cancel.mutable_cancel()->set_task_id(s.task_id);
      cancel.mutable_cancel()->set_attempt(s.attempt);
      cancel.mutable_cancel()->set_reason(message);
      send(session->peer, std::move(cancel));
    }
  }
  s.status = status;
  s.error_type = error_type;
  s.message = mask(message);
  s.ended_at = now_ms();
  // A failure goes to the failure strategies (flow.cpp); a cancellation does not.
  if (!error_type.empty()) s.state["handled"] = false;
  touch_step(a, index);
}

void Machine::finish(Active& a, const std::string& status, const std::string& error_type,
                     const std::string& message) {
  a.record.status = status;
  a.record.error_type = error_type;
  a.record.message = message;
  a.record.ended_at = now_ms();
  for (std::size_t i = 0; i < a.record.steps.size(); ++i) {
    auto& s = a.record.steps[i];
    if (s.status == st::kNotStarted || s.status == st::kQueued) {
      s.status = st::kSkipped;
      touch_step(a, i);
    }
  }
  touch(a);
  finished_.push_back(a.record.id);
  if (options_.on_finished) {
    effects_.push_back([this, id = a.record.id, status] { options_.on_finished(id, status); });
  }
  if (spdlog::should_log(spdlog::level::info)) {
    spdlog::info("execution {} of pipeline {} (#{}) {}{}", a.record.id, a.record.pipeline,
                 a.record.sequence, status, message.empty() ? "" : ": " + message);
  }
}

// ---------------------------------------------------------------------------------------------
// Dispatch

void Machine::dispatch(Active& a, std::size_t index, Session& session,
                       plugin::v1::StepRequest& request) {
  auto& s = a.record.steps[index];
  s.attempt += 1;
  if (s.task_id.empty()) s.task_id = a.record.id + "-" + std::to_string(index);
  s.status = st::kDispatched;
  s.delegate = session.name;
  s.delegate_instance = session.instance_id;
  s.started_at = now_ms();
  s.ended_at = 0;
  s.error_type.clear();
  s.message.clear();
  s.log_cursor = 0;
  tasks_[s.task_id] = {a.record.id, index};
  scheduler_.occupy(session, s.task_id, s.attempt);
  metrics_.tasks_dispatched.inc();
  touch_step(a, index);
  views_changed_ = true;

  request.set_task_id(s.task_id);
  request.set_attempt(s.attempt);
  v1::Envelope env;
  auto* assign = env.mutable_assign();
  assign->set_task_id(s.task_id);
  assign->set_attempt(s.attempt);
  request.SerializeToString(assign->mutable_step_request());
  // resolve() kept the secrets under the task id, or under the row's key before the first
  // attempt named the task (the same text unless the task was named otherwise).
  auto take_secrets = [&](const std::string& key) {
    auto secrets = task_secrets_.find(key);
    if (secrets == task_secrets_.end()) return;
    for (const auto& v : secrets->second) assign->add_mask(v);
    task_secrets_.erase(secrets);
  };
  const std::string row_key = a.record.id + "-" + std::to_string(index);
  take_secrets(row_key);
  if (s.task_id != row_key) take_secrets(s.task_id);
  if (options_.on_task) {
    effects_.push_back(
        [this, id = a.record.id] { options_.on_task(id, EngineOptions::TaskMoment::kDispatched); });
  }
  send(session.peer, std::move(env));
}

TaskNeeds Machine::needs_of(const Active& a, std::size_t index) const {
  const auto& rec = a.record.steps[index];
  TaskNeeds needs;
  needs.type = rec.type;
  const auto si = static_cast<std::size_t>(rec.stage_index);
  const auto row = static_cast<std::size_t>(rec.step_index);
  if (si >= a.plan().size() || row >= a.plan()[si].rows.size()) return needs;
  // The nearest level that names selectors wins: step, its groups inside out, the stage, the
  // pipeline, then the infrastructure's connector (a delegate that can reach the cluster).
  const auto& pr = a.plan()[si].rows[row];
  std::vector<const std::vector<std::string>*> levels = {&pr.node->delegate_selectors};
  for (int anc : pr.ancestors) {
    levels.push_back(&a.plan()[si].rows[static_cast<std::size_t>(anc)].node->delegate_selectors);
  }
  levels.push_back(&a.plan()[si].stage->delegate_selectors);
  levels.push_back(&a.pipeline().delegate_selectors);
  for (const auto* level : levels) {
    if (!level->empty()) {
      needs.selectors = *level;
      return needs;
    }
  }
  const auto& ctx = a.record.stages[si].context;
  if (ctx.contains("connectorSelectors")) {
    needs.selectors = ctx["connectorSelectors"].get<std::vector<std::string>>();
  }
  return needs;
}

void Machine::schedule() {
  // Nothing is tried while every slot is taken: the queue waits as it is (its timers run in
  // tick()). Otherwise each placement key's oldest task is tried, oldest first across keys, so
  // a backlog behind busy delegates costs a pass its keys, not its length.
  using Offer = Scheduler::Offer;
  scheduler_.pass([this](QueuedTask& task) {
    auto ait = active_.find(task.execution);
    if (ait == active_.end()) return Offer::kDone;
    Active& a = ait->second;
    if (task.index >= a.record.steps.size() || a.record.steps[task.index].status != st::kQueued) {
      return Offer::kDone;
    }
    if (wait_for_repository(a, task)) return Offer::kSkip;
    auto placement = scheduler_.place(task.needs);
    if (placement.verdict != Placement::Verdict::kPlaced) {
      if (placement.verdict == Placement::Verdict::kUnmatched) {
        if (!task.unmatched_since) task.unmatched_since = Clock::now();
      } else {
        task.unmatched_since.reset();
      }
      if (!task.reported) {
        // Visible while it waits: the step says why.
        a.record.steps[task.index].message =
            scheduler_.waiting_reason(task.needs, placement.verdict);
        touch_step(a, task.index);
        task.reported = true;
      }
      return Offer::kNoSlot;
    }
    plugin::v1::StepRequest request;
    if (!resolve(a, task.index, request)) {
      advance(a);
      return Offer::kDone;
    }
    dispatch(a, task.index, *placement.session, request);
    return Offer::kDone;
  });
}

void Machine::tick() {
  auto now = Clock::now();
  apps_catch_up();
  if (now < next_timers_) return;
  // Timers are coarse (seconds): a few checks a second are precise enough, and a busy engine
  // does not walk every step on every batch.
  next_timers_ = now + std::chrono::milliseconds(250);
  apps_tick();
  tick_gitops_steps(); // after apps_tick: applications just updated reach their delegates first
  tick_flow(); // approvals, waits, retries, interventions and execution inputs that time out
  auto wall = now_ms();
  bool reattach_over = now - started_ >= options_.reattach_window;
  for (auto& [id, a] : active_) {
    if (st::terminal(a.record.status)) continue;
    bool changed = false;
    for (std::size_t i = 0; i < a.record.steps.size(); ++i) {
      auto& s = a.record.steps[i];
      if (!in_flight(s)) continue;
      if (s.timeout_ms > 0 && wall > s.started_at + s.timeout_ms + options_.timeout_grace.count()) {
        // The slot stays taken until the delegate reports: it may still be stopping the step.
        metrics_.tasks_failed.inc();
        fail_step(a, i, "Timeout",
                  "step did not finish within its timeout of " +
                      model::format_duration(std::chrono::milliseconds(s.timeout_ms)));
        changed = true;
      } else if (!scheduler_.by_instance(s.delegate_instance) && reattach_over) {
        delegate_gone(a, i,
                      "delegate lost: " + s.delegate +
                          " did not reconnect after the coordinator restarted",
                      true);
        changed = true;
      }
    }
    if (changed) advance(a);
  }
  // The queue: a task no connected delegate could ever take fails after delegate_wait; one
  // that waits for a free slot fails after queue_timeout.
  auto queue = scheduler_.take_queue();
  std::deque<QueuedTask> waiting;
  struct Verdict {
    Placement::Verdict verdict;
    std::optional<std::string> reason; // built when a task needs it
  };
  std::map<std::string, Verdict> verdicts; // by placement key, for this pass
  for (auto& task : queue) {
    auto ait = active_.find(task.execution);
    if (ait == active_.end()) continue;
    Active& a = ait->second;
    if (task.index >= a.record.steps.size() || a.record.steps[task.index].status != st::kQueued) {
      continue;
    }
    auto& step = a.record.steps[task.index];
    auto vit = verdicts.find(task.key);
    if (vit == verdicts.end()) {
      vit = verdicts.emplace(task.key, Verdict{scheduler_.place(task.needs).verdict, {}}).first;
    }
    auto& placement = vit->second;
    auto reason = [&]() -> const std::string& {
      if (!placement.reason) {
        placement.reason = scheduler_.waiting_reason(task.needs, placement.verdict);
      }
      return *placement.reason;
    };
    std::string failure;
    if (placement.verdict == Placement::Verdict::kUnmatched) {
      if (!task.unmatched_since) task.unmatched_since = now;
      if (now - *task.unmatched_since >= options_.delegate_wait) {
        failure = reason() + " (waited " + model::format_duration(options_.delegate_wait) + ")";
      }
    } else {
      task.unmatched_since.reset();
      if (wall - task.queued_at >= options_.queue_timeout.count()) {
        failure = (step.state.contains("repositoryLockHolder")
                       ? "queue timeout: the release repository stayed busy for "
                       : "queue timeout: no delegate slot became free within ") +
                  model::format_duration(options_.queue_timeout) + " (" + step.message + ")";
      }
    }
    if (failure.empty()) {
      if (!task.reported && placement.verdict != Placement::Verdict::kPlaced) {
        step.message = reason();
        touch_step(a, task.index);
        task.reported = true;
      }
      waiting.push_back(std::move(task));
      continue;
    }
    metrics_.tasks_failed.inc();
    fail_step(a, task.index, "DelegateProvisioning", failure);
    advance(a);
  }
  scheduler_.restore_queue(std::move(waiting));
}

Clock::time_point Machine::next_wakeup() const {
  // Timers are coarse (timeouts, waits of seconds): half a second is precise enough, and the
  // loop wakes at once for every event anyway.
  const auto timers = Clock::now() + std::chrono::milliseconds(500);
  auto next = timers;
  if (work_now()) next = std::min(next, std::max(Clock::now(), apps_next_change_));
  if (!held_acks_.empty()) next = std::min(next, held_acks_.front().since + kAckHold);
  return next;
}

// ---------------------------------------------------------------------------------------------
// Commands

Outcome Machine::apply(std::vector<model::Object>& objects, bool dry_run, const std::string& user) {
  // Step types must be provided by some delegate that has registered with this coordinator,
  // unless the coordinator runs them itself.
  std::set<std::string> known;
  model::SpecSchemas schemas; // the catalog's, then what connected delegates announce now
  for (const auto& t : store_.step_types()) {
    known.insert(t.type);
    schemas[t.type] = t.spec_schema;
  }
  for (const auto& [id, s] : scheduler_.sessions()) {
    for (const auto& [t, ad] : s.types) {
      known.insert(t);
      if (!ad.spec_schema().empty()) schemas[t] = ad.spec_schema();
    }
  }
  for (const auto& row : model::step_type_table()) {
    if (row.coordinator && !model::coordinator_step_schema(row.type).empty()) {
      schemas[std::string(row.type)] = model::coordinator_step_schema(row.type);
    }
  }
  json problems = json::array();
  for (const auto& o : objects) {
    for (const auto& use : o.step_types) {
      if (known.count(use.type) || model::runs_on_coordinator(use.type)) continue;
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      problems.push_back(
          {{"location", use.location},
           {"message", "unknown step type '" + use.type + "' (" +
                           (known.empty() ? "no delegate has registered any step type yet; "
                                            "start a delegate with the plugin that provides it"
                                          : "step types provided by delegates: " + list) +
                           ")"}});
    }
  }
  auto stored = [this](const std::string& kind, const std::string& id) -> std::optional<json> {
    if (auto o = store_.object(kind, id)) return o->model;
    return std::nullopt;
  };
  for (const auto& p : model::check_batch(objects, stored)) {
    problems.push_back({{"location", p.location}, {"message", p.message}});
  }
  for (const auto& p : model::check_step_specs(objects, schemas)) {
    problems.push_back({{"location", p.location}, {"message", p.message}});
  }
  // An application being deleted (it waits for its resources to go) cannot be changed: Argo CD
  // never syncs it again, and its deletion cannot be taken back.
  for (const auto& o : objects) {
    if (o.kind != "application") continue;
    if (auto existing = store_.object("application", o.identifier);
        existing && app_deleting(*existing)) {
      problems.push_back(
          {{"location", o.source},
           {"message", "application '" + o.identifier +
                           "' is being deleted (its resources are deleted first); apply it again "
                           "once it is gone, or delete it with cascade=false to let it go now"}});
    }
  }
  // A secret is sealed before it is stored; a secret applied without a value keeps its value.
  std::map<std::string, std::string> sealed; // identifier -> sealed value to store
  for (auto& o : objects) {
    if (o.kind != "secret") continue;
    auto existing = store_.object("secret", o.identifier);
    if (o.secret_value) {
      o.model["valueDigest"] = secret_box().digest(*o.secret_value);
      sealed[o.identifier] = secret_box().seal(*o.secret_value, o.identifier);
    } else if (existing && existing->model.contains("valueDigest")) {
      o.model["valueDigest"] = existing->model["valueDigest"];
      if (auto v = store_.secret_value(o.identifier)) sealed[o.identifier] = *v;
    } else {
      problems.push_back({{"location", o.source},
                          {"message", "secret '" + o.identifier +
                                          "' has no value yet: give spec.value when creating it"}});
    }
  }
  if (!problems.empty()) {
    return failure(422, "InvalidInput",
                   std::to_string(problems.size()) + " problem(s) in the applied documents",
                   problems);
  }
  json results = json::array();
  for (auto& o : objects) {
    std::string action = "created";
    std::int64_t version = 1;
    auto existing = store_.object(o.kind, o.identifier);
    if (dry_run) {
      if (existing) {
        version = existing->version;
        action = existing->document == o.document && existing->model == o.model ? "unchanged"
                                                                                : "configured";
        if (action == "configured") ++version;
      } else if (auto history = store_.object_history(o.kind, o.identifier); !history.empty()) {
        version = history.front().version + 1;
      }
    } else {
      store::ObjectRecord r;
      r.kind = o.kind;
      r.identifier = o.identifier;
      r.name = o.name;
      r.yaml = o.yaml;
      r.document = o.document;
      r.model = o.model;
      r.source = o.source;
      r.file = o.file;
      r.line_offset = o.line_offset;
      r.base_dir = o.base_dir;
      r.applied_at = now_ms();
      r.applied_by = user;
      for (const auto& ref : o.references) {
        r.references.push_back({{"kind", ref.kind},
                                {"identifier", ref.identifier},
                                {"location", ref.location},
                                {"role", ref.role}});
      }
      auto [v, fresh] = store_.put_object(r);
      if (o.kind == "pipeline") pipelines_.erase(o.identifier);
      if (fresh && o.kind != "pipeline") apps_written_ = true;
      version = v;
      action = !fresh ? "unchanged" : (existing ? "configured" : "created");
      if (fresh && sealed.count(o.identifier) && o.kind == "secret") {
        store_.put_secret_value(o.identifier, v, sealed[o.identifier]);
        secrets_changed_ = true;
      }
      if (fresh) {
        store::AuditRecord a;
        a.user = user;
        a.action = "apply";
        a.kind = o.kind;
        a.target = o.identifier;
        a.details = {{"version", v}, {"result", action}, {"source", o.source}};
        store_.append_audit(a);
      }
    }
    results.push_back({{"kind", o.kind},
                       {"identifier", o.identifier},
                       {"version", version},
                       {"action", action},
                       {"source", o.source}});
  }
  Outcome out;
  out.body = {{"dryRun", dry_run}, {"results", results}};
  return out;
}

Outcome Machine::remove(const std::string& kind, const std::string& identifier,
                        const std::string& user, bool cascade) {
  auto existing = store_.object(kind, identifier);
  if (!existing) return failure(404, "NotFound", kind + " '" + identifier + "' not found");
  json referrers = json::array();
  std::vector<std::string> names;
  for (const auto& [o, ref] : store_.referrers(kind, identifier)) {
    if ((o.kind == kind && o.identifier == identifier) || !ref.is_object()) continue;
    names.push_back(o.kind + " '" + o.identifier + "'");
    referrers.push_back({{"location", ref.value("location", "")},
                         {"message", o.kind + " '" + o.identifier + "' (" +
                                         ref.value("role", "a reference") + ") refers to it"}});
  }
  if (!names.empty()) {
    std::string list;
    for (std::size_t i = 0; i < names.size(); ++i) {
      list += (i == 0 ? "" : (i + 1 == names.size() ? " and " : ", ")) + names[i];
    }
    return failure(409, "Referenced",
                   kind + " '" + identifier + "' is still used by " + list + "; change or delete " +
                       (names.size() == 1 ? "it" : "them") + " first",
                   referrers);
  }
  if (kind == "application" && cascade &&
      (app_deleting(*existing) ||
       apps::deletes_resources(existing->model.value("document", json::object())))) {
    // Argo CD's resources finalizer: the application stays (Deleting) until a delegate has
    // deleted its resources.
    return apps_begin_delete(*existing, user, "");
  }
  store_.delete_object(kind, identifier, user, now_ms());
  if (kind == "pipeline") pipelines_.erase(identifier);
  if (kind == "secret") secrets_changed_ = true;
  if (kind != "pipeline") apps_written_ = true;
  store::AuditRecord a;
  a.user = user;
  a.action = "delete";
  a.kind = kind;
  a.target = identifier;
  a.details = {{"version", existing->version}};
  if (kind == "application") a.details["cascade"] = cascade;
  store_.append_audit(a);
  Outcome out;
  out.body = {{"kind", kind}, {"identifier", identifier}, {"deleted", true}};
  return out;
}

Outcome Machine::create_token(const std::string& name) {
  std::string token;
  try {
    token = tokens_.create(name, now_ms());
  } catch (const std::invalid_argument& e) {
    std::string why = e.what();
    bool taken = why.find("already exists") != std::string::npos;
    return failure(taken ? 409 : 422, taken ? "AlreadyExists" : "InvalidInput", why);
  }
  spdlog::info("delegate token '{}' created", name);
  Outcome out;
  out.status = 201;
  out.body = {{"name", name}, {"token", token}};
  return out;
}

Outcome Machine::revoke_token(const std::string& name) {
  if (!tokens_.revoke(name, now_ms())) {
    return failure(404, "NotFound", "no valid delegate token named '" + name + "'");
  }
  // Sessions opened with it end now; their reconnects are refused.
  std::vector<wire::PeerId> peers;
  for (const auto& [id, s] : scheduler_.sessions()) {
    if (s.token == name) peers.push_back(s.peer);
  }
  for (const auto& peer : peers) {
    v1::Envelope env;
    env.mutable_refuse()->set_code(v1::Refuse::CODE_UNAUTHENTICATED);
    env.mutable_refuse()->set_message("the delegate token '" + name + "' was revoked");
    env.mutable_refuse()->set_retry(false);
    send(peer, std::move(env));
    lose_session(peer, "its token '" + name + "' was revoked");
  }
  spdlog::info("delegate token '{}' revoked; {} delegate session(s) dropped", name, peers.size());
  Outcome out;
  out.body = {{"name", name}, {"revoked", true}, {"droppedSessions", peers.size()}};
  return out;
}

void Machine::sample(Metrics& m) const {
  std::int64_t running = 0, slots = 0, draining = 0;
  for (const auto& [id, s] : scheduler_.sessions()) {
    running += static_cast<std::int64_t>(s.tasks.size());
    slots += s.slots;
    draining += s.draining ? 1 : 0;
  }
  m.tasks_running.set(running);
  m.tasks_queued.set(static_cast<std::int64_t>(scheduler_.queued()));
  m.delegates_connected.set(static_cast<std::int64_t>(scheduler_.sessions().size()));
  m.delegates_draining.set(draining);
  m.slots_total.set(slots);
}

// ---------------------------------------------------------------------------------------------
// Batch end

void Machine::flush() {
  apps_flush();
  // Store reads see commits only: what this batch applied is looked at in the next one.
  apps_written_ = false;
  // What applications and sets are made of: looked at once committed (apps_catch_up).
  for (const auto& w : store_.take_written_objects()) {
    if (w.first == "application" || w.first == "applicationSet" || w.first == "gitopsCluster" ||
        w.first == "connector" || w.first == "secret") {
      apps_pending_.insert(w);
      apps_dirty_ = true;
    }
  }
  for (auto& [id, lines] : logs_) {
    if (!lines.empty()) store_.append_logs(id, lines);
  }
  for (const auto& id : dirty_) {
    auto it = active_.find(id);
    if (it == active_.end()) continue;
    auto& a = it->second;
    update_waits(a);
    const bool publish = a.dirty || logs_.count(id);
    if (!a.stored) {
      store_.insert_execution(a.record);
      a.stored = true;
    } else {
      store_.update_execution(a.record, a.dirty, a.stages_changed, a.changed);
    }
    a.stages_changed.clear();
    if (publish) {
      bool done = st::terminal(a.record.status);
      Position pos{a.record.revision, a.log_seq};
      effects_.push_back([this, id = id, pos, done] { feed_.publish(id, pos, done); });
    }
    a.changed.clear();
    a.dirty = false;
  }
  dirty_.clear();
  logs_.clear();
  for (const auto& id : finished_) {
    auto it = active_.find(id);
    if (it == active_.end()) continue;
    for (const auto& s : it->second.record.steps) {
      if (!s.task_id.empty()) tasks_.erase(s.task_id);
    }
    active_.erase(it);
  }
  finished_.clear();
}

void Machine::run_effects() {
  // Acknowledgements go ahead of the batch's other messages (they answer earlier results); those
  // of a session that ended go nowhere (a delegate that re-attaches sends its results again).
  if (!held_acks_.empty()) {
    std::unordered_set<std::string_view> busy;
    for (const auto& out : outgoing_) busy.insert(out.peer);
    const auto due = Clock::now() - kAckHold;
    std::vector<wire::Outgoing> now;
    std::vector<HeldAck> later;
    for (auto& held : held_acks_) {
      if (scheduler_.by_peer(held.message.peer) == nullptr) continue;
      if (held.since <= due || busy.count(held.message.peer) > 0) {
        now.push_back(std::move(held.message));
      } else {
        later.push_back(std::move(held));
      }
    }
    held_acks_ = std::move(later);
    if (!now.empty()) {
      now.insert(now.end(), std::make_move_iterator(outgoing_.begin()),
                 std::make_move_iterator(outgoing_.end()));
      outgoing_ = std::move(now);
    }
  }
  // The batch's messages first, handed to the router at once: delegates start on them while
  // the other effects run.
  if (!outgoing_.empty()) {
    router_.send_all(std::move(outgoing_));
    outgoing_.clear();
  }
  auto effects = std::move(effects_);
  effects_.clear();
  for (auto& e : effects) e();
}

std::vector<DelegateView> Machine::views() {
  views_changed_ = false;
  views_urgent_ = false;
  std::vector<DelegateView> out;
  for (const auto& [id, s] : scheduler_.sessions()) {
    DelegateView v;
    v.name = s.name;
    v.instance_id = s.instance_id;
    v.hostname = s.hostname;
    v.version = s.version;
    v.tags = s.tags;
    for (const auto& [t, ad] : s.types) {
      v.step_types.push_back(
          {{"type", t}, {"plugin", ad.plugin()}, {"pluginVersion", ad.plugin_version()}});
    }
    v.slots = s.slots;
    v.running = static_cast<int>(s.tasks.size());
    v.connected_at = s.connected_at;
    v.draining = s.draining;
    v.token = s.token;
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) {
    return std::tie(x.name, x.instance_id) < std::tie(y.name, y.instance_id);
  });
  return out;
}

} // namespace capstan::engine
