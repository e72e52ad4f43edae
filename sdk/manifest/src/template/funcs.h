// The functions a template can call: Go's builtins, the Sprig functions manifests use, and
// Helm's include/required/toYaml family.
#pragma once

#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "value.h"

namespace capstan::manifest::tmpl {

// How an argument is checked before the call, after Go's reflect types:
//   Any    interface{}      (a missing value arrives as nil)
//   Raw    reflect.Value    (eq, len, index...: the value exactly as evaluated)
//   None   no check at all  (internal)
enum class Param { None, Any, Raw, String, Int, Float, Bool, Map };
std::string param_type_name(Param p);

// A function's own failure; the executor reports it as "error calling NAME: what()".
class FuncError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct CallContext {
  // Renders a named template into a string (Helm's include).
  std::function<std::string(const std::string& name, const Value& data)> include;
};

struct Func {
  std::vector<Param> params; // with `variadic`, the last one repeats
  bool variadic = false;
  std::function<Value(CallContext&, std::vector<Value>&)> call;
};

const std::map<std::string, Func, std::less<>>& functions();
bool is_function(std::string_view name);

// Go's comparison functions, shared with the executor's tests of equality.
bool go_eq(const Value& a, const Value& b); // throws FuncError on incomparable kinds
bool go_lt(const Value& a, const Value& b);

// Semantic-version constraint check as Sprig's semverCompare (Masterminds/semver).
bool semver_matches(const std::string& constraint, const std::string& version);

// toYaml / toJson as Harness's renderer writes them.
std::string to_yaml_text(const Value& v);
std::string to_json_text(const Value& v);

} // namespace capstan::manifest::tmpl
