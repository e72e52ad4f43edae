// Parses a template text into trees: the text itself plus each {{define}} and {{block}} in it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "ast.h"

namespace capstan::manifest::tmpl {

using TreeMap = std::map<std::string, std::shared_ptr<Tree>>;

// Throws TemplateError ("file:line:col: message") on a syntax error. `is_function` says which
// identifiers name functions, as Go's parser checks them against the FuncMap.
TreeMap parse(const std::string& name, std::string_view text,
              const std::function<bool(std::string_view)>& is_function);

// True when a tree holds nothing but whitespace text (Go's parse.IsEmptyTree).
bool is_empty_tree(const Tree& tree);

} // namespace capstan::manifest::tmpl
