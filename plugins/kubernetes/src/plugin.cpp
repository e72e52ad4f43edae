// The kubernetes plugin: Harness's Kubernetes steps (rolling, canary, blue-green, apply,
// scale, delete, dry run and their rollbacks) against any cluster a K8sCluster connector
// reaches. Built with the plugin SDK only, as a third-party plugin would be.
#include <capstan/sdk/plugin.h>

#include <filesystem>

#include "errors.h"
#include "schemas.h"
#include "steps.h"

namespace capstan::plugins::kubernetes {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

PluginSettings read_settings(const json& config) {
  PluginSettings s;
  auto number = [&](const char* key, double low, double high) -> std::optional<double> {
    if (!config.contains(key)) return std::nullopt;
    const json& v = config[key];
    if (!v.is_number() || v.get<double>() < low || v.get<double>() > high) {
      throw std::invalid_argument(std::string("kubernetes plugin config: ") + key +
                                  " must be a number between " + std::to_string(low) + " and " +
                                  std::to_string(high));
    }
    return v.get<double>();
  };
  if (auto v = number("qps", 0, 100000)) s.client.qps = *v;
  if (auto v = number("burst", 1, 100000)) s.client.burst = static_cast<int>(*v);
  if (auto v = number("maxRetries", 0, 20)) s.client.max_retries = static_cast<int>(*v);
  if (auto v = number("applyConcurrency", 1, 64)) s.apply_concurrency = static_cast<int>(*v);
  s.client.user_agent = "capstan-kubernetes-plugin/1.0";
  return s;
}

class Kubernetes {
public:
  explicit Kubernetes(sdk::InitContext& init)
      : settings_(read_settings(init.config())), clients_(settings_.client),
        repos_((init.state_dir().empty() ? fs::temp_directory_path() / "capstan-kubernetes"
                                         : init.state_dir()) /
               "git") {}

  void rolling_deploy(sdk::StepContext& c) { run(c, &kubernetes::rolling_deploy); }
  void rolling_rollback(sdk::StepContext& c) { run(c, &kubernetes::rolling_rollback); }
  void canary_deploy(sdk::StepContext& c) { run(c, &kubernetes::canary_deploy); }
  void canary_delete(sdk::StepContext& c) { run(c, &kubernetes::canary_delete); }
  void blue_green_deploy(sdk::StepContext& c) { run(c, &kubernetes::blue_green_deploy); }
  void blue_green_swap(sdk::StepContext& c) { run(c, &kubernetes::blue_green_swap); }
  void stage_scale_down(sdk::StepContext& c) { run(c, &kubernetes::blue_green_stage_scale_down); }
  void apply(sdk::StepContext& c) { run(c, &kubernetes::apply); }
  void scale(sdk::StepContext& c) { run(c, &kubernetes::scale); }
  void remove(sdk::StepContext& c) { run(c, &kubernetes::delete_resources); }
  void dry_run(sdk::StepContext& c) { run(c, &kubernetes::dry_run); }

private:
  void run(sdk::StepContext& ctx, void (*body)(Step&)) {
    guarded([&] {
      Step step(ctx, clients_, repos_, settings_);
      body(step);
      return 0;
    });
  }

  PluginSettings settings_;
  ClientPool clients_;
  git::RepoCache repos_;
};

} // namespace
} // namespace capstan::plugins::kubernetes

CAPSTAN_PLUGIN(plugin) {
  namespace k = capstan::plugins::kubernetes;
  namespace s = capstan::plugins::kubernetes::schemas;
  using k::Kubernetes;
  constexpr std::uint32_t kRetrySafe = CAPSTAN_STEP_RETRY_SAFE;
  plugin.name("kubernetes").version("1.0.0").state<Kubernetes>();
  plugin.step({"K8sRollingDeploy", s::kRollingDeploy,
               "Rolling deployment of the service's manifests, recorded as a release", 0},
              &Kubernetes::rolling_deploy);
  plugin.step({"K8sRollingRollback", s::kRollingRollback,
               "Restores the release before the one this stage deployed", 0},
              &Kubernetes::rolling_rollback);
  plugin.step({"K8sCanaryDeploy", s::kCanaryDeploy,
               "Runs a few pods of the new version as <workload>-canary", 0},
              &Kubernetes::canary_deploy);
  plugin.step({"K8sCanaryDelete", s::kCanaryDelete, "Deletes the canary workload", kRetrySafe},
              &Kubernetes::canary_delete);
  plugin.step({"K8sBlueGreenDeploy", s::kBlueGreenDeploy,
               "Deploys the new version in the colour the primary Service does not route to", 0},
              &Kubernetes::blue_green_deploy);
  plugin.step(
      {"K8sBGSwapServices", s::kBGSwapServices, "Swaps the primary and stage Services' colours", 0},
      &Kubernetes::blue_green_swap);
  plugin.step({"K8sBlueGreenStageScaleDown", s::kBlueGreenStageScaleDown,
               "Scales the stage colour's workload down to zero", kRetrySafe},
              &Kubernetes::stage_scale_down);
  plugin.step({"K8sApply", s::kApply, "Applies manifest files with server-side apply", kRetrySafe},
              &Kubernetes::apply);
  plugin.step({"K8sScale", s::kScale, "Scales a workload to a count or a percentage", kRetrySafe},
              &Kubernetes::scale);
  plugin.step({"K8sDelete", s::kDelete,
               "Deletes objects by name, by manifest file, or a whole release", kRetrySafe},
              &Kubernetes::remove);
  plugin.step({"K8sDryRun", s::kDryRun,
               "Server-side dry run of the rendered manifests; outputs them", kRetrySafe},
              &Kubernetes::dry_run);
}
