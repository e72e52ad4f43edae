// <+...> expressions: scanning and substitution.
#include "model/expressions.h"

#include "capstan/yaml/yaml.h"

namespace capstan::model {

namespace {
std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}
} // namespace

std::vector<Reference> scan_expressions(std::string_view text, std::string& error) {
  std::vector<Reference> out;
  std::size_t pos = 0;
  while ((pos = text.find("<+", pos)) != std::string_view::npos) {
    auto close = text.find('>', pos + 2);
    if (close == std::string_view::npos) {
      error = "unterminated expression starting at '" +
              std::string(text.substr(pos, std::min<std::size_t>(40, text.size() - pos))) + "'";
      return out;
    }
    // Functions with arguments such as .default(x) keep their parentheses together.
    auto open_paren = text.find('(', pos);
    if (open_paren != std::string_view::npos && open_paren < close) {
      auto close_paren = text.find(')', open_paren);
      if (close_paren != std::string_view::npos) {
        auto after = text.find('>', close_paren);
        if (after != std::string_view::npos) close = after;
      }
    }
    Reference ref;
    ref.begin = pos;
    ref.end = close + 1;
    ref.path = trim(text.substr(pos + 2, close - pos - 2));
    if (ref.path.empty()) {
      error = "empty expression '<+>'";
      return out;
    }
    out.push_back(std::move(ref));
    pos = close + 1;
  }
  return out;
}

bool has_expressions(std::string_view text) {
  return text.find("<+") != std::string_view::npos;
}

std::optional<std::string> resolve_text(std::string_view text, const Values& values,
                                        ResolveError& error) {
  std::string scan_error;
  auto refs = scan_expressions(text, scan_error);
  if (!scan_error.empty()) {
    error.expression = std::string(text);
    error.message = scan_error;
    return std::nullopt;
  }
  std::string out;
  std::size_t at = 0;
  for (const auto& ref : refs) {
    out.append(text.substr(at, ref.begin - at));
    auto it = values.find(ref.path);
    if (it == values.end()) {
      error.expression = "<+" + ref.path + ">";
      error.message = "expression " + error.expression + " has no value here";
      return std::nullopt;
    }
    out += it->second;
    at = ref.end;
  }
  out.append(text.substr(at));
  return out;
}

std::optional<ResolveError> resolve_json(nlohmann::json& value, const Values& values,
                                         const std::string& pointer) {
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (!has_expressions(s)) return std::nullopt;
    ResolveError error;
    auto resolved = resolve_text(s, values, error);
    if (!resolved) {
      error.pointer = pointer;
      return error;
    }
    value = std::move(*resolved);
  } else if (value.is_object()) {
    for (auto& [key, child] : value.items()) {
      if (auto e = resolve_json(child, values, yaml::pointer_append(pointer, key))) return e;
    }
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (auto e = resolve_json(value[i], values, yaml::pointer_append(pointer, i))) return e;
    }
  }
  return std::nullopt;
}

} // namespace capstan::model
