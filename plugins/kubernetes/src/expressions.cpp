// Plain <+...> references in fetched files.
#include "expressions.h"

#include <capstan/manifest/error.h>

#include <cctype>

namespace capstan::plugins::kubernetes {
namespace {

using nlohmann::json;

bool plain_reference(std::string_view e) {
  if (e.empty()) return false;
  for (char c : e) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) {
      return false;
    }
  }
  return e.front() != '.' && e.back() != '.';
}

const json* lookup(const json& scope, std::string_view path) {
  const json* cur = &scope;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto dot = path.find('.', start);
    std::string key(
        path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return cur;
}

} // namespace

std::string resolve_references(std::string_view text, const json& scope, const std::string& file) {
  if (text.find("<+") == std::string_view::npos) return std::string(text);
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto open = text.find("<+", pos);
    if (open == std::string_view::npos) {
      out.append(text.substr(pos));
      break;
    }
    out.append(text.substr(pos, open - pos));
    auto where = [&](std::size_t at) {
      int line = 1, col = 1;
      for (std::size_t i = 0; i < at; ++i) {
        if (text[i] == '\n') {
          ++line;
          col = 1;
        } else {
          ++col;
        }
      }
      return std::pair{line, col};
    };
    auto close = text.find('>', open + 2);
    if (close == std::string_view::npos) {
      auto [l, c] = where(open);
      throw manifest::ManifestError(file, l, c, "unclosed <+ expression");
    }
    std::string_view expr = text.substr(open + 2, close - open - 2);
    std::string_view trimmed = expr;
    while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
    while (!trimmed.empty() && trimmed.back() == ' ') trimmed.remove_suffix(1);
    auto [l, c] = where(open);
    if (!plain_reference(trimmed)) {
      throw manifest::ManifestError(
          file, l, c,
          "<+" + std::string(expr) +
              "> cannot be resolved here: files fetched by the delegate may only use plain "
              "references such as <+artifact.image> or <+serviceVariables.name>");
    }
    const json* v = lookup(scope, trimmed);
    if (v == nullptr || v->is_null() || v->is_object() || v->is_array()) {
      throw manifest::ManifestError(
          file, l, c, "<+" + std::string(trimmed) + "> does not resolve to a value in this stage");
    }
    out += v->is_string() ? v->get<std::string>() : v->dump();
    pos = close + 1;
  }
  return out;
}

} // namespace capstan::plugins::kubernetes
