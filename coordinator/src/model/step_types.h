// What the coordinator knows about step types by name: which deployment model a type belongs to
// (a CD service's Kubernetes steps, a GitOps service's pull-request steps, or either), and which
// types the coordinator runs itself instead of sending them to a delegate.
//
// The table is data: a plugin that brings new step types adds rows (or relies on the prefix
// rules) without touching the engine.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace capstan::model {

enum class StepFamily {
  kGeneric, // usable in any stage: ShellScript, HarnessApproval, Wait, ...
  kCd,      // acts on a cluster directly: only with a CD service (gitOpsEnabled: false)
  kGitOps,  // edits release repos / drives the GitOps agent: only with a GitOps service
};

struct StepTypeInfo {
  std::string_view type;
  StepFamily family;
  bool coordinator = false; // run by the coordinator itself (approvals, waits, GitOps app steps)
};

// The table's rows.
const std::vector<StepTypeInfo>& step_type_table();
// The family of a type: its row, else by prefix ("K8s" → CD, "GitOps" → GitOps), else generic.
StepFamily step_family(std::string_view type);
// Whether the coordinator runs the type itself (HarnessApproval, Wait, GitOpsSync,
// UpdateGitOpsApp).
bool runs_on_coordinator(std::string_view type);
// "CD (Kubernetes)" / "GitOps" / "generic", for messages.
std::string family_name(StepFamily family);

// Manifest types by family: K8sManifest/Values (CD), ReleaseRepo/DeploymentRepo (GitOps).
StepFamily manifest_family(std::string_view manifest_type);

} // namespace capstan::model
