// Schema traversal: unknown-field checks, CRD schema conversion and OpenAPI v3 output.
#include "capstan/sandbox/schema.h"

namespace capstan::sandbox {

const Schema* Schema::property(const std::string& field) const {
  auto it = properties.find(field);
  return it == properties.end() ? nullptr : it->second.get();
}

namespace {

const char* json_type_name(const nlohmann::json& v) {
  switch (v.type()) {
  case nlohmann::json::value_t::object:
    return "object";
  case nlohmann::json::value_t::array:
    return "array";
  case nlohmann::json::value_t::string:
    return "string";
  case nlohmann::json::value_t::boolean:
    return "boolean";
  case nlohmann::json::value_t::number_integer:
  case nlohmann::json::value_t::number_unsigned:
    return "integer";
  case nlohmann::json::value_t::number_float:
    return "number";
  default:
    return "null";
  }
}

bool type_ok(const Schema& s, const nlohmann::json& v, std::string& expected) {
  if (v.is_null()) return true; // null means "unset" in Kubernetes JSON
  switch (s.type) {
  case SchemaType::kObject:
  case SchemaType::kMap:
    expected = "object";
    return v.is_object();
  case SchemaType::kList:
    expected = "array";
    return v.is_array();
  case SchemaType::kString:
    expected = "string";
    return v.is_string();
  case SchemaType::kInteger:
    expected = "integer";
    return v.is_number_integer() ||
           (v.is_number_float() && v.get<double>() == static_cast<double>(v.get<long long>()));
  case SchemaType::kNumber:
    expected = "number";
    return v.is_number();
  case SchemaType::kBoolean:
    expected = "boolean";
    return v.is_boolean();
  case SchemaType::kIntOrString:
    expected = "integer or string";
    return v.is_string() || v.is_number_integer();
  case SchemaType::kQuantity:
    expected = "quantity";
    return v.is_string() || v.is_number();
  case SchemaType::kAny:
    return true;
  }
  return true;
}

} // namespace

void check_fields(const Schema& schema, nlohmann::json& value, const std::string& path,
                  std::vector<FieldProblem>& problems) {
  std::string expected;
  if (!type_ok(schema, value, expected)) {
    problems.push_back({path.empty() ? "<root>" : path,
                        std::string("expected ") + expected + ", got " + json_type_name(value),
                        false});
    return;
  }
  if (value.is_null()) return;
  switch (schema.type) {
  case SchemaType::kObject: {
    std::vector<std::string> unknown;
    for (auto it = value.begin(); it != value.end(); ++it) {
      const Schema* p = schema.property(it.key());
      std::string child = path.empty() ? it.key() : path + "." + it.key();
      if (!p) {
        if (!schema.preserve_unknown) unknown.push_back(it.key());
        continue;
      }
      check_fields(*p, it.value(), child, problems);
    }
    for (const auto& k : unknown) {
      problems.push_back({path.empty() ? k : path + "." + k, "unknown field", true});
      value.erase(k);
    }
    break;
  }
  case SchemaType::kMap:
    if (schema.items) {
      for (auto it = value.begin(); it != value.end(); ++it)
        check_fields(*schema.items, it.value(), path + "." + it.key(), problems);
    }
    break;
  case SchemaType::kList:
    if (schema.items) {
      for (std::size_t i = 0; i < value.size(); ++i)
        check_fields(*schema.items, value[i], path + "[" + std::to_string(i) + "]", problems);
    }
    break;
  default:
    break;
  }
}

SchemaPtr schema_from_openapi(const nlohmann::json& o, bool top_level) {
  auto s = std::make_shared<Schema>();
  if (!o.is_object()) {
    s->type = SchemaType::kAny;
    s->preserve_unknown = true;
    return s;
  }
  std::string type = o.value("type", "");
  s->description = o.value("description", "");
  s->format = o.value("format", "");
  s->preserve_unknown = o.value("x-kubernetes-preserve-unknown-fields", false);
  s->embedded_resource = o.value("x-kubernetes-embedded-resource", false);
  if (o.value("x-kubernetes-int-or-string", false)) {
    s->type = SchemaType::kIntOrString;
  } else if (type == "object") {
    if (o.contains("additionalProperties") && o["additionalProperties"].is_object()) {
      s->type = SchemaType::kMap;
      s->items = schema_from_openapi(o["additionalProperties"], false);
    } else {
      s->type = SchemaType::kObject;
      if (o.contains("properties") && o["properties"].is_object()) {
        for (auto it = o["properties"].begin(); it != o["properties"].end(); ++it)
          s->properties[it.key()] = schema_from_openapi(it.value(), false);
      } else if (!top_level) {
        // An object with neither properties nor additionalProperties keeps whatever it gets
        // only when preserve-unknown says so; otherwise it is an empty struct upstream too.
      }
    }
    if (o.value("x-kubernetes-map-type", "") == "atomic") s->atomic = true;
  } else if (type == "array") {
    s->type = SchemaType::kList;
    if (o.contains("items")) s->items = schema_from_openapi(o["items"], false);
    s->list_type = o.value("x-kubernetes-list-type", "atomic");
    if (o.contains("x-kubernetes-list-map-keys") && o["x-kubernetes-list-map-keys"].is_array())
      for (const auto& k : o["x-kubernetes-list-map-keys"]) s->list_map_keys.push_back(k);
  } else if (type == "string") {
    s->type = SchemaType::kString;
  } else if (type == "integer") {
    s->type = SchemaType::kInteger;
  } else if (type == "number") {
    s->type = SchemaType::kNumber;
  } else if (type == "boolean") {
    s->type = SchemaType::kBoolean;
  } else {
    s->type = SchemaType::kAny;
    s->preserve_unknown = true;
  }
  if (o.contains("required") && o["required"].is_array())
    for (const auto& r : o["required"])
      if (r.is_string()) s->required.push_back(r);
  if (o.contains("enum") && o["enum"].is_array())
    for (const auto& e : o["enum"])
      if (e.is_string()) s->enum_values.push_back(e);
  if (top_level) {
    s->type = SchemaType::kObject;
    auto str = std::make_shared<Schema>();
    str->type = SchemaType::kString;
    s->properties["apiVersion"] = str;
    s->properties["kind"] = str;
    s->properties["metadata"] = object_meta_schema();
  }
  return s;
}

namespace {
const char* openapi_type(SchemaType t) {
  switch (t) {
  case SchemaType::kObject:
  case SchemaType::kMap:
    return "object";
  case SchemaType::kList:
    return "array";
  case SchemaType::kString:
    return "string";
  case SchemaType::kInteger:
    return "integer";
  case SchemaType::kNumber:
    return "number";
  case SchemaType::kBoolean:
    return "boolean";
  default:
    return "";
  }
}
} // namespace

nlohmann::json to_openapi(const Schema& s, nlohmann::json& components) {
  if (!s.name.empty()) {
    if (!components.contains(s.name)) {
      components[s.name] = nlohmann::json::object(); // placeholder breaks recursion
      Schema copy = s;
      copy.name.clear();
      components[s.name] = to_openapi(copy, components);
    }
    return {{"allOf", {{{"$ref", "#/components/schemas/" + s.name}}}}};
  }
  nlohmann::json o = nlohmann::json::object();
  const char* t = openapi_type(s.type);
  if (*t) o["type"] = t;
  if (!s.description.empty()) o["description"] = s.description;
  if (!s.format.empty()) o["format"] = s.format;
  if (s.type == SchemaType::kIntOrString) {
    o["x-kubernetes-int-or-string"] = true;
    o["format"] = "int-or-string";
  }
  if (s.type == SchemaType::kQuantity) {
    o["x-kubernetes-int-or-string"] = true;
    o["format"] = "quantity";
  }
  if (s.type == SchemaType::kObject) {
    if (!s.properties.empty()) {
      o["properties"] = nlohmann::json::object();
      for (const auto& [k, v] : s.properties) o["properties"][k] = to_openapi(*v, components);
    }
    if (s.atomic) o["x-kubernetes-map-type"] = "atomic";
  }
  if (s.type == SchemaType::kMap && s.items)
    o["additionalProperties"] = to_openapi(*s.items, components);
  if (s.type == SchemaType::kList) {
    if (s.items) o["items"] = to_openapi(*s.items, components);
    if (!s.list_type.empty() && s.list_type != "atomic")
      o["x-kubernetes-list-type"] = s.list_type;
    else
      o["x-kubernetes-list-type"] = "atomic";
    if (!s.list_map_keys.empty()) o["x-kubernetes-list-map-keys"] = s.list_map_keys;
  }
  if (!s.patch_strategy.empty()) o["x-kubernetes-patch-strategy"] = s.patch_strategy;
  if (!s.patch_merge_key.empty()) o["x-kubernetes-patch-merge-key"] = s.patch_merge_key;
  if (s.preserve_unknown) o["x-kubernetes-preserve-unknown-fields"] = true;
  if (!s.required.empty()) o["required"] = s.required;
  if (!s.enum_values.empty()) o["enum"] = s.enum_values;
  return o;
}

} // namespace capstan::sandbox
