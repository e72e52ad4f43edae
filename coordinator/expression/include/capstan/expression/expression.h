// Pipeline expressions: <+...> references, JEXL-style operators, runtime inputs.
//
// A field value is either plain text with embedded <+...> expressions ("app-<+env.name>"), a
// condition made of expressions and operators (`<+pipeline.variables.env> == "prod" && ...`),
// or a runtime input marker (`<+input>.default(v1).allowedValues(v1,v2)`), which the caller
// replaces with the run's input before anything is evaluated.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace capstan::expression {

using Value = nlohmann::json;

// A syntax error or a failed evaluation. what() names the expression text and the reason; the
// caller adds where the expression stands (file:line).
class Error : public std::runtime_error {
public:
  Error(std::string expression, std::string reason);
  const std::string& expression() const { return expression_; }
  const std::string& reason() const { return reason_; }

private:
  std::string expression_;
  std::string reason_;
};

// What expressions can see. Paths are the dotted names of an expression split at the dots
// ("pipeline.variables.x" → {"pipeline", "variables", "x"}).
class Scope {
public:
  virtual ~Scope() = default;
  // The value at path, or nullopt when it does not exist.
  virtual std::optional<Value> lookup(const std::vector<std::string>& path) const = 0;
  // A call on a named object, e.g. secrets.getValue("id") → target {"secrets"}, function
  // "getValue". nullopt when the scope has no such function (methods on values — strings,
  // lists, maps — are built in and never reach here).
  virtual std::optional<Value> call(const std::vector<std::string>& target,
                                    const std::string& function,
                                    const std::vector<Value>& args) const;
  // Whether a value produced by call() is a secret, to be masked wherever it appears.
  virtual bool is_secret_call(const std::vector<std::string>& target,
                              const std::string& function) const;
};

// A Scope over one JSON document: pipeline.variables.x is doc["pipeline"]["variables"]["x"].
class JsonScope : public Scope {
public:
  explicit JsonScope(Value root) : root_(std::move(root)) {}
  std::optional<Value> lookup(const std::vector<std::string>& path) const override;
  const Value& root() const { return root_; }
  Value& root() { return root_; }

private:
  Value root_;
};

struct EvalOptions {
  // Values that came from secrets while evaluating (to be masked by the caller); may be null.
  std::vector<std::string>* secrets_used = nullptr;
  // A looked-up string that itself holds <+...> is rendered too, this many levels deep.
  int max_nesting = 10;
  // Expressions of a template whose first name is one of these are left as written
  // ("<+cluster.name>"), for a later stage to resolve (a plugin, per GitOps cluster).
  std::vector<std::string> deferred_roots;
};

// A parsed expression, reusable across evaluations.
class Expression {
public:
  // A condition or bare expression: `<+a.b> == "x" && !<+c>`, or `a.b == "x"`.
  static Expression parse_condition(std::string_view text);
  // Text with embedded <+...>; a text of exactly one <+...> keeps the value's type.
  static Expression parse_template(std::string_view text);

  Value evaluate(const Scope& scope, const EvalOptions& options = {}) const;
  // JEXL truthiness of evaluate(): false, null, "", "false", 0 are false.
  bool evaluate_bool(const Scope& scope, const EvalOptions& options = {}) const;
  const std::string& text() const { return text_; }

  struct Node;

private:
  std::string text_;
  std::shared_ptr<const Node> root_;
};

// True when s holds at least one "<+".
bool has_expression(std::string_view s);
// Renders text with embedded expressions to a string (numbers without a trailing ".0",
// booleans as true/false, lists and maps as JSON).
std::string render(std::string_view text, const Scope& scope, const EvalOptions& options = {});
// The text form of a value as render() writes it.
std::string to_text(const Value& v);
bool truthy(const Value& v);

// A runtime input marker: `<+input>` optionally followed by .default(x), .allowedValues(a,b),
// .regex(r) and .executionInput(), in any order.
struct RuntimeInput {
  std::optional<std::string> default_value;
  std::vector<std::string> allowed_values; // empty: anything
  std::optional<std::string> regex;
  bool execution_input = false; // asked for when the step starts, not when the run starts
  // Checks a supplied value against allowedValues and regex; returns the reason it fails.
  std::optional<std::string> reject(const std::string& value) const;
};
// nullopt when text is not a runtime input marker; throws Error when it is one but malformed.
std::optional<RuntimeInput> parse_runtime_input(std::string_view text);

} // namespace capstan::expression
