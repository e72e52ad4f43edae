// Path globs with '**' and '{a,b}'.
#include "capstan/apps/glob.h"

#include <string>
#include <vector>

namespace capstan::apps {

namespace {

// Expands the first top-level {a,b,...} group (recursively), so matching only handles the rest.
void expand_braces(const std::string& pattern, std::vector<std::string>& out, int depth = 0) {
  auto open = pattern.find('{');
  if (open == std::string::npos || depth > 16) {
    out.push_back(pattern);
    return;
  }
  int level = 0;
  std::size_t close = std::string::npos;
  std::vector<std::size_t> commas;
  for (std::size_t i = open; i < pattern.size(); ++i) {
    if (pattern[i] == '{')
      ++level;
    else if (pattern[i] == '}' && --level == 0) {
      close = i;
      break;
    } else if (pattern[i] == ',' && level == 1) {
      commas.push_back(i);
    }
  }
  if (close == std::string::npos) {
    out.push_back(pattern); // an unmatched '{' is a literal
    return;
  }
  std::string head = pattern.substr(0, open);
  std::string tail = pattern.substr(close + 1);
  std::size_t start = open + 1;
  commas.push_back(close);
  for (std::size_t comma : commas) {
    expand_braces(head + pattern.substr(start, comma - start) + tail, out, depth + 1);
    start = comma + 1;
  }
}

bool match_at(std::string_view pat, std::size_t pi, std::string_view s, std::size_t si) {
  while (pi < pat.size()) {
    char c = pat[pi];
    if (c == '*') {
      if (pi + 1 < pat.size() && pat[pi + 1] == '*') {
        std::size_t next = pi + 2;
        if (next < pat.size() && pat[next] == '/') {
          // "**/" stands for zero or more whole directories.
          if (match_at(pat, next + 1, s, si)) return true;
          for (std::size_t k = si; k < s.size(); ++k) {
            if (s[k] == '/' && match_at(pat, next + 1, s, k + 1)) return true;
          }
          return false;
        }
        for (std::size_t k = si; k <= s.size(); ++k) {
          if (match_at(pat, next, s, k)) return true;
        }
        return false;
      }
      for (std::size_t k = si; k <= s.size(); ++k) {
        if (match_at(pat, pi + 1, s, k)) return true;
        if (k < s.size() && s[k] == '/') break;
      }
      return false;
    }
    if (si >= s.size()) return false;
    if (c == '?') {
      if (s[si] == '/') return false;
    } else if (c == '[') {
      auto end = pat.find(']', pi + 2);
      if (end == std::string_view::npos) {
        if (s[si] != '[') return false;
      } else {
        std::string_view set = pat.substr(pi + 1, end - pi - 1);
        bool negate = !set.empty() && (set[0] == '!' || set[0] == '^');
        if (negate) set.remove_prefix(1);
        bool in = false;
        for (std::size_t k = 0; k < set.size(); ++k) {
          if (k + 2 < set.size() && set[k + 1] == '-') {
            in = in || (s[si] >= set[k] && s[si] <= set[k + 2]);
            k += 2;
          } else {
            in = in || s[si] == set[k];
          }
        }
        if (in == negate || s[si] == '/') return false;
        pi = end + 1;
        ++si;
        continue;
      }
    } else if (c == '\\' && pi + 1 < pat.size()) {
      ++pi;
      if (pat[pi] != s[si]) return false;
    } else if (c != s[si]) {
      return false;
    }
    ++pi;
    ++si;
  }
  return si == s.size();
}

} // namespace

bool glob_match(std::string_view pattern, std::string_view path) {
  std::vector<std::string> patterns;
  expand_braces(std::string(pattern), patterns);
  for (const auto& p : patterns) {
    if (match_at(p, 0, path, 0)) return true;
  }
  return false;
}

} // namespace capstan::apps
