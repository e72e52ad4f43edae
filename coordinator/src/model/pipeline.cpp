// Pipeline validation (Harness shape, positions on every problem) and its stored form.
#include "model/pipeline.h"

#include <algorithm>
#include <regex>
#include <set>

#include "capstan/expression/expression.h"
#include "model/duration.h"
#include "model/selectors.h"

namespace capstan::model {

using nlohmann::json;
using yaml::pointer_append;

namespace {

// What a step's expressions may refer to at the point where the step runs.
struct ExpressionScope {
  std::set<std::string> variables;
  // stage identifier -> step identifiers, for stages that ran before, plus the current stage's
  // steps that ran before this one.
  std::map<std::string, std::set<std::string>> earlier_steps;
  std::set<std::string> all_stages;
  std::string current_stage;
};

std::optional<std::string> check_path(const std::string& path, const ExpressionScope& scope) {
  static const std::set<std::string> fixed = {"pipeline.name",        "pipeline.identifier",
                                              "pipeline.executionId", "pipeline.sequenceId",
                                              "stage.name",           "stage.identifier",
                                              "stage.type",           "step.name",
                                              "step.identifier",      "step.type"};
  if (fixed.count(path)) return std::nullopt;
  static const std::regex var(R"(pipeline\.variables\.([A-Za-z_][A-Za-z0-9_]*))");
  static const std::regex output(
      R"(pipeline\.stages\.([A-Za-z_][A-Za-z0-9_]*)\.spec\.execution\.steps\.([A-Za-z_][A-Za-z0-9_]*)\.output\.outputVariables\.([A-Za-z_][A-Za-z0-9_]*))");
  static const std::regex local(
      R"(execution\.steps\.([A-Za-z_][A-Za-z0-9_]*)\.output\.outputVariables\.([A-Za-z_][A-Za-z0-9_]*))");
  std::smatch m;
  if (std::regex_match(path, m, var)) {
    if (scope.variables.count(m[1].str())) return std::nullopt;
    return "the pipeline declares no variable '" + m[1].str() + "'";
  }
  auto earlier = [&](const std::string& stage,
                     const std::string& step) -> std::optional<std::string> {
    if (!scope.all_stages.count(stage)) return "the pipeline has no stage '" + stage + "'";
    auto it = scope.earlier_steps.find(stage);
    if (it == scope.earlier_steps.end()) return "stage '" + stage + "' runs after this step";
    if (!it->second.count(step)) {
      return "no step '" + step + "' runs before this one in stage '" + stage + "'";
    }
    return std::nullopt;
  };
  if (std::regex_match(path, m, output)) return earlier(m[1].str(), m[2].str());
  if (std::regex_match(path, m, local)) return earlier(scope.current_stage, m[1].str());
  return "unknown expression; supported are pipeline.name|identifier|executionId|sequenceId, "
         "pipeline.variables.NAME, stage.name|identifier|type, step.name|identifier|type, "
         "pipeline.stages.STAGE.spec.execution.steps.STEP.output.outputVariables.NAME and "
         "execution.steps.STEP.output.outputVariables.NAME";
}

// Answers lookups the way a run will, without values: known paths resolve (to ""), unknown
// ones do not, and the reason is kept for the message.
class CheckScope : public expression::Scope {
public:
  explicit CheckScope(const ExpressionScope& scope) : scope_(scope) {}
  std::optional<expression::Value> lookup(const std::vector<std::string>& path) const override {
    std::string dotted;
    for (const auto& p : path) dotted += (dotted.empty() ? "" : ".") + p;
    if (auto why = check_path(dotted, scope_)) {
      reason = "<+" + dotted + ">: " + *why;
      return std::nullopt;
    }
    return expression::Value("");
  }
  mutable std::string reason;

private:
  const ExpressionScope& scope_;
};

// Checks every expression in a step's spec and records where each one is.
void check_expressions(const json& value, const std::string& pointer, const std::string& rel,
                       const ExpressionScope& scope, Checker& check, Step& step) {
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (!expression::has_expression(s)) return;
    step.expression_locations[rel] = check.locate(pointer);
    CheckScope probe(scope);
    try {
      expression::Expression::parse_template(s).evaluate(probe);
    } catch (const expression::Error& e) {
      check.error(pointer, probe.reason.empty() ? e.what() : probe.reason);
    }
  } else if (value.is_object()) {
    for (const auto& [k, v] : value.items()) {
      check_expressions(v, pointer_append(pointer, k), pointer_append(rel, k), scope, check, step);
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      check_expressions(value[i], pointer_append(pointer, i), pointer_append(rel, i), scope, check,
                        step);
    }
  }
}

std::vector<Variable> parse_variables(const json& pipe, const std::string& at, Checker& check) {
  std::vector<Variable> out;
  const auto* list = check.array(pipe, at, "variables", false);
  if (list == nullptr) return out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < list->size(); ++i) {
    auto vat = pointer_append(pointer_append(at, "variables"), i);
    const auto& item = (*list)[i];
    if (!item.is_object()) {
      check.error(vat, std::string("a variable must be a mapping, not ") + type_name(item));
      continue;
    }
    check.only(item, vat, {"name", "type", "value", "description", "required", "default"});
    Variable v;
    v.name = check.string(item, vat, "name", true);
    if (!v.name.empty() && check.identifier(v.name, pointer_append(vat, "name")) &&
        !seen.insert(v.name).second) {
      check.error(pointer_append(vat, "name"), "variable '" + v.name + "' is declared twice");
    }
    auto type = check.string(item, vat, "type", false);
    if (!type.empty()) {
      if (type == "Secret") {
        check.error(pointer_append(vat, "type"),
                    "variables of type Secret are not supported by this version of Capstan yet");
      } else if (type != "String" && type != "Number") {
        check.error(pointer_append(vat, "type"),
                    "unknown variable type '" + type + "' (expected String or Number)");
      }
      v.type = type;
    }
    v.description = check.string(item, vat, "description", false);
    const auto* value = check.member(item, vat, "value", false);
    if (value != nullptr) {
      if (value->is_object() || value->is_array()) {
        check.error(pointer_append(vat, "value"), "a variable's value must be a scalar");
      } else {
        std::string text = value->is_string() ? value->get<std::string>() : value->dump();
        try {
          if (expression::parse_runtime_input(text)) {
            v.runtime_input = true;
            v.value = text;
          } else if (expression::has_expression(text)) {
            check.error(pointer_append(vat, "value"),
                        "a variable's value is a literal or a runtime input such as <+input> or "
                        "<+input>.default(VALUE)");
          } else {
            v.value = text;
          }
        } catch (const expression::Error& e) {
          check.error(pointer_append(vat, "value"), e.what());
        }
      }
    }
    out.push_back(std::move(v));
  }
  return out;
}

Step parse_step(const json& wrapper, const std::string& at, Checker& check,
                const ExpressionScope& scope) {
  Step step;
  step.location = check.locate(at);
  if (!wrapper.is_object()) {
    check.error(at, std::string("a step entry must be a mapping, not ") + type_name(wrapper));
    return step;
  }
  check.only(wrapper, at, {"step"}, {"parallel", "stepGroup"});
  const auto* body =
      check.object(wrapper, at, "step",
                   wrapper.contains("parallel") || wrapper.contains("stepGroup") ? false : true);
  if (body == nullptr) return step;
  auto sat = pointer_append(at, "step");
  step.location = check.locate(sat);
  check.only(*body, sat,
             {"type", "identifier", "name", "timeout", "spec", "description", "delegateSelectors"},
             {"failureStrategies", "when", "strategy", "template"});
  step.delegate_selectors = parse_delegate_selectors(*body, sat, check);
  step.identifier = check.string(*body, sat, "identifier", true);
  if (!step.identifier.empty())
    check.identifier(step.identifier, pointer_append(sat, "identifier"));
  step.name = check.string(*body, sat, "name", true);
  step.type = check.string(*body, sat, "type", true);
  step.description = check.string(*body, sat, "description", false);
  if (const auto* t = check.member(*body, sat, "timeout", false)) {
    auto tat = pointer_append(sat, "timeout");
    if (!t->is_string()) {
      check.error(tat, "'timeout' must be a duration such as \"10m\" or \"1h 30m\"");
    } else if (auto d = parse_duration(t->get<std::string>())) {
      step.timeout = *d;
    } else {
      check.error(tat, "invalid timeout '" + t->get<std::string>() +
                           "': use a duration such as \"30s\", \"10m\" or \"1h 30m\" "
                           "(units w, d, h, m, s, ms)");
    }
  }
  if (const auto* spec = check.object(*body, sat, "spec", false)) {
    step.spec = *spec;
    check_expressions(*spec, pointer_append(sat, "spec"), "", scope, check, step);
  }
  return step;
}

Stage parse_stage(const json& wrapper, const std::string& at, Checker& check,
                  ExpressionScope& scope) {
  Stage stage;
  stage.location = check.locate(at);
  if (!wrapper.is_object()) {
    check.error(at, std::string("a stage entry must be a mapping, not ") + type_name(wrapper));
    return stage;
  }
  check.only(wrapper, at, {"stage"}, {"parallel"});
  const auto* body = check.object(wrapper, at, "stage", !wrapper.contains("parallel"));
  if (body == nullptr) return stage;
  auto sat = pointer_append(at, "stage");
  stage.location = check.locate(sat);
  check.only(*body, sat,
             {"identifier", "name", "type", "spec", "description", "tags", "delegateSelectors"},
             {"variables", "when", "failureStrategies", "strategy", "template"});
  stage.delegate_selectors = parse_delegate_selectors(*body, sat, check);
  stage.identifier = check.string(*body, sat, "identifier", true);
  if (!stage.identifier.empty()) {
    check.identifier(stage.identifier, pointer_append(sat, "identifier"));
  }
  stage.name = check.string(*body, sat, "name", true);
  stage.type = check.string(*body, sat, "type", true);
  stage.description = check.string(*body, sat, "description", false);
  if (!stage.type.empty() && stage.type != "Custom" && stage.type != "Deployment") {
    check.error(pointer_append(sat, "type"),
                "unknown stage type '" + stage.type + "' (expected Custom or Deployment)");
  }
  const auto* spec = check.object(*body, sat, "spec", true);
  if (spec == nullptr) return stage;
  auto spat = pointer_append(sat, "spec");
  check.only(*spec, spat, {"execution", "deploymentType"},
             {"service", "environment", "infrastructure", "serviceConfig", "environmentGroup"});
  const auto* exec = check.object(*spec, spat, "execution", true);
  if (exec == nullptr) return stage;
  auto eat = pointer_append(spat, "execution");
  check.only(*exec, eat, {"steps"}, {"rollbackSteps"});
  const auto* steps = check.array(*exec, eat, "steps", true);
  if (steps == nullptr) return stage;
  auto lat = pointer_append(eat, "steps");
  if (steps->empty()) check.error(lat, "a stage needs at least one step");
  scope.current_stage = stage.identifier;
  auto& earlier = scope.earlier_steps[stage.identifier];
  std::set<std::string> ids;
  for (std::size_t i = 0; i < steps->size(); ++i) {
    auto at_i = pointer_append(lat, i);
    Step step = parse_step((*steps)[i], at_i, check, scope);
    if (!step.identifier.empty() && !ids.insert(step.identifier).second) {
      check.error(pointer_append(pointer_append(at_i, "step"), "identifier"),
                  "step identifier '" + step.identifier + "' is used twice in stage '" +
                      stage.identifier + "'");
    }
    earlier.insert(step.identifier);
    stage.steps.push_back(std::move(step));
  }
  return stage;
}

} // namespace

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

  ExpressionScope scope;
  for (const auto& v : p.variables) scope.variables.insert(v.name);
  for (const auto& s : *stages) {
    if (s.is_object() && s.contains("stage") && s["stage"].is_object() &&
        s["stage"].contains("identifier") && s["stage"]["identifier"].is_string()) {
      scope.all_stages.insert(s["stage"]["identifier"].get<std::string>());
    }
  }
  std::set<std::string> ids;
  for (std::size_t i = 0; i < stages->size(); ++i) {
    auto sat = pointer_append(at + "/stages", i);
    Stage stage = parse_stage((*stages)[i], sat, check, scope);
    if (!stage.identifier.empty() && !ids.insert(stage.identifier).second) {
      check.error(sat + "/stage/identifier",
                  "stage identifier '" + stage.identifier + "' is used twice");
    }
    p.stages.push_back(std::move(stage));
  }
  return p;
}

json to_json(const Pipeline& p) {
  json vars = json::array();
  for (const auto& v : p.variables) {
    json j = {
        {"name", v.name}, {"type", v.type}, {"value", v.value}, {"runtimeInput", v.runtime_input}};
    if (!v.description.empty()) j["description"] = v.description;
    vars.push_back(std::move(j));
  }
  json stages = json::array();
  for (const auto& s : p.stages) {
    json steps = json::array();
    for (const auto& st : s.steps) {
      steps.push_back({{"identifier", st.identifier},
                       {"name", st.name},
                       {"type", st.type},
                       {"description", st.description},
                       {"timeoutMs", st.timeout.count()},
                       {"spec", st.spec},
                       {"delegateSelectors", st.delegate_selectors},
                       {"location", st.location},
                       {"expressionLocations", st.expression_locations}});
    }
    stages.push_back({{"identifier", s.identifier},
                      {"name", s.name},
                      {"type", s.type},
                      {"description", s.description},
                      {"location", s.location},
                      {"delegateSelectors", s.delegate_selectors},
                      {"steps", std::move(steps)}});
  }
  return {{"identifier", p.identifier},
          {"name", p.name},
          {"description", p.description},
          {"variables", std::move(vars)},
          {"delegateSelectors", p.delegate_selectors},
          {"stages", std::move(stages)}};
}

Pipeline pipeline_from_json(const json& j) {
  Pipeline p;
  p.identifier = j.value("identifier", "");
  p.name = j.value("name", "");
  p.description = j.value("description", "");
  p.delegate_selectors = j.value("delegateSelectors", std::vector<std::string>{});
  for (const auto& v : j.value("variables", json::array())) {
    Variable var;
    var.name = v.value("name", "");
    var.type = v.value("type", "String");
    var.value = v.value("value", "");
    var.runtime_input = v.value("runtimeInput", false);
    var.description = v.value("description", "");
    p.variables.push_back(std::move(var));
  }
  for (const auto& s : j.value("stages", json::array())) {
    Stage stage;
    stage.identifier = s.value("identifier", "");
    stage.name = s.value("name", "");
    stage.type = s.value("type", "");
    stage.description = s.value("description", "");
    stage.location = s.value("location", "");
    stage.delegate_selectors = s.value("delegateSelectors", std::vector<std::string>{});
    for (const auto& st : s.value("steps", json::array())) {
      Step step;
      step.identifier = st.value("identifier", "");
      step.name = st.value("name", "");
      step.type = st.value("type", "");
      step.description = st.value("description", "");
      step.timeout = std::chrono::milliseconds(st.value("timeoutMs", kDefaultStepTimeout.count()));
      step.spec = st.value("spec", json::object());
      step.location = st.value("location", "");
      step.delegate_selectors = st.value("delegateSelectors", std::vector<std::string>{});
      step.expression_locations =
          st.value("expressionLocations", std::map<std::string, std::string>{});
      stage.steps.push_back(std::move(step));
    }
    p.stages.push_back(std::move(stage));
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
          problems.push_back({"", "pipeline variable '" + v.name + "': " + *why});
          continue;
        }
      } else if (input->default_value) {
        value = *input->default_value;
      } else {
        problems.push_back({"", "pipeline variable '" + v.name +
                                    "' is a runtime input (<+input>): pass --set " + v.name +
                                    "=VALUE"});
        continue;
      }
    } else if (given != set.end()) {
      value = given->second;
    }
    if (v.type == "Number" && !value.empty()) {
      static const std::regex number(R"(^-?[0-9]+(\.[0-9]+)?$)");
      if (!std::regex_match(value, number)) {
        problems.push_back(
            {"", "pipeline variable '" + v.name + "' is a Number, but got '" + value + "'"});
        continue;
      }
    }
    out[v.name] = value;
  }
  if (!problems.empty()) throw ValidationError(std::move(problems));
  return out;
}

} // namespace capstan::model
