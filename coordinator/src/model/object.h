// Applied objects: the documents of `capstan apply`, recognised by kind and validated.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "capstan/yaml/yaml.h"
#include "model/problem.h"

namespace capstan::model {

struct SourceFile {
  std::string name; // as the user named it, for messages
  std::string content;
  std::string dir = {}; // the absolute folder of the file, when known (Local stores start there)
};

// A step type used by an object, with where it is used, for checks against the step types
// that delegates provide.
struct StepTypeUse {
  std::string type;
  std::string location;                           // "file:line:column" of the step's `type`
  std::string step;                               // the step's identifier
  nlohmann::json spec = nlohmann::json::object(); // the step's spec as written
  // "file:line:column" of every node of the spec, by JSON pointer within it ("" is the spec).
  std::map<std::string, std::string> spec_locations;
};

// An object another one refers to; `expect` narrows what it must be (a connector type such as
// "K8sCluster", a list like "Git|Github|Gitlab"), empty for anything of the kind.
struct Reference {
  std::string kind;
  std::string identifier;
  std::string location;
  std::string expect;
  std::string role; // what the reference is for, in messages: "the infrastructure's connector"
};

struct Object {
  std::string kind; // "pipeline", "service", ...
  std::string identifier;
  std::string name;
  std::string yaml;        // the document's text as applied (secrets: without the value)
  nlohmann::json document; // the document as JSON (secrets: without the value)
  nlohmann::json model;    // the validated model
  std::string source;      // "file:line" where the document starts
  std::string file;        // the file as named
  int line_offset = 0;     // lines of the file before the document's text
  std::string base_dir;    // SourceFile::dir
  std::vector<StepTypeUse> step_types;
  std::vector<Reference> references;
  // A secret's value: kept in memory only until the engine encrypts it.
  std::optional<std::string> secret_value;
};

// One kind of object `capstan apply` accepts.
struct KindSpec {
  std::string name;                 // the document's top-level key: "service"
  std::vector<std::string> aliases; // other names the CLI and API accept: "services", "svc"
  // Validates the document and fills identifier, name, model, references and step_types; the
  // caller fills kind, document, yaml and source. Problems name file:line:column.
  std::function<void(const yaml::Document& doc, Object& out, std::vector<Problem>& problems)> parse;
};

// The kinds this coordinator understands, in the order `capstan get` lists them.
const std::vector<KindSpec>& kinds();
// A kind by name or alias (case-insensitive); nullptr when unknown.
const KindSpec* find_kind(const std::string& name_or_alias);

// Parses and validates every document of every file. Empty documents are skipped. Throws
// ValidationError with every problem found (YAML syntax, structure, two documents for the same
// object); nothing is returned half-validated.
std::vector<Object> parse_objects(const std::vector<SourceFile>& files);

// Parses one stored document again (its YAML text, possibly with runtime inputs filled in) with
// its kind's parser; throws ValidationError.
Object parse_object(const std::string& kind, const std::string& yaml_text,
                    const std::string& file_name);

// The kinds' parsers (one file each).
void parse_pipeline_object(const yaml::Document& doc, Object& out, std::vector<Problem>& problems);
void parse_connector(const yaml::Document& doc, Object& out, std::vector<Problem>& problems);
void parse_secret(const yaml::Document& doc, Object& out, std::vector<Problem>& problems);
void parse_service(const yaml::Document& doc, Object& out, std::vector<Problem>& problems);
void parse_environment(const yaml::Document& doc, Object& out, std::vector<Problem>& problems);
void parse_gitops_cluster(const yaml::Document& doc, Object& out, std::vector<Problem>& problems);
void parse_infrastructure(const yaml::Document& doc, Object& out, std::vector<Problem>& problems);
void parse_user_group(const yaml::Document& doc, Object& out, std::vector<Problem>& problems);
void parse_environment_group(const yaml::Document& doc, Object& out,
                             std::vector<Problem>& problems);
// body[key]: a list of environment identifiers, each unique; each becomes a reference of `out`
// (by `role`, e.g. "GitOps cluster 'x'").
std::vector<std::string> parse_environment_list(Checker& check, const nlohmann::json& body,
                                                const std::string& at, const std::string& key,
                                                Object& out, const std::string& role);
// Argo CD Application documents (model/application.cpp).
void parse_application_object(const yaml::Document& doc, Object& out,
                              std::vector<Problem>& problems);
// Argo CD ApplicationSet documents (model/application_set.cpp).
void parse_application_set_object(const yaml::Document& doc, Object& out,
                                  std::vector<Problem>& problems);

} // namespace capstan::model
