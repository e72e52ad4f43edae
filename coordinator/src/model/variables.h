// Variables as Harness declares them on pipelines, stages, services and environments:
// `variables: [{name, type: String|Number|Secret, value, description, required}]`.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "model/problem.h"

namespace capstan::model {

struct Variable {
  std::string name;
  std::string type = "String"; // String | Number | Secret (value: a secret's identifier)
  std::string value;           // a literal, an expression, or the runtime input marker
  bool runtime_input = false;  // `<+input>...`: given at run time
  bool required = false;
  std::string description;
  std::string location; // "file:line:column" of the value (or the variable)
};

// Reads `variables` of the mapping at `pointer` (absent: empty). Values may hold expressions
// (checked for syntax) or a runtime input marker.
std::vector<Variable> parse_variables(const nlohmann::json& owner, const std::string& pointer,
                                      Checker& check);

void to_json(nlohmann::json& j, const Variable& v);
void from_json(const nlohmann::json& j, Variable& v);

// Secret identifiers that Secret-typed variables refer to (for reference checks).
std::vector<std::pair<std::string, std::string>> secret_refs(const std::vector<Variable>& vars);

} // namespace capstan::model
