// Variables: parsing and their stored form.
#include "model/variables.h"

#include <regex>
#include <set>

#include "capstan/expression/expression.h"

namespace capstan::model {

using nlohmann::json;
using yaml::pointer_append;

std::vector<Variable> parse_variables(const json& owner, const std::string& at, Checker& check) {
  std::vector<Variable> out;
  const auto* list = check.array(owner, at, "variables", false);
  if (list == nullptr) return out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < list->size(); ++i) {
    auto vat = pointer_append(pointer_append(at, "variables"), i);
    const auto& item = (*list)[i];
    if (!item.is_object()) {
      check.error(vat, std::string("a variable must be a mapping, not ") + type_name(item));
      continue;
    }
    check.only(item, vat, {"name", "type", "value", "description", "required", "default"});
    Variable v;
    v.location = check.locate(vat);
    v.name = check.string(item, vat, "name", true);
    if (!v.name.empty() && check.identifier(v.name, pointer_append(vat, "name")) &&
        !seen.insert(v.name).second) {
      check.error(pointer_append(vat, "name"), "variable '" + v.name + "' is declared twice");
    }
    auto type = check.one_of(item, vat, "type", {"String", "Number", "Secret"}, false);
    if (!type.empty()) v.type = type;
    v.description = check.string(item, vat, "description", false);
    v.required = check.boolean(item, vat, "required").value_or(false);
    const auto* value = check.member(item, vat, "value", false);
    if (value == nullptr) {
      if (v.required) check.error(vat, "variable '" + v.name + "' is required but has no value");
      out.push_back(std::move(v));
      continue;
    }
    auto val_at = pointer_append(vat, "value");
    v.location = check.locate(val_at);
    if (value->is_object() || value->is_array()) {
      check.error(val_at, "a variable's value must be a scalar");
      continue;
    }
    std::string text = value->is_string() ? value->get<std::string>() : value->dump();
    try {
      if (expression::parse_runtime_input(text)) {
        v.runtime_input = true;
      } else if (expression::has_expression(text)) {
        expression::Expression::parse_template(text); // syntax only: resolved when read
      } else if (v.type == "Number") {
        static const std::regex number(R"(^-?[0-9]+(\.[0-9]+)?$)");
        if (!std::regex_match(text, number)) {
          check.error(val_at,
                      "variable '" + v.name + "' is a Number, but its value is '" + text + "'");
        }
      } else if (v.type == "Secret" && !text.empty()) {
        text = strip_scope(text);
        check.identifier(text, val_at, true);
      }
      v.value = text;
    } catch (const expression::Error& e) {
      check.error(val_at, e.what());
    }
    out.push_back(std::move(v));
  }
  return out;
}

void to_json(json& j, const Variable& v) {
  j = {{"name", v.name}, {"type", v.type}, {"value", v.value}, {"runtimeInput", v.runtime_input}};
  if (v.required) j["required"] = true;
  if (!v.description.empty()) j["description"] = v.description;
  if (!v.location.empty()) j["location"] = v.location;
}

void from_json(const json& j, Variable& v) {
  v.name = j.value("name", "");
  v.type = j.value("type", "String");
  v.value = j.value("value", "");
  v.runtime_input = j.value("runtimeInput", false);
  v.required = j.value("required", false);
  v.description = j.value("description", "");
  v.location = j.value("location", "");
}

std::vector<std::pair<std::string, std::string>> secret_refs(const std::vector<Variable>& vars) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& v : vars) {
    if (v.type == "Secret" && !v.runtime_input && !v.value.empty() &&
        !expression::has_expression(v.value)) {
      out.emplace_back(v.value, v.location);
    }
  }
  return out;
}

} // namespace capstan::model
