// Argo CD Application documents (apiVersion argoproj.io/v1alpha1, kind Application), applied
// with `capstan apply -f` beside the Harness-shaped kinds.
#include <capstan/apps/application.h>

#include "model/object.h"

namespace capstan::model {

using nlohmann::json;

void parse_application_object(const yaml::Document& doc, Object& out,
                              std::vector<Problem>& problems) {
  apps::Application app;
  try {
    app = apps::parse_application(doc.value, doc.where);
  } catch (const apps::Error& e) {
    problems.push_back({e.where(), e.message()});
    return;
  }
  out.identifier = app.name;
  out.name = app.name;
  const auto& d = app.destination;
  if (!d.name.empty()) {
    out.references.push_back({"gitopsCluster", d.name, doc.where.locate("/spec/destination/name"),
                              "", "application '" + app.name + "' (its destination)"});
  }
  out.model = {
      {"name", app.name},
      {"project", app.project},
      {"repoURL", app.source.repo_url},
      {"path", app.source.path},
      {"targetRevision", app.source.target_revision},
      {"destination", {{"server", d.server}, {"name", d.name}, {"namespace", d.namespace_}}},
      {"automated", app.sync_policy.automated},
      {"document", doc.value}};
}

} // namespace capstan::model
