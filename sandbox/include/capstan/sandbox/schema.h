// Structural schemas of the served kinds: field validation, strategic-merge and server-side-apply
// list semantics, and the OpenAPI v3 documents kubectl reads all come from this one description.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace capstan::sandbox {

enum class SchemaType {
  kObject,
  kMap,
  kList,
  kString,
  kInteger,
  kNumber,
  kBoolean,
  kIntOrString,
  kQuantity,
  kAny
};

struct Schema;
using SchemaPtr = std::shared_ptr<const Schema>;

struct Schema {
  SchemaType type = SchemaType::kAny;
  std::string name;   // OpenAPI definition name for named types ("io.k8s.api.core.v1.Container")
  std::string format; // int32, int64, date-time, byte
  std::string description;
  std::map<std::string, SchemaPtr> properties; // kObject
  std::vector<std::string> required;
  SchemaPtr items;                        // kList items, kMap values
  std::string list_type;                  // atomic (default), set, map
  std::vector<std::string> list_map_keys; // for list_type map
  // Defaults of key fields (a port's protocol is TCP when unset): items are keyed as if set.
  std::map<std::string, nlohmann::json> list_key_defaults;
  std::string patch_strategy; // merge, replace, retainKeys, "merge,retainKeys"
  std::string patch_merge_key;
  bool atomic = false;           // x-kubernetes-map-type: atomic (replaced whole by apply)
  bool preserve_unknown = false; // fields below are not checked (open or not yet described)
  bool embedded_resource = false;
  std::vector<std::string> enum_values;

  const Schema* property(const std::string& field) const;
};

// The schema of a built-in kind's top-level object, or nullptr when the kind is not built in.
SchemaPtr builtin_schema(const std::string& group, const std::string& version,
                         const std::string& kind);
// ObjectMeta, shared by every kind (custom resources included).
SchemaPtr object_meta_schema();
// A schema from a CRD's openAPIV3Schema (structural subset; x-kubernetes-* honoured). The
// result always describes apiVersion, kind and metadata.
SchemaPtr schema_from_openapi(const nlohmann::json& openapi, bool top_level = true);

struct FieldProblem {
  std::string path;    // "spec.template.spec.containers[0].imagex"
  std::string message; // "unknown field", "duplicate field", "expected integer, got string"
  bool unknown = false;
};

// Checks value against the schema: unknown fields (removed from value, as the API server prunes
// them) and wrong JSON types (left in place; the caller refuses the request).
void check_fields(const Schema& schema, nlohmann::json& value, const std::string& path,
                  std::vector<FieldProblem>& problems);

// The OpenAPI v3 schema object for s; named sub-schemas are added to components and referenced.
nlohmann::json to_openapi(const Schema& s, nlohmann::json& components);

} // namespace capstan::sandbox
