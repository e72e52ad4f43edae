// Argo CD ApplicationSets: generators (list, clusters, git files, git directories, matrix of
// two) produce parameter sets, which a generator's post selector (`selector:`) may narrow; the
// template, in the default {{param}} mode or the goTemplate mode, turns each into an Application.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "capstan/apps/application.h"
#include "capstan/yaml/yaml.h"

namespace capstan::apps {

// The files of one repository at one revision, as the git generators read them.
struct RepoTree {
  std::vector<std::string> files;                           // every file, '/'-separated
  std::function<std::string(const std::string& path)> read; // a file's content
};

// A cluster the clusters generator offers (name, server URL, labels).
struct GeneratorCluster {
  std::string name;
  std::string server;
  std::map<std::string, std::string> labels;
};

struct GenerateContext {
  // Serves git generators: the tree of repo_url at revision. Throwing fails the generation
  // with the exception's message.
  std::function<RepoTree(const std::string& repo_url, const std::string& revision)> repo;
  std::vector<GeneratorCluster> clusters;
};

struct ApplicationSet {
  std::string name;
  std::string namespace_;
  bool go_template = false;
  bool missing_key_error = false; // goTemplateOptions: ["missingkey=error"]
  // false: every generated Application carries kResourcesFinalizer (its resources are deleted
  // with it, as in Argo CD).
  bool preserve_resources_on_deletion = false;
  // spec.syncPolicy.applicationsSync: what following the generators may do to the generated
  // Applications: "sync" (create, update, delete), "create-only", "create-update",
  // "create-delete".
  std::string applications_sync = "sync";
  nlohmann::json generators; // spec.generators as written
  nlohmann::json template_;  // spec.template as written
  nlohmann::json document;
  yaml::SourceMap where;
};

// Parses and checks an ApplicationSet (generator kinds, their required fields, the template's
// shape). Throws Error with file:line:column.
ApplicationSet parse_application_set(const nlohmann::json& document,
                                     const yaml::SourceMap& where = {});

// One parameter set: in the default mode a flat map of strings ("path.basename", "cluster"),
// in goTemplate mode nested values (.path.basename, .path.segments).
using Params = nlohmann::json;

// The parameter sets of generator number `index` of the set, after its post selector.
std::vector<Params> generate_params(const ApplicationSet& set, std::size_t index,
                                    const GenerateContext& context);

// Every Application the set generates, in generator order, each validated as an Application
// (names unique). Throws Error naming the generator (and its position) at fault.
std::vector<Application> generate_applications(const ApplicationSet& set,
                                               const GenerateContext& context);

// One ApplicationSet status condition as Argo CD writes it: {type, status "True"/"False",
// reason, message, lastTransitionTime (now, RFC 3339)}.
nlohmann::json set_condition(const std::string& type, bool status, const std::string& reason,
                             const std::string& message);

// Argo CD's normalisation of a value into a DNS name: lower case, characters other than
// [a-z0-9-.] replaced with '-', cut to 253 characters, '-' and '.' trimmed at both ends.
std::string sanitize_name(const std::string& text);

} // namespace capstan::apps
