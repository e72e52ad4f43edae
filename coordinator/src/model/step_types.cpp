// The step type table.
#include "model/step_types.h"

#include <algorithm>

namespace capstan::model {

const std::vector<StepTypeInfo>& step_type_table() {
  static const std::vector<StepTypeInfo> table = {
      // Run by the coordinator.
      {"HarnessApproval", StepFamily::kGeneric, true},
      {"Wait", StepFamily::kGeneric, true},
      // Generic delegate steps.
      {"ShellScript", StepFamily::kGeneric},
      {"Http", StepFamily::kGeneric},
      // Push deployments (the kubernetes plugin).
      {"K8sRollingDeploy", StepFamily::kCd},
      {"K8sRollingRollback", StepFamily::kCd},
      {"K8sCanaryDeploy", StepFamily::kCd},
      {"K8sCanaryDelete", StepFamily::kCd},
      {"K8sBlueGreenDeploy", StepFamily::kCd},
      {"K8sBGSwapServices", StepFamily::kCd},
      {"K8sBlueGreenStageScaleDown", StepFamily::kCd},
      {"K8sApply", StepFamily::kCd},
      {"K8sScale", StepFamily::kCd},
      {"K8sDelete", StepFamily::kCd},
      {"K8sDryRun", StepFamily::kCd},
      // Pull-request pipelines and the GitOps agent (the gitops plugin), under the seed's names
      // and Harness's.
      {"UpdateReleaseRepo", StepFamily::kGitOps},
      {"GitOpsUpdateReleaseRepo", StepFamily::kGitOps},
      {"MergePR", StepFamily::kGitOps},
      {"GitOpsMergePR", StepFamily::kGitOps},
      {"RevertPR", StepFamily::kGitOps},
      {"GitOpsRevertPR", StepFamily::kGitOps},
      {"FetchLinkedApps", StepFamily::kGitOps},
      {"GitOpsFetchLinkedApps", StepFamily::kGitOps},
      // They act on the coordinator's Applications, through the delegates that hold them.
      {"GitOpsSync", StepFamily::kGitOps, true},
      {"UpdateGitOpsApp", StepFamily::kGitOps, true},
  };
  return table;
}

namespace {
const StepTypeInfo* find(std::string_view type) {
  const auto& t = step_type_table();
  auto it = std::find_if(t.begin(), t.end(), [&](const auto& row) { return row.type == type; });
  return it == t.end() ? nullptr : &*it;
}
} // namespace

StepFamily step_family(std::string_view type) {
  if (const auto* row = find(type)) return row->family;
  if (type.rfind("K8s", 0) == 0) return StepFamily::kCd;
  if (type.rfind("GitOps", 0) == 0) return StepFamily::kGitOps;
  return StepFamily::kGeneric;
}

bool runs_on_coordinator(std::string_view type) {
  const auto* row = find(type);
  return row != nullptr && row->coordinator;
}

std::string family_name(StepFamily family) {
  switch (family) {
  case StepFamily::kCd:
    return "CD (Kubernetes)";
  case StepFamily::kGitOps:
    return "GitOps";
  default:
    return "generic";
  }
}

StepFamily manifest_family(std::string_view manifest_type) {
  if (manifest_type == "ReleaseRepo" || manifest_type == "DeploymentRepo") {
    return StepFamily::kGitOps;
  }
  if (manifest_type == "K8sManifest" || manifest_type == "Values") return StepFamily::kCd;
  return StepFamily::kGeneric;
}

} // namespace capstan::model
