// JSON Schema (a 2020-12 subset) compiled once, then used to validate many documents.
//
// Supported keywords: type, enum, const, properties, required, additionalProperties,
// patternProperties, minProperties, maxProperties, items, prefixItems, minItems, maxItems,
// uniqueItems, minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, minLength,
// maxLength, pattern, allOf, anyOf, oneOf, not, if/then/else, $ref to "#", "#/$defs/..." and
// "#/definitions/...", and the boolean schemas true/false. Annotations (title, description,
// default, examples, $schema, $id, $comment, ...) and unknown keywords are ignored, as the
// specification asks.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace capstan::json_schema {

// The schema itself is wrong: `where` is the JSON pointer of the offending keyword inside it.
class SchemaError : public std::runtime_error {
public:
  SchemaError(std::string where, const std::string& what);
  const std::string& where() const { return where_; }

private:
  std::string where_;
};

// One way a document breaks the schema.
struct Violation {
  std::string pointer; // JSON pointer into the document ("" is the document itself)
  std::string rule;    // the keyword that failed, e.g. "required", "enum", "pattern"
  std::string message; // what is wrong, e.g. `required property "script" is missing`
  // "/source/type: must be one of "Inline", got "File" (enum)"; the root prints as "/".
  std::string to_string() const;
};

struct Node;

class Schema {
public:
  // Throws SchemaError when the schema is not a valid schema of the supported subset (a bad
  // type name, a regex that does not compile, a $ref that points nowhere, ...).
  static Schema compile(const nlohmann::json& schema);

  // Every violation found, up to max_violations (the walk stops there). Empty means valid.
  std::vector<Violation> validate(const nlohmann::json& document,
                                  std::size_t max_violations = 20) const;
  bool accepts(const nlohmann::json& document) const { return validate(document, 1).empty(); }

private:
  struct Compiled;
  std::shared_ptr<const Compiled> compiled_;
};

// "a; b; c (and 4 more)" — the violations on one line, for a step's failure message.
std::string summarize(const std::vector<Violation>& violations, std::size_t max_shown = 5);

} // namespace capstan::json_schema
