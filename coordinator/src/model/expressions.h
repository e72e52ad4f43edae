// <+...> expressions: finding them in strings and replacing them with values.
//
// This is the reference form of the Harness expression language (dotted paths such as
// <+pipeline.variables.tag>); operators, functions and conditions build on the same scanner.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace capstan::model {

struct Reference {
  std::size_t begin = 0; // offset of "<+"
  std::size_t end = 0;   // offset just past ">"
  std::string path;      // the trimmed text between "<+" and ">"
};

// Every <+...> in text, in order; `error` is set (and scanning stops) on an unterminated one.
std::vector<Reference> scan_expressions(std::string_view text, std::string& error);
bool has_expressions(std::string_view text);

// What expressions resolve to, by path ("pipeline.variables.tag" -> "v2").
using Values = std::unordered_map<std::string, std::string>;

struct ResolveError {
  std::string pointer;    // where in the JSON value ("/spec/script")
  std::string expression; // "<+pipeline.variables.nope>"
  std::string message;
};

// Replaces every expression in text; nullopt with `error` set when one cannot be resolved.
std::optional<std::string> resolve_text(std::string_view text, const Values& values,
                                        ResolveError& error);
// Resolves every string inside a JSON value in place; returns the first failure.
std::optional<ResolveError> resolve_json(nlohmann::json& value, const Values& values,
                                         const std::string& pointer = "");

} // namespace capstan::model
