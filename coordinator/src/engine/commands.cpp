// The engine's commands from the API: runs (with their inputs), aborts, approvals, manual
// interventions and execution inputs; each one audited.
#include <spdlog/spdlog.h>

#include <random>

#include "engine/json_text.h"
#include "engine/machine.h"
#include "model/inputs.h"
#include "model/object.h"
#include "model/step_types.h"

namespace capstan::engine {

using nlohmann::json;
namespace st = store::status;

namespace {

using store::now_ms;

// An execution id: its creation time (milliseconds since the epoch, 9 base-36 digits, so ids
// sort by creation until the year 5000) and 9 random base-36 digits (46 bits). Ids in creation
// order put a new execution's rows (and their index entries) next to the previous ones', on the
// same few B-tree pages, instead of one random page of each table per execution: a batch of
// runs then writes a handful of pages to the log instead of several per run.
std::string new_execution_id() {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char* alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id(18, '0');
  auto ms = static_cast<std::uint64_t>(now_ms());
  for (int i = 8; i >= 0; --i, ms /= 36) id[static_cast<std::size_t>(i)] = alphabet[ms % 36];
  for (std::size_t i = 9; i < id.size(); ++i) id[i] = alphabet[rng() % 36];
  return id;
}

Outcome refusal(int status, std::string code, std::string message, json details = json::array()) {
  Outcome o;
  o.status = status;
  o.code = std::move(code);
  o.message = std::move(message);
  o.details = std::move(details);
  return o;
}

json problems_json(const std::vector<model::Problem>& problems) {
  json out = json::array();
  for (const auto& p : problems) out.push_back({{"location", p.location}, {"message", p.message}});
  return out;
}

json site_json(const model::InputSite& s) {
  return {{"fqn", s.fqn},
          {"name", s.fqn.substr(s.fqn.rfind('.') + 1)},
          {"location", s.location},
          {"marker", s.marker},
          {"allowedValues", s.input.allowed_values},
          {"default", s.input.default_value ? json(*s.input.default_value) : json(nullptr)},
          {"regex", s.input.regex ? json(*s.input.regex) : json(nullptr)},
          {"stage", s.stage},
          {"step", s.step},
          {"pointer", s.pointer}};
}

// The document of a stored object as it was applied, with its original line numbers.
yaml::Document stored_document(const store::ObjectRecord& o) {
  auto text = std::string(static_cast<std::size_t>(std::max(0, o.line_offset)), '\n') + o.yaml;
  return yaml::load(text, o.file.empty() ? o.kind + "/" + o.identifier : o.file);
}

bool ends_with_name(const std::string& fqn, const std::string& name) {
  return fqn == name || (fqn.size() > name.size() &&
                         fqn.compare(fqn.size() - name.size(), name.size(), name) == 0 &&
                         fqn[fqn.size() - name.size() - 1] == '.');
}

} // namespace

void Machine::audit(Active& a, const std::string& user, const std::string& action, json details) {
  details["pipeline"] = a.record.pipeline;
  details["sequence"] = a.record.sequence;
  audit_text(a, user, action, details.dump());
}

void Machine::audit_text(Active& a, const std::string& user, const std::string& action,
                         const std::string& details) {
  store::AuditRecord r;
  r.user = user.empty() ? "capstan" : user;
  r.action = action;
  r.kind = "execution";
  r.target = a.record.id;
  r.execution_id = a.record.id;
  // Secret values are masked in the text, which is stored as it is.
  r.details_text = mask(details);
  store_.append_audit(r);
}

void Machine::note_stage(Active& a, std::size_t si, int level, const std::string& line) {
  store::LogRecord r;
  r.seq = ++a.log_seq;
  r.stage_index = static_cast<int>(si);
  r.step_index = -1;
  r.step = a.record.stages[si].identifier;
  r.time = now_ms();
  r.level = level;
  r.line = "[capstan] " + mask(line);
  logs_[a.record.id].push_back(std::move(r));
  touch(a);
}

json Machine::pending_questions(const Active& a, const std::string& stage, const std::string& step,
                                bool stage_level) const {
  json out = json::array();
  for (const auto& site : a.record.pending_inputs) {
    auto fqn = site.value("fqn", "");
    if (a.record.inputs.contains(fqn)) continue;
    auto s = site.value("stage", "");
    auto p = site.value("step", "");
    bool mine = stage_level ? (p.empty() && (s.empty() || s == stage)) : (s == stage && p == step);
    if (mine) out.push_back(site);
  }
  return out;
}

std::string Machine::question_names(const json& questions) {
  std::string out;
  for (const auto& q : questions) out += (out.empty() ? "" : ", ") + q.value("name", "");
  return out;
}

std::string Machine::approver_summary(const json& approval) {
  std::string out;
  for (const auto& g : approval.value("userGroups", json::array())) {
    out += (out.empty() ? "group " : ", group ") + g.get<std::string>();
  }
  for (const auto& u : approval.value("users", json::array())) {
    out += (out.empty() ? "user " : ", user ") + u.get<std::string>();
  }
  return out.empty() ? "anyone" : out;
}

void Machine::update_waits(Active& a) {
  auto found = st::terminal(a.record.status) ? std::vector<json>{} : waits_of(a);
  auto known = waits_by_execution_.find(a.record.id);
  if (found.empty()) {
    if (known == waits_by_execution_.end()) return;
    waits_by_execution_.erase(known);
  } else if (known == waits_by_execution_.end()) {
    waits_by_execution_.emplace(a.record.id, std::move(found));
  } else if (known->second != found) {
    known->second = std::move(found);
  } else {
    return;
  }
  waits_changed_ = true;
}

std::vector<json> Machine::waits() {
  waits_changed_ = false;
  std::vector<json> out;
  for (const auto& [id, found] : waits_by_execution_) {
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

std::vector<json> Machine::waits_of(Active& a) {
  const std::string& id = a.record.id;
  std::vector<json> out;
  // Built only for an execution that waits for something: most run or queue for a slot.
  json base;
  auto entry = [&] {
    if (base.is_null()) {
      base = {{"execution", id}, {"pipeline", a.record.pipeline}, {"sequence", a.record.sequence}};
    }
    return base;
  };
  for (std::size_t si = 0; si < a.plan().size(); ++si) {
    const auto& stage = a.record.stages[si];
    if (stage.status == st::kQueued || stage.status == st::kInputWaiting) {
      json w = entry();
      w["where"] = stage.identifier;
      w["kind"] = stage.status == st::kQueued ? "Deployment queue" : "Execution input";
      w["since"] = stage.status == st::kQueued ? stage.queued_at : stage.started_at;
      w["details"] = stage.status == st::kQueued
                         ? stage.message
                         : "asks for " + question_names(stage.state.value("inputs", json::array()));
      out.push_back(std::move(w));
    }
    for (int r = 0; r < static_cast<int>(a.plan()[si].rows.size()); ++r) {
      const auto& rec = row_record(a, si, r);
      std::string kind, details;
      if (rec.status == st::kApprovalWaiting) {
        const auto& ap = rec.state.value("approval", json::object());
        kind = "Approval";
        details = ap.value("message", "") + " (" + std::to_string(ap.value("minimumCount", 1)) +
                  " of " + approver_summary(ap) + ")";
      } else if (rec.status == st::kInterventionWaiting) {
        kind = "Manual intervention";
        details = rec.state.value("intervention", json::object()).value("message", "");
      } else if (rec.status == st::kInputWaiting) {
        kind = "Execution input";
        details = "asks for " + question_names(rec.state.value("inputs", json::array()));
      } else if (rec.status == st::kWaiting && rec.state.value("wake", "") == "wait") {
        kind = "Wait";
        details = rec.message;
      } else if (rec.status == st::kQueued && rec.state.contains("repositoryLockHolder")) {
        kind = "Release repository";
        details = rec.message;
      } else {
        continue;
      }
      json w = entry();
      w["where"] = stage.identifier + "." + plan_row(a, si, r).path;
      w["kind"] = kind;
      w["since"] = rec.status == st::kQueued ? rec.queued_at : rec.started_at;
      w["until"] = rec.wake_at ? json(rec.wake_at) : json(nullptr);
      w["details"] = details;
      out.push_back(std::move(w));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Runs

Outcome Machine::run(const RunRequest& req) {
  // Applied pipelines are kept loaded between runs (apply and delete drop them): a run does not
  // read and parse the stored document again.
  auto cached = pipelines_.find(req.pipeline);
  if (cached == pipelines_.end()) {
    auto object = store_.object("pipeline", req.pipeline);
    if (!object) {
      return refusal(404, "NotFound",
                     "pipeline '" + req.pipeline +
                         "' not found; apply it first with 'capstan apply -f FILE'");
    }
    StoredPipeline entry;
    entry.version = object->version;
    try {
      entry.document = stored_document(*object);
    } catch (const yaml::Error& e) {
      return refusal(500, "Internal",
                     std::string("the stored pipeline does not load: ") + e.what());
    }
    entry.pipeline = model::pipeline_from_json(object->model);
    if (entry.document.value.is_object() && entry.document.value.contains("pipeline")) {
      entry.sites = model::find_inputs(entry.document.value["pipeline"], "/pipeline", "pipeline",
                                       entry.document.where);
    }
    cached = pipelines_.emplace(req.pipeline, std::move(entry)).first;
  }
  StoredPipeline& entry = cached->second;
  const std::int64_t pipeline_version = entry.version;
  const model::Pipeline& stored = entry.pipeline;
  std::vector<model::Problem> problems;
  // Where runtime inputs stand: the pipeline, and the services, environments and
  // infrastructures its stages use (unless the stage fixes the value in its *Inputs).
  auto sites = entry.sites;
  std::set<std::string> pipeline_fqns;
  for (const auto& s : sites) pipeline_fqns.insert(s.fqn);
  std::map<std::string, std::string> fixed;
  auto add_object_sites = [&](const std::string& kind, const std::string& id,
                              const std::string& body_key, const std::string& prefix,
                              const std::string& stage_id) {
    if (id.empty() || expression::has_expression(id)) return;
    auto rec = store_.object(kind, id);
    if (!rec) return; // the stage fails when it starts, naming what is missing
    try {
      auto odoc = stored_document(*rec);
      if (!odoc.value.is_object() || !odoc.value.contains(body_key)) return;
      for (auto& s : model::find_inputs(odoc.value[body_key], "/" + body_key, prefix, odoc.where)) {
        if (pipeline_fqns.count(s.fqn) || fixed.count(s.fqn)) continue;
        s.stage = stage_id;
        s.step.clear();
        sites.push_back(std::move(s));
      }
    } catch (const yaml::Error&) { // NOLINT(bugprone-empty-catch): reported at stage start
    }
  };
  for (const auto& stage : stored.stages) {
    if (stage.type != "Deployment") continue;
    const std::string base = "pipeline.stages." + stage.identifier + ".spec.";
    auto f = model::flatten_values(stage.service_inputs, base + "service.serviceInputs");
    fixed.insert(f.begin(), f.end());
    if (stage.environment) {
      f = model::flatten_values(stage.environment->environment_inputs,
                                base + "environment.environmentInputs");
      fixed.insert(f.begin(), f.end());
      for (const auto& [infra, in] : stage.environment->infrastructure_inputs.items()) {
        f = model::flatten_values(in, base + "environment.infrastructureDefinitions." + infra +
                                          ".inputs");
        fixed.insert(f.begin(), f.end());
      }
    }
    add_object_sites("service", stage.service_ref, "service", base + "service.serviceInputs",
                     stage.identifier);
    if (stage.environment) {
      const auto& e = *stage.environment;
      add_object_sites("environment", e.environment_ref, "environment",
                       base + "environment.environmentInputs", stage.identifier);
      for (const auto& infra : e.infrastructure_refs) {
        add_object_sites("infrastructureDefinition", infra, "infrastructureDefinition",
                         base + "environment.infrastructureDefinitions." + infra + ".inputs",
                         stage.identifier);
      }
    }
  }
  std::map<std::string, std::string> file;
  if (!req.inputs_yaml.empty()) {
    try {
      file = model::read_inputs_file(req.inputs_yaml,
                                     req.inputs_name.empty() ? "inputs.yaml" : req.inputs_name);
    } catch (const model::ValidationError& e) {
      return refusal(422, "InvalidInput", e.problems().front().text(), problems_json(e.problems()));
    }
  }
  // --set NAME=VALUE of a declared variable that is not a runtime input overrides its value.
  std::map<std::string, std::string> set, overrides;
  for (const auto& [name, value] : req.set) {
    auto var = std::find_if(stored.variables.begin(), stored.variables.end(),
                            [&](const auto& v) { return v.name == name; });
    if (var != stored.variables.end() && !var->runtime_input) {
      overrides[name] = value;
    } else {
      set[name] = value;
    }
  }
  auto bound = model::bind_inputs(sites, set, file, fixed, problems);
  if (!problems.empty()) {
    return refusal(422, "InvalidInput",
                   problems.size() == 1
                       ? problems.front().message
                       : std::to_string(problems.size()) + " problem(s) with the run's inputs",
                   problems_json(problems));
  }
  std::vector<model::InputSite> pipeline_sites;
  for (const auto& s : sites) {
    if (pipeline_fqns.count(s.fqn)) pipeline_sites.push_back(s);
  }
  std::shared_ptr<const ExecutionPlan> shape;
  std::string plan; // the plan as stored
  if (pipeline_sites.empty() && entry.as_run) {
    shape = entry.as_run;
    plan = entry.plan;
  } else {
    yaml::Document doc = entry.document;
    model::substitute(doc.value, pipeline_sites, bound.values);
    auto parsed = model::parse_pipeline(doc.value, doc.where, problems);
    if (!problems.empty()) {
      return refusal(422, "InvalidInput",
                     "the run's inputs do not fit the pipeline: " + problems.front().text(),
                     problems_json(problems));
    }
    plan = model::to_json(parsed).dump();
    shape = make_execution_plan(std::move(parsed));
    if (pipeline_sites.empty()) {
      entry.as_run = shape;
      entry.plan = plan;
    }
  }
  const model::Pipeline& pipeline = shape->pipeline;
  // Refuse a run that cannot get anywhere, naming what is missing.
  // The plan's step types are gathered once per plan, not walked per run.
  std::set<std::string> missing;
  for (const auto& type : shape->step_types) {
    if (!model::runs_on_coordinator(type) && !scheduler_provides(type)) missing.insert(type);
  }
  if (!missing.empty()) {
    std::string types;
    for (const auto& t : missing) types += (types.empty() ? "'" : ", '") + t + "'";
    return refusal(409, "NoEligibleDelegate",
                   "no connected delegate can run step type " + types + " of pipeline '" +
                       req.pipeline + "'; " + delegates_summary());
  }

  Active a;
  auto& r = a.record;
  r.id = new_execution_id();
  r.pipeline = req.pipeline;
  r.pipeline_version = pipeline_version;
  // The engine is the store's only writer: after the first run the next number is known.
  auto seq = sequences_.find(req.pipeline);
  if (seq == sequences_.end()) {
    seq = sequences_.emplace(req.pipeline, store_.next_sequence(req.pipeline) - 1).first;
  }
  r.sequence = ++seq->second;
  r.status = st::kRunning;
  r.triggered_by = req.user;
  r.inputs = json::object();
  for (const auto& [k, v] : bound.values) r.inputs[k] = v;
  r.pending_inputs = json::array();
  for (const auto& s : bound.pending) r.pending_inputs.push_back(site_json(s));
  r.variables = json::object();
  for (const auto& v : pipeline.variables) {
    if (overrides.count(v.name)) {
      r.variables[v.name] = overrides[v.name];
    } else {
      r.variables[v.name] = v.runtime_input ? "" : v.value;
    }
  }
  r.plan_text = std::move(plan);
  r.created_at = r.started_at = now_ms();
  for (std::size_t si = 0; si < shape->stages.size(); ++si) {
    const auto& stage = *shape->stages[si].stage;
    store::StageRecord s;
    s.index = static_cast<int>(si);
    s.identifier = stage.identifier;
    s.name = stage.name;
    s.type = stage.type;
    s.parallel_group = stage.parallel_group;
    r.stages.push_back(std::move(s));
  }
  r.steps = shape->initial_steps;
  a.shape = std::move(shape);
  auto id = r.id;
  // Inserted at the end of the batch, in the state the batch leaves it in (usually with its
  // first step dispatched): one insert instead of an insert and updates of the same rows.
  a.stored = false;
  auto [it, _] = active_.emplace(id, std::move(a));
  const json& inputs = it->second.record.inputs;
  {
    // Written as text, in the order audit() would sort the members in: a run is the command
    // every task starts with, and its record need not be a tree first.
    JsonText details;
    details.member("inputs", inputs).open("overrides");
    for (const auto& [name, value] : overrides) details.member(name, value);
    details.close()
        .member("pipeline", req.pipeline)
        .member("pipelineVersion", pipeline_version)
        .member("sequence", it->second.record.sequence);
    audit_text(it->second, req.user, "run", std::move(details).take());
  }
  touch(it->second);
  advance(it->second);
  wake_lock_waiters();
  spdlog::info("execution {} of pipeline {} (#{}) started by {}", id, req.pipeline,
               it->second.record.sequence, req.user);
  Outcome out;
  out.status = 201;
  // Members set one by one: an initializer list would copy each value once more.
  out.body = json::object();
  out.body["inputs"] = inputs.empty() ? json::object() : json::parse(mask(inputs.dump()));
  out.body["pipeline"] = req.pipeline;
  out.body["sequence"] = it->second.record.sequence;
  out.body["id"] = std::move(id);
  return out;
}

Active* Machine::active_execution(const std::string& id_or_prefix, Outcome& error) {
  auto found = store_.execution(id_or_prefix);
  if (!found) {
    error = refusal(404, "NotFound", "execution '" + id_or_prefix + "' not found");
    return nullptr;
  }
  auto it = active_.find(found->id);
  if (it == active_.end() || st::terminal(it->second.record.status)) {
    error = refusal(409, "Finished",
                    "execution " + found->id + " already ended (" + found->status + ")");
    return nullptr;
  }
  return &it->second;
}

Outcome Machine::abort(const std::string& execution_id, const std::string& user) {
  Outcome error;
  Active* a = active_execution(execution_id, error);
  if (a == nullptr) return error;
  audit(*a, user, "abort", json::object());
  abort_execution(*a, "aborted by " + user);
  wake_lock_waiters();
  Outcome out;
  out.body = {{"id", a->record.id}, {"status", st::kAborted}};
  return out;
}

// ---------------------------------------------------------------------------------------------
// Approvals, interventions and execution inputs

namespace {

struct Waiting {
  std::size_t si;
  int row;
};

} // namespace

Outcome Machine::approve(const ApprovalRequest& req) {
  Outcome error;
  Active* ap = active_execution(req.execution, error);
  if (ap == nullptr) return error;
  Active& a = *ap;
  std::vector<Waiting> waiting;
  std::string names;
  for (std::size_t si = 0; si < a.plan().size(); ++si) {
    for (int r = 0; r < static_cast<int>(a.plan()[si].rows.size()); ++r) {
      if (row_record(a, si, r).status != st::kApprovalWaiting) continue;
      const auto& path = plan_row(a, si, r).path;
      const auto full = a.plan()[si].stage->identifier + "." + path;
      if (!req.step.empty() && req.step != path && req.step != full &&
          req.step != plan_row(a, si, r).node->identifier) {
        continue;
      }
      waiting.push_back({si, r});
      names += (names.empty() ? "" : ", ") + full;
    }
  }
  if (waiting.empty()) {
    return refusal(409, "NotWaiting",
                   "no approval is waiting in execution " + a.record.id +
                       (req.step.empty() ? "" : " at step '" + req.step + "'"));
  }
  if (waiting.size() > 1) {
    return refusal(409, "Ambiguous",
                   "several approvals are waiting (" + names + "); name one with --step");
  }
  const auto [si, r] = waiting.front();
  auto& rec = row_record(a, si, r);
  auto& approval = rec.state["approval"];
  const std::string step_name = a.plan()[si].stage->identifier + "." + plan_row(a, si, r).path;
  // Who may answer: the step's users and the members of its user groups.
  bool allowed = false;
  std::vector<std::string> who;
  for (const auto& u : approval.value("users", json::array())) {
    who.push_back(u.get<std::string>());
    if (u == req.user) allowed = true;
  }
  for (const auto& g : approval.value("userGroups", json::array())) {
    auto group = g.get<std::string>();
    if (group == "_project_all_users" || group == "_account_all_users" ||
        group == "_organization_all_users") {
      allowed = true;
      who.push_back("everyone");
      continue;
    }
    auto obj = store_.object("userGroup", group);
    std::vector<std::string> members;
    if (obj) members = obj->model.value("users", std::vector<std::string>{});
    for (const auto& m : members) {
      if (m == req.user) allowed = true;
    }
    who.push_back("group " + group + " (" +
                  (members.empty() ? "no members" : model::join_names(members)) + ")");
  }
  if (!allowed) {
    return refusal(403, "Forbidden",
                   "user '" + req.user + "' may not answer approval " + step_name +
                       " (approvers: " + model::join_names(who) + ")");
  }
  if (approval.value("disallowPipelineExecutor", false) && req.user == a.record.triggered_by) {
    return refusal(403, "Forbidden",
                   "user '" + req.user + "' started execution " + a.record.id + " and approval " +
                       step_name + " does not let them approve it");
  }
  for (const auto& act : approval["activities"]) {
    if (act.value("user", "") == req.user) {
      return refusal(409, "AlreadyAnswered",
                     "user '" + req.user + "' already answered approval " + step_name);
    }
  }
  json inputs = json::object();
  std::vector<std::string> declared;
  for (const auto& i : approval.value("inputs", json::array()))
    declared.push_back(i.value("name", ""));
  for (const auto& [k, v] : req.inputs) {
    if (std::find(declared.begin(), declared.end(), k) == declared.end()) {
      return refusal(
          422, "InvalidInput",
          "approval " + step_name + " has no approver input '" + k + "' (" +
              (declared.empty() ? "it declares none" : "inputs: " + model::join_names(declared)) +
              ")");
    }
    inputs[k] = v;
  }
  const std::size_t index = a.offset()[si] + static_cast<std::size_t>(r);
  approval["activities"].push_back({{"user", req.user},
                                    {"action", req.reject ? "REJECT" : "APPROVE"},
                                    {"comment", req.comment},
                                    {"approverInputs", inputs},
                                    {"time", now_ms()}});
  set_row(a, si, r);
  audit(a, req.user, req.reject ? "reject" : "approve",
        {{"step", step_name}, {"comment", req.comment}, {"inputs", inputs}});
  if (req.reject) {
    rec.status = st::kApprovalRejected;
    rec.error_type = "ApprovalRejection";
    rec.message = "rejected by " + req.user + (req.comment.empty() ? "" : ": " + req.comment);
    rec.ended_at = now_ms();
    rec.wake_at = 0;
    rec.state["handled"] = false;
    note(a, index, 2, rec.message);
  } else {
    int approvals = 0;
    json values = json::object();
    for (const auto& i : approval.value("inputs", json::array())) {
      values[i.value("name", "")] = i.value("defaultValue", "");
    }
    for (const auto& act : approval["activities"]) {
      if (act.value("action", "") != "APPROVE") continue;
      ++approvals;
      const json answered = act.value("approverInputs", json::object());
      for (const auto& [k, v] : answered.items()) values[k] = v;
    }
    int minimum = approval.value("minimumCount", 1);
    note(a, index, 1,
         "approved by " + req.user + (req.comment.empty() ? "" : ": " + req.comment) + " (" +
             std::to_string(approvals) + " of " + std::to_string(minimum) + ")");
    if (approvals >= minimum) {
      rec.status = st::kSucceeded;
      rec.outputs = values;
      rec.message = "approved by " + req.user;
      rec.ended_at = now_ms();
      rec.wake_at = 0;
    }
  }
  advance(a);
  wake_lock_waiters();
  Outcome out;
  out.body = {{"id", a.record.id}, {"step", step_name}, {"status", rec.status}};
  return out;
}

Outcome Machine::intervene(const InterventionRequest& req) {
  Outcome error;
  Active* ap = active_execution(req.execution, error);
  if (ap == nullptr) return error;
  Active& a = *ap;
  const auto& actions = model::failure_actions();
  if (std::find(actions.begin(), actions.end(), req.action) == actions.end()) {
    return refusal(422, "InvalidInput",
                   "unknown action '" + req.action + "' (expected " + model::join_names(actions) +
                       ")");
  }
  std::vector<Waiting> waiting;
  std::string names;
  for (std::size_t si = 0; si < a.plan().size(); ++si) {
    for (int r = 0; r < static_cast<int>(a.plan()[si].rows.size()); ++r) {
      const auto& rec = row_record(a, si, r);
      bool intervention = rec.status == st::kInterventionWaiting;
      bool wait = rec.status == st::kWaiting && rec.state.value("wake", "") == "wait";
      if (!intervention && !wait) continue;
      const auto& path = plan_row(a, si, r).path;
      const auto full = a.plan()[si].stage->identifier + "." + path;
      if (!req.step.empty() && req.step != path && req.step != full) continue;
      waiting.push_back({si, r});
      names += (names.empty() ? "" : ", ") + full;
    }
  }
  if (waiting.empty()) {
    return refusal(409, "NotWaiting",
                   "no step of execution " + a.record.id + " waits for an intervention" +
                       (req.step.empty() ? "" : " at '" + req.step + "'"));
  }
  if (waiting.size() > 1) {
    return refusal(409, "Ambiguous",
                   "several steps wait for an intervention (" + names + "); name one with --step");
  }
  const auto [si, r] = waiting.front();
  auto& rec = row_record(a, si, r);
  const std::size_t index = a.offset()[si] + static_cast<std::size_t>(r);
  const std::string step_name = a.plan()[si].stage->identifier + "." + plan_row(a, si, r).path;
  audit(a, req.user, "intervene",
        {{"step", step_name}, {"action", req.action}, {"comment", req.comment}});
  note(a, index, 2,
       req.user + " chose " + req.action + (req.comment.empty() ? "" : ": " + req.comment));
  set_row(a, si, r);
  rec.wake_at = 0;
  if (rec.status == st::kWaiting) {
    // A Wait step ended by hand.
    rec.state.erase("wake");
    rec.ended_at = now_ms();
    if (req.action == model::action::kMarkAsSuccess || req.action == model::action::kIgnore) {
      rec.status = st::kSucceeded;
      rec.message = "ended early by " + req.user;
    } else if (req.action == model::action::kAbort) {
      abort_execution(a, "aborted by " + req.user);
    } else {
      rec.status = st::kFailed;
      rec.error_type = "Unknown";
      rec.message = "marked as failed by " + req.user;
      rec.state["handled"] = false;
    }
  } else {
    const auto& iv = rec.state["intervention"];
    rec.status = st::kFailed;
    rec.error_type = iv.value("errorType", rec.error_type);
    rec.message = iv.value("message", rec.message);
    rec.ended_at = now_ms();
    rec.state.erase("wake");
    if (req.action == model::action::kRetry) {
      rec.status = st::kNotStarted; // runs again; `when` was decided already
      rec.state["handled"] = false;
    } else {
      rec.state["handled"] = true;
      model::FailureAction action;
      action.type = req.action;
      apply_action(a, si, r, action, "manual intervention by " + req.user);
    }
  }
  advance(a);
  wake_lock_waiters();
  Outcome out;
  out.body = {{"id", a.record.id}, {"step", step_name}, {"action", req.action}};
  return out;
}

Outcome Machine::answer(const InputAnswer& req) {
  Outcome error;
  Active* ap = active_execution(req.execution, error);
  if (ap == nullptr) return error;
  Active& a = *ap;
  // The questions of the stages and steps that wait for input now.
  json questions = json::array();
  std::vector<std::pair<std::size_t, int>> nodes; // (stage, row or -1)
  for (std::size_t si = 0; si < a.plan().size(); ++si) {
    const auto& sid = a.plan()[si].stage->identifier;
    if (a.record.stages[si].status == st::kInputWaiting && (req.step.empty() || req.step == sid)) {
      for (auto& q : pending_questions(a, sid, "", true)) questions.push_back(q);
      nodes.emplace_back(si, -1);
    }
    for (int r = 0; r < static_cast<int>(a.plan()[si].rows.size()); ++r) {
      if (row_record(a, si, r).status != st::kInputWaiting) continue;
      const auto& path = plan_row(a, si, r).path;
      if (!req.step.empty() && req.step != path && req.step != sid + "." + path) continue;
      for (auto& q : pending_questions(a, sid, path, false)) questions.push_back(q);
      nodes.emplace_back(si, r);
    }
  }
  if (nodes.empty()) {
    return refusal(409, "NotWaiting",
                   "execution " + a.record.id + " waits for no input" +
                       (req.step.empty() ? "" : " at '" + req.step + "'"));
  }
  std::map<std::string, std::string> values; // fqn -> value
  json problems = json::array();
  for (const auto& [name, value] : req.values) {
    std::vector<std::string> hits;
    for (const auto& q : questions) {
      if (ends_with_name(q.value("fqn", ""), name)) hits.push_back(q.value("fqn", ""));
    }
    std::sort(hits.begin(), hits.end());
    hits.erase(std::unique(hits.begin(), hits.end()), hits.end());
    if (hits.size() != 1) {
      problems.push_back(
          {{"location", ""},
           {"message", hits.empty() ? "'" + name + "' is not asked for (asked: " +
                                          question_names(questions) + ")"
                                    : "'" + name + "' is ambiguous: " + model::join_names(hits)}});
      continue;
    }
    values[hits.front()] = value;
  }
  for (const auto& q : questions) {
    auto fqn = q.value("fqn", "");
    expression::RuntimeInput input;
    try {
      if (auto parsed = expression::parse_runtime_input(q.value("marker", "<+input>")))
        input = *parsed;
    } catch (const expression::Error&) { // NOLINT(bugprone-empty-catch): the marker was checked
    }
    if (!values.count(fqn)) {
      if (input.default_value) {
        values[fqn] = *input.default_value;
      } else {
        problems.push_back({{"location", q.value("location", "")},
                            {"message", "execution input " + fqn + " needs a value: --set " +
                                            q.value("name", "") + "=VALUE"}});
      }
      continue;
    }
    if (auto why = input.reject(values[fqn])) {
      problems.push_back({{"location", q.value("location", "")}, {"message", fqn + ": " + *why}});
    }
  }
  if (!problems.empty()) {
    return refusal(422, "InvalidInput", problems[0].value("message", ""), problems);
  }
  for (const auto& [fqn, value] : values) {
    a.record.inputs[fqn] = value;
    const std::string prefix = "pipeline.variables.";
    if (fqn.rfind(prefix, 0) == 0) a.record.variables[fqn.substr(prefix.size())] = value;
  }
  touch(a);
  json given = json::object();
  for (const auto& [k, v] : values) given[k] = v;
  audit(a, req.user, "input", {{"inputs", given}});
  for (const auto& [si, r] : nodes) {
    if (r < 0) {
      auto& stage = a.record.stages[si];
      note_stage(a, si, 1, "execution input given by " + req.user);
      stage.status = st::kNotStarted;
      stage.state.erase("inputs");
      set_stage(a, si);
    } else {
      auto& rec = row_record(a, si, r);
      note(a, a.offset()[si] + static_cast<std::size_t>(r), 1,
           "execution input given by " + req.user);
      rec.status = st::kNotStarted; // starts again, now with its inputs
      rec.state.erase("inputs");
      rec.wake_at = 0;
      set_row(a, si, r);
    }
  }
  advance(a);
  wake_lock_waiters();
  Outcome out;
  out.body = {{"id", a.record.id}, {"inputs", json::parse(mask(given.dump()))}};
  return out;
}

} // namespace capstan::engine
