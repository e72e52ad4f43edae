// Apply-time expression checks.
#include "model/expression_check.h"

#include <cctype>
#include <functional>

#include "capstan/expression/expression.h"

namespace capstan::model {

using nlohmann::json;
using yaml::pointer_append;

const std::set<std::string>& expression_roots() {
  static const std::set<std::string> roots = {"pipeline",
                                              "stage",
                                              "step",
                                              "execution",
                                              "service",
                                              "serviceVariables",
                                              "env",
                                              "infra",
                                              "artifact",
                                              "artifacts",
                                              "secrets",
                                              "INFRA_KEY",
                                              "INFRA_KEY_SHORT_ID",
                                              "cluster",
                                              "envgroup",
                                              "manifest"};
  return roots;
}

const std::set<std::string>& deferred_roots() {
  static const std::set<std::string> roots = {"cluster", "envgroup"};
  return roots;
}

namespace {

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '.') {
      out.push_back(path.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

bool one_of(const std::string& s, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (s == n) return true;
  }
  return false;
}

// "steps.a.steps.b.output..." from index i: the step path "a.b" and where "output" is.
std::optional<std::string> step_path(const std::vector<std::string>& p, std::size_t& i) {
  std::string out;
  while (i + 1 < p.size() && p[i] == "steps") {
    out += (out.empty() ? "" : ".") + p[i + 1];
    i += 2;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::optional<std::string> check_step_ref(const std::vector<std::string>& p, std::size_t i,
                                          const std::string& stage, const ExpressionContext& c) {
  auto path = step_path(p, i);
  if (!path) return "expected steps.STEP after '" + stage + "'";
  if (i >= p.size() || !one_of(p[i], {"output", "status", "name", "identifier", "type"})) {
    return "expected .output (or .status, .name, .identifier) after the step '" + *path + "'";
  }
  if (p[i] == "output" && i + 1 >= p.size()) {
    return "expected a name after .output (e.g. output.outputVariables.NAME)";
  }
  auto it = c.earlier_steps.find(stage);
  if (it == c.earlier_steps.end()) return "stage '" + stage + "' runs after this point";
  if (!it->second.count(*path)) {
    return "no step '" + *path + "' runs before this one in stage '" + stage + "'";
  }
  return std::nullopt;
}

} // namespace

std::optional<std::string> check_path(const std::string& dotted, const ExpressionContext& c) {
  auto p = split(dotted);
  const std::string& root = p[0];
  auto leaf = [&](std::initializer_list<const char*> names) -> std::optional<std::string> {
    if (p.size() == 2 && one_of(p[1], names)) return std::nullopt;
    std::string list;
    for (const char* n : names) list += (list.empty() ? "" : ", ") + std::string(n);
    return "unknown field of " + root + " (known: " + list + ")";
  };
  if (root == "pipeline") {
    if (p.size() == 2 && one_of(p[1], {"name", "identifier", "executionId", "sequenceId", "startTs",
                                       "description"})) {
      return std::nullopt;
    }
    if (p.size() == 3 && p[1] == "triggeredBy" && one_of(p[2], {"name", "email"})) {
      return std::nullopt;
    }
    if (p.size() == 3 && p[1] == "variables") {
      if (c.pipeline_variables.count(p[2])) return std::nullopt;
      return "the pipeline declares no variable '" + p[2] + "'";
    }
    if (p.size() >= 3 && p[1] == "stages") {
      const std::string& stage = p[2];
      if (!c.all_stages.count(stage)) return "the pipeline has no stage '" + stage + "'";
      if (p.size() == 4 && one_of(p[3], {"name", "identifier", "type", "status"})) {
        return std::nullopt;
      }
      if (p.size() == 5 && p[3] == "variables") {
        auto it = c.stage_variables.find(stage);
        if (it != c.stage_variables.end() && it->second.count(p[4])) return std::nullopt;
        return "stage '" + stage + "' declares no variable '" + p[4] + "'";
      }
      if (p.size() >= 6 && p[3] == "spec" && p[4] == "execution") {
        return check_step_ref(p, 5, stage, c);
      }
      return "expected pipeline.stages." + stage +
             ".spec.execution.steps.STEP.output... or .variables.NAME";
    }
    return "unknown pipeline expression (known: pipeline.name, identifier, executionId, "
           "sequenceId, startTs, triggeredBy.name, variables.NAME, stages.STAGE...)";
  }
  if (root == "stage") {
    if (!c.in_stage) return "<+stage...> is only available inside a stage";
    if (p.size() == 3 && p[1] == "variables") {
      auto it = c.stage_variables.find(c.current_stage);
      if (it != c.stage_variables.end() && it->second.count(p[2])) return std::nullopt;
      return "stage '" + c.current_stage + "' declares no variable '" + p[2] + "'";
    }
    if (p.size() >= 4 && p[1] == "spec" && p[2] == "execution") {
      return check_step_ref(p, 3, c.current_stage, c);
    }
    return leaf({"name", "identifier", "type", "description"});
  }
  if (root == "step") {
    if (!c.in_step) return "<+step...> is only available inside a step";
    return leaf({"name", "identifier", "type", "timeout"});
  }
  if (root == "execution") {
    if (!c.in_stage) return "<+execution...> is only available inside a stage";
    return check_step_ref(p, 1, c.current_stage, c);
  }
  if (root == "secrets") return "use <+secrets.getValue(\"id\")>";
  if (c.per_cluster && root == "cluster") return leaf({"name", "identifier"});
  if (c.per_cluster && root == "envgroup") return leaf({"name", "identifier"});
  if (root == "cluster" || root == "envgroup") {
    return "<+" + root +
           "...> is resolved per GitOps cluster: it is only available in a GitOps service's "
           "release repo paths and in UpdateReleaseRepo variables";
  }
  if (root == "manifest") {
    return "<+" + root + "...> is only available in a GitOps service's release repo paths";
  }
  // What a Deployment stage resolves.
  if (!c.deployment) {
    return "<+" + root +
           "...> is only available in a Deployment stage (it comes from the "
           "stage's service, environment and infrastructure)";
  }
  if (root == "service") {
    return leaf({"name", "identifier", "description", "type", "gitOpsEnabled"});
  }
  if (root == "serviceVariables") {
    if (p.size() == 2) return std::nullopt;
    return "expected <+serviceVariables.NAME>";
  }
  if (root == "env") {
    if (p.size() == 3 && p[1] == "variables") return std::nullopt;
    return leaf({"name", "identifier", "type", "description"});
  }
  if (root == "infra") {
    return leaf({"name", "identifier", "namespace", "releaseName", "connectorRef",
                 "infraIdentifier", "infraName"});
  }
  if (root == "artifact" || (root == "artifacts" && p.size() >= 2 && p[1] == "primary")) {
    if (root == "artifacts") p.erase(p.begin() + 1);
    return leaf({"image", "tag", "imagePath", "identifier", "type", "connectorRef",
                 "registryHostname", "imagePullSecret"});
  }
  if (root == "INFRA_KEY" || root == "INFRA_KEY_SHORT_ID") {
    if (p.size() == 1) return std::nullopt;
    return "<+" + root + "> takes no field";
  }
  std::string roots;
  for (const auto& r : expression_roots()) roots += (roots.empty() ? "" : ", ") + r;
  return "unknown expression (expressions start with one of: " + roots + ")";
}

namespace {

// Answers lookups the way a run will, without values: known paths resolve (to ""), unknown
// ones do not, and the reason is kept for the message.
class CheckScope : public expression::Scope {
public:
  explicit CheckScope(const ExpressionContext& context) : context_(context) {}
  std::optional<expression::Value> lookup(const std::vector<std::string>& path) const override {
    std::string dotted;
    for (const auto& p : path) dotted += (dotted.empty() ? "" : ".") + p;
    if (auto why = check_path(dotted, context_)) {
      if (reason.empty()) reason = "<+" + dotted + ">: " + *why;
      return std::nullopt;
    }
    return expression::Value("");
  }
  std::optional<expression::Value> call(const std::vector<std::string>& target,
                                        const std::string& function,
                                        const std::vector<expression::Value>& args) const override {
    if (target == std::vector<std::string>{"secrets"} && function == "getValue") {
      if (args.size() != 1 || !args[0].is_string()) {
        if (reason.empty()) reason = "secrets.getValue() takes one secret identifier in quotes";
        return std::nullopt;
      }
      return expression::Value("");
    }
    return std::nullopt;
  }
  mutable std::string reason;

private:
  const ExpressionContext& context_;
};

class RootScope : public expression::Scope {
public:
  std::optional<expression::Value> lookup(const std::vector<std::string>& path) const override {
    if (expression_roots().count(path[0]) && path[0] != "secrets") {
      return expression::Value("");
    }
    if (reason.empty()) {
      std::string roots;
      for (const auto& r : expression_roots()) roots += (roots.empty() ? "" : ", ") + r;
      reason = "<+" + path[0] +
               "...>: unknown expression (expressions start with one of: " + roots + ")";
    }
    return std::nullopt;
  }
  std::optional<expression::Value> call(const std::vector<std::string>& target,
                                        const std::string& function,
                                        const std::vector<expression::Value>&) const override {
    if (target == std::vector<std::string>{"secrets"} && function == "getValue") {
      return expression::Value("");
    }
    return std::nullopt;
  }
  mutable std::string reason;
};

bool probe(const std::string& value, const std::string& pointer, const expression::Scope& scope,
           Checker& check, bool condition, const std::function<std::string()>& reason) {
  try {
    if (expression::parse_runtime_input(value)) return true;
    if (!condition && !expression::has_expression(value)) return true;
    auto e = condition ? expression::Expression::parse_condition(value)
                       : expression::Expression::parse_template(value);
    e.evaluate(scope);
    return true;
  } catch (const expression::Error& e) {
    auto r = reason();
    check.error(pointer, r.empty() ? e.what() : r);
    return false;
  }
}

} // namespace

namespace {

// Per cluster, the step resolves <+cluster.*> and <+envgroup.*> only as whole expressions: the
// first one of `value` used inside a larger expression (an operator, a method call), or "".
// Whether `root` begins a path somewhere in `inner`: at its start or after a character that
// cannot continue a name or a member access (so `mycluster.` and `stage.cluster.` do not count).
bool starts_path(const std::string& inner, const std::string& root) {
  for (auto at = inner.find(root); at != std::string::npos; at = inner.find(root, at + 1)) {
    if (at == 0) return true;
    const unsigned char before = static_cast<unsigned char>(inner[at - 1]);
    if (!std::isalnum(before) && before != '_' && before != '.' && before != '$') return true;
  }
  return false;
}

std::string per_cluster_misuse(const std::string& value) {
  for (std::size_t open = value.find("<+"); open != std::string::npos;
       open = value.find("<+", open + 2)) {
    const std::size_t close = value.find('>', open);
    if (close == std::string::npos) return "";
    std::string inner = value.substr(open + 2, close - open - 2);
    auto first = inner.find_first_not_of(' ');
    auto last = inner.find_last_not_of(' ');
    inner = first == std::string::npos ? "" : inner.substr(first, last - first + 1);
    for (const std::string root : {"cluster.", "envgroup."}) {
      if (!starts_path(inner, root)) continue;
      const bool plain = inner == root + "name" || inner == root + "identifier";
      if (!plain) return inner;
    }
  }
  return "";
}

} // namespace

bool check_field(const std::string& value, const std::string& pointer,
                 const ExpressionContext& context, Checker& check, bool condition) {
  if (context.per_cluster) {
    if (auto inner = per_cluster_misuse(value); !inner.empty()) {
      check.error(pointer, "<+" + inner +
                               ">: <+cluster.name>, <+cluster.identifier>, <+envgroup.name> and "
                               "<+envgroup.identifier> are resolved per GitOps cluster as whole "
                               "expressions, not inside another one");
      return false;
    }
  }
  CheckScope scope(context);
  return probe(value, pointer, scope, check, condition, [&] { return scope.reason; });
}

void check_tree(const json& value, const std::string& pointer, const std::string& rel,
                const ExpressionContext& context, Checker& check,
                std::map<std::string, std::string>& locations) {
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (!expression::has_expression(s)) return;
    locations[rel] = check.locate(pointer);
    check_field(s, pointer, context, check);
  } else if (value.is_object()) {
    for (const auto& [k, v] : value.items()) {
      check_tree(v, pointer_append(pointer, k), pointer_append(rel, k), context, check, locations);
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      check_tree(value[i], pointer_append(pointer, i), pointer_append(rel, i), context, check,
                 locations);
    }
  }
}

void check_object_tree(const json& value, const std::string& pointer, Checker& check,
                       std::map<std::string, std::string>& locations) {
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (!expression::has_expression(s)) return;
    locations[pointer] = check.locate(pointer);
    RootScope scope;
    probe(s, pointer, scope, check, false, [&] { return scope.reason; });
  } else if (value.is_object()) {
    for (const auto& [k, v] : value.items()) {
      check_object_tree(v, pointer_append(pointer, k), check, locations);
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      check_object_tree(value[i], pointer_append(pointer, i), check, locations);
    }
  }
}

} // namespace capstan::model
