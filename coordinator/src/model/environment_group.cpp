// The environmentGroup kind: a named set of environments (Harness's environment groups). A
// GitOps stage deploys to a group's environments with `spec.environmentGroup`; release repo
// paths name the group with <+envgroup.name> and <+envgroup.identifier>.
#include "model/object.h"

namespace capstan::model {

using nlohmann::json;

void parse_environment_group(const yaml::Document& doc, Object& out,
                             std::vector<Problem>& problems) {
  Checker check(doc.where, problems);
  const std::string at = "/environmentGroup";
  const auto* body = check.object(doc.value, "", "environmentGroup", true);
  if (body == nullptr) return;
  check.only(*body, at,
             {"identifier", "name", "description", "tags", "orgIdentifier", "projectIdentifier",
              "envIdentifiers", "color"});
  out.identifier = check.string(*body, at, "identifier", true);
  if (!out.identifier.empty()) check.identifier(out.identifier, at + "/identifier");
  out.name = check.string(*body, at, "name", true);
  std::vector<std::string> envs;
  if (check.array(*body, at, "envIdentifiers", true) != nullptr) {
    envs = parse_environment_list(check, *body, at, "envIdentifiers", out,
                                  "environment group '" + out.identifier + "'");
  }
  json tags = json::object();
  if (const auto* t = check.object(*body, at, "tags", false)) tags = *t;
  out.model = {{"identifier", out.identifier},
               {"name", out.name},
               {"description", check.string(*body, at, "description", false)},
               {"tags", tags},
               {"envIdentifiers", envs}};
}

} // namespace capstan::model
