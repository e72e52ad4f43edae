// Kubernetes label selectors: the checks of label keys and values, and a small lexer and
// recursive-descent parser of the string form that names the character at which a malformed
// selector goes wrong.
#include "capstan/labels/label_selector.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace capstan::labels {

using nlohmann::json;

namespace {

bool alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// Why `s` is not a label name part or label value (both: at most 63 characters, alphanumerics,
// '-', '_' and '.', starting and ending with an alphanumeric); "" when it is one.
std::string name_fault(std::string_view s) {
  if (s.size() > 63) return "must be no more than 63 characters";
  bool chars = std::all_of(s.begin(), s.end(),
                           [](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
  if (!chars || !alnum(s.front()) || !alnum(s.back())) {
    return "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
           "with an alphanumeric character";
  }
  return "";
}

enum class Tok { kEnd, kIdent, kNot, kEq, kDoubleEq, kNotEq, kOpen, kClose, kComma, kGt, kLt };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;
  std::size_t at = 0; // 0-based offset in the selector
};

bool special(char c) {
  return c == '!' || c == '=' || c == '(' || c == ')' || c == ',' || c == '<' || c == '>';
}

std::vector<Token> lex(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (true) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0) ++i;
    if (i >= s.size()) break;
    Token t;
    t.at = i;
    const char c = s[i];
    const char next = i + 1 < s.size() ? s[i + 1] : '\0';
    if (c == '!' && next == '=') {
      t = {Tok::kNotEq, "!=", i};
      i += 2;
    } else if (c == '=' && next == '=') {
      t = {Tok::kDoubleEq, "==", i};
      i += 2;
    } else if (special(c)) {
      t.kind = c == '!'   ? Tok::kNot
               : c == '=' ? Tok::kEq
               : c == '(' ? Tok::kOpen
               : c == ')' ? Tok::kClose
               : c == ',' ? Tok::kComma
               : c == '>' ? Tok::kGt
                          : Tok::kLt;
      t.text = std::string(1, c);
      ++i;
    } else {
      const std::size_t start = i;
      while (i < s.size() && !special(s[i]) && std::isspace(static_cast<unsigned char>(s[i])) == 0)
        ++i;
      t = {Tok::kIdent, std::string(s.substr(start, i - start)), start};
    }
    out.push_back(std::move(t));
  }
  out.push_back({Tok::kEnd, "", s.size()});
  return out;
}

class Parser {
public:
  explicit Parser(std::string_view text) : tokens_(lex(text)) {}

  bool requirements(std::vector<LabelRequirement>& out) {
    if (peek().kind == Tok::kEnd) return true; // the empty selector
    while (true) {
      LabelRequirement r;
      if (!requirement(r)) return false;
      out.push_back(std::move(r));
      const Token& t = take();
      if (t.kind == Tok::kEnd) return true;
      if (t.kind != Tok::kComma) {
        return fail(t, "expected ',' between requirements or the end of the selector");
      }
    }
  }

  std::string error;

private:
  const Token& peek() const { return tokens_[at_]; }
  const Token& take() { return tokens_[at_ + 1 < tokens_.size() ? at_++ : at_]; }

  bool fail(const Token& t, const std::string& why) {
    error = "at character " + std::to_string(t.at + 1) + ": " + why + ", found " +
            (t.kind == Tok::kEnd ? std::string("the end") : "'" + t.text + "'");
    return false;
  }
  bool fail_at(const Token& t, const std::string& why) {
    error = "at character " + std::to_string(t.at + 1) + ": " + why;
    return false;
  }

  bool key(LabelRequirement& r) {
    const Token& t = take();
    if (t.kind != Tok::kIdent) return fail(t, "expected a label key");
    if (auto why = label_key_problem(t.text); !why.empty()) return fail_at(t, why);
    r.key = t.text;
    return true;
  }

  // A value, or "" when the requirement ends here (`key=`).
  bool value(LabelRequirement& r, const std::string& after) {
    const Token& t = peek();
    if (t.kind == Tok::kComma || t.kind == Tok::kEnd || t.kind == Tok::kClose) {
      r.values.emplace_back();
      return true;
    }
    take();
    if (t.kind != Tok::kIdent) return fail(t, "expected a value after " + after);
    if (auto why = label_value_problem(t.text); !why.empty()) return fail_at(t, why);
    r.values.push_back(t.text);
    return true;
  }

  bool requirement(LabelRequirement& r) {
    if (peek().kind == Tok::kNot) {
      take();
      r.op = LabelRequirement::Op::kDoesNotExist;
      return key(r);
    }
    if (!key(r)) return false;
    const Token& op = peek();
    switch (op.kind) {
    case Tok::kEnd:
    case Tok::kComma:
      r.op = LabelRequirement::Op::kExists;
      return true;
    case Tok::kEq:
    case Tok::kDoubleEq:
      take();
      r.op = LabelRequirement::Op::kIn;
      return value(r, "'" + op.text + "'");
    case Tok::kNotEq:
      take();
      r.op = LabelRequirement::Op::kNotIn;
      return value(r, "'!='");
    case Tok::kGt:
    case Tok::kLt: {
      take();
      r.op = op.kind == Tok::kGt ? LabelRequirement::Op::kGreaterThan
                                 : LabelRequirement::Op::kLessThan;
      const Token& n = take();
      long long number = 0;
      const char* end = n.text.data() + n.text.size();
      if (n.kind != Tok::kIdent || std::from_chars(n.text.data(), end, number).ptr != end) {
        return fail(n, "expected an integer after '" + op.text + "'");
      }
      r.values.push_back(n.text);
      return true;
    }
    case Tok::kIdent:
      if (op.text == "in" || op.text == "notin") {
        take();
        r.op = op.text == "in" ? LabelRequirement::Op::kIn : LabelRequirement::Op::kNotIn;
        return set(r, op.text);
      }
      [[fallthrough]];
    default:
      return fail(op, "expected an operator after '" + r.key +
                          "' (=, ==, !=, in, notin, >, <), ',' or the end of the selector");
    }
  }

  // `(v1,v2)` after in / notin.
  bool set(LabelRequirement& r, const std::string& op) {
    const Token& open = take();
    if (open.kind != Tok::kOpen) return fail(open, "expected '(' after '" + op + "'");
    if (peek().kind == Tok::kClose) {
      return fail_at(peek(), "'" + op + "' needs at least one value between its parentheses");
    }
    while (true) {
      if (!value(r, "'(' or ','")) return false;
      const Token& t = take();
      if (t.kind == Tok::kClose) return true;
      if (t.kind != Tok::kComma) {
        return fail(t, "expected ',' or ')' in the values of '" + op + "'");
      }
    }
  }

  std::vector<Token> tokens_;
  std::size_t at_ = 0;
};

// Whether one requirement holds for a label's value (nullopt: the object has no such label).
bool holds(const LabelRequirement& r, const std::optional<std::string>& v) {
  using Op = LabelRequirement::Op;
  const bool listed = v && std::find(r.values.begin(), r.values.end(), *v) != r.values.end();
  switch (r.op) {
  case Op::kIn:
    return listed;
  case Op::kNotIn:
    return !listed; // a missing label is not in the set
  case Op::kExists:
    return v.has_value();
  case Op::kDoesNotExist:
    return !v;
  case Op::kGreaterThan:
  case Op::kLessThan: {
    long long have = 0, bound = 0;
    if (!v) return false;
    const char* end = v->data() + v->size();
    if (std::from_chars(v->data(), end, have).ptr != end) return false;
    const std::string& b = r.values.front();
    std::from_chars(b.data(), b.data() + b.size(), bound);
    return r.op == Op::kGreaterThan ? have > bound : have < bound;
  }
  }
  return false;
}

} // namespace

std::string label_key_problem(std::string_view key) {
  if (key.empty()) return "a label key must not be empty";
  const std::string k(key);
  std::string_view name = key;
  auto slash = key.find('/');
  if (slash != std::string_view::npos) {
    std::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    bool ok = !prefix.empty() && prefix.size() <= 253 && alnum(prefix.front()) &&
              alnum(prefix.back()) && std::all_of(prefix.begin(), prefix.end(), [](char c) {
                return (std::islower(static_cast<unsigned char>(c)) != 0) ||
                       std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.';
              });
    if (!ok) {
      return "label key '" + k +
             "': its prefix must be a lower-case DNS subdomain (such as example.com)";
    }
  }
  if (name.empty()) return "label key '" + k + "': the name part must not be empty";
  if (auto why = name_fault(name); !why.empty()) {
    return "label key '" + k + "': the name part " + why;
  }
  return "";
}

std::string label_value_problem(std::string_view value) {
  if (value.empty()) return "";
  if (auto why = name_fault(value); !why.empty()) {
    return "label value '" + std::string(value) + "' " + why;
  }
  return "";
}

std::optional<LabelSelector> LabelSelector::parse(std::string_view text, std::string& error) {
  Parser p(text);
  LabelSelector out;
  if (!p.requirements(out.requirements_)) {
    error = p.error;
    return std::nullopt;
  }
  return out;
}

bool LabelSelector::matches(const json& labels) const {
  return std::all_of(requirements_.begin(), requirements_.end(), [&](const LabelRequirement& r) {
    std::optional<std::string> v;
    if (labels.is_object()) {
      auto it = labels.find(r.key);
      if (it != labels.end() && !it->is_null()) {
        v = it->is_string() ? it->get<std::string>() : it->dump();
      }
    }
    return holds(r, v);
  });
}

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  return std::all_of(requirements_.begin(), requirements_.end(), [&](const LabelRequirement& r) {
    auto it = labels.find(r.key);
    return holds(r, it == labels.end() ? std::nullopt : std::optional<std::string>(it->second));
  });
}

} // namespace capstan::labels
