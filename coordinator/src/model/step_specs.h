// Step specs checked against the JSON Schema their step type's plugin declares, when a pipeline
// is applied.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/object.h"
#include "model/problem.h"

namespace capstan::model {

// The known step types' spec schemas, by type (JSON text as delegates announce them; an empty
// text means the type is known but its schema is not).
using SpecSchemas = std::map<std::string, std::string>;

// Every problem of the objects' step specs against their type's schema, with the
// file:line:column of the offending node. An expression (`<+...>`) is accepted wherever a value
// is: it is resolved when the step runs, and the plugin checks the result then. Types without a
// schema here are not checked. A schema that does not compile is reported once, at its first
// use, as a problem of the delegate's plugin rather than of the pipeline.
std::vector<Problem> check_step_specs(const std::vector<Object>& objects,
                                      const SpecSchemas& schemas);

// Whether any string in `value` (at any depth) holds an expression (`<+...>`).
bool holds_expression(const nlohmann::json& value);

} // namespace capstan::model
