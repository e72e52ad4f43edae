// GitOps applications' runtime state: the assignment (delegate instance, epoch) and the last
// status reported for it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace capstan::store {

struct AppStateRecord {
  std::string name;
  std::uint64_t epoch = 0; // of the current (or last) assignment; grows on every new one
  std::string instance_id; // the delegate instance holding it; "" while unassigned
  std::string delegate;    // its name
  std::string plugin;      // the reconciler plugin
  std::int64_t assigned_at = 0;
  std::string message;                              // why it is not assigned, "" when it is
  nlohmann::json status = nlohmann::json::object(); // as the reconciler reported it
  std::uint64_t status_epoch = 0;                   // the assignment that reported it
  std::int64_t status_at = 0;
};

// One application of a listing: its applied document and its runtime state (none yet when no
// delegate has been looked for).
struct AppListItem {
  std::string name;
  std::string project;
  nlohmann::json document;
  std::optional<AppStateRecord> state;
};

} // namespace capstan::store
