// A Go value as text/template sees it: a kind, a Go type name, and whether it was reached
// through an interface{} (a map value or list element of the data), which is what makes Go
// report "interface {}" and "nil pointer evaluating" in its messages.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace capstan::manifest::tmpl {

using nlohmann::json;

class Value {
public:
  enum class Kind { Invalid, Nil, Bool, Int, Float, String, List, Map };

  Value() = default; // Go's invalid reflect.Value: a missing key, an unset variable

  // A JSON tree shared without copying; `boxed` when reached through an interface{}.
  static Value of(std::shared_ptr<const json> holder, const json* node, bool boxed);
  // A fresh value owning its JSON; `type` overrides the Go type (e.g. "[]string", "int64").
  static Value make(json j, std::string_view type = {});
  static Value boolean(bool b) { return make(json(b)); }
  static Value integer(std::int64_t i, std::string_view type = "int");
  static Value floating(double d) { return make(json(d)); }
  static Value string(std::string s) { return make(json(std::move(s))); }
  // A nil interface{} (what a map holds for a null, or index finds for a missing key).
  static Value nil();

  Kind kind() const { return kind_; }
  bool valid() const { return kind_ != Kind::Invalid; }
  bool boxed() const { return boxed_; }
  bool is_nil() const { return kind_ == Kind::Nil; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float; }
  // Go's "dig down one level": an interface{} is replaced by what it holds (nil → invalid).
  Value unboxed() const;
  // The Go type as messages print it ("interface {}" while boxed).
  std::string type_name() const;
  // The concrete type, ignoring the box.
  std::string concrete_type() const;

  const json& data() const;
  bool as_bool() const { return data().get<bool>(); }
  std::int64_t as_int() const;
  double as_float() const;
  const std::string& as_string() const { return data().get_ref<const std::string&>(); }
  std::size_t size() const { return data().size(); } // elements of a list or map

  // Elements keep sharing the tree. Map members come back boxed for map[string]interface {}
  // and as plain strings for map[string]string; `found` says whether the key exists.
  Value member(const std::string& key, bool* found = nullptr) const;
  Value element(std::size_t i) const;

private:
  Kind kind_ = Kind::Invalid;
  std::shared_ptr<const json> holder_;
  const json* node_ = nullptr;
  std::string type_; // concrete Go type; empty means "derive from the JSON"
  bool boxed_ = false;
};

// Go's truth: false, 0, nil, empty string/list/map and invalid values are false.
bool truth(const Value& v);
// Sprig's empty(): the same rules.
inline bool empty(const Value& v) {
  return !truth(v);
}

// The value as JSON for toYaml/toJson and for storing in other values (null for invalid).
json to_json(const Value& v);

} // namespace capstan::manifest::tmpl
