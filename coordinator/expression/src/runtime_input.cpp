// Runtime input markers: <+input>.default(x).allowedValues(a,b).regex(r).executionInput()
#include <algorithm>
#include <regex>

#include "capstan/expression/expression.h"

namespace capstan::expression {
namespace {

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

std::string unquote(const std::string& s) {
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) {
    return s.substr(1, s.size() - 2);
  }
  return s;
}

// Splits "a, 'b,c', d" at top-level commas.
std::vector<std::string> split_args(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  for (char c : s) {
    if (quote != 0) {
      cur += c;
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
      cur += c;
    } else if (c == ',') {
      out.push_back(unquote(trim(cur)));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!trim(cur).empty() || !out.empty()) out.push_back(unquote(trim(cur)));
  return out;
}

} // namespace

std::optional<RuntimeInput> parse_runtime_input(std::string_view text) {
  std::string t = trim(text);
  static constexpr std::string_view kMarker = "<+input>";
  if (t.rfind(kMarker, 0) != 0) return std::nullopt;
  RuntimeInput input;
  std::size_t pos = kMarker.size();
  auto fail = [&](const std::string& why) { throw Error(t, why); };
  while (pos < t.size()) {
    if (t[pos] != '.') fail("expected '.' after " + t.substr(0, pos));
    auto open = t.find('(', pos);
    if (open == std::string::npos) fail("expected '(' after '" + t.substr(pos + 1) + "'");
    std::string method = t.substr(pos + 1, open - pos - 1);
    // The argument runs to the matching ')', skipping parentheses inside quotes.
    int depth = 0;
    char quote = 0;
    std::size_t close = std::string::npos;
    for (std::size_t i = open; i < t.size(); ++i) {
      char c = t[i];
      if (quote != 0) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '(') {
        ++depth;
      } else if (c == ')' && --depth == 0) {
        close = i;
        break;
      }
    }
    if (close == std::string::npos) fail("'" + method + "(' is never closed");
    std::string arg = t.substr(open + 1, close - open - 1);
    if (method == "default") {
      input.default_value = unquote(trim(arg));
    } else if (method == "allowedValues") {
      input.allowed_values = split_args(arg);
      if (input.allowed_values.empty()) fail("allowedValues() needs at least one value");
    } else if (method == "regex") {
      input.regex = unquote(trim(arg));
      try {
        std::regex check(*input.regex);
      } catch (const std::regex_error&) {
        fail("regex(" + *input.regex + ") is not a valid regular expression");
      }
    } else if (method == "executionInput") {
      if (!trim(arg).empty()) fail("executionInput() takes no argument");
      input.execution_input = true;
    } else {
      fail("unknown runtime input option ." + method +
           "() (known: default, allowedValues, regex, executionInput)");
    }
    pos = close + 1;
  }
  if (input.default_value && input.reject(*input.default_value)) {
    fail("the default '" + *input.default_value +
         "' is not allowed: " + *input.reject(*input.default_value));
  }
  return input;
}

std::optional<std::string> RuntimeInput::reject(const std::string& value) const {
  if (!allowed_values.empty() &&
      std::find(allowed_values.begin(), allowed_values.end(), value) == allowed_values.end()) {
    std::string list;
    for (const auto& a : allowed_values) list += (list.empty() ? "" : ", ") + a;
    return "'" + value + "' is not one of the allowed values (" + list + ")";
  }
  if (regex && !std::regex_match(value, std::regex(*regex))) {
    return "'" + value + "' does not match " + *regex;
  }
  return std::nullopt;
}

} // namespace capstan::expression
