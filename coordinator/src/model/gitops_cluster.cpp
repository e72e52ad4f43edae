// The gitopsCluster kind: a cluster a GitOps agent keeps equal to Git, named through a
// K8sCluster connector (its API server) and linked to the environments it serves.
#include "model/object.h"

namespace capstan::model {

using nlohmann::json;

std::vector<std::string> parse_environment_list(Checker& check, const json& body,
                                                const std::string& at, const std::string& key,
                                                Object& out, const std::string& role) {
  std::vector<std::string> envs;
  auto names = check.strings(body, at, key, true);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string ptr = at + "/" + key + "/" + std::to_string(i);
    auto id = strip_scope(names[i]);
    if (!check.identifier(id, ptr)) continue;
    if (std::find(envs.begin(), envs.end(), id) != envs.end()) {
      check.error(ptr, "environment '" + id + "' is listed twice");
      continue;
    }
    out.references.push_back({"environment", id, check.locate(ptr), "", role});
    envs.push_back(id);
  }
  return envs;
}

void parse_gitops_cluster(const yaml::Document& doc, Object& out, std::vector<Problem>& problems) {
  Checker check(doc.where, problems);
  const std::string at = "/gitopsCluster";
  const auto* body = check.object(doc.value, "", "gitopsCluster", true);
  if (body == nullptr) return;
  check.only(*body, at,
             {"identifier", "name", "description", "tags", "orgIdentifier", "projectIdentifier",
              "connectorRef", "environments", "agentIdentifier"});
  out.identifier = check.string(*body, at, "identifier", true);
  if (!out.identifier.empty()) check.identifier(out.identifier, at + "/identifier");
  out.name = check.string(*body, at, "name", true);
  auto conn = strip_scope(check.string(*body, at, "connectorRef", true));
  if (!conn.empty() && check.identifier(conn, at + "/connectorRef")) {
    out.references.push_back({"connector", conn, check.locate(at + "/connectorRef"), "K8sCluster",
                              "GitOps cluster '" + out.identifier + "' (its API server)"});
  }
  std::vector<std::string> envs;
  if (check.array(*body, at, "environments", true) != nullptr) {
    envs = parse_environment_list(check, *body, at, "environments", out,
                                  "GitOps cluster '" + out.identifier + "'");
    if ((*body)["environments"].empty()) {
      check.error(at + "/environments",
                  "a GitOps cluster serves at least one environment: list their identifiers");
    }
  }
  out.model = {{"identifier", out.identifier},
               {"name", out.name},
               {"description", body->value("description", "")},
               {"connectorRef", conn},
               {"environments", envs},
               {"agentIdentifier", body->value("agentIdentifier", "")}};
}

} // namespace capstan::model
