// Blue-green deployments: the managed workload runs as <name>-blue or <name>-green
// (harness.io/color), a primary Service sends live traffic to one colour and a stage Service
// to the other, and a swap exchanges their selectors.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "capstan/manifest/resource.h"

namespace capstan::manifest {

inline constexpr const char* kBlue = "blue";
inline constexpr const char* kGreen = "green";

// blue ↔ green; throws ManifestError for anything else.
std::string other_color(std::string_view color);

struct BlueGreenPlan {
  std::vector<Resource> resources; // what the deploy step applies
  std::string primary_color;       // what the primary Service selects (live traffic)
  std::string stage_color;         // the colour being deployed
  ResourceId workload;             // the renamed workload, <name>-<stage_color>
  std::string primary_service;
  std::string stage_service;
  bool stage_service_created = false; // cloned from the primary as <primary>-stage
};

// Prepares a blue-green deployment from the manifests (namespaces already defaulted).
// The primary Service is the one annotated harness.io/primary-service: "true", or the only
// Service; the stage Service is the one annotated harness.io/stage-service: "true", or a clone
// of the primary named <primary>-stage. `live_color` is the colour the primary Service selects
// in the cluster now ("" when it does not exist yet, which makes green live and blue staged).
BlueGreenPlan prepare_blue_green(std::vector<Resource> resources, const std::string& live_color);

// The harness.io/color a Service selects ("" when none).
std::string selector_color(const nlohmann::json& service);

// The swap: exchanges the harness.io/color selectors of the two Services (objects as read from
// the cluster). Throws ManifestError when either selects no colour.
void swap_service_selectors(nlohmann::json& primary, nlohmann::json& stage);

} // namespace capstan::manifest
