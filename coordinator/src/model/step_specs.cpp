// Step specs against their step type's schema.
#include "model/step_specs.h"

#include <capstan/json_schema/schema.h>

#include <algorithm>
#include <optional>

namespace capstan::model {

using nlohmann::json;

bool holds_expression(const json& v) {
  if (v.is_string()) return v.get_ref<const std::string&>().find("<+") != std::string::npos;
  if (v.is_object() || v.is_array()) {
    for (const auto& c : v) {
      if (holds_expression(c)) return true;
    }
  }
  return false;
}

namespace {

// A violation an expression may cause: the node is an expression (its type, pattern, enum...
// are only known once resolved), or a combinator (anyOf, oneOf, not, if) over a subtree that
// holds one.
bool excused(const json& spec, const json_schema::Violation& v) {
  json::json_pointer p;
  try {
    p = json::json_pointer(v.pointer);
  } catch (const json::exception&) {
    return false;
  }
  // Where a value may not be at all, an expression is no better.
  if (v.rule == "additionalProperties" || v.rule == "false") return false;
  if (!spec.contains(p)) return false;
  const json& node = spec.at(p);
  if (node.is_string()) return holds_expression(node);
  static const std::vector<std::string> combinators = {"anyOf", "oneOf", "not",
                                                       "if",    "then",  "else"};
  return std::find(combinators.begin(), combinators.end(), v.rule) != combinators.end() &&
         holds_expression(node);
}

std::string locate(const StepTypeUse& use, const std::string& pointer) {
  // The node, else its nearest ancestor that was written (a missing property: its parent).
  std::string p = pointer;
  while (true) {
    auto it = use.spec_locations.find(p);
    if (it != use.spec_locations.end()) return it->second;
    if (p.empty()) return use.location;
    p = p.substr(0, p.rfind('/'));
  }
}

} // namespace

std::vector<Problem> check_step_specs(const std::vector<Object>& objects,
                                      const SpecSchemas& schemas) {
  std::vector<Problem> problems;
  std::map<std::string, std::optional<json_schema::Schema>> compiled;
  for (const auto& o : objects) {
    for (const auto& use : o.step_types) {
      auto found = schemas.find(use.type);
      if (found == schemas.end() || found->second.empty()) continue;
      auto [it, fresh] = compiled.try_emplace(use.type);
      if (fresh) {
        try {
          it->second = json_schema::Schema::compile(json::parse(found->second));
        } catch (const std::exception& e) {
          problems.push_back({use.location, "the spec schema that delegates announce for step "
                                            "type '" +
                                                use.type + "' is not usable (" + e.what() +
                                                "); fix or upgrade the plugin that provides it"});
        }
      }
      if (!it->second) continue;
      for (const auto& v : it->second->validate(use.spec, 50)) {
        if (excused(use.spec, v)) continue;
        problems.push_back({locate(use, v.pointer), "step '" + use.step + "' (" + use.type +
                                                        "): spec" + v.pointer + ": " + v.message +
                                                        " (" + v.rule + ")"});
      }
    }
  }
  return problems;
}

} // namespace capstan::model
