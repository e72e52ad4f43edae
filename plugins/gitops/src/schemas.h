// JSON Schemas of the GitOps steps' `spec`, as Harness writes them.
#pragma once

#include <string>

namespace capstan::plugins::gitops {

// Shared pieces: a step variable ({name, type, value}), flags that may be expressions, delegate
// selectors.
inline constexpr const char* kDefs = R"json("$defs": {
    "variable": {
      "type": "object",
      "required": ["name"],
      "additionalProperties": false,
      "properties": {
        "name": {"type": "string", "minLength": 1},
        "type": {"enum": ["String", "Number", "Secret"]},
        "value": {"type": ["string", "number", "boolean", "null"]},
        "description": {"type": "string"},
        "required": {"type": "boolean"}
      }
    },
    "variables": {"type": "array", "items": {"$ref": "#/$defs/variable"}},
    "flag": {"type": ["boolean", "string"]},
    "selectors": {"type": ["array", "string"], "items": {"type": "string"}}
  })json";

inline std::string spec_schema(const std::string& title, const std::string& required,
                               const std::string& properties) {
  return R"json({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": ")json" +
         title + R"json( step spec",
  "type": "object",
  "required": [)json" +
         required + R"json(],
  "additionalProperties": false,
  "properties": {
    "delegateSelectors": {"$ref": "#/$defs/selectors"})json" +
         (properties.empty() ? "" : ",\n    " + properties) + R"json(
  },
  )json" +
         kDefs + "\n}";
}

inline std::string update_release_repo_schema() {
  return spec_schema("UpdateReleaseRepo", "", R"json("variables": {"$ref": "#/$defs/variables"},
    "prTitle": {"type": "string"},
    "prDescription": {"type": "string"},
    "allowEmptyCommit": {"$ref": "#/$defs/flag"})json");
}

inline std::string merge_pr_schema() {
  return spec_schema("MergePR", "", R"json("deleteSourceBranch": {"$ref": "#/$defs/flag"},
    "mergeMethod": {"enum": ["merge", "squash", "rebase"]},
    "prNumber": {"type": ["integer", "string"]},
    "variables": {"$ref": "#/$defs/variables"})json");
}

inline std::string revert_pr_schema() {
  return spec_schema("RevertPR", R"json("commitId")json",
                     R"json("commitId": {"type": "string", "minLength": 1},
    "prTitle": {"type": "string"})json");
}

inline std::string fetch_linked_apps_schema() {
  return spec_schema("FetchLinkedApps", "", "");
}

} // namespace capstan::plugins::gitops
