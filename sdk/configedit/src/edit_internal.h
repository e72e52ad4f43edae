// Private pieces shared by the JSON and YAML editors.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "capstan/configedit/configedit.h"

namespace capstan::configedit::detail {

// Where an edit lands, decided on the parsed value before any text changes.
struct Plan {
  std::vector<PathToken> path;
  std::size_t existing = 0; // how many leading tokens name existing nodes
  nlohmann::json value;     // typed value to write
  bool replace() const { return existing == path.size(); }
  // Pointer of the deepest existing node (the node replaced, or the parent receiving keys).
  std::string pointer() const;
};

std::string newline_of(std::string_view text);
// The smallest indentation step used by the text (2 when none is visible).
int indent_unit(std::string_view text);
std::size_t line_start(std::string_view text, std::size_t pos);
std::size_t line_end(std::string_view text, std::size_t pos); // before '\r'?'\n' or at end
int indent_of_line(std::string_view text, std::size_t pos);   // spaces at the line's start
std::string leading_whitespace(std::string_view text, std::size_t pos); // spaces and tabs
std::string indent_string(std::string_view text); // "\t" for tab-indented text, else spaces

// Text editors: return the new document text for the plan. `where` gives line:column for errors.
std::string edit_json(std::string_view text, const Plan& plan, const std::string& file);
std::string edit_yaml(std::string_view text, const Plan& plan, const std::string& file);

} // namespace capstan::configedit::detail
