// Evaluation of parsed expressions: JEXL-style coercions, built-in methods, secret tracking.
#include <algorithm>
#include <cmath>
#include <regex>
#include <sstream>

#include "ast.h"

namespace capstan::expression {
namespace {

using Node = Expression::Node;

std::optional<double> as_number(const Value& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s.empty()) return std::nullopt;
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (end == s.c_str() + s.size() && !std::isspace(static_cast<unsigned char>(s[0]))) return d;
  }
  return std::nullopt;
}

std::optional<bool> as_bool(const Value& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "true") return true;
    if (s == "false") return false;
  }
  return std::nullopt;
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_null() || b.is_null()) return a.is_null() && b.is_null();
  if (a.is_boolean() || b.is_boolean()) {
    auto x = as_bool(a);
    auto y = as_bool(b);
    return x && y && *x == *y;
  }
  if (a.is_number() || b.is_number()) {
    auto x = as_number(a);
    auto y = as_number(b);
    if (x && y) return *x == *y;
    return to_text(a) == to_text(b);
  }
  if (a.is_string() && b.is_string()) return a == b;
  return a == b;
}

int compare(const Value& a, const Value& b, const std::string& source) {
  auto x = as_number(a);
  auto y = as_number(b);
  if (x && y) return *x < *y ? -1 : (*x > *y ? 1 : 0);
  if (a.is_string() && b.is_string()) {
    int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  throw Error(source, "cannot compare " + std::string(a.type_name()) + " with " +
                          std::string(b.type_name()));
}

Value arithmetic(const std::string& op, const Value& a, const Value& b, const std::string& src) {
  if (op == "+" && !(a.is_number() && b.is_number())) {
    // JEXL: + concatenates unless both sides are numbers.
    return to_text(a) + to_text(b);
  }
  auto x = as_number(a);
  auto y = as_number(b);
  if (!x || !y) throw Error(src, "'" + op + "' needs numbers");
  bool integral = a.is_number_integer() && b.is_number_integer();
  if (integral) {
    auto i = a.get<std::int64_t>();
    auto j = b.get<std::int64_t>();
    if (op == "+") return i + j;
    if (op == "-") return i - j;
    if (op == "*") return i * j;
    if (j == 0) throw Error(src, "division by zero");
    if (op == "/") return i / j;
    return i % j;
  }
  if (op == "+") return *x + *y;
  if (op == "-") return *x - *y;
  if (op == "*") return *x * *y;
  if (*y == 0) throw Error(src, "division by zero");
  if (op == "/") return *x / *y;
  return std::fmod(*x, *y);
}

std::string arg_text(const std::vector<Value>& args, std::size_t i, const std::string& src,
                     const std::string& method) {
  if (i >= args.size()) {
    throw Error(src, method + "() needs " + std::to_string(i + 1) + " argument(s)");
  }
  return to_text(args[i]);
}

std::int64_t arg_int(const std::vector<Value>& args, std::size_t i, const std::string& src,
                     const std::string& method) {
  if (i >= args.size()) {
    throw Error(src, method + "() needs " + std::to_string(i + 1) + " argument(s)");
  }
  auto n = as_number(args[i]);
  if (!n) throw Error(src, method + "() needs a number");
  return static_cast<std::int64_t>(*n);
}

// The methods users call on values, after Java's String/List/Map as exposed by JEXL.
Value call_method(const Value& self, const std::string& m, const std::vector<Value>& args,
                  const std::string& src) {
  if (self.is_array()) {
    if (m == "size" || m == "length") return static_cast<std::int64_t>(self.size());
    if (m == "isEmpty") return self.empty();
    if (m == "contains") {
      Value needle = args.empty() ? Value() : args[0];
      return std::any_of(self.begin(), self.end(),
                         [&](const Value& v) { return values_equal(v, needle); });
    }
    if (m == "get") {
      auto i = arg_int(args, 0, src, m);
      if (i < 0 || static_cast<std::size_t>(i) >= self.size()) {
        throw Error(src, "index " + std::to_string(i) + " is out of range");
      }
      return self[static_cast<std::size_t>(i)];
    }
    if (m == "join") {
      std::string sep = args.empty() ? "," : to_text(args[0]);
      std::string out;
      for (std::size_t i = 0; i < self.size(); ++i) out += (i ? sep : "") + to_text(self[i]);
      return out;
    }
  }
  if (self.is_object()) {
    if (m == "size") return static_cast<std::int64_t>(self.size());
    if (m == "isEmpty") return self.empty();
    if (m == "containsKey") return self.contains(arg_text(args, 0, src, m));
    if (m == "get") {
      auto key = arg_text(args, 0, src, m);
      return self.contains(key) ? self[key] : Value();
    }
    if (m == "keySet" || m == "keys") {
      Value keys = Value::array();
      for (const auto& [k, _] : self.items()) keys.push_back(k);
      return keys;
    }
  }
  std::string s = to_text(self);
  if (m == "length" || m == "size") return static_cast<std::int64_t>(s.size());
  if (m == "isEmpty") return s.empty();
  if (m == "toString") return s;
  if (m == "toLowerCase") {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  }
  if (m == "toUpperCase") {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
    return s;
  }
  if (m == "trim") {
    auto b = s.find_first_not_of(" \t\r\n");
    auto e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  }
  if (m == "contains") return s.find(arg_text(args, 0, src, m)) != std::string::npos;
  if (m == "startsWith") return s.rfind(arg_text(args, 0, src, m), 0) == 0;
  if (m == "endsWith") {
    auto t = arg_text(args, 0, src, m);
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
  }
  if (m == "equals") return s == arg_text(args, 0, src, m);
  if (m == "equalsIgnoreCase") {
    auto t = arg_text(args, 0, src, m);
    return s.size() == t.size() &&
           std::equal(s.begin(), s.end(), t.begin(), [](unsigned char a, unsigned char b) {
             return std::tolower(a) == std::tolower(b);
           });
  }
  if (m == "concat") return s + arg_text(args, 0, src, m);
  if (m == "indexOf") {
    auto p = s.find(arg_text(args, 0, src, m));
    return p == std::string::npos ? std::int64_t{-1} : static_cast<std::int64_t>(p);
  }
  if (m == "replace") {
    auto from = arg_text(args, 0, src, m);
    auto to = arg_text(args, 1, src, m);
    if (from.empty()) return s;
    std::string out;
    std::size_t pos = 0;
    for (std::size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
      out += s.substr(pos, hit - pos) + to;
    }
    return out + s.substr(pos);
  }
  if (m == "substring") {
    auto b = arg_int(args, 0, src, m);
    auto e = args.size() > 1 ? arg_int(args, 1, src, m) : static_cast<std::int64_t>(s.size());
    if (b < 0 || e > static_cast<std::int64_t>(s.size()) || b > e) {
      throw Error(src, "substring(" + std::to_string(b) + ", " + std::to_string(e) +
                           ") is out of range for a string of length " + std::to_string(s.size()));
    }
    return s.substr(static_cast<std::size_t>(b), static_cast<std::size_t>(e - b));
  }
  if (m == "split") {
    auto sep = arg_text(args, 0, src, m);
    Value out = Value::array();
    if (sep.empty()) {
      for (char c : s) out.push_back(std::string(1, c));
      return out;
    }
    std::size_t pos = 0;
    for (std::size_t hit; (hit = s.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) {
      out.push_back(s.substr(pos, hit - pos));
    }
    out.push_back(s.substr(pos));
    return out;
  }
  if (m == "matches") {
    try {
      return std::regex_match(s, std::regex(arg_text(args, 0, src, m)));
    } catch (const std::regex_error&) {
      throw Error(src, "invalid regular expression in matches()");
    }
  }
  if (m == "charAt") {
    auto i = arg_int(args, 0, src, m);
    if (i < 0 || static_cast<std::size_t>(i) >= s.size()) throw Error(src, "charAt out of range");
    return std::string(1, s[static_cast<std::size_t>(i)]);
  }
  throw Error(src, "unknown method " + m + "() on " + std::string(self.type_name()));
}

class Evaluator {
public:
  Evaluator(const Scope& scope, const EvalOptions& options, int depth)
      : scope_(scope), options_(options), depth_(depth) {}

  Value eval(const Node& n) {
    switch (n.kind) {
    case Node::Kind::kLiteral:
      return n.value;
    case Node::Kind::kChain:
      return chain(n);
    case Node::Kind::kUnary: {
      Value v = eval(*n.kids[0]);
      if (n.op == "!") return !truthy(v);
      auto x = as_number(v);
      if (!x) throw Error(n.source, "'-' needs a number");
      if (v.is_number_integer()) return -v.get<std::int64_t>();
      return -*x;
    }
    case Node::Kind::kBinary:
      return binary(n);
    case Node::Kind::kTernary:
      return truthy(eval(*n.kids[0])) ? eval(*n.kids[1]) : eval(*n.kids[2]);
    case Node::Kind::kElvis: {
      Value v = eval(*n.kids[0]);
      return truthy(v) ? v : eval(*n.kids[1]);
    }
    case Node::Kind::kList: {
      Value out = Value::array();
      for (const auto& k : n.kids) out.push_back(eval(*k));
      return out;
    }
    case Node::Kind::kTemplate: {
      auto deferred = [&](const Node& k) {
        return k.kind == Node::Kind::kChain && !k.name.empty() &&
               std::find(options_.deferred_roots.begin(), options_.deferred_roots.end(), k.name) !=
                   options_.deferred_roots.end();
      };
      if (n.kids.size() == 1 && n.kids[0]->kind != Node::Kind::kLiteral) {
        if (deferred(*n.kids[0])) return "<+" + n.kids[0]->source + ">";
        return eval(*n.kids[0]); // exactly one expression: keep its type
      }
      std::string out;
      for (const auto& k : n.kids) {
        out += deferred(*k) ? "<+" + k->source + ">" : to_text(eval(*k));
      }
      return out;
    }
    }
    return nullptr;
  }

private:
  Value binary(const Node& n) {
    const std::string& op = n.op;
    if (op == "&&") return truthy(eval(*n.kids[0])) && truthy(eval(*n.kids[1]));
    if (op == "||") return truthy(eval(*n.kids[0])) || truthy(eval(*n.kids[1]));
    Value a = eval(*n.kids[0]);
    Value b = eval(*n.kids[1]);
    if (op == "==") return values_equal(a, b);
    if (op == "!=") return !values_equal(a, b);
    if (op == "=~" || op == "!~") {
      bool hit = false;
      if (b.is_array()) {
        hit = std::any_of(b.begin(), b.end(), [&](const Value& v) { return values_equal(a, v); });
      } else {
        try {
          hit = std::regex_match(to_text(a), std::regex(to_text(b)));
        } catch (const std::regex_error&) {
          throw Error(n.source, "invalid regular expression '" + to_text(b) + "'");
        }
      }
      return op == "=~" ? hit : !hit;
    }
    if (op == "<") return compare(a, b, n.source) < 0;
    if (op == "<=") return compare(a, b, n.source) <= 0;
    if (op == ">") return compare(a, b, n.source) > 0;
    if (op == ">=") return compare(a, b, n.source) >= 0;
    return arithmetic(op, a, b, n.source);
  }

  Value chain(const Node& n) {
    // A run of names stays a path until something needs its value: a method call that the
    // scope does not answer, an index into a value, or the end of the chain.
    std::vector<std::string> path;
    std::optional<Value> current;
    if (!n.name.empty()) {
      path.push_back(n.name);
    } else {
      current = eval(*n.kids[0]);
    }
    auto materialise = [&]() -> Value& {
      if (!current) {
        current = lookup(path, n.source);
        path.clear();
      }
      return *current;
    };
    for (const auto& op : n.ops) {
      switch (op.kind) {
      case Node::Op::Kind::kField:
        if (current) {
          if (!current->is_object() || !current->contains(op.name)) {
            throw Error(n.source, "'" + op.name + "' does not exist");
          }
          current = (*current)[op.name];
        } else {
          path.push_back(op.name);
        }
        break;
      case Node::Op::Kind::kIndex: {
        Value key = eval(*op.args[0]);
        if (!current && key.is_string()) {
          path.push_back(key.get<std::string>());
          break;
        }
        Value& base = materialise();
        if (base.is_array() && as_number(key)) {
          auto i = static_cast<std::int64_t>(*as_number(key));
          if (i < 0 || static_cast<std::size_t>(i) >= base.size()) {
            throw Error(n.source, "index " + std::to_string(i) + " is out of range");
          }
          current = base[static_cast<std::size_t>(i)];
        } else if (base.is_object() && base.contains(to_text(key))) {
          current = base[to_text(key)];
        } else {
          throw Error(n.source, "'" + to_text(key) + "' does not exist");
        }
        break;
      }
      case Node::Op::Kind::kCall: {
        std::vector<Value> args;
        args.reserve(op.args.size());
        for (const auto& a : op.args) args.push_back(eval(*a));
        if (!current) {
          if (auto v = scope_.call(path, op.name, args)) {
            if (scope_.is_secret_call(path, op.name) && options_.secrets_used != nullptr &&
                v->is_string()) {
              options_.secrets_used->push_back(v->get<std::string>());
            }
            current = std::move(*v);
            path.clear();
            break;
          }
        }
        current = call_method(materialise(), op.name, args, n.source);
        break;
      }
      }
    }
    return materialise();
  }

  Value lookup(const std::vector<std::string>& path, const std::string& source) {
    auto v = scope_.lookup(path);
    if (!v) {
      std::string dotted;
      for (const auto& p : path) dotted += (dotted.empty() ? "" : ".") + p;
      throw Error(source, "unresolvable expression <+" + dotted + ">");
    }
    // Variables may themselves hold expressions ("<+env.name>-app").
    if (v->is_string() && has_expression(v->get_ref<const std::string&>())) {
      if (depth_ >= options_.max_nesting) {
        throw Error(source, "expressions nest more than " + std::to_string(options_.max_nesting) +
                                " levels deep (a variable refers to itself?)");
      }
      auto inner = parse_template_text(v->get_ref<const std::string&>());
      return Evaluator(scope_, options_, depth_ + 1).eval(*inner);
    }
    return *v;
  }

  const Scope& scope_;
  const EvalOptions& options_;
  int depth_;
};

} // namespace

Error::Error(std::string expression, std::string reason)
    : std::runtime_error("invalid expression '" + expression + "': " + reason),
      expression_(std::move(expression)), reason_(std::move(reason)) {}

std::optional<Value> Scope::call(const std::vector<std::string>&, const std::string&,
                                 const std::vector<Value>&) const {
  return std::nullopt;
}

bool Scope::is_secret_call(const std::vector<std::string>&, const std::string&) const {
  return false;
}

std::optional<Value> JsonScope::lookup(const std::vector<std::string>& path) const {
  const Value* node = &root_;
  for (const auto& key : path) {
    if (node->is_object()) {
      auto it = node->find(key);
      if (it == node->end()) return std::nullopt;
      node = &*it;
    } else if (node->is_array()) {
      char* end = nullptr;
      long i = std::strtol(key.c_str(), &end, 10);
      if (end != key.c_str() + key.size() || i < 0 || static_cast<std::size_t>(i) >= node->size()) {
        return std::nullopt;
      }
      node = &(*node)[static_cast<std::size_t>(i)];
    } else {
      return std::nullopt;
    }
  }
  return *node;
}

Expression Expression::parse_condition(std::string_view text) {
  Expression e;
  e.text_ = std::string(text);
  e.root_ = parse_condition_text(text);
  return e;
}

Expression Expression::parse_template(std::string_view text) {
  Expression e;
  e.text_ = std::string(text);
  e.root_ = parse_template_text(text);
  return e;
}

Value Expression::evaluate(const Scope& scope, const EvalOptions& options) const {
  try {
    return Evaluator(scope, options, 0).eval(*root_);
  } catch (const Error& e) {
    if (e.expression() == text_) throw;
    // Name the whole field as written, with the inner reason.
    throw Error(text_, e.reason());
  }
}

bool Expression::evaluate_bool(const Scope& scope, const EvalOptions& options) const {
  return truthy(evaluate(scope, options));
}

bool has_expression(std::string_view s) {
  return s.find("<+") != std::string_view::npos;
}

std::string render(std::string_view text, const Scope& scope, const EvalOptions& options) {
  if (!has_expression(text)) return std::string(text);
  return to_text(Expression::parse_template(text).evaluate(scope, options));
}

std::string to_text(const Value& v) {
  switch (v.type()) {
  case Value::value_t::string:
    return v.get<std::string>();
  case Value::value_t::null:
    return "null";
  case Value::value_t::boolean:
    return v.get<bool>() ? "true" : "false";
  case Value::value_t::number_float: {
    double d = v.get<double>();
    if (std::floor(d) == d && std::abs(d) < 1e15) {
      return std::to_string(static_cast<std::int64_t>(d));
    }
    std::ostringstream os;
    os.precision(15);
    os << d;
    return os.str();
  }
  default:
    return v.dump();
  }
}

bool truthy(const Value& v) {
  switch (v.type()) {
  case Value::value_t::null:
    return false;
  case Value::value_t::boolean:
    return v.get<bool>();
  case Value::value_t::string: {
    const auto& s = v.get_ref<const std::string&>();
    return !s.empty() && s != "false";
  }
  case Value::value_t::number_integer:
  case Value::value_t::number_unsigned:
  case Value::value_t::number_float:
    return v.get<double>() != 0;
  default:
    return !v.empty();
  }
}

} // namespace capstan::expression
