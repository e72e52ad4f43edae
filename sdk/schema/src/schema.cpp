// Compiles a JSON Schema into a tree of nodes once, then walks documents against it.
#include "capstan/json_schema/schema.h"

#include <array>
#include <cmath>
#include <deque>
#include <map>
#include <optional>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace capstan::json_schema {

using nlohmann::json;

namespace {

enum TypeBit : unsigned {
  kNull = 1u << 0,
  kBoolean = 1u << 1,
  kObject = 1u << 2,
  kArray = 1u << 3,
  kNumber = 1u << 4,
  kString = 1u << 5,
  kInteger = 1u << 6,
};

const std::vector<std::pair<std::string, unsigned>>& type_names() {
  static const std::vector<std::pair<std::string, unsigned>> names = {
      {"null", kNull},     {"boolean", kBoolean}, {"object", kObject},  {"array", kArray},
      {"number", kNumber}, {"string", kString},   {"integer", kInteger}};
  return names;
}

// where + "/" + token as a JSON pointer, the token escaped (RFC 6901).
std::string child(const std::string& where, const std::string& token) {
  return (json::json_pointer(where) / token).to_string();
}

std::string quoted(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

// A value as it appears in a message, cut short so a large document cannot flood a log line.
std::string shown(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

std::string kind_of(const json& value) {
  switch (value.type()) {
  case json::value_t::null:
    return "null";
  case json::value_t::boolean:
    return "a boolean";
  case json::value_t::object:
    return "an object";
  case json::value_t::array:
    return "an array";
  case json::value_t::string:
    return "a string";
  case json::value_t::number_integer:
  case json::value_t::number_unsigned:
    return "an integer";
  case json::value_t::number_float:
    return "a number";
  default:
    return "an unsupported value";
  }
}

bool is_integral(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  double d = v.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

bool has_type(unsigned types, const json& v) {
  switch (v.type()) {
  case json::value_t::null:
    return (types & kNull) != 0;
  case json::value_t::boolean:
    return (types & kBoolean) != 0;
  case json::value_t::object:
    return (types & kObject) != 0;
  case json::value_t::array:
    return (types & kArray) != 0;
  case json::value_t::string:
    return (types & kString) != 0;
  case json::value_t::number_integer:
  case json::value_t::number_unsigned:
  case json::value_t::number_float:
    return (types & kNumber) != 0 || ((types & kInteger) != 0 && is_integral(v));
  default:
    return false;
  }
}

std::string describe_types(unsigned types) {
  std::string out;
  for (const auto& [name, bit] : type_names()) {
    if ((types & bit) == 0) continue;
    if (!out.empty()) out += " or ";
    out += name;
  }
  return out;
}

// Number of Unicode code points in UTF-8 text (what minLength/maxLength count).
std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

// JSON equality as the specification defines it: 1 and 1.0 are equal.
bool json_equal(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!json_equal(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !json_equal(it.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

// An ECMA-262-like regular expression through PCRE2, whose matcher keeps its backtracking
// state on the heap under a match limit: a long value cannot overflow the stack (std::regex
// recurses per character) and a pathological pattern ends with an error instead of hanging.
class Regex {
public:
  explicit Regex(const std::string& text) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                          PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &err, &offset,
                          nullptr);
    if (code_ == nullptr) {
      std::array<PCRE2_UCHAR, 256> buf{};
      pcre2_get_error_message(err, buf.data(), buf.size());
      throw std::invalid_argument(reinterpret_cast<const char*>(buf.data()) +
                                  std::string(" at offset ") + std::to_string(offset));
    }
    context_ = pcre2_match_context_create(nullptr);
    pcre2_set_match_limit(context_, 1'000'000);
    pcre2_set_heap_limit(context_, 64 * 1024); // KiB
  }
  ~Regex() {
    pcre2_match_context_free(context_);
    pcre2_code_free(code_);
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // True on a match anywhere in s (JSON Schema patterns are not anchored); throws
  // std::runtime_error when the match limit is hit.
  bool search(const std::string& s) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    int rc =
        pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, md, context_);
    pcre2_match_data_free(md);
    if (rc >= 0) return true;
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    std::array<PCRE2_UCHAR, 256> buf{};
    pcre2_get_error_message(rc, buf.data(), buf.size());
    throw std::runtime_error(reinterpret_cast<const char*>(buf.data()));
  }

private:
  pcre2_code* code_ = nullptr;
  pcre2_match_context* context_ = nullptr;
};

} // namespace

struct Node {
  enum class Kind { kTrue, kFalse, kSchema };
  Kind kind = Kind::kSchema;
  std::string where; // the node's JSON pointer inside the schema

  unsigned types = 0; // 0: any type
  std::optional<std::vector<json>> enum_values;
  std::optional<json> const_value;

  std::map<std::string, const Node*> properties;
  std::vector<std::string> required;
  std::vector<std::pair<std::shared_ptr<const Regex>, const Node*>> pattern_properties;
  const Node* additional = nullptr; // additionalProperties as a schema (false is a kFalse node)
  std::optional<std::size_t> min_properties, max_properties;

  std::vector<const Node*> prefix_items;
  const Node* items = nullptr;
  std::optional<std::size_t> min_items, max_items;
  bool unique_items = false;

  // Limits keep their schema text so messages repeat them as written ("1", not "1.0").
  struct Limit {
    double value;
    std::string text;
  };
  std::optional<Limit> minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;
  std::optional<std::size_t> min_length, max_length;
  std::shared_ptr<const Regex> pattern;
  std::string pattern_text;

  std::vector<const Node*> all_of, any_of, one_of;
  const Node* not_schema = nullptr;
  const Node* if_schema = nullptr;
  const Node* then_schema = nullptr;
  const Node* else_schema = nullptr;

  std::string ref;
  const Node* ref_target = nullptr;
};

struct Schema::Compiled {
  std::deque<Node> nodes;
  const Node* root = nullptr;
};

SchemaError::SchemaError(std::string where, const std::string& what)
    : std::runtime_error((where.empty() ? std::string("schema") : "schema at " + where) + ": " +
                         what),
      where_(std::move(where)) {}

std::string Violation::to_string() const {
  return (pointer.empty() ? "/" : pointer) + ": " + message + " (" + rule + ")";
}

namespace {

class Compiler {
public:
  Compiler(const json& root, std::deque<Node>& nodes) : root_(root), nodes_(nodes) {}

  const Node* compile_root() {
    const Node* root = compile(root_, "");
    // $refs are resolved after the walk so a definition may refer to itself or to a later one.
    for (std::size_t i = 0; i < pending_refs_.size(); ++i) {
      Node* node = pending_refs_[i];
      node->ref_target = resolve(node->ref, node->where + "/$ref");
    }
    return root;
  }

private:
  const Node* compile(const json& s, const std::string& where) {
    if (auto it = by_pointer_.find(where); it != by_pointer_.end()) return it->second;
    Node& node = nodes_.emplace_back();
    node.where = where;
    by_pointer_[where] = &node;
    if (s.is_boolean()) {
      node.kind = s.get<bool>() ? Node::Kind::kTrue : Node::Kind::kFalse;
      return &node;
    }
    if (!s.is_object()) {
      throw SchemaError(where, "a schema must be an object or a boolean, got " + kind_of(s));
    }
    for (auto it = s.begin(); it != s.end(); ++it) keyword(node, it.key(), it.value(), where);
    return &node;
  }

  void keyword(Node& n, const std::string& key, const json& v, const std::string& where) {
    const std::string at = child(where, key);
    if (key == "type") {
      n.types = parse_types(v, at);
    } else if (key == "enum") {
      if (!v.is_array() || v.empty()) throw SchemaError(at, "enum must be a non-empty array");
      n.enum_values = std::vector<json>(v.begin(), v.end());
    } else if (key == "const") {
      n.const_value = v;
    } else if (key == "properties") {
      for (auto it = object_at(v, at).begin(); it != v.end(); ++it) {
        n.properties[it.key()] = compile(it.value(), child(at, it.key()));
      }
    } else if (key == "patternProperties") {
      for (auto it = object_at(v, at).begin(); it != v.end(); ++it) {
        const std::string p = child(at, it.key());
        n.pattern_properties.emplace_back(regex(it.key(), p), compile(it.value(), p));
      }
    } else if (key == "required") {
      if (!v.is_array()) throw SchemaError(at, "required must be an array of strings");
      for (const auto& name : v) {
        if (!name.is_string()) throw SchemaError(at, "required must be an array of strings");
        n.required.push_back(name.get<std::string>());
      }
    } else if (key == "additionalProperties") {
      n.additional = compile(v, at);
    } else if (key == "minProperties") {
      n.min_properties = count(v, at);
    } else if (key == "maxProperties") {
      n.max_properties = count(v, at);
    } else if (key == "items") {
      if (v.is_array()) {
        throw SchemaError(at, "items must be a schema; use prefixItems for tuples (2020-12)");
      }
      n.items = compile(v, at);
    } else if (key == "prefixItems") {
      if (!v.is_array()) throw SchemaError(at, "prefixItems must be an array of schemas");
      for (std::size_t i = 0; i < v.size(); ++i) {
        n.prefix_items.push_back(compile(v[i], at + "/" + std::to_string(i)));
      }
    } else if (key == "minItems") {
      n.min_items = count(v, at);
    } else if (key == "maxItems") {
      n.max_items = count(v, at);
    } else if (key == "uniqueItems") {
      if (!v.is_boolean()) throw SchemaError(at, "uniqueItems must be a boolean");
      n.unique_items = v.get<bool>();
    } else if (key == "minimum") {
      n.minimum = number(v, at);
    } else if (key == "maximum") {
      n.maximum = number(v, at);
    } else if (key == "exclusiveMinimum") {
      n.exclusive_minimum = number(v, at);
    } else if (key == "exclusiveMaximum") {
      n.exclusive_maximum = number(v, at);
    } else if (key == "multipleOf") {
      n.multiple_of = number(v, at);
      if (n.multiple_of->value <= 0) throw SchemaError(at, "multipleOf must be greater than 0");
    } else if (key == "minLength") {
      n.min_length = count(v, at);
    } else if (key == "maxLength") {
      n.max_length = count(v, at);
    } else if (key == "pattern") {
      if (!v.is_string()) throw SchemaError(at, "pattern must be a string");
      n.pattern_text = v.get<std::string>();
      n.pattern = regex(n.pattern_text, at);
    } else if (key == "allOf" || key == "anyOf" || key == "oneOf") {
      if (!v.is_array() || v.empty()) {
        throw SchemaError(at, key + " must be a non-empty array of schemas");
      }
      auto& list = key == "allOf" ? n.all_of : key == "anyOf" ? n.any_of : n.one_of;
      for (std::size_t i = 0; i < v.size(); ++i) {
        list.push_back(compile(v[i], at + "/" + std::to_string(i)));
      }
    } else if (key == "not") {
      n.not_schema = compile(v, at);
    } else if (key == "if") {
      n.if_schema = compile(v, at);
    } else if (key == "then") {
      n.then_schema = compile(v, at);
    } else if (key == "else") {
      n.else_schema = compile(v, at);
    } else if (key == "$ref") {
      if (!v.is_string()) throw SchemaError(at, "$ref must be a string");
      n.ref = v.get<std::string>();
      pending_refs_.push_back(&n);
    } else if (key == "$defs" || key == "definitions") {
      for (auto it = object_at(v, at).begin(); it != v.end(); ++it) {
        compile(it.value(), child(at, it.key()));
      }
    }
    // Anything else is an annotation or a keyword outside the subset: ignored, as the
    // specification asks of unknown keywords.
  }

  const Node* resolve(const std::string& ref, const std::string& at) {
    if (ref.empty() || ref[0] != '#') {
      throw SchemaError(at, "only local references (\"#\", \"#/$defs/...\") are supported, got " +
                                quoted(ref));
    }
    std::string pointer = ref.substr(1);
    if (auto it = by_pointer_.find(pointer); it != by_pointer_.end()) return it->second;
    try {
      const json& target = root_.at(json::json_pointer(pointer));
      return compile(target, pointer);
    } catch (const json::exception&) {
      throw SchemaError(at, "$ref " + quoted(ref) + " points to nothing in this schema");
    }
  }

  static const json& object_at(const json& v, const std::string& at) {
    if (!v.is_object()) throw SchemaError(at, "must be an object, got " + kind_of(v));
    return v;
  }

  static unsigned parse_types(const json& v, const std::string& at) {
    auto one = [&](const json& name) -> unsigned {
      if (name.is_string()) {
        for (const auto& [text, bit] : type_names()) {
          if (text == name.get<std::string>()) return bit;
        }
      }
      throw SchemaError(at, "unknown type " + shown(name) +
                                " (use null, boolean, object, array, number, string, integer)");
    };
    if (v.is_string()) return one(v);
    if (!v.is_array() || v.empty()) {
      throw SchemaError(at, "type must be a type name or a non-empty array of them");
    }
    unsigned bits = 0;
    for (const auto& name : v) bits |= one(name);
    return bits;
  }

  static std::size_t count(const json& v, const std::string& at) {
    if (!is_integral(v) || v.get<double>() < 0) {
      throw SchemaError(at, "must be a non-negative integer, got " + shown(v));
    }
    return static_cast<std::size_t>(v.get<double>());
  }

  static Node::Limit number(const json& v, const std::string& at) {
    if (!v.is_number()) throw SchemaError(at, "must be a number, got " + kind_of(v));
    return Node::Limit{v.get<double>(), v.dump()};
  }

  static std::shared_ptr<const Regex> regex(const std::string& text, const std::string& at) {
    try {
      return std::make_shared<const Regex>(text);
    } catch (const std::invalid_argument& e) {
      throw SchemaError(at, "pattern " + quoted(text) +
                                " is not a valid regular expression: " + e.what());
    }
  }

  const json& root_;
  std::deque<Node>& nodes_;
  std::map<std::string, const Node*> by_pointer_;
  std::vector<Node*> pending_refs_;
};

// Deep enough for any real spec; a $ref loop that consumes no input ends here, not in a stack
// overflow.
constexpr int kMaxDepth = 200;

class Walker {
public:
  Walker(std::vector<Violation>& out, std::size_t max) : out_(out), max_(max) {}

  bool full() const { return out_.size() >= max_; }

  void check(const Node& n, const json& doc, const std::string& ptr, int depth) {
    if (full()) return;
    if (depth > kMaxDepth) {
      add(ptr, "$ref",
          "the schema nests deeper than " + std::to_string(kMaxDepth) +
              " levels here (a $ref loop?)");
      return;
    }
    if (n.kind == Node::Kind::kTrue) return;
    if (n.kind == Node::Kind::kFalse) {
      add(ptr, "false", "no value is allowed here");
      return;
    }
    if (n.ref_target != nullptr) check(*n.ref_target, doc, ptr, depth + 1);
    if (n.types != 0 && !has_type(n.types, doc)) {
      add(ptr, "type", "must be " + describe_types(n.types) + ", got " + kind_of(doc));
      return; // the other keywords would only repeat the same mistake
    }
    if (n.enum_values) check_enum(n, doc, ptr);
    if (n.const_value && !json_equal(*n.const_value, doc)) {
      add(ptr, "const", "must be " + shown(*n.const_value) + ", got " + shown(doc));
    }
    if (doc.is_object()) check_object(n, doc, ptr, depth);
    if (doc.is_array()) check_array(n, doc, ptr, depth);
    if (doc.is_number()) check_number(n, doc, ptr);
    if (doc.is_string()) check_string(n, doc.get_ref<const std::string&>(), ptr);
    check_combinators(n, doc, ptr, depth);
  }

private:
  void add(const std::string& ptr, std::string rule, std::string message) {
    if (!full()) out_.push_back(Violation{ptr, std::move(rule), std::move(message)});
  }

  void check_enum(const Node& n, const json& doc, const std::string& ptr) {
    for (const auto& allowed : *n.enum_values) {
      if (json_equal(allowed, doc)) return;
    }
    std::string list;
    for (const auto& allowed : *n.enum_values) {
      if (!list.empty()) list += ", ";
      list += shown(allowed);
    }
    add(ptr, "enum", "must be one of " + list + ", got " + shown(doc));
  }

  void check_object(const Node& n, const json& doc, const std::string& ptr, int depth) {
    for (const auto& name : n.required) {
      if (!doc.contains(name))
        add(ptr, "required", "required property " + quoted(name) + " is missing");
    }
    if (n.min_properties && doc.size() < *n.min_properties) {
      add(ptr, "minProperties",
          "must have at least " + std::to_string(*n.min_properties) + " properties");
    }
    if (n.max_properties && doc.size() > *n.max_properties) {
      add(ptr, "maxProperties",
          "must have at most " + std::to_string(*n.max_properties) + " properties");
    }
    for (auto it = doc.begin(); it != doc.end() && !full(); ++it) {
      const std::string at = child(ptr, it.key());
      bool matched = false;
      if (auto p = n.properties.find(it.key()); p != n.properties.end()) {
        matched = true;
        check(*p->second, it.value(), at, depth + 1);
      }
      for (const auto& [re, schema] : n.pattern_properties) {
        if (matches(*re, it.key(), at, "patternProperties")) {
          matched = true;
          check(*schema, it.value(), at, depth + 1);
        }
      }
      if (matched || n.additional == nullptr) continue;
      if (n.additional->kind == Node::Kind::kFalse) {
        add(at, "additionalProperties", "unknown property" + allowed_names(n));
      } else {
        check(*n.additional, it.value(), at, depth + 1);
      }
    }
  }

  static std::string allowed_names(const Node& n) {
    if (n.properties.empty()) return "";
    std::string out = " (allowed: ";
    bool first = true;
    for (const auto& [name, schema] : n.properties) {
      if (!first) out += ", ";
      out += name;
      first = false;
    }
    return out + ")";
  }

  void check_array(const Node& n, const json& doc, const std::string& ptr, int depth) {
    if (n.min_items && doc.size() < *n.min_items) {
      add(ptr, "minItems",
          "must have at least " + std::to_string(*n.min_items) + " items, got " +
              std::to_string(doc.size()));
    }
    if (n.max_items && doc.size() > *n.max_items) {
      add(ptr, "maxItems",
          "must have at most " + std::to_string(*n.max_items) + " items, got " +
              std::to_string(doc.size()));
    }
    for (std::size_t i = 0; i < doc.size() && !full(); ++i) {
      const Node* schema = i < n.prefix_items.size() ? n.prefix_items[i] : n.items;
      if (schema != nullptr) check(*schema, doc[i], ptr + "/" + std::to_string(i), depth + 1);
    }
    if (n.unique_items) {
      for (std::size_t i = 0; i < doc.size(); ++i) {
        for (std::size_t j = i + 1; j < doc.size(); ++j) {
          if (json_equal(doc[i], doc[j])) {
            add(ptr, "uniqueItems",
                "items " + std::to_string(i) + " and " + std::to_string(j) + " are equal");
            return;
          }
        }
      }
    }
  }

  void check_number(const Node& n, const json& doc, const std::string& ptr) {
    const double v = doc.get<double>();
    const std::string got = ", got " + shown(doc);
    if (n.minimum && v < n.minimum->value) {
      add(ptr, "minimum", "must be >= " + n.minimum->text + got);
    }
    if (n.maximum && v > n.maximum->value) {
      add(ptr, "maximum", "must be <= " + n.maximum->text + got);
    }
    if (n.exclusive_minimum && v <= n.exclusive_minimum->value) {
      add(ptr, "exclusiveMinimum", "must be > " + n.exclusive_minimum->text + got);
    }
    if (n.exclusive_maximum && v >= n.exclusive_maximum->value) {
      add(ptr, "exclusiveMaximum", "must be < " + n.exclusive_maximum->text + got);
    }
    if (n.multiple_of) {
      const double q = v / n.multiple_of->value;
      if (!std::isfinite(q) || std::fabs(q - std::round(q)) > 1e-9) {
        add(ptr, "multipleOf", "must be a multiple of " + n.multiple_of->text + got);
      }
    }
  }

  // A pattern the matcher gives up on counts as a miss, reported once with the reason.
  bool matches(const Regex& re, const std::string& s, const std::string& ptr, const char* rule) {
    try {
      return re.search(s);
    } catch (const std::runtime_error& e) {
      add(ptr, rule, std::string("could not be checked against its pattern: ") + e.what());
      return true;
    }
  }

  // String values are not quoted back in these messages: a spec string may hold a secret.
  void check_string(const Node& n, const std::string& s, const std::string& ptr) {
    std::size_t len = (n.min_length || n.max_length) ? code_points(s) : 0;
    if (n.min_length && len < *n.min_length) {
      add(ptr, "minLength",
          *n.min_length == 1 ? std::string("must not be empty")
                             : "must be at least " + std::to_string(*n.min_length) +
                                   " characters long, got " + std::to_string(len));
    }
    if (n.max_length && len > *n.max_length) {
      add(ptr, "maxLength",
          "must be at most " + std::to_string(*n.max_length) + " characters long, got " +
              std::to_string(len));
    }
    if (n.pattern && !matches(*n.pattern, s, ptr, "pattern")) {
      add(ptr, "pattern", "must match the pattern " + quoted(n.pattern_text));
    }
  }

  std::vector<Violation> trial(const Node& n, const json& doc, const std::string& ptr, int depth,
                               std::size_t max) {
    std::vector<Violation> found;
    Walker(found, max).check(n, doc, ptr, depth + 1);
    return found;
  }

  void check_combinators(const Node& n, const json& doc, const std::string& ptr, int depth) {
    for (const Node* s : n.all_of) check(*s, doc, ptr, depth + 1);
    if (!n.any_of.empty()) {
      std::vector<std::vector<Violation>> misses;
      bool ok = false;
      for (const Node* s : n.any_of) {
        auto found = trial(*s, doc, ptr, depth, 3);
        if (found.empty()) {
          ok = true;
          break;
        }
        misses.push_back(std::move(found));
      }
      if (!ok) add(ptr, "anyOf", "matches none of the alternatives: " + branches(misses));
    }
    if (!n.one_of.empty()) {
      std::vector<std::vector<Violation>> misses;
      std::vector<std::size_t> matched;
      for (std::size_t i = 0; i < n.one_of.size(); ++i) {
        auto found = trial(*n.one_of[i], doc, ptr, depth, 3);
        if (found.empty()) {
          matched.push_back(i);
        } else {
          misses.push_back(std::move(found));
        }
      }
      if (matched.empty()) {
        add(ptr, "oneOf", "matches none of the alternatives: " + branches(misses));
      } else if (matched.size() > 1) {
        add(ptr, "oneOf",
            "matches alternatives " + std::to_string(matched[0]) + " and " +
                std::to_string(matched[1]) + ", but exactly one is allowed");
      }
    }
    if (n.not_schema != nullptr && trial(*n.not_schema, doc, ptr, depth, 1).empty()) {
      add(ptr, "not", "must not match the schema under \"not\"");
    }
    if (n.if_schema != nullptr) {
      bool holds = trial(*n.if_schema, doc, ptr, depth, 1).empty();
      const Node* next = holds ? n.then_schema : n.else_schema;
      if (next != nullptr) check(*next, doc, ptr, depth + 1);
    }
  }

  static std::string branches(const std::vector<std::vector<Violation>>& misses) {
    std::string out;
    for (std::size_t i = 0; i < misses.size(); ++i) {
      if (i > 0) out += "; ";
      out += "[" + std::to_string(i) + "] " + misses[i].front().to_string();
    }
    return out;
  }

  std::vector<Violation>& out_;
  std::size_t max_;
};

} // namespace

Schema Schema::compile(const json& schema) {
  auto compiled = std::make_shared<Compiled>();
  Compiler compiler(schema, compiled->nodes);
  compiled->root = compiler.compile_root();
  Schema s;
  s.compiled_ = std::move(compiled);
  return s;
}

std::vector<Violation> Schema::validate(const json& document, std::size_t max_violations) const {
  std::vector<Violation> found;
  if (compiled_ == nullptr || max_violations == 0) return found;
  Walker(found, max_violations).check(*compiled_->root, document, "", 0);
  return found;
}

std::string summarize(const std::vector<Violation>& violations, std::size_t max_shown) {
  std::string out;
  for (std::size_t i = 0; i < violations.size() && i < max_shown; ++i) {
    if (i > 0) out += "; ";
    out += violations[i].to_string();
  }
  if (violations.size() > max_shown) {
    out += " (and " + std::to_string(violations.size() - max_shown) + " more)";
  }
  return out;
}

} // namespace capstan::json_schema
