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

// One application as the API lists it: its applied document's metadata and spec and its last
// status as stored JSON text (passed on without parsing), and its assignment (`status` left
// empty; none yet when no delegate has been looked for).
struct AppListItem {
  std::string name;
  std::string project;
  std::string metadata_json;
  std::string spec_json;
  std::string status_json; // "{}" when none
  std::optional<AppStateRecord> state;
  // Why its stored model or status cannot be read (damaged on disk), naming the column; the
  // values that could not be read are then empty.
  std::string unreadable;
};

} // namespace capstan::store
