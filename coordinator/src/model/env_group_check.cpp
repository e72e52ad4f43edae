// Apply-time checks of <+env...> in stages over an environment group.
#include "model/env_group_check.h"

#include "capstan/expression/expression.h"

namespace capstan::model {

using nlohmann::json;
using yaml::pointer_append;

namespace {

const char* const kNoSingleEnvironment =
    "the stage deploys to an environment group and has no single environment: <+env...> is "
    "resolved per GitOps cluster, only in the service's release repo paths and in "
    "UpdateReleaseRepo variables";

// Keeps the first <+env...> path looked up (or called on), or the first pipeline variable of
// `through` read, answering every lookup with "".
class EnvRecorder : public expression::Scope {
public:
  explicit EnvRecorder(const EnvVariables& through) : through_(through) {}
  std::optional<expression::Value> lookup(const std::vector<std::string>& path) const override {
    note(path);
    return expression::Value("");
  }
  std::optional<expression::Value> call(const std::vector<std::string>& target, const std::string&,
                                        const std::vector<expression::Value>&) const override {
    note(target);
    return expression::Value("");
  }
  mutable std::string found;

private:
  void note(const std::vector<std::string>& path) const {
    if (!found.empty() || path.empty()) return;
    if (path.size() >= 3 && path[0] == "pipeline" && path[1] == "variables" &&
        through_.count(path[2])) {
      found = "pipeline.variables." + path[2];
      return;
    }
    if (path[0] != "env") return;
    for (const auto& p : path) found += (found.empty() ? "" : ".") + p;
  }
  const EnvVariables& through_;
};

// Calls `fn` with every string of `value` and its pointer.
template <typename Fn>
void each_string(const json& value, const std::string& pointer, const Fn& fn) {
  if (value.is_string()) {
    fn(value.get<std::string>(), pointer);
  } else if (value.is_object()) {
    for (const auto& [k, v] : value.items()) each_string(v, pointer_append(pointer, k), fn);
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      each_string(value[i], pointer_append(pointer, i), fn);
    }
  }
}

bool whole_env_expression(const std::string& inner) {
  const std::string vars = "env.variables.";
  return inner == "env.name" || inner == "env.identifier" || inner == "env.type" ||
         (inner.rfind(vars, 0) == 0 && inner.size() > vars.size() &&
          inner.find_first_of(" .()", vars.size()) == std::string::npos);
}

} // namespace

EnvVariables env_reading_variables(const std::vector<Variable>& pipeline_variables) {
  EnvVariables out;
  // Each pass adds the variables that read one found before: at most one pass per variable.
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& v : pipeline_variables) {
      if (v.runtime_input || out.count(v.name)) continue;
      auto ref = env_reference(v.value, false, out);
      if (ref.empty()) continue;
      const std::string prefix = "pipeline.variables.";
      out[v.name] = ref.rfind(prefix, 0) == 0 ? out.at(ref.substr(prefix.size())) : ref;
      grew = true;
    }
  }
  return out;
}

std::string env_reference(const std::string& text, bool condition, const EnvVariables& through) {
  if (!condition && !expression::has_expression(text)) return "";
  if (expression::parse_runtime_input(text)) return "";
  EnvRecorder scope(through);
  try {
    (condition ? expression::Expression::parse_condition(text)
               : expression::Expression::parse_template(text))
        .evaluate(scope);
  } catch (const expression::Error&) {
  }
  return scope.found;
}

void check_no_env(const json& value, const std::string& pointer, Checker& check, bool condition,
                  const EnvVariables& through) {
  each_string(value, pointer, [&](const std::string& text, const std::string& at) {
    auto ref = env_reference(text, condition, through);
    if (ref.empty()) return;
    const std::string prefix = "pipeline.variables.";
    if (ref.rfind(prefix, 0) == 0) {
      check.error(at, "<+" + ref + ">: the pipeline variable reads <+" +
                          through.at(ref.substr(prefix.size())) + ">, and " + kNoSingleEnvironment);
    } else {
      check.error(at, "<+" + ref + ">: " + kNoSingleEnvironment);
    }
  });
}

void check_env_per_cluster(const json& value, const std::string& pointer, Checker& check) {
  each_string(value, pointer, [&](const std::string& text, const std::string& at) {
    for (std::size_t open = text.find("<+"); open != std::string::npos;
         open = text.find("<+", open + 2)) {
      const std::size_t close = text.find('>', open);
      if (close == std::string::npos) return;
      std::string inner = text.substr(open + 2, close - open - 2);
      const auto first = inner.find_first_not_of(' ');
      const auto last = inner.find_last_not_of(' ');
      inner = first == std::string::npos ? "" : inner.substr(first, last - first + 1);
      if (env_reference("<+" + inner + ">").empty() || whole_env_expression(inner)) continue;
      check.error(at, "<+" + inner +
                          ">: over an environment group <+env.name>, <+env.identifier>, "
                          "<+env.type> and <+env.variables.NAME> are resolved per GitOps cluster "
                          "as whole expressions, not inside another one");
      return;
    }
  });
}

} // namespace capstan::model
