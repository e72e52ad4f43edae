// Services: what is deployed (manifests and their stores, the primary artifact, variables,
// config files) and whether it is a GitOps or a CD service.
#include "model/service.h"

#include <algorithm>
#include <set>

#include "capstan/expression/expression.h"
#include "model/expression_check.h"
#include "model/step_types.h"
#include "model/variables.h"

namespace capstan::model {

using nlohmann::json;
using yaml::pointer_append;

namespace {

bool is_expression(const std::string& s) {
  return expression::has_expression(s);
}

// A reference that is written as a literal (not an expression or a runtime input).
void reference(Object& out, Checker& check, const std::string& kind, const std::string& value,
               const std::string& at, const std::string& expect, const std::string& role) {
  if (value.empty() || is_expression(value)) return;
  auto id = strip_scope(value);
  if (check.identifier(id, at))
    out.references.push_back({kind, id, check.locate(at), expect, role});
}

} // namespace

// A manifest's or config file's `store`: where the files are. Shared with environment
// overrides.
void parse_store(const json& owner, const std::string& at, Checker& check, Object& out,
                 const std::string& role) {
  const auto* store = check.object(owner, at, "store", true);
  if (store == nullptr) return;
  auto sat = pointer_append(at, "store");
  check.only(*store, sat, {"type", "spec"});
  auto type =
      check.one_of(*store, sat, "type", {"Git", "Github", "Gitlab", "Inline", "Local"}, true);
  const auto* spec = check.object(*store, sat, "spec", true);
  if (spec == nullptr || type.empty()) return;
  auto spat = pointer_append(sat, "spec");
  if (type == "Inline") {
    check.only(*spec, spat, {"content"});
    check.string(*spec, spat, "content", true);
    return;
  }
  if (type == "Local") {
    check.only(*spec, spat, {"paths"});
    if (check.strings(*spec, spat, "paths", true).empty() && spec->contains("paths")) {
      check.error(pointer_append(spat, "paths"), "a Local store needs at least one path");
    }
    return;
  }
  check.only(
      *spec, spat,
      {"connectorRef", "gitFetchType", "branch", "commitId", "paths", "folderPath", "repoName"});
  auto conn = check.string(*spec, spat, "connectorRef", true);
  reference(out, check, "connector", conn, pointer_append(spat, "connectorRef"), type,
            role + "'s store");
  auto fetch = check.string(*spec, spat, "gitFetchType", false);
  if (fetch.empty()) fetch = "Branch";
  if (!is_expression(fetch) && fetch != "Branch" && fetch != "Commit") {
    check.error(pointer_append(spat, "gitFetchType"),
                "unknown gitFetchType '" + fetch + "' (expected Branch or Commit)");
  }
  if (fetch == "Branch") check.string(*spec, spat, "branch", true);
  if (fetch == "Commit") check.string(*spec, spat, "commitId", true);
  check.string(*spec, spat, "repoName", false);
  check.string(*spec, spat, "folderPath", false);
  auto paths = check.strings(*spec, spat, "paths", false);
  if (paths.empty() && !spec->contains("folderPath")) {
    check.error(spat, "a Git store needs 'paths' (files or folders in the repository)");
  }
}

// `manifests: [{manifest: {identifier, type, spec}}]`; returns the manifests found.
json parse_manifests(const json& owner, const std::string& at, Checker& check, Object& out,
                     const std::string& owner_role) {
  json list = json::array();
  const auto* manifests = check.array(owner, at, "manifests", false);
  if (manifests == nullptr) return list;
  auto mat = pointer_append(at, "manifests");
  std::set<std::string> ids;
  for (std::size_t i = 0; i < manifests->size(); ++i) {
    auto eat = pointer_append(mat, i);
    const auto& wrapper = (*manifests)[i];
    if (!wrapper.is_object()) {
      check.error(eat, "each manifest must be a mapping with 'manifest'");
      continue;
    }
    check.only(wrapper, eat, {"manifest"});
    const auto* m = check.object(wrapper, eat, "manifest", true);
    if (m == nullptr) continue;
    auto at_m = pointer_append(eat, "manifest");
    auto id = check.string(*m, at_m, "identifier", true);
    if (!id.empty() && check.identifier(id, pointer_append(at_m, "identifier")) &&
        !ids.insert(id).second) {
      check.error(pointer_append(at_m, "identifier"), "manifest '" + id + "' is declared twice");
    }
    auto type = check.string(*m, at_m, "type", true);
    check.only(*m, at_m, {"identifier", "type", "spec"});
    static const std::vector<std::string> known = {"K8sManifest", "Values", "ReleaseRepo",
                                                   "DeploymentRepo"};
    if (!type.empty() && std::find(known.begin(), known.end(), type) == known.end()) {
      check.error(pointer_append(at_m, "type"), "manifest type '" + type +
                                                    "' is not supported (expected " +
                                                    join_names(known) + ")");
    }
    const auto* spec = check.object(*m, at_m, "spec", true);
    if (spec != nullptr) {
      auto sat = pointer_append(at_m, "spec");
      if (type == "K8sManifest") {
        check.only(*spec, sat,
                   {"store", "valuesPaths", "skipResourceVersioning", "enableDeclarativeRollback"});
        check.strings(*spec, sat, "valuesPaths", false);
        check.boolean(*spec, sat, "skipResourceVersioning");
        check.boolean(*spec, sat, "enableDeclarativeRollback");
      } else {
        check.only(*spec, sat, {"store"});
      }
      parse_store(*spec, sat, check, out, "manifest '" + id + "'");
    }
    json entry = {{"identifier", id},
                  {"type", type},
                  {"spec", spec != nullptr ? *spec : json::object()},
                  {"location", check.locate(at_m)},
                  {"from", owner_role}};
    list.push_back(std::move(entry));
  }
  return list;
}

void parse_service(const yaml::Document& doc, Object& out, std::vector<Problem>& problems) {
  Checker check(doc.where, problems);
  const std::string at = "/service";
  const auto* body = check.object(doc.value, "", "service", true);
  if (body == nullptr) return;
  check.only(*body, at,
             {"identifier", "name", "description", "tags", "orgIdentifier", "projectIdentifier",
              "gitOpsEnabled", "serviceDefinition"});
  out.identifier = check.string(*body, at, "identifier", true);
  if (!out.identifier.empty()) check.identifier(out.identifier, at + "/identifier");
  out.name = check.string(*body, at, "name", true);
  bool gitops = check.boolean(*body, at, "gitOpsEnabled").value_or(false);
  json model = {{"identifier", out.identifier},
                {"name", out.name},
                {"description", body->value("description", "")},
                {"gitOpsEnabled", gitops},
                {"type", "Kubernetes"},
                {"manifests", json::array()},
                {"artifacts", json::object()},
                {"variables", json::array()},
                {"configFiles", json::array()},
                {"location", check.locate(at)}};
  const auto* def = check.object(*body, at, "serviceDefinition", true);
  if (def != nullptr) {
    const std::string dat = at + "/serviceDefinition";
    check.only(*def, dat, {"type", "spec"});
    auto type = check.string(*def, dat, "type", true);
    if (!type.empty() && type != "Kubernetes") {
      check.error(dat + "/type", "unknown service type '" + type + "' (expected Kubernetes)");
    }
    const auto* spec = check.object(*def, dat, "spec", true);
    if (spec != nullptr) {
      const std::string sat = dat + "/spec";
      check.only(*spec, sat, {"manifests", "artifacts", "variables", "configFiles"},
                 {"manifestConfigurations", "hooks"});
      json manifests = parse_manifests(*spec, sat, check, out, "service");
      // A service is either a GitOps or a CD service, and its manifests say which it deploys.
      for (std::size_t i = 0; i < manifests.size(); ++i) {
        auto type_i = manifests[i]["type"].get<std::string>();
        auto family = manifest_family(type_i);
        if (family == StepFamily::kGeneric) continue;
        bool wants_gitops = family == StepFamily::kGitOps;
        if (wants_gitops != gitops) {
          check.error(pointer_append(pointer_append(sat + "/manifests", i), "manifest") + "/type",
                      gitops ? "a GitOps service (gitOpsEnabled: true) takes ReleaseRepo and "
                               "DeploymentRepo manifests, not " +
                                   type_i
                             : "a CD service (gitOpsEnabled: false) takes K8sManifest and Values "
                               "manifests, not " +
                                   type_i + "; set gitOpsEnabled: true for a GitOps service");
        }
      }
      model["manifests"] = std::move(manifests);
      if (const auto* arts = check.object(*spec, sat, "artifacts", false)) {
        const std::string aat = sat + "/artifacts";
        check.only(*arts, aat, {"primary"}, {"sidecars"});
        if (const auto* primary = check.object(*arts, aat, "primary", true)) {
          const std::string pat = aat + "/primary";
          check.only(*primary, pat, {"primaryArtifactRef", "sources"});
          auto ref = check.string(*primary, pat, "primaryArtifactRef", false);
          json sources = json::array();
          std::set<std::string> ids;
          if (const auto* list = check.array(*primary, pat, "sources", true)) {
            for (std::size_t i = 0; i < list->size(); ++i) {
              auto sat_i = pointer_append(pat + "/sources", i);
              const auto& src = (*list)[i];
              if (!src.is_object()) {
                check.error(sat_i, "each artifact source must be a mapping");
                continue;
              }
              check.only(src, sat_i, {"identifier", "type", "spec"});
              auto id = check.string(src, sat_i, "identifier", true);
              if (!id.empty() && check.identifier(id, sat_i + "/identifier") &&
                  !ids.insert(id).second) {
                check.error(sat_i + "/identifier",
                            "artifact source '" + id + "' is declared twice");
              }
              auto stype = check.string(src, sat_i, "type", true);
              if (!stype.empty() && stype != "DockerRegistry") {
                check.error(sat_i + "/type", "artifact source type '" + stype +
                                                 "' is not supported (expected DockerRegistry)");
              }
              const auto* s = check.object(src, sat_i, "spec", true);
              if (s != nullptr) {
                auto sspec = sat_i + "/spec";
                check.only(*s, sspec, {"connectorRef", "imagePath", "tag", "tagRegex", "digest"});
                reference(out, check, "connector", check.string(*s, sspec, "connectorRef", false),
                          sspec + "/connectorRef", "DockerRegistry", "the artifact's registry");
                check.string(*s, sspec, "imagePath", true);
                if (!s->contains("tagRegex") && !s->contains("digest")) {
                  check.string(*s, sspec, "tag", true);
                }
                check.string(*s, sspec, "tagRegex", false);
                check.string(*s, sspec, "digest", false);
              }
              sources.push_back({{"identifier", id},
                                 {"type", stype},
                                 {"spec", s != nullptr ? *s : json::object()},
                                 {"location", check.locate(sat_i)}});
            }
          }
          if (!ref.empty() && !is_expression(ref) &&
              std::none_of(sources.begin(), sources.end(),
                           [&](const json& s) { return s["identifier"] == ref; })) {
            check.error(pat + "/primaryArtifactRef",
                        "primaryArtifactRef '" + ref + "' names no artifact source");
          }
          if (ref.empty() && sources.size() > 1) {
            check.error(pat, "with several artifact sources, 'primaryArtifactRef' says which one "
                             "is deployed (or <+input> to choose at run time)");
          }
          model["artifacts"] = {{"primaryArtifactRef", ref}, {"sources", sources}};
        }
      }
      auto vars = parse_variables(*spec, sat, check);
      for (const auto& [id, where] : secret_refs(vars)) {
        out.references.push_back({"secret", id, where, "", "a service variable"});
      }
      model["variables"] = vars;
      if (const auto* files = check.array(*spec, sat, "configFiles", false)) {
        json list = json::array();
        for (std::size_t i = 0; i < files->size(); ++i) {
          auto fat = pointer_append(sat + "/configFiles", i);
          const auto& wrapper = (*files)[i];
          if (!wrapper.is_object()) {
            check.error(fat, "each config file must be a mapping with 'configFile'");
            continue;
          }
          check.only(wrapper, fat, {"configFile"});
          const auto* cf = check.object(wrapper, fat, "configFile", true);
          if (cf == nullptr) continue;
          auto cat = fat + "/configFile";
          check.only(*cf, cat, {"identifier", "spec"});
          auto id = check.string(*cf, cat, "identifier", true);
          if (!id.empty()) check.identifier(id, cat + "/identifier");
          const auto* s = check.object(*cf, cat, "spec", true);
          if (s != nullptr) {
            check.only(*s, cat + "/spec", {"store"});
            parse_store(*s, cat + "/spec", check, out, "config file '" + id + "'");
          }
          list.push_back({{"identifier", id}, {"spec", s != nullptr ? *s : json::object()}});
        }
        model["configFiles"] = std::move(list);
      }
    }
    std::map<std::string, std::string> locations;
    check_object_tree(*def, dat, check, locations);
    model["locations"] = locations;
  }
  out.model = std::move(model);
}

} // namespace capstan::model
