// Spec schemas and checks of the coordinator-run GitOps steps.
#include "model/gitops_steps.h"

#include <regex>

#include "model/duration.h"

namespace capstan::model {

using nlohmann::json;

namespace {

// A boolean, or a string: "true"/"false" as Harness UIs write them, or an expression.
constexpr const char* kFlag = R"({"type": ["boolean", "string"]})";

std::string step_schema_text(const std::string& title, const std::string& properties,
                             const std::string& required = "") {
  return R"({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": ")" +
         title + R"( step spec",
  "type": "object",
  "required": [)" +
         required + R"(],
  "additionalProperties": false,
  "properties": {
)" + properties +
         "\n  }\n}";
}

const std::string& gitops_sync_schema() {
  static const std::string s = step_schema_text("GitOpsSync", std::string(R"(
    "applicationsList": {
      "type": ["array", "string"],
      "items": {
        "anyOf": [
          {"type": "string", "minLength": 1},
          {
            "type": "object",
            "required": ["applicationName"],
            "additionalProperties": false,
            "properties": {
              "applicationName": {"type": "string", "minLength": 1},
              "agentId": {"type": "string"}
            }
          }
        ]
      }
    },
    "applicationRegex": {"type": "string", "minLength": 1},
    "prune": )") + kFlag + R"(,
    "dryRun": )" + kFlag + R"(,
    "applyOnly": )" + kFlag +
                                                                  R"(,
    "forceApply": )" + kFlag + R"(,
    "waitTillHealthy": )" + kFlag +
                                                                  R"(,
    "failOnTimeout": )" + kFlag + R"(,
    "showResourceProgress": )" + kFlag + R"(,
    "retry": )" + kFlag + R"(,
    "retryStrategy": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "limit": {"type": ["integer", "string"]},
        "baseBackoffDuration": {"type": "string"},
        "increaseBackoffByFactor": {"type": ["integer", "string"]},
        "maxBackoffDuration": {"type": "string"}
      }
    },
    "syncOptions": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "skipSchemaValidation": )" + kFlag + R"(,
        "autoCreateNamespace": )" + kFlag + R"(,
        "pruneResourcesAtLast": )" + kFlag + R"(,
        "applyOutOfSyncOnly": )" + kFlag + R"(,
        "replaceResources": )" + kFlag + R"(,
        "serverSideApply": )" + kFlag + R"(,
        "respectIgnoreDifferences": )" + kFlag + R"(,
        "prunePropagationPolicy": {"type": "string"}
      }
    })");
  return s;
}

const std::string& update_gitops_app_schema() {
  static const std::string s = step_schema_text("UpdateGitOpsApp", R"(
    "applicationName": {"type": "string", "minLength": 1},
    "agentId": {"type": "string"},
    "targetRevision": {"type": "string"},
    "helm": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "valueFiles": {"type": ["array", "string"]},
        "parameters": {"type": ["array", "string"]},
        "fileParameters": {"type": ["array", "string"]},
        "values": {"type": "string"},
        "releaseName": {"type": "string"}
      }
    },
    "kustomize": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "images": {"type": ["array", "string"], "items": {"type": "string", "minLength": 1}},
        "replicas": {"type": ["array", "string"]},
        "namePrefix": {"type": "string"},
        "nameSuffix": {"type": "string"},
        "namespace": {"type": "string"},
        "commonLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "commonAnnotations": {"type": "object", "additionalProperties": {"type": "string"}}
      }
    })");
  return s;
}

bool is_expression_text(const json& v) {
  return v.is_string() && v.get<std::string>().find("<+") != std::string::npos;
}

} // namespace

const std::string& coordinator_step_schema(std::string_view type) {
  static const std::string none;
  if (type == "GitOpsSync") return gitops_sync_schema();
  if (type == "UpdateGitOpsApp") return update_gitops_app_schema();
  return none;
}

void check_gitops_sync_spec(const json& spec, const std::string& at, Checker& check) {
  if (!spec.is_object()) return;
  const bool list = spec.contains("applicationsList") && !spec["applicationsList"].is_null() &&
                    !(spec["applicationsList"].is_array() && spec["applicationsList"].empty());
  const bool regex = spec.contains("applicationRegex") && !spec["applicationRegex"].is_null();
  if (list && regex) {
    check.error(yaml::pointer_append(at, "applicationRegex"),
                "give either applicationsList or applicationRegex, not both");
  }
  if (regex && spec["applicationRegex"].is_string() &&
      !is_expression_text(spec["applicationRegex"])) {
    try {
      std::regex re(spec["applicationRegex"].get<std::string>(), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      check.error(yaml::pointer_append(at, "applicationRegex"),
                  "applicationRegex is not a valid regular expression (" + std::string(e.what()) +
                      ")");
    }
  }
  if (const auto* rs = spec.contains("retryStrategy") ? &spec["retryStrategy"] : nullptr;
      rs != nullptr && rs->is_object()) {
    const auto rat = yaml::pointer_append(at, "retryStrategy");
    for (const char* key : {"baseBackoffDuration", "maxBackoffDuration"}) {
      if (rs->contains(key) && (*rs)[key].is_string() && !is_expression_text((*rs)[key])) {
        check.duration(*rs, rat, key, false);
      }
    }
  }
  if (const auto* so = spec.contains("syncOptions") ? &spec["syncOptions"] : nullptr;
      so != nullptr && so->is_object() && so->contains("prunePropagationPolicy")) {
    const auto& p = (*so)["prunePropagationPolicy"];
    if (p.is_string() && !is_expression_text(p)) {
      const auto v = p.get<std::string>();
      if (v != "foreground" && v != "background" && v != "orphan") {
        check.error(
            yaml::pointer_append(yaml::pointer_append(at, "syncOptions"), "prunePropagationPolicy"),
            "prunePropagationPolicy must be foreground, background or orphan, not '" + v + "'");
      }
    }
  }
}

} // namespace capstan::model
