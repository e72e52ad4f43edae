// Step spec schemas. Booleans may come as "true"/"false" text (what expressions resolve to).
#include "schemas.h"

namespace capstan::plugins::kubernetes::schemas {

// clang-format off
#define CAPSTAN_K8S_DEFS R"("$defs": { "flag": {"type": ["boolean", "string"], "pattern": "^(true|false)$"}, "number": {"type": ["integer", "string"], "pattern": "^[0-9]+$"}, "selectors": {"type": ["array", "string"], "items": {"type": "string"}}, "instances": { "type": "object", "required": ["type", "spec"], "additionalProperties": false, "properties": { "type": {"enum": ["Count", "Percentage"]}, "spec": {"type": "object", "additionalProperties": false, "properties": {"count": {"$ref": "#/$defs/number"}, "percentage": {"$ref": "#/$defs/number"}}} }, "if": {"properties": {"type": {"const": "Percentage"}}}, "then": {"properties": {"spec": {"required": ["percentage"]}}}, "else": {"properties": {"spec": {"required": ["count"]}}} } })"
// clang-format on

const char* const kRollingDeploy = R"({"type": "object", "additionalProperties": false,
  "properties": {"skipDryRun": {"$ref": "#/$defs/flag"},
                 "pruningEnabled": {"$ref": "#/$defs/flag"},
                 "delegateSelectors": {"$ref": "#/$defs/selectors"}},
  )" CAPSTAN_K8S_DEFS "}";

const char* const kRollingRollback = R"({"type": "object", "additionalProperties": false,
  "properties": {"pruningEnabled": {"$ref": "#/$defs/flag"},
                 "delegateSelectors": {"$ref": "#/$defs/selectors"}},
  )" CAPSTAN_K8S_DEFS "}";

const char* const kCanaryDeploy = R"({"type": "object", "additionalProperties": false,
  "required": ["instanceSelection"],
  "properties": {"instanceSelection": {"$ref": "#/$defs/instances"},
                 "skipDryRun": {"$ref": "#/$defs/flag"},
                 "delegateSelectors": {"$ref": "#/$defs/selectors"}},
  )" CAPSTAN_K8S_DEFS "}";

const char* const kCanaryDelete = R"({"type": "object", "additionalProperties": false,
  "properties": {"skipDryRun": {"$ref": "#/$defs/flag"},
                 "delegateSelectors": {"$ref": "#/$defs/selectors"}},
  )" CAPSTAN_K8S_DEFS "}";

const char* const kBlueGreenDeploy = R"({"type": "object", "additionalProperties": false,
  "properties": {"skipDryRun": {"$ref": "#/$defs/flag"},
                 "pruningEnabled": {"$ref": "#/$defs/flag"},
                 "delegateSelectors": {"$ref": "#/$defs/selectors"}},
  )" CAPSTAN_K8S_DEFS "}";

const char* const kBGSwapServices = R"({"type": "object", "additionalProperties": false,
  "properties": {"skipDryRun": {"$ref": "#/$defs/flag"},
                 "delegateSelectors": {"$ref": "#/$defs/selectors"}},
  )" CAPSTAN_K8S_DEFS "}";

const char* const kBlueGreenStageScaleDown = R"({"type": "object", "additionalProperties": false,
  "properties": {"deleteResources": {"$ref": "#/$defs/flag"},
                 "delegateSelectors": {"$ref": "#/$defs/selectors"}},
  )" CAPSTAN_K8S_DEFS "}";

const char* const kApply = R"({"type": "object", "additionalProperties": false,
  "required": ["filePaths"],
  "properties": {"filePaths": {"type": "array", "minItems": 1,
                               "items": {"type": "string", "minLength": 1}},
                 "skipDryRun": {"$ref": "#/$defs/flag"},
                 "skipSteadyStateCheck": {"$ref": "#/$defs/flag"},
                 "skipRendering": {"$ref": "#/$defs/flag"},
                 "overrides": {"type": "array", "items": {"type": "object"}},
                 "delegateSelectors": {"$ref": "#/$defs/selectors"}},
  )" CAPSTAN_K8S_DEFS "}";

const char* const kScale = R"({"type": "object", "additionalProperties": false,
  "required": ["workload", "instanceSelection"],
  "properties": {"workload": {"type": "string", "minLength": 1},
                 "instanceSelection": {"$ref": "#/$defs/instances"},
                 "skipSteadyStateCheck": {"$ref": "#/$defs/flag"},
                 "delegateSelectors": {"$ref": "#/$defs/selectors"}},
  )" CAPSTAN_K8S_DEFS "}";

const char* const kDelete = R"({"type": "object", "additionalProperties": false,
  "required": ["deleteResources"],
  "properties": {
    "deleteResources": {
      "type": "object", "required": ["type"], "additionalProperties": false,
      "properties": {
        "type": {"enum": ["ResourceName", "ManifestPath", "ReleaseName"]},
        "spec": {"type": "object", "additionalProperties": false,
                 "properties": {
                   "resourceNames": {"type": "array", "items": {"type": "string", "minLength": 1}},
                   "manifestPaths": {"type": "array", "items": {"type": "string", "minLength": 1}},
                   "allManifestPaths": {"$ref": "#/$defs/flag"},
                   "deleteNamespace": {"$ref": "#/$defs/flag"}}}
      },
      "allOf": [
        {"if": {"properties": {"type": {"const": "ResourceName"}}},
         "then": {"required": ["spec"], "properties": {"spec": {"required": ["resourceNames"]}}}},
        {"if": {"properties": {"type": {"const": "ManifestPath"}}},
         "then": {"required": ["spec"]}}
      ]
    },
    "delegateSelectors": {"$ref": "#/$defs/selectors"}},
  )" CAPSTAN_K8S_DEFS "}";

const char* const kDryRun = R"({"type": "object", "additionalProperties": false,
  "properties": {"encryptYamlOutput": {"$ref": "#/$defs/flag"},
                 "delegateSelectors": {"$ref": "#/$defs/selectors"}},
  )" CAPSTAN_K8S_DEFS "}";

#undef CAPSTAN_K8S_DEFS

} // namespace capstan::plugins::kubernetes::schemas
