// Go's template builtins and comparison rules.
#include "funcs.h"

#include <cmath>

#include "gofmt.h"
#include "gostrings.h"

namespace capstan::manifest::tmpl {

std::string param_type_name(Param p) {
  switch (p) {
  case Param::None:
  case Param::Any:
    return "interface {}";
  case Param::Raw:
    return "reflect.Value";
  case Param::String:
    return "string";
  case Param::Int:
    return "int";
  case Param::Float:
    return "float64";
  case Param::Bool:
    return "bool";
  case Param::Map:
    return "map[string]interface {}";
  }
  return "interface {}";
}

namespace {

enum class BasicKind { Invalid, Bool, Int, Float, String, Other };

BasicKind basic_kind(const Value& v) {
  switch (v.kind()) {
  case Value::Kind::Bool:
    return BasicKind::Bool;
  case Value::Kind::Int:
    return BasicKind::Int;
  case Value::Kind::Float:
    return BasicKind::Float;
  case Value::Kind::String:
    return BasicKind::String;
  case Value::Kind::Invalid:
    return BasicKind::Invalid;
  default:
    return BasicKind::Other;
  }
}

const char* kBadComparison = "incompatible types for comparison";
const char* kBadComparisonType = "invalid type for comparison";

} // namespace

bool go_eq(const Value& a0, const Value& b0) {
  Value a = a0.unboxed();
  Value b = b0.unboxed();
  BasicKind ka = basic_kind(a);
  BasicKind kb = basic_kind(b);
  // Numbers compare by value whatever their Go type: YAML gives ints and floats, and a
  // template written for Harness (where every number is a float64) must keep working.
  bool na = ka == BasicKind::Int || ka == BasicKind::Float;
  bool nb = kb == BasicKind::Int || kb == BasicKind::Float;
  if (na && nb) {
    if (ka == BasicKind::Int && kb == BasicKind::Int) return a.as_int() == b.as_int();
    return a.as_float() == b.as_float();
  }
  if (ka != kb) {
    if (a.valid() && b.valid()) throw FuncError(kBadComparison);
    return false;
  }
  switch (ka) {
  case BasicKind::Bool:
    return a.as_bool() == b.as_bool();
  case BasicKind::String:
    return a.as_string() == b.as_string();
  case BasicKind::Invalid:
    return true;
  default:
    throw FuncError("non-comparable type " + sprint_value(a) + ": " + a.concrete_type());
  }
}

bool go_lt(const Value& a0, const Value& b0) {
  Value a = a0.unboxed();
  Value b = b0.unboxed();
  BasicKind ka = basic_kind(a);
  BasicKind kb = basic_kind(b);
  if (ka == BasicKind::Invalid || ka == BasicKind::Other || kb == BasicKind::Invalid ||
      kb == BasicKind::Other) {
    throw FuncError(kBadComparisonType);
  }
  bool na = ka == BasicKind::Int || ka == BasicKind::Float;
  bool nb = kb == BasicKind::Int || kb == BasicKind::Float;
  if (na && nb) {
    if (ka == BasicKind::Int && kb == BasicKind::Int) return a.as_int() < b.as_int();
    return a.as_float() < b.as_float();
  }
  if (ka != kb) throw FuncError(kBadComparison);
  switch (ka) {
  case BasicKind::String:
    return a.as_string() < b.as_string();
  default:
    throw FuncError(kBadComparisonType);
  }
}

namespace {

Value go_index(std::vector<Value>& args) {
  Value item = args[0].unboxed();
  if (!item.valid()) throw FuncError("index of untyped nil");
  for (std::size_t i = 1; i < args.size(); ++i) {
    Value index = args[i].unboxed();
    if (item.is_nil()) throw FuncError("index of nil pointer");
    switch (item.kind()) {
    case Value::Kind::List:
    case Value::Kind::String: {
      if (!index.valid()) throw FuncError("cannot index slice/array with nil");
      if (index.kind() != Value::Kind::Int) {
        throw FuncError("cannot index slice/array with type " + index.concrete_type());
      }
      std::int64_t x = index.as_int();
      std::size_t len = item.kind() == Value::Kind::List ? item.size() : item.as_string().size();
      if (x < 0 || static_cast<std::size_t>(x) >= len) {
        throw FuncError("index out of range: " + std::to_string(x));
      }
      if (item.kind() == Value::Kind::List) {
        item = item.element(static_cast<std::size_t>(x));
      } else {
        item = Value::integer(
            static_cast<unsigned char>(item.as_string()[static_cast<std::size_t>(x)]), "uint8");
      }
      break;
    }
    case Value::Kind::Map: {
      if (index.kind() != Value::Kind::String) {
        throw FuncError("value has type " + (index.valid() ? index.concrete_type() : "<nil>") +
                        "; should be string");
      }
      bool found = false;
      Value v = item.member(index.as_string(), &found);
      if (found) {
        item = v;
      } else if (item.concrete_type() == "map[string]string") {
        item = Value::string("");
      } else {
        item = Value::nil(); // the zero interface{}: prints "<no value>"
      }
      break;
    }
    default:
      throw FuncError("can't index item of type " + item.type_name());
    }
    if (i + 1 < args.size()) item = item.unboxed();
  }
  return item;
}

Value go_len(std::vector<Value>& args) {
  Value v = args[0];
  if (v.is_nil() || !v.valid()) throw FuncError("len of nil pointer");
  v = v.unboxed();
  switch (v.kind()) {
  case Value::Kind::List:
  case Value::Kind::Map:
    return Value::integer(static_cast<std::int64_t>(v.size()));
  case Value::Kind::String:
    return Value::integer(static_cast<std::int64_t>(v.as_string().size()));
  default:
    throw FuncError("len of type " + v.concrete_type());
  }
}

} // namespace

void register_sprig(std::map<std::string, Func, std::less<>>& f); // sprig.cpp

const std::map<std::string, Func, std::less<>>& functions() {
  static const auto table = [] {
    std::map<std::string, Func, std::less<>> f;
    // and/or are evaluated lazily by the executor; these entries carry their arity.
    f["and"] = {{Param::Raw, Param::Raw}, true, nullptr};
    f["or"] = {{Param::Raw, Param::Raw}, true, nullptr};
    f["not"] = {{Param::Raw}, false, [](CallContext&, std::vector<Value>& a) {
                  return Value::boolean(!truth(a[0]));
                }};
    f["eq"] = {{Param::Raw, Param::Raw}, true, [](CallContext&, std::vector<Value>& a) {
                 if (a.size() < 2) throw FuncError("missing argument for comparison");
                 for (std::size_t i = 1; i < a.size(); ++i) {
                   if (go_eq(a[0], a[i])) return Value::boolean(true);
                 }
                 return Value::boolean(false);
               }};
    f["ne"] = {{Param::Raw, Param::Raw}, false, [](CallContext&, std::vector<Value>& a) {
                 return Value::boolean(!go_eq(a[0], a[1]));
               }};
    f["lt"] = {{Param::Raw, Param::Raw}, false, [](CallContext&, std::vector<Value>& a) {
                 return Value::boolean(go_lt(a[0], a[1]));
               }};
    f["le"] = {{Param::Raw, Param::Raw}, false, [](CallContext&, std::vector<Value>& a) {
                 return Value::boolean(go_lt(a[0], a[1]) || go_eq(a[0], a[1]));
               }};
    f["gt"] = {{Param::Raw, Param::Raw}, false, [](CallContext&, std::vector<Value>& a) {
                 return Value::boolean(!(go_lt(a[0], a[1]) || go_eq(a[0], a[1])));
               }};
    f["ge"] = {{Param::Raw, Param::Raw}, false, [](CallContext&, std::vector<Value>& a) {
                 return Value::boolean(!go_lt(a[0], a[1]));
               }};
    f["index"] = {{Param::Raw, Param::Raw}, true, [](CallContext&, std::vector<Value>& a) {
                    return go_index(a);
                  }};
    f["len"] = {{Param::Raw}, false, [](CallContext&, std::vector<Value>& a) { return go_len(a); }};
    f["print"] = {{Param::Any}, true, [](CallContext&, std::vector<Value>& a) {
                    return Value::string(go_sprint(a));
                  }};
    f["println"] = {{Param::Any}, true, [](CallContext&, std::vector<Value>& a) {
                      return Value::string(go_sprintln(a));
                    }};
    f["printf"] = {{Param::String, Param::Any}, true, [](CallContext&, std::vector<Value>& a) {
                     std::vector<Value> rest(a.begin() + 1, a.end());
                     return Value::string(go_sprintf(a[0].as_string(), rest));
                   }};
    register_sprig(f);
    return f;
  }();
  return table;
}

bool is_function(std::string_view name) {
  return functions().count(name) > 0;
}

} // namespace capstan::manifest::tmpl
