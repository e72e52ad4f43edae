// Secrets (SecretText) and user groups: small objects other objects refer to.
#include "model/object.h"

namespace capstan::model {

using nlohmann::json;

void parse_secret(const yaml::Document& doc, Object& out, std::vector<Problem>& problems) {
  Checker check(doc.where, problems);
  const std::string at = "/secret";
  const auto* body = check.object(doc.value, "", "secret", true);
  if (body == nullptr) return;
  check.only(*body, at,
             {"identifier", "name", "description", "tags", "orgIdentifier", "projectIdentifier",
              "type", "spec"});
  out.identifier = check.string(*body, at, "identifier", true);
  if (!out.identifier.empty()) check.identifier(out.identifier, at + "/identifier", true);
  out.name = check.string(*body, at, "name", true);
  auto type = check.string(*body, at, "type", true);
  if (!type.empty() && type != "SecretText") {
    check.error(at + "/type", "unknown secret type '" + type +
                                  "' (this coordinator stores SecretText: put files, keys and "
                                  "certificates in a SecretText value)");
  }
  std::string manager = "harnessSecretManager";
  if (const auto* spec = check.object(*body, at, "spec", true)) {
    const std::string sat = at + "/spec";
    check.only(*spec, sat, {"secretManagerIdentifier", "valueType", "value"});
    auto m = check.string(*spec, sat, "secretManagerIdentifier", false);
    if (!m.empty() && m != "harnessSecretManager" && m != "account.harnessSecretManager" &&
        m != "capstan") {
      check.error(sat + "/secretManagerIdentifier",
                  "secret manager '" + m +
                      "' is not available: secrets are kept by the coordinator "
                      "(harnessSecretManager)");
    }
    auto value_type = check.string(*spec, sat, "valueType", false);
    if (!value_type.empty() && value_type != "Inline") {
      check.error(sat + "/valueType", "unknown valueType '" + value_type + "' (expected Inline)");
    }
    if (const auto* v = check.member(*spec, sat, "value", false)) {
      if (v->is_string()) {
        out.secret_value = v->get<std::string>();
      } else if (v->is_number() || v->is_boolean()) {
        out.secret_value = v->dump();
      } else {
        check.error(sat + "/value", "a secret's value must be a string");
      }
    }
  }
  out.model = {{"identifier", out.identifier},
               {"name", out.name},
               {"description", body->value("description", "")},
               {"type", "SecretText"},
               {"secretManagerIdentifier", manager}};
}

void parse_user_group(const yaml::Document& doc, Object& out, std::vector<Problem>& problems) {
  Checker check(doc.where, problems);
  const std::string at = "/userGroup";
  const auto* body = check.object(doc.value, "", "userGroup", true);
  if (body == nullptr) return;
  check.only(*body, at,
             {"identifier", "name", "description", "tags", "orgIdentifier", "projectIdentifier",
              "users", "notificationConfigs"});
  out.identifier = check.string(*body, at, "identifier", true);
  if (!out.identifier.empty()) check.identifier(out.identifier, at + "/identifier");
  out.name = check.string(*body, at, "name", true);
  auto users = check.strings(*body, at, "users", false);
  out.model = {{"identifier", out.identifier},
               {"name", out.name},
               {"description", body->value("description", "")},
               {"users", users}};
}

} // namespace capstan::model
