// Environments (where a service runs: PreProduction or Production, with variables and overrides)
// and infrastructure definitions (the cluster, namespace and release name of an environment).
#include <regex>

#include "capstan/expression/expression.h"
#include "model/expression_check.h"
#include "model/service.h"
#include "model/variables.h"

namespace capstan::model {

using nlohmann::json;

void parse_environment(const yaml::Document& doc, Object& out, std::vector<Problem>& problems) {
  Checker check(doc.where, problems);
  const std::string at = "/environment";
  const auto* body = check.object(doc.value, "", "environment", true);
  if (body == nullptr) return;
  check.only(*body, at,
             {"identifier", "name", "description", "tags", "orgIdentifier", "projectIdentifier",
              "type", "variables", "overrides"});
  out.identifier = check.string(*body, at, "identifier", true);
  if (!out.identifier.empty()) check.identifier(out.identifier, at + "/identifier");
  out.name = check.string(*body, at, "name", true);
  auto type = check.one_of(*body, at, "type", {"PreProduction", "Production"}, true);
  auto vars = parse_variables(*body, at, check);
  for (const auto& [id, where] : secret_refs(vars)) {
    out.references.push_back({"secret", id, where, "", "an environment variable"});
  }
  json overrides = {
      {"manifests", json::array()}, {"configFiles", json::array()}, {"variables", json::array()}};
  if (const auto* o = check.object(*body, at, "overrides", false)) {
    const std::string oat = at + "/overrides";
    check.only(*o, oat, {"manifests", "configFiles", "variables"},
               {"applicationSettings", "connectionStrings"});
    overrides["manifests"] = parse_manifests(*o, oat, check, out, "environment override");
    auto ovars = parse_variables(*o, oat, check);
    for (const auto& [id, where] : secret_refs(ovars)) {
      out.references.push_back({"secret", id, where, "", "an environment override"});
    }
    overrides["variables"] = ovars;
    if (const auto* files = check.array(*o, oat, "configFiles", false)) {
      for (std::size_t i = 0; i < files->size(); ++i) {
        auto fat = yaml::pointer_append(oat + "/configFiles", i);
        const auto& wrapper = (*files)[i];
        const auto* cf =
            wrapper.is_object() ? check.object(wrapper, fat, "configFile", true) : nullptr;
        if (cf == nullptr) {
          if (!wrapper.is_object()) check.error(fat, "each config file must be a mapping");
          continue;
        }
        auto cat = fat + "/configFile";
        check.only(*cf, cat, {"identifier", "spec"});
        auto id = check.string(*cf, cat, "identifier", true);
        if (const auto* s = check.object(*cf, cat, "spec", true)) {
          check.only(*s, cat + "/spec", {"store"});
          parse_store(*s, cat + "/spec", check, out, "config file '" + id + "'");
          overrides["configFiles"].push_back({{"identifier", id}, {"spec", *s}});
        }
      }
    }
  }
  std::map<std::string, std::string> locations;
  check_object_tree(*body, at, check, locations);
  out.model = {{"identifier", out.identifier},
               {"name", out.name},
               {"description", body->value("description", "")},
               {"type", type},
               {"variables", vars},
               {"overrides", overrides},
               {"locations", locations}};
}

void parse_infrastructure(const yaml::Document& doc, Object& out, std::vector<Problem>& problems) {
  Checker check(doc.where, problems);
  const std::string at = "/infrastructureDefinition";
  const auto* body = check.object(doc.value, "", "infrastructureDefinition", true);
  if (body == nullptr) return;
  check.only(*body, at,
             {"identifier", "name", "description", "tags", "orgIdentifier", "projectIdentifier",
              "environmentRef", "deploymentType", "type", "spec", "allowSimultaneousDeployments"});
  out.identifier = check.string(*body, at, "identifier", true);
  if (!out.identifier.empty()) check.identifier(out.identifier, at + "/identifier");
  out.name = check.string(*body, at, "name", true);
  auto env = strip_scope(check.string(*body, at, "environmentRef", true));
  if (!env.empty() && check.identifier(env, at + "/environmentRef")) {
    out.references.push_back(
        {"environment", env, check.locate(at + "/environmentRef"), "", "its environment"});
  }
  auto deployment = check.string(*body, at, "deploymentType", false);
  if (!deployment.empty() && deployment != "Kubernetes") {
    check.error(at + "/deploymentType",
                "unknown deploymentType '" + deployment + "' (expected Kubernetes)");
  }
  auto type = check.one_of(*body, at, "type", {"KubernetesDirect"}, true);
  bool simultaneous = check.boolean(*body, at, "allowSimultaneousDeployments").value_or(false);
  json spec_model = json::object();
  if (const auto* spec = check.object(*body, at, "spec", true)) {
    const std::string sat = at + "/spec";
    check.only(*spec, sat, {"connectorRef", "namespace", "releaseName"});
    auto conn = check.string(*spec, sat, "connectorRef", true);
    if (!conn.empty() && !expression::has_expression(conn)) {
      auto id = strip_scope(conn);
      if (check.identifier(id, sat + "/connectorRef")) {
        out.references.push_back({"connector", id, check.locate(sat + "/connectorRef"),
                                  "K8sCluster", "the infrastructure's cluster"});
      }
      conn = id;
    }
    auto ns = check.string(*spec, sat, "namespace", true);
    static const std::regex dns1123(R"(^[a-z0-9]([-a-z0-9]*[a-z0-9])?$)");
    if (!ns.empty() && !expression::has_expression(ns) &&
        (ns.size() > 63 || !std::regex_match(ns, dns1123))) {
      check.error(sat + "/namespace", "namespace '" + ns +
                                          "' is not a valid Kubernetes namespace (lower-case "
                                          "letters, digits and '-', at most 63)");
    }
    auto release = check.string(*spec, sat, "releaseName", false);
    if (release.empty()) release = "release-<+INFRA_KEY>";
    spec_model = {{"connectorRef", conn}, {"namespace", ns}, {"releaseName", release}};
  }
  std::map<std::string, std::string> locations;
  check_object_tree(*body, at, check, locations);
  out.model = {{"identifier", out.identifier},
               {"name", out.name},
               {"description", body->value("description", "")},
               {"environmentRef", env},
               {"deploymentType", "Kubernetes"},
               {"type", type},
               {"allowSimultaneousDeployments", simultaneous},
               {"spec", spec_model},
               {"locations", locations}};
}

} // namespace capstan::model
