// Field ownership (metadata.managedFields) and server-side apply.
#pragma once

#include "capstan/sandbox/schema.h"

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace capstan::sandbox {

// A set of field paths. Each path is its elements ("f:spec", "k:{\"name\":\"web\"}", "v:3")
// joined by '\x1f'; a list item's own path stands for its "." entry.
using FieldSet = std::set<std::string>;

// Leaf paths (and list items) of an object under a schema, with the value at each leaf.
// apiVersion, kind, status and server-owned metadata are left out, as upstream does.
std::map<std::string, nlohmann::json> field_values(const nlohmann::json& object,
                                                   const Schema& schema);
FieldSet field_set(const nlohmann::json& object, const Schema& schema);

nlohmann::json to_fields_v1(const FieldSet& set);
FieldSet from_fields_v1(const nlohmann::json& fields);
// "spec.template.spec.containers[name=\"web\"].image" for conflict messages.
std::string describe_path(const std::string& path);

struct ApplyConflict {
  std::string manager;
  std::string path;
};

struct ManagedFieldsInput {
  std::string manager;
  std::string api_version;
  std::string subresource; // "" or "status"/"scale"
  std::string now;         // RFC 3339 time for the entry
};

// Server-side apply of `applied` (the user's intent) onto `live` (null when absent). Returns the
// merged object with metadata.managedFields updated; fills conflicts (and changes nothing) when
// another manager owns a field the applier sets to a different value and force is false.
nlohmann::json server_side_apply(const nlohmann::json& live, const nlohmann::json& applied,
                                 const Schema& schema, const ManagedFieldsInput& who, bool force,
                                 std::vector<ApplyConflict>& conflicts);

// Ownership after a non-apply write (create/update/patch): fields the write changed move to
// `who` (operation Update); fields it removed leave every manager. Returns the new managedFields.
nlohmann::json record_update(const nlohmann::json& before, const nlohmann::json& after,
                             const Schema& schema, const ManagedFieldsInput& who);

} // namespace capstan::sandbox
