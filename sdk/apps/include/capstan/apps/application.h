// Argo CD Application documents (argoproj.io/v1alpha1): the fields Capstan reconciles, parsed
// and validated with the file, line and column of every fault.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "capstan/yaml/yaml.h"

namespace capstan::apps {

inline constexpr const char* kApiVersion = "argoproj.io/v1alpha1";
// metadata.finalizers entry asking that an Application's resources be deleted with it (Argo
// CD's cascading deletion).
inline constexpr const char* kResourcesFinalizer = "resources-finalizer.argocd.argoproj.io";
// Whether the document carries kResourcesFinalizer (or its background/foreground variants).
bool deletes_resources(const nlohmann::json& document);

// An invalid Application or ApplicationSet. what() reads "file:line:column: message" (the
// position is left out when unknown).
class Error : public std::runtime_error {
public:
  Error(std::string where, std::string message);
  const std::string& where() const { return where_; }
  const std::string& message() const { return message_; }

private:
  std::string where_;
  std::string message_;
};

struct DirectoryOptions {
  bool recurse = false;
  std::string include; // glob on paths relative to the source path; "" includes everything
  std::string exclude; // glob; "" excludes nothing
};

struct KustomizeOptions {
  std::string name_prefix;
  std::string name_suffix;
  std::string namespace_;
  std::map<std::string, std::string> common_labels;
  std::map<std::string, std::string> common_annotations;
  std::vector<std::string> images; // "name=newname:tag", "name:tag", "name@digest"
  bool empty() const {
    return name_prefix.empty() && name_suffix.empty() && namespace_.empty() &&
           common_labels.empty() && common_annotations.empty() && images.empty();
  }
};

struct Source {
  std::string repo_url;
  std::string path = ".";
  std::string target_revision = "HEAD"; // branch, tag, commit or HEAD
  std::optional<DirectoryOptions> directory;
  std::optional<KustomizeOptions> kustomize;
};

struct Destination {
  std::string server; // a cluster's API URL ...
  std::string name;   // ... or its name: exactly one of the two
  std::string namespace_;
};

struct Backoff {
  std::chrono::milliseconds duration{5000};
  int factor = 2;
  std::chrono::milliseconds max_duration{180000};
  // The wait before retry number `attempt` (1-based): duration * factor^(attempt-1), capped.
  std::chrono::milliseconds delay(int attempt) const;
};

struct Retry {
  int limit = 0; // retries after the first attempt; negative: without end
  Backoff backoff;
};

struct SyncOptions {
  bool create_namespace = false;
  bool prune_last = false;
  bool apply_out_of_sync_only = false;
  bool replace = false;
  bool server_side_apply = false;
  bool validate = true;
  bool respect_ignore_differences = false;
  std::string prune_propagation_policy = "foreground"; // foreground, background, orphan
};

// Sets one Argo CD sync option written "Name=value" (CreateNamespace=true, Validate=false,
// PrunePropagationPolicy=orphan, ...); throws std::invalid_argument saying what is wrong.
void set_sync_option(SyncOptions& options, const std::string& item);

struct SyncPolicy {
  bool automated = false;
  bool prune = false;
  bool self_heal = false;
  bool allow_empty = false;
  SyncOptions options;
  std::optional<Retry> retry;
};

// Which resources a rule applies to (empty fields match anything) and which parts of them are
// left out of the comparison.
struct IgnoreDifference {
  std::string group;
  std::string kind;
  std::string name;
  std::string namespace_;
  std::vector<std::string> json_pointers;
  std::vector<std::string> managed_fields_managers;
  bool matches(std::string_view group, std::string_view kind, std::string_view ns,
               std::string_view name) const;
};

struct Application {
  std::string name;
  std::string namespace_; // where the Application object itself lives
  std::string project = "default";
  Source source;
  Destination destination;
  SyncPolicy sync_policy;
  std::vector<IgnoreDifference> ignore_differences;
  int revision_history_limit = 10;
  // metadata.deletionTimestamp is set: it is being deleted with its resources, and is never
  // synced again (automated sync is off whatever syncPolicy says).
  bool deleting = false;
  nlohmann::json document; // as written
  std::string where;       // "file:line:column" of the document
};

// Parses one Application document. Throws Error naming the field and its position for unknown
// or malformed fields, and for Argo CD features Capstan does not reconcile (Helm sources,
// multiple sources, config management plugins), saying so.
Application parse_application(const nlohmann::json& document, const yaml::SourceMap& where = {});

// A duration in Go's notation ("5s", "3m", "1h30m", "250ms"). Throws std::invalid_argument.
std::chrono::milliseconds parse_duration(std::string_view text);

} // namespace capstan::apps
