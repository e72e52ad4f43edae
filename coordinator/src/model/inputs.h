// Runtime inputs: where `<+input>` markers stand in a pipeline and in the services,
// environments and infrastructures its stages use, each named by its fully qualified name
// (Harness's FQN: `pipeline.stages.deploy.spec.service.serviceInputs.serviceDefinition.spec.
// artifacts.primary.sources.myapp.spec.tag`), and how the values of a run bind to them.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "capstan/expression/expression.h"
#include "capstan/yaml/yaml.h"
#include "model/problem.h"

namespace capstan::model {

struct InputSite {
  std::string fqn;
  std::string location; // "file:line:column"
  std::string marker;   // as written: <+input>.default(a).allowedValues(a,b)
  expression::RuntimeInput input;
  std::string pointer; // where it stands in its document (JSON pointer)
  std::string stage;   // the stage it belongs to ("" for the pipeline's own fields)
  std::string step;    // the step (path "group.step") whose start asks for it ("": the stage's)
};

// Every runtime input marker under `root` (the document's body, e.g. doc["pipeline"], at
// `pointer`), named from `fqn_prefix`. Throws nothing: a malformed marker is an apply-time
// problem, and is skipped here.
std::vector<InputSite> find_inputs(const nlohmann::json& root, const std::string& pointer,
                                   const std::string& fqn_prefix, const yaml::SourceMap& where);

// Literal scalars under `root` by FQN (markers and expressions skipped): the values an inputs
// file gives, or that a stage's serviceInputs fixes.
std::map<std::string, std::string> flatten_values(const nlohmann::json& root,
                                                  const std::string& fqn_prefix);

// An inputs file as Harness writes it (`pipeline: {...}` or `inputSet: {pipeline: {...}}`), by
// FQN. Throws ValidationError naming file:line:column when it is not that shape.
std::map<std::string, std::string> read_inputs_file(const std::string& text,
                                                    const std::string& file_name);

struct Bound {
  std::map<std::string, std::string> values; // FQN -> value
  std::vector<InputSite> pending;            // execution inputs, asked when their step starts
};

// Binds every site: a value given with --set (an FQN, or any unambiguous end of one such as
// `tag` or `sources.myapp.spec.tag`), from the inputs file (exact FQN), a fixed value from
// `fixed`, or the marker's default. Execution inputs without a value are pending. Records a
// problem for every value that is not allowed, every site left without a value, and every
// --set or file entry that names no input.
Bound bind_inputs(const std::vector<InputSite>& sites,
                  const std::map<std::string, std::string>& set,
                  const std::map<std::string, std::string>& file,
                  const std::map<std::string, std::string>& fixed, std::vector<Problem>& problems);

// Writes values into a document at their sites (sites without a value are left as they are).
void substitute(nlohmann::json& document, const std::vector<InputSite>& sites,
                const std::map<std::string, std::string>& values);

} // namespace capstan::model
