// Applied objects: the documents of `capstan apply`, recognised by kind and validated.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "model/problem.h"

namespace capstan::model {

struct SourceFile {
  std::string name; // as the user named it, for messages
  std::string content;
};

// A step type used by an object, with where it is used, for checks against the step types
// that delegates provide.
struct StepTypeUse {
  std::string type;
  std::string location; // "file:line:column" of the step's `type`
};

struct Object {
  std::string kind; // "pipeline"
  std::string identifier;
  std::string name;
  std::string yaml;        // the document's text as applied
  nlohmann::json document; // the document as JSON
  nlohmann::json model;    // the validated model (for a pipeline: to_json(Pipeline))
  std::string source;      // "file:line" where the document starts
  std::vector<StepTypeUse> step_types;
};

// The kinds this coordinator understands, as their top-level YAML key.
const std::vector<std::string>& known_kinds();

// Parses and validates every document of every file. Empty documents are skipped. Throws
// ValidationError with every problem found (YAML syntax, structure, two documents for the same
// object); nothing is returned half-validated.
std::vector<Object> parse_objects(const std::vector<SourceFile>& files);

} // namespace capstan::model
