// Go values over shared JSON trees.
#include "value.h"

#include <cmath>

namespace capstan::manifest::tmpl {
namespace {

Value::Kind kind_of(const json& j) {
  switch (j.type()) {
  case json::value_t::null:
    return Value::Kind::Nil;
  case json::value_t::boolean:
    return Value::Kind::Bool;
  case json::value_t::number_integer:
    return Value::Kind::Int;
  case json::value_t::number_unsigned:
    return j.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX) ? Value::Kind::Int
                                                                           : Value::Kind::Float;
  case json::value_t::number_float:
    return Value::Kind::Float;
  case json::value_t::string:
    return Value::Kind::String;
  case json::value_t::array:
    return Value::Kind::List;
  case json::value_t::object:
    return Value::Kind::Map;
  default:
    return Value::Kind::Invalid;
  }
}

} // namespace

Value Value::of(std::shared_ptr<const json> holder, const json* node, bool boxed) {
  Value v;
  v.kind_ = kind_of(*node);
  v.holder_ = std::move(holder);
  v.node_ = node;
  v.boxed_ = boxed;
  if (v.kind_ == Kind::Nil && !boxed) return Value();
  return v;
}

Value Value::make(json j, std::string_view type) {
  auto holder = std::make_shared<const json>(std::move(j));
  Value v = of(holder, holder.get(), false);
  v.type_ = std::string(type);
  return v;
}

Value Value::nil() {
  auto holder = std::make_shared<const json>(nullptr);
  return of(holder, holder.get(), true);
}

Value Value::integer(std::int64_t i, std::string_view type) {
  return make(json(i), type);
}

Value Value::unboxed() const {
  if (kind_ == Kind::Nil) return Value();
  Value v = *this;
  v.boxed_ = false;
  return v;
}

std::string Value::concrete_type() const {
  if (!type_.empty()) return type_;
  switch (kind_) {
  case Kind::Invalid:
  case Kind::Nil:
    return "<nil>";
  case Kind::Bool:
    return "bool";
  case Kind::Int:
    return "int";
  case Kind::Float:
    return "float64";
  case Kind::String:
    return "string";
  case Kind::List:
    return "[]interface {}";
  case Kind::Map:
    return "map[string]interface {}";
  }
  return "<nil>";
}

std::string Value::type_name() const {
  return boxed_ ? "interface {}" : concrete_type();
}

const json& Value::data() const {
  static const json kNull;
  return node_ ? *node_ : kNull;
}

std::int64_t Value::as_int() const {
  const json& j = data();
  if (j.is_number_integer()) return j.get<std::int64_t>();
  if (j.is_number()) return static_cast<std::int64_t>(j.get<double>());
  return 0;
}

double Value::as_float() const {
  const json& j = data();
  return j.is_number() ? j.get<double>() : 0.0;
}

Value Value::member(const std::string& key, bool* found) const {
  const json& j = data();
  auto it = j.find(key);
  if (found) *found = it != j.end();
  if (it == j.end()) return Value();
  // map[string]string members are strings, not interfaces.
  bool elem_boxed = concrete_type() == "map[string]interface {}";
  return of(holder_, &*it, elem_boxed);
}

Value Value::element(std::size_t i) const {
  bool elem_boxed = concrete_type() == "[]interface {}";
  return of(holder_, &data()[i], elem_boxed);
}

bool truth(const Value& v) {
  switch (v.kind()) {
  case Value::Kind::Invalid:
  case Value::Kind::Nil:
    return false;
  case Value::Kind::Bool:
    return v.as_bool();
  case Value::Kind::Int:
    return v.as_int() != 0;
  case Value::Kind::Float:
    return v.as_float() != 0.0;
  case Value::Kind::String:
    return !v.as_string().empty();
  case Value::Kind::List:
  case Value::Kind::Map:
    return v.size() > 0;
  }
  return false;
}

json to_json(const Value& v) {
  if (!v.valid()) return nullptr;
  return v.data();
}

} // namespace capstan::manifest::tmpl
