// Argo CD ApplicationSet documents (apiVersion argoproj.io/v1alpha1, kind ApplicationSet),
// applied with `capstan apply -f`; a delegate renders them and the engine follows the result.
#include <capstan/apps/application_set.h>

#include "model/object.h"

namespace capstan::model {

using nlohmann::json;

namespace {

// The git generators' repositories (matrices included), for the push webhook.
void set_repositories(const json& generators, json& out) {
  if (!generators.is_array()) return;
  for (const auto& g : generators) {
    if (!g.is_object()) continue;
    if (g.contains("git") && g["git"].is_object()) {
      const std::string revision = g["git"].value("revision", "HEAD");
      out.push_back({{"repoURL", g["git"].value("repoURL", "")},
                     {"revision", revision.empty() ? "HEAD" : revision}});
    }
    if (g.contains("matrix") && g["matrix"].is_object()) {
      set_repositories(g["matrix"].value("generators", json::array()), out);
    }
  }
}

} // namespace

void parse_application_set_object(const yaml::Document& doc, Object& out,
                                  std::vector<Problem>& problems) {
  apps::ApplicationSet set;
  try {
    set = apps::parse_application_set(doc.value, doc.where);
  } catch (const apps::Error& e) {
    problems.push_back({e.where(), e.message()});
    return;
  }
  out.identifier = set.name;
  out.name = set.name;
  json repos = json::array();
  set_repositories(set.generators, repos);
  out.model = {{"name", set.name},
               {"goTemplate", set.go_template},
               {"preserveResourcesOnDeletion", set.preserve_resources_on_deletion},
               {"applicationsSync", set.applications_sync},
               {"repositories", repos},
               {"document", doc.value}};
}

} // namespace capstan::model
