// The resource types the sandbox serves: built-in kinds plus those CRDs declare at run time.
#pragma once

#include "capstan/sandbox/schema.h"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

namespace capstan::sandbox {

struct PrinterColumn {
  std::string name, type, json_path, description, format;
  int priority = 0;
};

struct ResourceType {
  std::string group; // "" for core
  std::string version;
  std::string kind;
  std::string list_kind;
  std::string plural;
  std::string singular;
  bool namespaced = true;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  bool status_subresource = false;
  bool scale_subresource = false;
  // For custom resources with a scale subresource: where the replica count lives.
  std::string spec_replicas_path, status_replicas_path, label_selector_path;
  bool custom = false; // declared by a CRD (merge patch only, generic storage)
  bool storage = true; // the version objects are stored in (CRDs)
  SchemaPtr schema;    // never null
  std::vector<PrinterColumn> printer_columns; // CRD additionalPrinterColumns

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  // "deployments.apps", "pods": how errors and RBAC name the resource.
  std::string qualified() const { return group.empty() ? plural : plural + "." + group; }
  // Storage key prefix: objects of every served version of a group/resource share storage.
  std::string storage_key() const { return group + "/" + plural; }
};

class Registry {
public:
  Registry(); // the built-in kinds

  std::optional<ResourceType> find(const std::string& group, const std::string& version,
                                   const std::string& plural) const;
  std::optional<ResourceType> find_kind(const std::string& group, const std::string& version,
                                        const std::string& kind) const;
  std::vector<ResourceType> all() const;
  // group -> versions (preferred first)
  std::vector<std::pair<std::string, std::vector<std::string>>> groups() const;

  // Replaces the types a CRD declares (by CRD name); an empty list removes them.
  void set_custom(const std::string& crd_name, std::vector<ResourceType> types);

private:
  mutable std::shared_mutex mu_; // CRD changes come from request threads
  std::vector<ResourceType> builtin_;
  std::map<std::string, std::vector<ResourceType>> custom_;
};

// The resource types a CRD object declares (one per served version); throws ApiError(422) when
// the CRD is not usable.
std::vector<ResourceType> types_from_crd(const nlohmann::json& crd);

} // namespace capstan::sandbox
