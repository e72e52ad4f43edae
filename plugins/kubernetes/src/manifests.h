// The stage's manifests rendered into objects: stores fetched, values layered in Harness's
// order, Go templates run, namespaces defaulted.
#pragma once

#include <capstan/manifest/loader.h>
#include <capstan/sdk/plugin.h>

#include <string>
#include <vector>

#include "context.h"
#include "stores.h"

namespace capstan::plugins::kubernetes {

struct RenderSpec {
  std::vector<std::string> only_files;            // K8sApply filePaths, K8sDelete manifestPaths
  bool skip_rendering = false;                    // K8sApply skipRendering
  std::vector<manifest::ValuesFile> extra_values; // K8sApply overrides (highest priority)
};

struct Rendered {
  std::vector<manifest::Resource> resources; // to apply (skip-file-for-deploy files left out)
  std::vector<manifest::RenderedFile> files;
  bool skip_versioning = false; // the K8sManifest's skipResourceVersioning
};

// Throws sdk::StepError (InvalidInput naming file and line for bad YAML or templates).
Rendered render_stage(const StageContext& stage, StoreFetcher& fetcher, const sdk::StepContext& ctx,
                      const RenderSpec& spec = {});

// Objects as YAML documents for the step log and outputs, with Secret values hidden.
std::string to_yaml_masked(const std::vector<manifest::Resource>& resources);

} // namespace capstan::plugins::kubernetes
