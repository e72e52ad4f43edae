// The engine's state machine: sessions, dispatch, results, timers, recovery.
#include "engine/machine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "capstan/expression/expression.h"
#include "capstan/yaml/yaml.h"
#include "model/catalog.h"
#include "model/duration.h"
#include "model/step_types.h"

namespace capstan::engine {

using nlohmann::json;
namespace st = store::status;
namespace v1 = wire::v1;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_id() {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char* alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id;
  for (int i = 0; i < 12; ++i) id.push_back(alphabet[rng() % 36]);
  return id;
}

std::string slot_key(const std::string& task_id, std::uint32_t attempt) {
  return task_id + "#" + std::to_string(attempt);
}

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

bool in_flight(const std::string& s) {
  return s == st::kDispatched || s == st::kRunning;
}

} // namespace

Machine::Machine(store::Store& store, ChangeFeed& feed, const EngineOptions& options,
                 wire::Router& router)
    : store_(store), feed_(feed), options_(options), router_(router) {}

void Machine::send(const wire::PeerId& peer, v1::Envelope envelope) {
  effects_.push_back(
      [this, peer, env = std::move(envelope)]() mutable { router_.send(peer, std::move(env)); });
}

void Machine::recover() {
  store_.mark_all_delegates_disconnected("coordinator restarted");
  for (auto& record : store_.active_executions()) {
    Active a;
    a.pipeline = model::pipeline_from_json(record.plan);
    a.log_seq = store_.last_log_seq(record.id);
    a.record = std::move(record);
    const std::string id = a.record.id;
    auto [it, _] = active_.emplace(id, std::move(a));
    auto& act = it->second;
    for (std::size_t i = 0; i < act.record.steps.size(); ++i) {
      auto& s = act.record.steps[i];
      if (!s.task_id.empty()) tasks_[s.task_id] = {id, i};
      if (s.status == st::kQueued) queue_.emplace_back(id, i);
    }
    spdlog::info("resuming execution {} of pipeline {} (#{})", id, act.record.pipeline,
                 act.record.sequence);
    touch(act);
    advance(act);
  }
}

// ---------------------------------------------------------------------------------------------
// Wire events

void Machine::on_router_event(wire::RouterEvent& event) {
  if (event.kind == wire::RouterEvent::Kind::kPeerLost) {
    on_peer_lost(event.peer, event.reason);
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
    on_log(env.log());
    return;
  case v1::Envelope::kResult:
    on_result(event.peer, env.result());
    return;
  default:
    spdlog::debug("ignoring {} from a delegate", wire::body_name(env));
    return;
  }
}

void Machine::on_hello(const wire::PeerId& peer, const v1::Hello& hello) {
  auto refuse = [&](const std::string& why) {
    v1::Envelope env;
    env.mutable_refuse()->set_code(v1::Refuse::CODE_INVALID);
    env.mutable_refuse()->set_message(why);
    send(peer, std::move(env));
    spdlog::warn("refused a delegate session: {}", why);
  };
  if (hello.name().empty()) return refuse("Hello without a delegate name");
  if (hello.instance_id().empty()) return refuse("Hello without an instance id");
  if (hello.slots() == 0) return refuse("delegate '" + hello.name() + "' offers 0 slots");

  // A connection that said Hello before under another identity is replaced.
  if (auto old = instances_.find(peer);
      old != instances_.end() && old->second != hello.instance_id()) {
    on_peer_lost(peer, "replaced by a new session on the same connection");
  }
  auto now = now_ms();
  auto existing = sessions_.find(hello.instance_id());
  bool reattach = existing != sessions_.end();
  if (reattach && existing->second.peer != peer) {
    // The same process on a new connection: forget the old one quietly.
    instances_.erase(existing->second.peer);
    auto old_peer = existing->second.peer;
    effects_.push_back([this, old_peer] { router_.forget(old_peer); });
  }
  Session& s = sessions_[hello.instance_id()];
  s.peer = peer;
  s.name = hello.name();
  s.instance_id = hello.instance_id();
  s.hostname = hello.hostname();
  s.version = hello.version();
  s.tags.assign(hello.tags().begin(), hello.tags().end());
  s.slots = static_cast<int>(hello.slots());
  s.types.clear();
  for (const auto& t : hello.step_types()) s.types[t.type()] = t;
  if (!reattach) s.connected_at = now;
  instances_[peer] = s.instance_id;

  // What the delegate still runs occupies its slots; anything we no longer expect from it is
  // cancelled.
  s.tasks.clear();
  for (const auto& ref : hello.running()) {
    s.tasks.insert(slot_key(ref.task_id(), ref.attempt()));
    Active* a = nullptr;
    auto* step = step_for_task(ref.task_id(), ref.attempt(), &a);
    if (step == nullptr || !in_flight(step->status) || step->delegate_instance != s.instance_id) {
      v1::Envelope cancel;
      cancel.mutable_cancel()->set_task_id(ref.task_id());
      cancel.mutable_cancel()->set_attempt(ref.attempt());
      cancel.mutable_cancel()->set_reason("the coordinator no longer expects this task");
      send(peer, std::move(cancel));
    }
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
  for (const auto& [type, ad] : s.types) {
    rec.step_types.push_back(
        {{"type", type}, {"plugin", ad.plugin()}, {"pluginVersion", ad.plugin_version()}});
    store::StepTypeRecord t;
    t.type = type;
    t.plugin = ad.plugin();
    t.plugin_version = ad.plugin_version();
    t.description = ad.description();
    t.retry_safe = ad.retry_safe();
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
  views_changed_ = true;
  spdlog::info("delegate {} {} ({} slots, step types: {}{})", s.name,
               reattach ? "re-attached" : "connected", s.slots, s.types.size(),
               hello.running_size() ? ", running " + std::to_string(hello.running_size()) : "");
}

void Machine::on_peer_lost(const wire::PeerId& peer, const std::string& reason) {
  auto it = instances_.find(peer);
  if (it == instances_.end()) return;
  auto instance = it->second;
  instances_.erase(it);
  auto sit = sessions_.find(instance);
  if (sit == sessions_.end()) return;
  auto name = sit->second.name;
  sessions_.erase(sit);
  views_changed_ = true;
  store_.mark_delegate_disconnected(name, instance, now_ms(), reason);
  spdlog::warn("delegate {} lost: {}", name, reason);
  for (auto& [id, a] : active_) {
    for (std::size_t i = 0; i < a.record.steps.size(); ++i) {
      auto& s = a.record.steps[i];
      if (in_flight(s.status) && s.delegate_instance == instance) {
        fail_step(a, i, "DelegateProvisioning", "delegate lost: " + name + " (" + reason + ")");
      }
    }
  }
}

void Machine::on_accepted(const v1::Accepted& accepted) {
  Active* a = nullptr;
  auto* step = step_for_task(accepted.task_id(), accepted.attempt(), &a);
  if (step == nullptr || step->status != st::kDispatched) return;
  step->status = st::kRunning;
  touch_step(*a, static_cast<std::size_t>(&*step - &a->record.steps[0]));
}

void Machine::on_log(const v1::Log& log) {
  Active* a = nullptr;
  auto* step = step_for_task(log.task_id(), log.attempt(), &a);
  if (step == nullptr || store::status::terminal(step->status)) return;
  auto& batch = logs_[a->record.id];
  std::string name = step->stage_identifier + "." + step->identifier;
  for (const auto& line : log.lines()) {
    store::LogRecord r;
    r.seq = ++a->log_seq;
    r.stage_index = step->stage_index;
    r.step_index = step->step_index;
    r.step = name;
    r.time = line.time_unix_ms() ? line.time_unix_ms() : now_ms();
    r.level = static_cast<int>(std::min<std::uint32_t>(line.level(), 3));
    r.line = line.text();
    batch.push_back(std::move(r));
  }
}

void Machine::on_result(const wire::PeerId& peer, const v1::Result& result) {
  // Acknowledge even stale results, so the delegate stops repeating them.
  v1::Envelope ack;
  ack.mutable_result_ack()->set_task_id(result.task_id());
  ack.mutable_result_ack()->set_attempt(result.attempt());
  send(peer, std::move(ack));
  if (auto* s = session_for_peer(peer)) {
    release_slot(s->instance_id, slot_key(result.task_id(), result.attempt()));
  }
  Active* a = nullptr;
  auto* step = step_for_task(result.task_id(), result.attempt(), &a);
  if (step == nullptr || !in_flight(step->status)) return; // late or fenced off: ignored
  auto index = static_cast<std::size_t>(step - &a->record.steps[0]);
  plugin::v1::StepResult r;
  if (!r.ParseFromString(result.step_result())) {
    fail_step(*a, index, "Unknown", "the delegate sent a result that could not be decoded");
    advance(*a);
    return;
  }
  step->ended_at = result.finished_unix_ms() ? result.finished_unix_ms() : now_ms();
  step->outputs = json::object();
  for (const auto& [k, v] : result.outputs()) step->outputs[k] = v;
  switch (r.status()) {
  case plugin::v1::StepResult::STATUS_SUCCEEDED:
    step->status = st::kSucceeded;
    step->message = r.message();
    step->error_type.clear();
    break;
  case plugin::v1::StepResult::STATUS_CANCELLED:
    step->status = st::kAborted;
    step->message = r.message().empty() ? "cancelled" : r.message();
    break;
  case plugin::v1::StepResult::STATUS_FAILED:
    step->status = st::kFailed;
    step->error_type = error_type_name(r.error_type());
    step->message = r.message().empty() ? "the step failed without a message" : r.message();
    break;
  default:
    step->status = st::kFailed;
    step->error_type = "Unknown";
    step->message = "the step ended with an unknown status";
    break;
  }
  touch_step(*a, index);
  advance(*a);
}

Session* Machine::session_for_peer(const wire::PeerId& peer) {
  auto it = instances_.find(peer);
  if (it == instances_.end()) return nullptr;
  auto sit = sessions_.find(it->second);
  return sit == sessions_.end() ? nullptr : &sit->second;
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

void Machine::release_slot(const std::string& instance_id, const std::string& key) {
  auto it = sessions_.find(instance_id);
  if (it != sessions_.end() && it->second.tasks.erase(key) > 0) views_changed_ = true;
}

// ---------------------------------------------------------------------------------------------
// Execution state

void Machine::touch(Active& a) {
  a.dirty = true;
  ++a.record.revision;
}

void Machine::touch_step(Active& a, std::size_t index) {
  a.changed.insert(index);
  touch(a);
}

void Machine::fail_step(Active& a, std::size_t index, const std::string& error_type,
                        const std::string& message, const std::string& status) {
  auto& s = a.record.steps[index];
  if (in_flight(s.status)) {
    // The delegate may still be running it: ask it to stop. The slot is freed by its Result.
    auto sit = sessions_.find(s.delegate_instance);
    if (sit != sessions_.end()) {
      v1::Envelope cancel;
      cancel.mutable_cancel()->set_task_id(s.task_id);
      cancel.mutable_cancel()->set_attempt(s.attempt);
      cancel.mutable_cancel()->set_reason(message);
      send(sit->second.peer, std::move(cancel));
    }
  }
  s.status = status;
  s.error_type = error_type;
  s.message = message;
  s.ended_at = now_ms();
  a.waiting_since.erase(index);
  touch_step(a, index);
}

void Machine::refresh_stages(Active& a) {
  bool finished = st::terminal(a.record.status);
  for (auto& stage : a.record.stages) {
    bool all_done = true, any_started = false;
    std::string worst;
    std::int64_t started = 0, ended = 0;
    for (const auto& s : a.record.steps) {
      if (s.stage_index != stage.index) continue;
      if (s.status != st::kNotStarted) any_started = true;
      if (s.status == st::kFailed) worst = st::kFailed;
      if (s.status == st::kAborted && worst.empty()) worst = st::kAborted;
      if (!st::terminal(s.status)) all_done = false;
      auto begin = s.queued_at ? s.queued_at : s.started_at;
      if (begin && (!started || begin < started)) started = begin;
      ended = std::max(ended, s.ended_at);
    }
    std::string status;
    if (!any_started) {
      status = finished ? st::kSkipped : st::kNotStarted;
    } else if (!worst.empty() && (all_done || finished)) {
      status = worst;
    } else if (all_done) {
      status = st::kSucceeded;
    } else {
      status = st::kRunning;
    }
    if (status == stage.status && started == stage.started_at) continue;
    stage.status = status;
    stage.started_at = started;
    stage.ended_at = st::terminal(status) ? ended : 0;
    store_.update_stage(a.record.id, stage);
  }
}

void Machine::advance(Active& a) {
  if (st::terminal(a.record.status)) return;
  auto& steps = a.record.steps;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    auto& s = steps[i];
    if (s.status == st::kSucceeded || s.status == st::kSkipped) continue;
    if (s.status == st::kFailed || s.status == st::kAborted) {
      std::string what = s.stage_identifier + "." + s.identifier;
      finish(a, s.status == st::kAborted ? st::kAborted : st::kFailed, s.error_type,
             "step " + what + " " + (s.status == st::kAborted ? "was aborted" : "failed") + ": " +
                 s.message);
      return;
    }
    if (s.status == st::kNotStarted) {
      s.status = st::kQueued;
      s.queued_at = now_ms();
      queue_.emplace_back(a.record.id, i);
      touch_step(a, i);
    }
    return; // waiting on this step
  }
  finish(a, st::kSucceeded, "", "");
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
  spdlog::info("execution {} of pipeline {} (#{}) {}{}", a.record.id, a.record.pipeline,
               a.record.sequence, status, message.empty() ? "" : ": " + message);
}

std::string Machine::connected_summary() const {
  if (sessions_.empty()) return "no delegate is connected";
  std::string out = "connected delegates: ";
  bool first = true;
  for (const auto& [id, s] : sessions_) {
    std::string types;
    for (const auto& [t, ad] : s.types) types += (types.empty() ? "" : ", ") + t;
    out += (first ? "" : "; ") + s.name + " (" + (types.empty() ? "no step types" : types) + ")";
    first = false;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Dispatch

bool Machine::resolve(Active& a, std::size_t index, plugin::v1::StepRequest& request) {
  const auto& rec = a.record;
  const auto& s = rec.steps[index];
  const auto& stage = a.pipeline.stages.at(static_cast<std::size_t>(s.stage_index));
  const auto& step = stage.steps.at(static_cast<std::size_t>(s.step_index));
  // What expressions see: the run, its stage and step, and the outputs of steps that succeeded.
  json variables = json::object();
  for (const auto& [k, v] : rec.variables.items()) variables[k] = v;
  json stages = json::object();
  json local = json::object();
  for (const auto& other : rec.steps) {
    if (other.status != st::kSucceeded) continue;
    json out = {{"output", {{"outputVariables", other.outputs}}}};
    stages[other.stage_identifier]["spec"]["execution"]["steps"][other.identifier] = out;
    if (other.stage_index == s.stage_index) local[other.identifier] = out;
  }
  expression::JsonScope scope(json{
      {"pipeline",
       {{"name", a.pipeline.name},
        {"identifier", a.pipeline.identifier},
        {"executionId", rec.id},
        {"sequenceId", rec.sequence},
        {"variables", variables},
        {"stages", stages}}},
      {"stage", {{"name", stage.name}, {"identifier", stage.identifier}, {"type", stage.type}}},
      {"step", {{"name", step.name}, {"identifier", step.identifier}, {"type", step.type}}},
      {"execution", {{"steps", local}}}});
  json spec = step.spec;
  std::string failed_at;
  std::function<void(json&, const std::string&)> walk = [&](json& v, const std::string& ptr) {
    if (v.is_string()) {
      if (!expression::has_expression(v.get_ref<const std::string&>())) return;
      failed_at = ptr;
      v = expression::Expression::parse_template(v.get<std::string>()).evaluate(scope);
    } else if (v.is_object()) {
      for (auto& [k, child] : v.items()) walk(child, yaml::pointer_append(ptr, k));
    } else if (v.is_array()) {
      for (std::size_t i = 0; i < v.size(); ++i) walk(v[i], yaml::pointer_append(ptr, i));
    }
  };
  try {
    walk(spec, "");
  } catch (const expression::Error& e) {
    auto loc = step.expression_locations.find(failed_at);
    std::string where = loc != step.expression_locations.end() ? loc->second : step.location;
    fail_step(a, index, "InvalidInput", where + ": " + e.what());
    return false;
  }
  request.set_execution_id(rec.id);
  request.set_step_type(step.type);
  request.set_step_identifier(step.identifier);
  request.set_step_name(step.name);
  request.set_spec_json(spec.dump());
  request.set_timeout_ms(static_cast<std::uint64_t>(step.timeout.count()));
  json context = {
      {"pipeline",
       {{"identifier", a.pipeline.identifier},
        {"name", a.pipeline.name},
        {"executionId", rec.id},
        {"sequenceId", rec.sequence},
        {"variables", rec.variables}}},
      {"stage", {{"identifier", stage.identifier}, {"name", stage.name}, {"type", stage.type}}},
      {"step", {{"identifier", step.identifier}, {"name", step.name}, {"type", step.type}}}};
  request.set_context_json(context.dump());
  return true;
}

void Machine::dispatch(Active& a, std::size_t index, Session& session,
                       const plugin::v1::StepRequest& request) {
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
  tasks_[s.task_id] = {a.record.id, index};
  session.tasks.insert(slot_key(s.task_id, s.attempt));
  a.waiting_since.erase(index);
  touch_step(a, index);
  views_changed_ = true;

  plugin::v1::StepRequest req = request;
  req.set_task_id(s.task_id);
  req.set_attempt(s.attempt);
  v1::Envelope env;
  auto* assign = env.mutable_assign();
  assign->set_task_id(s.task_id);
  assign->set_attempt(s.attempt);
  assign->set_step_request(req.SerializeAsString());
  send(session.peer, std::move(env));
}

void Machine::schedule() {
  std::deque<std::pair<std::string, std::size_t>> waiting;
  while (!queue_.empty()) {
    auto [id, index] = queue_.front();
    queue_.pop_front();
    auto ait = active_.find(id);
    if (ait == active_.end()) continue;
    Active& a = ait->second;
    if (index >= a.record.steps.size() || a.record.steps[index].status != st::kQueued) continue;
    const auto& type = a.record.steps[index].type;
    Session* best = nullptr;
    bool capable = false;
    double best_load = 2.0;
    for (auto& [iid, s] : sessions_) {
      if (!s.types.count(type)) continue;
      capable = true;
      if (static_cast<int>(s.tasks.size()) >= s.slots) continue;
      double load = static_cast<double>(s.tasks.size()) / s.slots;
      if (load < best_load) {
        best_load = load;
        best = &s;
      }
    }
    if (best == nullptr) {
      if (!capable) a.waiting_since.emplace(index, Clock::now());
      waiting.emplace_back(id, index);
      continue;
    }
    plugin::v1::StepRequest request;
    if (!resolve(a, index, request)) {
      advance(a);
      continue;
    }
    dispatch(a, index, *best, request);
  }
  queue_ = std::move(waiting);
}

void Machine::tick() {
  auto now = Clock::now();
  auto wall = now_ms();
  bool reattach_over = now - started_ >= options_.reattach_window;
  for (auto& [id, a] : active_) {
    if (st::terminal(a.record.status)) continue;
    bool changed = false;
    for (std::size_t i = 0; i < a.record.steps.size(); ++i) {
      auto& s = a.record.steps[i];
      if (in_flight(s.status)) {
        if (s.timeout_ms > 0 &&
            wall > s.started_at + s.timeout_ms + options_.timeout_grace.count()) {
          fail_step(a, i, "Timeout",
                    "step did not finish within its timeout of " +
                        model::format_duration(std::chrono::milliseconds(s.timeout_ms)));
          changed = true;
        } else if (!sessions_.count(s.delegate_instance) && reattach_over) {
          fail_step(a, i, "DelegateProvisioning",
                    "delegate lost: " + s.delegate +
                        " did not reconnect after the coordinator "
                        "restarted");
          changed = true;
        }
      } else if (s.status == st::kQueued) {
        auto w = a.waiting_since.find(i);
        if (w != a.waiting_since.end() && now - w->second >= options_.delegate_wait) {
          fail_step(a, i, "DelegateProvisioning",
                    "no connected delegate can run step type '" + s.type + "' (waited " +
                        model::format_duration(options_.delegate_wait) + "); " +
                        connected_summary());
          changed = true;
        }
      }
    }
    if (changed) advance(a);
  }
}

Clock::time_point Machine::next_wakeup() const {
  // Timers are coarse (timeouts, waits of seconds): half a second is precise enough, and the
  // loop wakes at once for every event anyway.
  return Clock::now() + std::chrono::milliseconds(500);
}

// ---------------------------------------------------------------------------------------------
// Commands

Outcome Machine::apply(std::vector<model::Object>& objects, bool dry_run,
                       const std::string& user) {
  // Step types must be provided by some delegate that has registered with this coordinator,
  // unless the coordinator runs them itself.
  std::set<std::string> known;
  for (const auto& t : store_.step_types()) known.insert(t.type);
  for (const auto& [id, s] : sessions_) {
    for (const auto& [t, ad] : s.types) known.insert(t);
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
  auto stored = [this](const std::string& kind,
                       const std::string& id) -> std::optional<json> {
    if (auto o = store_.object(kind, id)) return o->model;
    return std::nullopt;
  };
  for (const auto& p : model::check_batch(objects, stored)) {
    problems.push_back({{"location", p.location}, {"message", p.message}});
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
                        const std::string& user) {
  auto existing = store_.object(kind, identifier);
  if (!existing) return failure(404, "NotFound", kind + " '" + identifier + "' not found");
  json referrers = json::array();
  std::vector<std::string> names;
  for (const auto& o : store_.objects("")) {
    if (o.kind == kind && o.identifier == identifier) continue;
    for (const auto& ref : o.references) {
      if (ref.value("kind", "") != kind || ref.value("identifier", "") != identifier) continue;
      names.push_back(o.kind + " '" + o.identifier + "'");
      referrers.push_back({{"location", ref.value("location", "")},
                           {"message", o.kind + " '" + o.identifier + "' (" +
                                           ref.value("role", "a reference") + ") refers to it"}});
      break;
    }
  }
  if (!names.empty()) {
    std::string list;
    for (std::size_t i = 0; i < names.size(); ++i) {
      list += (i == 0 ? "" : (i + 1 == names.size() ? " and " : ", ")) + names[i];
    }
    return failure(409, "Referenced",
                   kind + " '" + identifier + "' is still used by " + list +
                       "; change or delete " + (names.size() == 1 ? "it" : "them") + " first",
                   referrers);
  }
  store_.delete_object(kind, identifier, user, now_ms());
  if (kind == "secret") secrets_changed_ = true;
  store::AuditRecord a;
  a.user = user;
  a.action = "delete";
  a.kind = kind;
  a.target = identifier;
  a.details = {{"version", existing->version}};
  store_.append_audit(a);
  Outcome out;
  out.body = {{"kind", kind}, {"identifier", identifier}, {"deleted", true}};
  return out;
}

secrets::SecretBox& Machine::secret_box() {
  if (!secret_box_) {
    secret_box_ = std::make_unique<secrets::SecretBox>(store_.file().parent_path());
  }
  return *secret_box_;
}

Outcome Machine::run(const std::string& pipeline_id,
                     const std::map<std::string, std::string>& variables) {
  auto object = store_.object("pipeline", pipeline_id);
  if (!object) {
    return failure(404, "NotFound",
                   "pipeline '" + pipeline_id +
                       "' not found; apply it first with "
                       "'capstan apply -f FILE'");
  }
  model::Pipeline pipeline = model::pipeline_from_json(object->model);
  std::map<std::string, std::string> bound;
  try {
    bound = model::bind_variables(pipeline, variables);
  } catch (const model::ValidationError& e) {
    json details = json::array();
    for (const auto& p : e.problems())
      details.push_back({{"location", p.location}, {"message", p.message}});
    return failure(422, "InvalidInput", e.problems().front().message, details);
  }
  // Refuse a run that cannot get anywhere, naming what is missing.
  std::set<std::string> missing;
  for (const auto& stage : pipeline.stages) {
    for (const auto& step : stage.steps) {
      if (step.kind != model::NodeKind::kStep || model::runs_on_coordinator(step.type) ||
          stage.type != "Custom" || stage.when || !stage.rollback_steps.empty()) {
        return failure(409, "NotSupported",
                       "pipeline '" + pipeline_id +
                           "' uses step groups, parallel blocks, rollback steps, conditions or "
                           "coordinator steps, which this coordinator cannot run yet");
      }
      bool provided = std::any_of(sessions_.begin(), sessions_.end(),
                                  [&](const auto& kv) { return kv.second.types.count(step.type); });
      if (!provided) missing.insert(step.type);
    }
  }
  if (!missing.empty()) {
    std::string types;
    for (const auto& t : missing) types += (types.empty() ? "'" : ", '") + t + "'";
    return failure(409, "NoEligibleDelegate",
                   "no connected delegate can run step type " + types + " of pipeline '" +
                       pipeline_id + "'; " + connected_summary());
  }

  Active a;
  auto& r = a.record;
  r.id = new_id();
  r.pipeline = pipeline_id;
  r.pipeline_version = object->version;
  r.sequence = store_.next_sequence(pipeline_id);
  r.status = st::kRunning;
  r.variables = bound;
  r.plan = object->model;
  r.created_at = r.started_at = now_ms();
  for (std::size_t si = 0; si < pipeline.stages.size(); ++si) {
    const auto& stage = pipeline.stages[si];
    r.stages.push_back(
        {static_cast<int>(si), stage.identifier, stage.name, stage.type, st::kNotStarted, 0, 0});
    for (std::size_t ti = 0; ti < stage.steps.size(); ++ti) {
      store::StepRecord s;
      s.stage_index = static_cast<int>(si);
      s.step_index = static_cast<int>(ti);
      s.stage_identifier = stage.identifier;
      s.identifier = stage.steps[ti].identifier;
      s.name = stage.steps[ti].name;
      s.type = stage.steps[ti].type;
      s.timeout_ms = stage.steps[ti].timeout.count();
      r.steps.push_back(std::move(s));
    }
  }
  a.pipeline = std::move(pipeline);
  store_.insert_execution(r);
  auto id = r.id;
  auto [it, _] = active_.emplace(id, std::move(a));
  touch(it->second);
  advance(it->second);
  spdlog::info("execution {} of pipeline {} (#{}) started", id, pipeline_id,
               it->second.record.sequence);
  Outcome out;
  out.status = 201;
  out.body = {{"id", id}, {"pipeline", pipeline_id}, {"sequence", it->second.record.sequence}};
  return out;
}

Outcome Machine::abort(const std::string& execution_id) {
  auto found = store_.execution(execution_id);
  if (!found) return failure(404, "NotFound", "execution '" + execution_id + "' not found");
  auto it = active_.find(found->id);
  if (it == active_.end() || st::terminal(it->second.record.status)) {
    return failure(409, "Finished",
                   "execution " + found->id + " already ended (" + found->status + ")");
  }
  Active& a = it->second;
  for (std::size_t i = 0; i < a.record.steps.size(); ++i) {
    auto& s = a.record.steps[i];
    if (in_flight(s.status) || s.status == st::kQueued) {
      fail_step(a, i, "", "aborted by user", st::kAborted);
    }
  }
  finish(a, st::kAborted, "", "aborted by user");
  Outcome out;
  out.body = {{"id", a.record.id}, {"status", st::kAborted}};
  return out;
}

// ---------------------------------------------------------------------------------------------
// Batch end

void Machine::flush() {
  for (auto& [id, lines] : logs_) {
    if (!lines.empty()) store_.append_logs(id, lines);
  }
  for (auto& [id, a] : active_) {
    for (auto index : a.changed) store_.update_step(id, a.record.steps[index]);
    if (!a.changed.empty() || a.dirty) refresh_stages(a);
    if (a.dirty || logs_.count(id)) {
      if (a.dirty) store_.update_execution(a.record);
      bool done = st::terminal(a.record.status);
      Position pos{a.record.revision, a.log_seq};
      effects_.push_back([this, id = id, pos, done] { feed_.publish(id, pos, done); });
    }
    a.changed.clear();
    a.dirty = false;
  }
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
  auto effects = std::move(effects_);
  effects_.clear();
  for (auto& e : effects) e();
}

std::vector<DelegateView> Machine::views() {
  views_changed_ = false;
  std::vector<DelegateView> out;
  for (const auto& [id, s] : sessions_) {
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
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) {
    return std::tie(x.name, x.instance_id) < std::tie(y.name, y.instance_id);
  });
  return out;
}

} // namespace capstan::engine
