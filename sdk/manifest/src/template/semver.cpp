// semverCompare: Masterminds/semver v1 constraints (=, !=, >, <, >=, <=, ~, ^, x-wildcards,
// "a - b" ranges, "," for and, "||" for or) as Sprig evaluates them.
#include <regex>
#include <string>
#include <vector>

#include "funcs.h"
#include "gostrings.h"

namespace capstan::manifest::tmpl {
namespace {

struct Version {
  long long major = 0, minor = 0, patch = 0;
  std::string pre;
  // Which parts were wildcards or absent in a constraint ("1.x", "1").
  bool minor_wild = false, patch_wild = false, major_wild = false;
};

bool is_wild(const std::string& s) {
  return s == "x" || s == "X" || s == "*";
}

std::optional<Version> parse_version(const std::string& text, bool allow_wild) {
  static const std::regex kVersion(
      R"(^v?([0-9]+|[xX*])(\.([0-9]+|[xX*]))?(\.([0-9]+|[xX*]))?(-([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*))?(\+([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*))?$)");
  std::smatch m;
  if (!std::regex_match(text, m, kVersion)) return std::nullopt;
  Version v;
  auto part = [&](int idx, long long& out, bool& wild, bool present) -> bool {
    if (!present) {
      wild = true;
      return true;
    }
    std::string s = m[idx].str();
    if (is_wild(s)) {
      if (!allow_wild) return false;
      wild = true;
      return true;
    }
    try {
      out = std::stoll(s);
    } catch (...) {
      return false;
    }
    return true;
  };
  if (!part(1, v.major, v.major_wild, true)) return std::nullopt;
  if (!part(3, v.minor, v.minor_wild, m[2].matched)) return std::nullopt;
  if (!part(5, v.patch, v.patch_wild, m[4].matched)) return std::nullopt;
  if (v.major_wild) v.minor_wild = v.patch_wild = true;
  if (v.minor_wild) v.patch_wild = true;
  v.pre = m[7].str();
  if (!allow_wild) v.major_wild = v.minor_wild = v.patch_wild = false;
  return v;
}

int compare_pre(const std::string& a, const std::string& b) {
  if (a == b) return 0;
  if (a.empty()) return 1; // a release sorts after its pre-releases
  if (b.empty()) return -1;
  auto pa = split_string(a, ".");
  auto pb = split_string(b, ".");
  for (std::size_t i = 0; i < std::min(pa.size(), pb.size()); ++i) {
    bool na = pa[i].find_first_not_of("0123456789") == std::string::npos;
    bool nb = pb[i].find_first_not_of("0123456789") == std::string::npos;
    if (na && nb) {
      if (pa[i].size() != pb[i].size()) return pa[i].size() < pb[i].size() ? -1 : 1;
      if (pa[i] != pb[i]) return pa[i] < pb[i] ? -1 : 1;
    } else if (na != nb) {
      return na ? -1 : 1;
    } else if (pa[i] != pb[i]) {
      return pa[i] < pb[i] ? -1 : 1;
    }
  }
  if (pa.size() == pb.size()) return 0;
  return pa.size() < pb.size() ? -1 : 1;
}

int compare(const Version& a, const Version& b) {
  if (a.major != b.major) return a.major < b.major ? -1 : 1;
  if (a.minor != b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch != b.patch) return a.patch < b.patch ? -1 : 1;
  return compare_pre(a.pre, b.pre);
}

struct Constraint {
  std::string op;
  Version con;
};

// The lowest version above every version the wildcard constraint covers ("1.x" → 2.0.0).
Version upper_of_wild(const Version& c) {
  Version u;
  if (c.major_wild) {
    u.major = 1LL << 62;
  } else if (c.minor_wild) {
    u.major = c.major + 1;
  } else {
    u.major = c.major;
    u.minor = c.minor + 1;
  }
  return u;
}

bool in_wild_range(const Version& v, const Version& c) {
  if (c.major_wild) return true;
  if (v.major != c.major) return false;
  if (c.minor_wild) return true;
  return v.minor == c.minor;
}

bool check(const Constraint& c, const Version& v) {
  const Version& k = c.con;
  bool wild = k.minor_wild || k.patch_wild || k.major_wild;
  // A pre-release only satisfies a constraint that names a pre-release.
  if (!v.pre.empty() && k.pre.empty() && c.op != "!=") return false;
  if (c.op.empty() || c.op == "=") {
    return wild ? in_wild_range(v, k) : compare(v, k) == 0;
  }
  if (c.op == "!=") return wild ? !in_wild_range(v, k) : compare(v, k) != 0;
  if (c.op == ">") return wild ? compare(v, upper_of_wild(k)) >= 0 : compare(v, k) > 0;
  if (c.op == "<") return compare(v, k) < 0;
  if (c.op == ">=" || c.op == "=>") return compare(v, k) >= 0;
  if (c.op == "<=" || c.op == "=<")
    return wild ? compare(v, upper_of_wild(k)) < 0 : compare(v, k) <= 0;
  if (c.op == "~" || c.op == "~>") {
    if (compare(v, k) < 0) return false;
    if (v.major != k.major) return false;
    // ~1 allows any minor; ~1.2 and ~1.2.3 keep the minor.
    return k.minor_wild || v.minor == k.minor;
  }
  if (c.op == "^") {
    if (compare(v, k) < 0) return false;
    return v.major == k.major;
  }
  return false;
}

std::vector<std::vector<Constraint>> parse_constraints(const std::string& text) {
  static const std::regex kOne(
      R"(^\s*(>=|=>|<=|=<|!=|~>|>|<|=|~|\^)?\s*(v?[0-9xX*]+(\.[0-9xX*]+)?(\.[0-9xX*]+)?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?)\s*,?)");
  static const std::regex kHyphen(
      R"(\s*(v?[0-9xX*]+(\.[0-9xX*]+)?(\.[0-9xX*]+)?(-[0-9A-Za-z.-]+)?)\s+-\s+(v?[0-9xX*]+(\.[0-9xX*]+)?(\.[0-9xX*]+)?(-[0-9A-Za-z.-]+)?)\s*)");
  std::vector<std::vector<Constraint>> groups;
  std::size_t start = 0;
  for (;;) {
    auto bar = text.find("||", start);
    std::string group =
        text.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    group = std::regex_replace(group, kHyphen, ">= $1, <= $5");
    std::vector<Constraint> cs;
    std::string rest = group;
    while (rest.find_first_not_of(" \t,") != std::string::npos) {
      std::smatch m;
      if (!std::regex_search(rest, m, kOne)) throw FuncError("improper constraint: " + text);
      auto v = parse_version(m[2].str(), true);
      if (!v) throw FuncError("improper constraint: " + text);
      cs.push_back({m[1].str(), *v});
      rest = m.suffix().str();
      auto skip = rest.find_first_not_of(" \t,");
      rest = skip == std::string::npos ? std::string() : rest.substr(skip);
    }
    if (cs.empty()) throw FuncError("improper constraint: " + text);
    groups.push_back(std::move(cs));
    if (bar == std::string::npos) break;
    start = bar + 2;
  }
  return groups;
}

} // namespace

bool semver_matches(const std::string& constraint, const std::string& version) {
  auto groups = parse_constraints(constraint);
  auto v = parse_version(version, false);
  if (!v) throw FuncError("Invalid Semantic Version");
  for (const auto& group : groups) {
    bool all = true;
    for (const auto& c : group) {
      if (!check(c, *v)) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

} // namespace capstan::manifest::tmpl
