// Pipeline validation (Harness shape, positions on every problem) and its stored form.
#include "model/pipeline.h"

#include <algorithm>
#include <regex>
#include <set>

#include "capstan/expression/expression.h"
#include "model/duration.h"
#include "model/env_group_check.h"
#include "model/expression_check.h"
#include "model/gitops_steps.h"
#include "model/selectors.h"
#include "model/step_types.h"

namespace capstan::model {

using nlohmann::json;
using yaml::pointer_append;

const char* node_kind_name(NodeKind kind) {
  switch (kind) {
  case NodeKind::kStepGroup:
    return "StepGroup";
  case NodeKind::kParallel:
    return "Parallel";
  default:
    return "Step";
  }
}

namespace {

bool is_input(const json* v) {
  if (v == nullptr || !v->is_string()) return false;
  try {
    return expression::parse_runtime_input(v->get_ref<const std::string&>()).has_value();
  } catch (const expression::Error&) {
    return false;
  }
}

// Parsing state of one stage: what its fields may refer to, and the identifiers in use.
struct StageWalk {
  ExpressionContext& ctx;
  Checker& check;
  std::string stage;
  std::set<std::string> ids; // step and group identifiers used in the stage
  bool rollback = false;
};

std::optional<When> parse_when(const json& owner, const std::string& at, Checker& check,
                               const char* status_key, const ExpressionContext& ctx) {
  const auto* body = check.object(owner, at, "when", false);
  if (body == nullptr) return std::nullopt;
  auto wat = pointer_append(at, "when");
  check.only(*body, wat, {status_key, "condition"});
  When w;
  w.location = check.locate(wat);
  auto status = check.one_of(*body, wat, status_key, {"Success", "Failure", "All"}, true);
  if (!status.empty()) w.status = status;
  if (const auto* cond = check.member(*body, wat, "condition", false)) {
    auto cat = pointer_append(wat, "condition");
    if (cond->is_boolean()) {
      w.condition = cond->get<bool>() ? "true" : "false";
    } else if (!cond->is_string()) {
      check.error(cat, "'condition' must be a string holding a condition such as "
                       "<+pipeline.variables.env> == \"prod\"");
    } else {
      w.condition = cond->get<std::string>();
      w.location = check.locate(cat);
      if (!w.condition.empty() && check_field(w.condition, cat, ctx, check, true) &&
          ctx.env_group) {
        check_no_env(w.condition, cat, check, true, ctx.env_variables);
      }
    }
  }
  return w;
}

void parse_approval_spec(const json& spec, const std::string& at, Checker& check) {
  check.only(spec, at,
             {"approvalMessage", "includePipelineExecutionHistory", "approvers", "approverInputs",
              "isAutoRejectEnabled"},
             {"autoApproval"});
  check.string(spec, at, "approvalMessage", true);
  check.boolean(spec, at, "includePipelineExecutionHistory");
  check.boolean(spec, at, "isAutoRejectEnabled");
  const auto* approvers = check.object(spec, at, "approvers", true);
  if (approvers != nullptr) {
    auto aat = pointer_append(at, "approvers");
    check.only(*approvers, aat,
               {"userGroups", "users", "minimumCount", "disallowPipelineExecutor"});
    auto groups = check.strings(*approvers, aat, "userGroups", false);
    auto users = check.strings(*approvers, aat, "users", false);
    if (groups.empty() && users.empty()) {
      check.error(aat, "approvers need at least one entry in 'userGroups' (or 'users')");
    }
    if (const auto* min = check.member(*approvers, aat, "minimumCount", false)) {
      if (!is_input(min) && !(min->is_number_integer() && min->get<std::int64_t>() >= 1)) {
        check.error(pointer_append(aat, "minimumCount"), "minimumCount must be a whole number of "
                                                         "at least 1");
      }
    }
    check.boolean(*approvers, aat, "disallowPipelineExecutor");
  }
  if (const auto* inputs = check.array(spec, at, "approverInputs", false)) {
    auto iat = pointer_append(at, "approverInputs");
    std::set<std::string> names;
    for (std::size_t i = 0; i < inputs->size(); ++i) {
      auto eat = pointer_append(iat, i);
      const auto& item = (*inputs)[i];
      if (!item.is_object()) {
        check.error(eat, "an approver input must be a mapping with 'name' and 'defaultValue'");
        continue;
      }
      check.only(item, eat, {"name", "defaultValue"});
      auto name = check.string(item, eat, "name", true);
      if (!name.empty() && check.identifier(name, pointer_append(eat, "name")) &&
          !names.insert(name).second) {
        check.error(pointer_append(eat, "name"), "approver input '" + name + "' is declared twice");
      }
      if (const auto* d = check.member(item, eat, "defaultValue", false);
          d != nullptr && (d->is_object() || d->is_array())) {
        check.error(pointer_append(eat, "defaultValue"), "defaultValue must be a scalar");
      }
    }
  }
}

void parse_wait_spec(const json& spec, const std::string& at, Checker& check) {
  check.only(spec, at, {"duration"});
  const auto* d = check.member(spec, at, "duration", true);
  if (d != nullptr && !is_input(d)) check.duration(spec, at, "duration", true);
}

std::vector<Node> parse_list(const json& list, const std::string& at, StageWalk& walk,
                             const std::string& prefix, std::set<std::string>& done);

Node parse_step_body(const json& body, const std::string& sat, StageWalk& walk,
                     const std::string& path) {
  auto& check = walk.check;
  Node step;
  step.kind = NodeKind::kStep;
  step.location = check.locate(sat);
  check.only(body, sat,
             {"type", "identifier", "name", "timeout", "spec", "description", "failureStrategies",
              "when", "delegateSelectors"},
             {"strategy", "template", "enforce"});
  step.identifier = check.string(body, sat, "identifier", true);
  if (!step.identifier.empty())
    check.identifier(step.identifier, pointer_append(sat, "identifier"));
  step.name = check.string(body, sat, "name", true);
  step.type = check.string(body, sat, "type", true);
  step.type_location = check.locate(pointer_append(sat, "type"));
  step.description = check.string(body, sat, "description", false);
  step.timeout = step.type == "HarnessApproval" ? kDefaultApprovalTimeout : kDefaultStepTimeout;
  const auto* t = check.member(body, sat, "timeout", false);
  if (t != nullptr && !is_input(t)) {
    if (auto d = check.duration(body, sat, "timeout", false)) step.timeout = *d;
  }
  walk.ctx.in_step = true;
  step.when = parse_when(body, sat, check, "stageStatus", walk.ctx);
  step.failure_strategies = parse_failure_strategies(body, sat, check);
  step.delegate_selectors = parse_delegate_selectors(body, sat, check);
  // An UpdateGitOpsApp among rollback steps may be empty: it undoes the stage's update.
  const bool update_app = step.type == "UpdateGitOpsApp";
  if (const auto* spec = check.object(body, sat, "spec",
                                      step.type == "HarnessApproval" || step.type == "Wait" ||
                                          (update_app && !walk.rollback))) {
    step.spec = *spec;
    auto spat = pointer_append(sat, "spec");
    step.spec_pointer = spat;
    if ((step.type == "UpdateReleaseRepo" || step.type == "GitOpsUpdateReleaseRepo") &&
        spec->contains("variables")) {
      // Its variables are written once per GitOps cluster: <+cluster.*> resolves there.
      json rest = *spec;
      rest.erase("variables");
      check_tree(rest, spat, "", walk.ctx, check, step.expression_locations);
      ExpressionContext per_cluster = walk.ctx;
      per_cluster.per_cluster = true;
      check_tree((*spec)["variables"], pointer_append(spat, "variables"),
                 pointer_append("", "variables"), per_cluster, check, step.expression_locations);
      if (walk.ctx.env_group) {
        check_no_env(rest, spat, check, false, walk.ctx.env_variables);
        check_env_per_cluster((*spec)["variables"], pointer_append(spat, "variables"), check);
      }
    } else {
      check_tree(*spec, spat, "", walk.ctx, check, step.expression_locations);
      if (walk.ctx.env_group) check_no_env(*spec, spat, check, false, walk.ctx.env_variables);
    }
    if (step.type == "HarnessApproval") parse_approval_spec(*spec, spat, check);
    if (step.type == "Wait") parse_wait_spec(*spec, spat, check);
    if (step.type == "GitOpsSync") check_gitops_sync_spec(*spec, spat, check);
    if (update_app && !walk.rollback) check.string(*spec, spat, "applicationName", true);
  }
  walk.ctx.in_step = false;
  (void)path;
  return step;
}

// One entry of a steps list: {step: ...}, {stepGroup: ...} or {parallel: [...]}. `done` gains
// the paths of the steps that have ended once the entry has.
Node parse_entry(const json& wrapper, const std::string& at, StageWalk& walk,
                 const std::string& prefix, std::set<std::string>& done) {
  auto& check = walk.check;
  Node node;
  node.location = check.locate(at);
  if (!wrapper.is_object()) {
    check.error(at, std::string("a step entry must be a mapping with 'step', 'stepGroup' or "
                                "'parallel', not ") +
                        type_name(wrapper));
    return node;
  }
  check.only(wrapper, at, {"step", "stepGroup", "parallel"});
  if (wrapper.size() != 1) {
    if (!wrapper.empty()) {
      check.error(at, "a step entry holds exactly one of 'step', 'stepGroup' or 'parallel'");
    } else {
      check.error(at, "an empty step entry: write 'step', 'stepGroup' or 'parallel'");
    }
    return node;
  }
  auto use_id = [&](const std::string& id, const std::string& id_at) {
    if (id.empty()) return;
    if (!walk.ids.insert(id).second) {
      check.error(id_at, "identifier '" + id + "' is used twice in stage '" + walk.stage + "'");
    }
  };
  walk.ctx.earlier_steps[walk.stage] = done;
  if (wrapper.contains("step")) {
    const auto* body = check.object(wrapper, at, "step", true);
    if (body == nullptr) return node;
    auto sat = pointer_append(at, "step");
    node = parse_step_body(*body, sat, walk, prefix);
    use_id(node.identifier, pointer_append(sat, "identifier"));
    done.insert(prefix + node.identifier);
    return node;
  }
  if (wrapper.contains("parallel")) {
    node.kind = NodeKind::kParallel;
    const auto* list = check.array(wrapper, at, "parallel", true);
    if (list == nullptr) return node;
    auto pat = pointer_append(at, "parallel");
    node.location = check.locate(pat);
    if (list->size() < 2) check.error(pat, "a parallel block needs at least two entries");
    std::set<std::string> after = done;
    for (std::size_t i = 0; i < list->size(); ++i) {
      auto eat = pointer_append(pat, i);
      const auto& item = (*list)[i];
      if (item.is_object() && item.contains("parallel")) {
        check.error(pointer_append(eat, "parallel"), "a parallel block cannot hold another one "
                                                     "directly (use a step group)");
        continue;
      }
      std::set<std::string> branch = done; // siblings do not see each other
      node.children.push_back(parse_entry(item, eat, walk, prefix, branch));
      after.insert(branch.begin(), branch.end());
    }
    done = std::move(after);
    return node;
  }
  node.kind = NodeKind::kStepGroup;
  const auto* body = check.object(wrapper, at, "stepGroup", true);
  if (body == nullptr) return node;
  auto gat = pointer_append(at, "stepGroup");
  node.location = check.locate(gat);
  check.only(*body, gat,
             {"identifier", "name", "steps", "rollbackSteps", "when", "failureStrategies",
              "delegateSelectors", "description"},
             {"timeout", "variables", "strategy", "template", "stepGroupInfra", "sharedPaths"});
  node.identifier = check.string(*body, gat, "identifier", true);
  if (!node.identifier.empty())
    check.identifier(node.identifier, pointer_append(gat, "identifier"));
  use_id(node.identifier, pointer_append(gat, "identifier"));
  node.name = check.string(*body, gat, "name", true);
  node.description = check.string(*body, gat, "description", false);
  node.when = parse_when(*body, gat, check, "stageStatus", walk.ctx);
  node.failure_strategies = parse_failure_strategies(*body, gat, check);
  node.delegate_selectors = parse_delegate_selectors(*body, gat, check);
  const std::string inner = prefix + node.identifier + ".";
  if (const auto* steps = check.array(*body, gat, "steps", true)) {
    if (steps->empty()) check.error(pointer_append(gat, "steps"), "a step group needs a step");
    node.children = parse_list(*steps, pointer_append(gat, "steps"), walk, inner, done);
  }
  if (const auto* rb = check.array(*body, gat, "rollbackSteps", false)) {
    std::set<std::string> seen = done; // rollback may read every step of the group
    bool was = walk.rollback;
    walk.rollback = true;
    node.rollback = parse_list(*rb, pointer_append(gat, "rollbackSteps"), walk, inner, seen);
    walk.rollback = was;
  }
  done.insert(prefix + node.identifier);
  return node;
}

std::vector<Node> parse_list(const json& list, const std::string& at, StageWalk& walk,
                             const std::string& prefix, std::set<std::string>& done) {
  std::vector<Node> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    out.push_back(parse_entry(list[i], pointer_append(at, i), walk, prefix, done));
  }
  return out;
}

StageEnvironment parse_stage_environment(const json& env, const std::string& eat, Checker& check,
                                         bool gitops) {
  StageEnvironment e;
  e.location = check.locate(eat);
  check.only(env, eat,
             {"environmentRef", "deployToAll", "infrastructureDefinitions", "gitOpsClusters",
              "environmentInputs", "serviceOverrideInputs"},
             {"provisioner", "useFromStage"});
  e.environment_ref = strip_scope(check.string(env, eat, "environmentRef", true));
  e.deploy_to_all = check.boolean(env, eat, "deployToAll").value_or(false);
  if (const auto* inputs = check.object(env, eat, "environmentInputs", false)) {
    e.environment_inputs = *inputs;
  }
  if (const auto* infras = check.array(env, eat, "infrastructureDefinitions", false)) {
    auto iat = pointer_append(eat, "infrastructureDefinitions");
    for (std::size_t i = 0; i < infras->size(); ++i) {
      auto at = pointer_append(iat, i);
      const auto& item = (*infras)[i];
      if (!item.is_object()) {
        check.error(at, "each infrastructure definition must be a mapping with 'identifier'");
        continue;
      }
      check.only(item, at, {"identifier", "inputs"});
      auto id = strip_scope(check.string(item, at, "identifier", true));
      if (id.empty()) continue;
      e.infrastructure_refs.push_back(id);
      if (const auto* in = check.object(item, at, "inputs", false)) {
        e.infrastructure_inputs[id] = *in;
      }
    }
    if (gitops && !e.infrastructure_refs.empty()) {
      check.error(iat, "a GitOps stage deploys through GitOps clusters (gitOpsClusters or "
                       "deployToAll), not infrastructure definitions");
    } else if (e.infrastructure_refs.size() > 1) {
      check.error(iat, "deploying to several infrastructure definitions in one stage is not "
                       "supported by this version of Capstan yet; use one stage per "
                       "infrastructure");
    }
  }
  if (const auto* clusters = check.array(env, eat, "gitOpsClusters", false)) {
    auto cat = pointer_append(eat, "gitOpsClusters");
    if (!gitops) {
      check.error(cat, "gitOpsClusters belong to GitOps stages (spec.gitOpsEnabled: true)");
    }
    for (std::size_t i = 0; i < clusters->size(); ++i) {
      auto at = pointer_append(cat, i);
      const auto& item = (*clusters)[i];
      if (!item.is_object()) {
        check.error(at, "each GitOps cluster must be a mapping with 'identifier'");
        continue;
      }
      check.only(item, at, {"identifier", "agentIdentifier"});
      auto id = strip_scope(check.string(item, at, "identifier", true));
      if (!id.empty()) e.gitops_clusters.push_back(id);
    }
  }
  if (!gitops && e.infrastructure_refs.empty()) {
    check.error(eat, "a Deployment stage needs 'infrastructureDefinitions: [{identifier: ...}]' "
                     "(the infrastructure to deploy to)");
  }
  if (gitops && e.gitops_clusters.empty() && !e.deploy_to_all) {
    check.error(eat, "a GitOps stage names its clusters: 'gitOpsClusters: [{identifier: ...}]' "
                     "or 'deployToAll: true'");
  }
  return e;
}

StageEnvironmentGroup parse_stage_environment_group(const json& group, const std::string& gat,
                                                    Checker& check, bool gitops) {
  StageEnvironmentGroup g;
  g.location = check.locate(gat);
  check.only(group, gat, {"envGroupRef", "deployToAll", "environments", "metadata"});
  g.env_group_ref = strip_scope(check.string(group, gat, "envGroupRef", true));
  if (!g.env_group_ref.empty() && !expression::has_expression(g.env_group_ref)) {
    check.identifier(g.env_group_ref, pointer_append(gat, "envGroupRef"));
  }
  g.deploy_to_all = check.boolean(group, gat, "deployToAll").value_or(false);
  if (const auto* meta = check.object(group, gat, "metadata", false)) {
    check.only(*meta, pointer_append(gat, "metadata"), {"parallel"});
  }
  if (!gitops) {
    check.error(gat, "environment groups are supported in GitOps stages (spec.gitOpsEnabled: "
                     "true); a CD stage deploys to one 'environment'");
  }
  if (const auto* envs = check.array(group, gat, "environments", false)) {
    const auto eat = pointer_append(gat, "environments");
    if (g.deploy_to_all && !envs->empty()) {
      check.error(eat, "deployToAll: true deploys to every environment of the group and all "
                       "their GitOps clusters; remove 'environments' or set deployToAll: false");
    }
    for (std::size_t i = 0; i < envs->size(); ++i) {
      const auto at = pointer_append(eat, i);
      const auto& item = (*envs)[i];
      if (!item.is_object()) {
        check.error(at, "each environment must be a mapping with 'environmentRef' and "
                        "'gitOpsClusters' or 'deployToAll'");
        continue;
      }
      auto e = parse_stage_environment(item, at, check, gitops);
      for (const auto& other : g.environments) {
        if (!e.environment_ref.empty() && other.environment_ref == e.environment_ref) {
          check.error(at, "environment '" + e.environment_ref + "' is listed twice");
        }
      }
      g.environments.push_back(std::move(e));
    }
  }
  if (!g.deploy_to_all && g.environments.empty()) {
    check.error(gat, "name the group's environments to deploy to ('environments: "
                     "[{environmentRef: ..., gitOpsClusters: [...] | deployToAll: true}]') or "
                     "set 'deployToAll: true'");
  }
  return g;
}

void parse_deployment(const json& spec, const std::string& spat, Stage& stage, Checker& check) {
  if (!stage.deployment_type.empty() && stage.deployment_type != "Kubernetes") {
    check.error(pointer_append(spat, "deploymentType"),
                "unknown deploymentType '" + stage.deployment_type + "' (expected Kubernetes)");
  }
  if (const auto* svc = check.object(spec, spat, "service", true)) {
    auto sat = pointer_append(spat, "service");
    check.only(*svc, sat, {"serviceRef", "serviceInputs"}, {"useFromStage"});
    stage.service_ref = strip_scope(check.string(*svc, sat, "serviceRef", true));
    if (const auto* in = check.object(*svc, sat, "serviceInputs", false)) {
      stage.service_inputs = *in;
    }
  }
  const bool grouped = spec.contains("environmentGroup");
  if (grouped && spec.contains("environment")) {
    check.error(pointer_append(spat, "environmentGroup"),
                "a stage deploys to an 'environment' or an 'environmentGroup', not both");
  }
  if (const auto* env =
          check.object(spec, spat, "environment", !spec.contains("environments") && !grouped)) {
    stage.environment =
        parse_stage_environment(*env, pointer_append(spat, "environment"), check, stage.gitops);
  }
  if (const auto* group = check.object(spec, spat, "environmentGroup", false)) {
    stage.environment_group = parse_stage_environment_group(
        *group, pointer_append(spat, "environmentGroup"), check, stage.gitops);
  }
}

Stage parse_stage_body(const json& body, const std::string& sat, ExpressionContext& ctx,
                       Checker& check) {
  Stage stage;
  stage.location = check.locate(sat);
  check.only(body, sat,
             {"identifier", "name", "type", "spec", "description", "tags", "variables", "when",
              "failureStrategies", "delegateSelectors"},
             {"strategy", "template"});
  stage.identifier = check.string(body, sat, "identifier", true);
  if (!stage.identifier.empty())
    check.identifier(stage.identifier, pointer_append(sat, "identifier"));
  stage.name = check.string(body, sat, "name", true);
  stage.type = check.string(body, sat, "type", true);
  if (!stage.type.empty() && stage.type != "Custom" && stage.type != "Deployment") {
    check.error(pointer_append(sat, "type"),
                "unknown stage type '" + stage.type + "' (expected Custom or Deployment)");
    stage.type.clear();
  }
  stage.description = check.string(body, sat, "description", false);
  stage.variables = parse_variables(body, sat, check);
  stage.delegate_selectors = parse_delegate_selectors(body, sat, check);
  stage.failure_strategies = parse_failure_strategies(body, sat, check);

  ctx.current_stage = stage.identifier;
  ctx.in_stage = true;
  ctx.deployment = stage.type == "Deployment";
  ctx.env_group = ctx.deployment && body.contains("spec") && body["spec"].is_object() &&
                  body["spec"].contains("environmentGroup");
  if (ctx.env_group && body.contains("variables") && body["variables"].is_array()) {
    // A stage over an environment group has no single environment for its variables to name.
    const auto& list = body["variables"];
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (list[i].is_object() && list[i].contains("value")) {
        check_no_env(list[i]["value"],
                     pointer_append(pointer_append(pointer_append(sat, "variables"), i), "value"),
                     check, false, ctx.env_variables);
      }
    }
  }
  auto& vars = ctx.stage_variables[stage.identifier];
  for (const auto& v : stage.variables) vars.insert(v.name);
  ctx.earlier_steps[stage.identifier].clear();
  stage.when = parse_when(body, sat, check, "pipelineStatus", ctx);

  const auto* spec = check.object(body, sat, "spec", true);
  if (spec == nullptr) return stage;
  auto spat = pointer_append(sat, "spec");
  if (stage.type == "Deployment") {
    check.only(*spec, spat,
               {"execution", "deploymentType", "service", "environment", "gitOpsEnabled",
                "environmentGroup"},
               {"environments", "services", "serviceConfig", "infrastructure"});
    stage.deployment_type = check.string(*spec, spat, "deploymentType", false);
    if (stage.deployment_type.empty()) stage.deployment_type = "Kubernetes";
    stage.gitops = check.boolean(*spec, spat, "gitOpsEnabled").value_or(false);
    parse_deployment(*spec, spat, stage, check);
  } else {
    check.only(*spec, spat, {"execution"}, {"environment", "environments"});
  }
  const auto* exec = check.object(*spec, spat, "execution", true);
  if (exec == nullptr) return stage;
  auto eat = pointer_append(spat, "execution");
  check.only(*exec, eat, {"steps", "rollbackSteps"});
  StageWalk walk{ctx, check, stage.identifier, {}, false};
  std::set<std::string> done;
  if (const auto* steps = check.array(*exec, eat, "steps", true)) {
    if (steps->empty())
      check.error(pointer_append(eat, "steps"), "a stage needs at least one step");
    stage.steps = parse_list(*steps, pointer_append(eat, "steps"), walk, "", done);
  }
  if (const auto* rb = check.array(*exec, eat, "rollbackSteps", false)) {
    walk.rollback = true;
    stage.rollback_steps = parse_list(*rb, pointer_append(eat, "rollbackSteps"), walk, "", done);
  }
  ctx.earlier_steps[stage.identifier] = done;
  ctx.in_stage = false;
  ctx.deployment = false;
  ctx.env_group = false;
  return stage;
}

} // namespace

void for_each_step(const std::vector<Node>& nodes, const std::function<void(const Node&)>& fn) {
  for (const auto& n : nodes) {
    if (n.kind == NodeKind::kStep) {
      fn(n);
    } else {
      for_each_step(n.children, fn);
      for_each_step(n.rollback, fn);
    }
  }
}

Pipeline parse_pipeline(const json& doc, const yaml::SourceMap& where,
                        std::vector<Problem>& problems) {
  Checker check(where, problems);
  Pipeline p;
  const auto* body = check.object(doc, "", "pipeline", true);
  if (body == nullptr) return p;
  const std::string at = "/pipeline";
  check.only(*body, at,
             {"identifier", "name", "description", "tags", "orgIdentifier", "projectIdentifier",
              "variables", "stages", "delegateSelectors"},
             {"properties", "notificationRules", "timeout", "allowStageExecutions", "template",
              "flowControl", "failureStrategies"});
  p.identifier = check.string(*body, at, "identifier", true);
  if (!p.identifier.empty()) check.identifier(p.identifier, at + "/identifier");
  p.name = check.string(*body, at, "name", true);
  p.description = check.string(*body, at, "description", false);
  p.variables = parse_variables(*body, at, check);
  p.delegate_selectors = parse_delegate_selectors(*body, at, check);
  const auto* stages = check.array(*body, at, "stages", true);
  if (stages == nullptr) return p;
  if (stages->empty()) check.error(at + "/stages", "a pipeline needs at least one stage");

  ExpressionContext ctx;
  for (const auto& v : p.variables) ctx.pipeline_variables.insert(v.name);
  ctx.env_variables = env_reading_variables(p.variables);
  auto stage_id = [](const json& s) -> std::string {
    if (s.is_object() && s.contains("stage") && s["stage"].is_object() &&
        s["stage"].contains("identifier") && s["stage"]["identifier"].is_string()) {
      return s["stage"]["identifier"].get<std::string>();
    }
    return {};
  };
  for (const auto& s : *stages) {
    if (s.is_object() && s.contains("parallel") && s["parallel"].is_array()) {
      for (const auto& inner : s["parallel"]) ctx.all_stages.insert(stage_id(inner));
    } else {
      ctx.all_stages.insert(stage_id(s));
    }
  }
  std::set<std::string> ids;
  auto add_stage = [&](const json& wrapper, const std::string& sat, int group,
                       const ExpressionContext& before, ExpressionContext& after) {
    if (!wrapper.is_object()) {
      check.error(sat, std::string("a stage entry must be a mapping with 'stage' or 'parallel', "
                                   "not ") +
                           type_name(wrapper));
      return;
    }
    check.only(wrapper, sat, {"stage"});
    const auto* body = check.object(wrapper, sat, "stage", true);
    if (body == nullptr) return;
    ExpressionContext local = before;
    Stage stage = parse_stage_body(*body, pointer_append(sat, "stage"), local, check);
    stage.parallel_group = group;
    if (!stage.identifier.empty() && !ids.insert(stage.identifier).second) {
      check.error(sat + "/stage/identifier",
                  "stage identifier '" + stage.identifier + "' is used twice");
    }
    after.earlier_steps[stage.identifier] = local.earlier_steps[stage.identifier];
    after.stage_variables[stage.identifier] = local.stage_variables[stage.identifier];
    p.stages.push_back(std::move(stage));
  };
  for (std::size_t i = 0; i < stages->size(); ++i) {
    auto sat = pointer_append(at + "/stages", i);
    const auto& entry = (*stages)[i];
    const int group = static_cast<int>(i);
    if (entry.is_object() && entry.contains("parallel")) {
      check.only(entry, sat, {"parallel"});
      const auto* list = check.array(entry, sat, "parallel", true);
      if (list == nullptr) continue;
      auto pat = pointer_append(sat, "parallel");
      if (list->size() < 2) check.error(pat, "a parallel block needs at least two stages");
      ExpressionContext after = ctx; // stages of one block do not see each other
      for (std::size_t j = 0; j < list->size(); ++j) {
        add_stage((*list)[j], pointer_append(pat, j), group, ctx, after);
      }
      ctx = std::move(after);
    } else {
      ExpressionContext after = ctx;
      add_stage(entry, sat, group, ctx, after);
      ctx = std::move(after);
    }
  }
  return p;
}

void to_json(json& j, const When& w) {
  j = {{"status", w.status}, {"condition", w.condition}, {"location", w.location}};
}

void from_json(const json& j, When& w) {
  w.status = j.value("status", "Success");
  w.condition = j.value("condition", "");
  w.location = j.value("location", "");
}

void to_json(json& j, const Node& n) {
  j = {{"kind", node_kind_name(n.kind)},
       {"identifier", n.identifier},
       {"name", n.name},
       {"location", n.location}};
  if (n.kind == NodeKind::kStep) {
    j["type"] = n.type;
    j["description"] = n.description;
    j["timeoutMs"] = n.timeout.count();
    j["spec"] = n.spec;
    j["typeLocation"] = n.type_location;
    j["expressionLocations"] = n.expression_locations;
  }
  if (n.when) j["when"] = *n.when;
  if (!n.failure_strategies.empty()) j["failureStrategies"] = n.failure_strategies;
  if (!n.delegate_selectors.empty()) j["delegateSelectors"] = n.delegate_selectors;
  if (n.kind != NodeKind::kStep) j["children"] = n.children;
  if (!n.rollback.empty()) j["rollback"] = n.rollback;
}

void from_json(const json& j, Node& n) {
  auto kind = j.value("kind", "Step");
  n.kind = kind == "StepGroup" ? NodeKind::kStepGroup
                               : (kind == "Parallel" ? NodeKind::kParallel : NodeKind::kStep);
  n.identifier = j.value("identifier", "");
  n.name = j.value("name", "");
  n.type = j.value("type", "");
  n.description = j.value("description", "");
  n.timeout = std::chrono::milliseconds(j.value("timeoutMs", kDefaultStepTimeout.count()));
  n.spec = j.value("spec", json::object());
  n.location = j.value("location", "");
  n.type_location = j.value("typeLocation", "");
  n.expression_locations = j.value("expressionLocations", std::map<std::string, std::string>{});
  n.when.reset();
  if (j.contains("when")) n.when = j["when"].get<When>();
  n.failure_strategies = j.value("failureStrategies", std::vector<FailureStrategy>{});
  n.delegate_selectors = j.value("delegateSelectors", std::vector<std::string>{});
  n.children = j.value("children", std::vector<Node>{});
  n.rollback = j.value("rollback", std::vector<Node>{});
}

namespace {

json env_to_json(const StageEnvironment& e) {
  return {{"environmentRef", e.environment_ref},
          {"deployToAll", e.deploy_to_all},
          {"infrastructureRefs", e.infrastructure_refs},
          {"gitOpsClusters", e.gitops_clusters},
          {"environmentInputs", e.environment_inputs},
          {"infrastructureInputs", e.infrastructure_inputs},
          {"location", e.location}};
}

StageEnvironment env_from_json(const json& j) {
  StageEnvironment e;
  e.environment_ref = j.value("environmentRef", "");
  e.deploy_to_all = j.value("deployToAll", false);
  e.infrastructure_refs = j.value("infrastructureRefs", std::vector<std::string>{});
  e.gitops_clusters = j.value("gitOpsClusters", std::vector<std::string>{});
  e.environment_inputs = j.value("environmentInputs", json::object());
  e.infrastructure_inputs = j.value("infrastructureInputs", json::object());
  e.location = j.value("location", "");
  return e;
}

} // namespace

json to_json(const Pipeline& p) {
  json stages = json::array();
  for (const auto& s : p.stages) {
    json j = {{"identifier", s.identifier},
              {"name", s.name},
              {"type", s.type},
              {"description", s.description},
              {"location", s.location},
              {"parallelGroup", s.parallel_group},
              {"variables", s.variables},
              {"steps", s.steps},
              {"rollbackSteps", s.rollback_steps}};
    if (s.when) j["when"] = *s.when;
    if (!s.failure_strategies.empty()) j["failureStrategies"] = s.failure_strategies;
    if (!s.delegate_selectors.empty()) j["delegateSelectors"] = s.delegate_selectors;
    if (s.type == "Deployment") {
      j["deploymentType"] = s.deployment_type;
      j["gitOpsEnabled"] = s.gitops;
      j["serviceRef"] = s.service_ref;
      j["serviceInputs"] = s.service_inputs;
      if (s.environment) j["environment"] = env_to_json(*s.environment);
      if (s.environment_group) {
        json envs = json::array();
        for (const auto& e : s.environment_group->environments) envs.push_back(env_to_json(e));
        j["environmentGroup"] = {{"envGroupRef", s.environment_group->env_group_ref},
                                 {"deployToAll", s.environment_group->deploy_to_all},
                                 {"environments", envs},
                                 {"location", s.environment_group->location}};
      }
    }
    stages.push_back(std::move(j));
  }
  json out = {{"identifier", p.identifier},
              {"name", p.name},
              {"description", p.description},
              {"variables", p.variables},
              {"stages", std::move(stages)}};
  if (!p.delegate_selectors.empty()) out["delegateSelectors"] = p.delegate_selectors;
  return out;
}

Pipeline pipeline_from_json(const json& j) {
  Pipeline p;
  p.identifier = j.value("identifier", "");
  p.name = j.value("name", "");
  p.description = j.value("description", "");
  p.variables = j.value("variables", std::vector<Variable>{});
  p.delegate_selectors = j.value("delegateSelectors", std::vector<std::string>{});
  int group = 0;
  for (const auto& s : j.value("stages", json::array())) {
    Stage stage;
    stage.identifier = s.value("identifier", "");
    stage.name = s.value("name", "");
    stage.type = s.value("type", "");
    stage.description = s.value("description", "");
    stage.location = s.value("location", "");
    stage.parallel_group = s.value("parallelGroup", group);
    stage.variables = s.value("variables", std::vector<Variable>{});
    if (s.contains("when")) stage.when = s["when"].get<When>();
    stage.failure_strategies = s.value("failureStrategies", std::vector<FailureStrategy>{});
    stage.delegate_selectors = s.value("delegateSelectors", std::vector<std::string>{});
    stage.deployment_type = s.value("deploymentType", "");
    stage.gitops = s.value("gitOpsEnabled", false);
    stage.service_ref = s.value("serviceRef", "");
    stage.service_inputs = s.value("serviceInputs", json::object());
    if (s.contains("environment")) stage.environment = env_from_json(s["environment"]);
    if (s.contains("environmentGroup")) {
      const json& g = s["environmentGroup"];
      StageEnvironmentGroup group;
      group.env_group_ref = g.value("envGroupRef", "");
      group.deploy_to_all = g.value("deployToAll", false);
      for (const auto& e : g.value("environments", json::array())) {
        group.environments.push_back(env_from_json(e));
      }
      group.location = g.value("location", "");
      stage.environment_group = std::move(group);
    }
    stage.steps = s.value("steps", std::vector<Node>{});
    stage.rollback_steps = s.value("rollbackSteps", std::vector<Node>{});
    p.stages.push_back(std::move(stage));
    ++group;
  }
  return p;
}

std::map<std::string, std::string> bind_variables(const Pipeline& pipeline,
                                                  const std::map<std::string, std::string>& set) {
  std::vector<Problem> problems;
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : set) {
    auto it = std::find_if(pipeline.variables.begin(), pipeline.variables.end(),
                           [&](const Variable& v) { return v.name == name; });
    if (it == pipeline.variables.end()) {
      std::string names;
      for (const auto& v : pipeline.variables) names += (names.empty() ? "" : ", ") + v.name;
      problems.push_back(
          {"", "pipeline '" + pipeline.identifier + "' has no variable '" + name + "' (" +
                   (names.empty() ? "it declares none" : "variables: " + names) + ")"});
    }
  }
  for (const auto& v : pipeline.variables) {
    auto given = set.find(v.name);
    std::string value = v.value;
    if (v.runtime_input) {
      auto input = expression::parse_runtime_input(v.value);
      if (given != set.end()) {
        value = given->second;
        if (auto why = input->reject(value)) {
          problems.push_back({v.location, "pipeline variable '" + v.name + "': " + *why});
          continue;
        }
      } else if (input->default_value) {
        value = *input->default_value;
      } else {
        problems.push_back({v.location, "pipeline variable '" + v.name +
                                            "' is a runtime input (<+input>): pass --set " +
                                            v.name + "=VALUE"});
        continue;
      }
    } else if (given != set.end()) {
      value = given->second;
    }
    if (v.type == "Number" && !value.empty() && !expression::has_expression(value)) {
      static const std::regex number(R"(^-?[0-9]+(\.[0-9]+)?$)");
      if (!std::regex_match(value, number)) {
        problems.push_back({v.location, "pipeline variable '" + v.name +
                                            "' is a Number, but got '" + value + "'"});
        continue;
      }
    }
    if (v.required && value.empty()) {
      problems.push_back({v.location, "pipeline variable '" + v.name + "' is required"});
      continue;
    }
    out[v.name] = value;
  }
  if (!problems.empty()) throw ValidationError(std::move(problems));
  return out;
}

} // namespace capstan::model
