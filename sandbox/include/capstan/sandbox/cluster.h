// The API semantics shared by the HTTP front end and the controllers: create, update, patch,
// apply, delete with defaulting, validation, generations, managed fields and events.
#pragma once

#include "capstan/sandbox/config.h"
#include "capstan/sandbox/resources.h"
#include "capstan/sandbox/store.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace capstan::sandbox {

enum class FieldValidation { kIgnore, kWarn, kStrict };

struct WriteOptions {
  std::string manager;  // field manager
  bool dry_run = false; // dryRun=All
  FieldValidation validation = FieldValidation::kWarn;
  std::string subresource; // "", "status", "scale"
  std::vector<std::string>* warnings = nullptr;
  bool force = false; // apply: take over conflicting fields
};

struct DeleteOptions {
  std::string propagation; // "", Orphan, Background, Foreground
  std::optional<long long> grace_period_seconds;
  std::string precondition_uid;
  std::string precondition_rv;
  bool dry_run = false;
};

class Cluster {
public:
  Cluster(const std::filesystem::path& data_dir, SandboxConfig config);

  Registry& registry() { return registry_; }
  Store& store() { return *store_; }
  const SandboxConfig& config() const { return config_; }

  // Parses a request body (JSON, or YAML when yaml is true) into an object, rejecting duplicate
  // fields under strict validation; throws ApiError(400).
  nlohmann::json decode(const std::string& body, bool yaml, const ResourceType& t,
                        const WriteOptions& options) const;

  nlohmann::json get(const ResourceType& t, const std::string& ns, const std::string& name) const;
  nlohmann::json create(const ResourceType& t, const std::string& ns, nlohmann::json object,
                        const WriteOptions& options);
  nlohmann::json update(const ResourceType& t, const std::string& ns, const std::string& name,
                        nlohmann::json object, const WriteOptions& options);
  // patch_type: the request's content type (merge, json, strategic, apply).
  nlohmann::json patch(const ResourceType& t, const std::string& ns, const std::string& name,
                       const std::string& patch_type, const std::string& body,
                       const WriteOptions& options);
  // Returns the object as it is after the call (with deletionTimestamp when finalizers hold it)
  // or, when it is gone, the last state.
  nlohmann::json remove(const ResourceType& t, const std::string& ns, const std::string& name,
                        const DeleteOptions& options);

  // The autoscaling/v1 Scale of an object with a scale subresource.
  nlohmann::json scale_of(const ResourceType& t, const nlohmann::json& object) const;

  // Controller-side writes: change an object in place (status or spec); fn returns false to
  // leave it untouched. The manager is recorded in managedFields.
  ObjectPtr modify(const ResourceType& t, const std::string& ns, const std::string& name,
                   const std::function<bool(nlohmann::json&)>& fn, const std::string& manager,
                   const std::string& subresource = "");
  // Records a core/v1 Event about `involved`, folding repeats into count/lastTimestamp.
  void record_event(const nlohmann::json& involved, const std::string& type,
                    const std::string& reason, const std::string& message,
                    const std::string& component, const std::string& field_path = "");

  // A resource type by group and kind (preferred version), for controllers.
  ResourceType type_of(const std::string& group, const std::string& kind) const;

private:
  nlohmann::json prepare_create(const ResourceType& t, const std::string& ns, nlohmann::json obj,
                                const WriteOptions& options) const;
  // The object an update turns `current` into (validation, immutables, generation, ownership).
  nlohmann::json prepare_update(const ResourceType& t, const nlohmann::json& current,
                                nlohmann::json next, const WriteOptions& options,
                                bool check_rv) const;
  void check_fields_for(const ResourceType& t, nlohmann::json& object,
                        const WriteOptions& options) const;
  void check_namespace(const ResourceType& t, const std::string& ns) const;
  void after_write(const ResourceType& t, const nlohmann::json* before,
                   const nlohmann::json* after);

  SandboxConfig config_;
  Registry registry_;
  std::unique_ptr<Store> store_;
  std::mutex events_mu_; // event name cache for aggregation
  std::unordered_map<std::string, std::string> event_names_;
};

} // namespace capstan::sandbox
