// Cross-object checks at apply time.
#include "model/catalog.h"

#include "capstan/expression/expression.h"
#include "model/pipeline.h"
#include "model/step_types.h"

namespace capstan::model {

using nlohmann::json;

std::optional<json> find_model(const std::vector<Object>& batch, const StoredModel& stored,
                               const std::string& kind, const std::string& id) {
  for (const auto& o : batch) {
    if (o.kind == kind && o.identifier == id) return o.model;
  }
  return stored(kind, id);
}

namespace {

std::vector<std::string> split_bar(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '|') {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

void check_references(const Object& o, const std::vector<Object>& batch, const StoredModel& stored,
                      std::vector<Problem>& problems) {
  for (const auto& ref : o.references) {
    auto target = find_model(batch, stored, ref.kind, ref.identifier);
    std::string who = ref.role.empty() ? o.kind + " '" + o.identifier + "'" : ref.role;
    if (!target) {
      problems.push_back({ref.location, who + " refers to " + ref.kind + " '" + ref.identifier +
                                            "', which does not exist (apply it first, or in the "
                                            "same apply)"});
      continue;
    }
    if (ref.expect.empty()) continue;
    if (ref.kind == "connector") {
      auto type = target->value("type", "");
      auto allowed = split_bar(ref.expect);
      if (std::find(allowed.begin(), allowed.end(), type) == allowed.end()) {
        problems.push_back({ref.location, who + " needs a " + join_names(allowed) +
                                              " connector, but connector '" + ref.identifier +
                                              "' is a " + type + " connector"});
      }
    } else if (ref.kind == "gitopsCluster") {
      bool serves = expression::has_expression(ref.expect);
      for (const auto& env : target->value("environments", json::array())) {
        serves = serves || env == ref.expect;
      }
      if (!serves) {
        problems.push_back(
            {ref.location, "GitOps cluster '" + ref.identifier + "' does not serve environment '" +
                               ref.expect + "' (its environments: " +
                               target->value("environments", json::array()).dump() + ")"});
      }
    } else if (ref.kind == "environmentGroup") {
      const json members = target->value("envIdentifiers", json::array());
      for (const auto& env : split_bar(ref.expect)) {
        if (std::find(members.begin(), members.end(), env) == members.end()) {
          problems.push_back({ref.location, "environment '" + env +
                                                "' is not in environment group '" + ref.identifier +
                                                "' (its environments: " + members.dump() + ")"});
        }
      }
    } else if (ref.kind == "infrastructureDefinition") {
      auto env = target->value("environmentRef", "");
      if (env != ref.expect) {
        problems.push_back({ref.location, "infrastructure '" + ref.identifier +
                                              "' belongs to environment '" + env + "', not '" +
                                              ref.expect + "'"});
      }
    }
  }
}

// A stage's steps must match its service's deployment model.
void check_stage_steps(const Stage& stage, const std::optional<json>& service,
                       std::vector<Problem>& problems) {
  std::optional<bool> gitops;
  if (service) gitops = service->value("gitOpsEnabled", false);
  if (stage.type == "Deployment" && gitops && *gitops != stage.gitops) {
    problems.push_back(
        {stage.location,
         "stage '" + stage.identifier + "' deploys " + (*gitops ? "GitOps" : "CD") + " service '" +
             stage.service_ref + "'" +
             (*gitops ? ": set spec.gitOpsEnabled: true on the stage"
                      : ", but the stage says spec.gitOpsEnabled: true; a GitOps stage needs a "
                        "service with gitOpsEnabled: true")});
  }
  auto visit = [&](const Node& step) {
    auto family = step_family(step.type);
    if (family == StepFamily::kGeneric) return;
    if (stage.type != "Deployment") {
      problems.push_back({step.type_location, "step type " + step.type +
                                                  " belongs in a Deployment stage (it works "
                                                  "on the stage's service); stage '" +
                                                  stage.identifier + "' is a Custom stage"});
      return;
    }
    bool stage_gitops = gitops.value_or(stage.gitops);
    if (family == StepFamily::kCd && stage_gitops) {
      problems.push_back(
          {step.type_location,
           "step type " + step.type +
               " deploys to a cluster directly and belongs to CD "
               "services; " +
               (gitops ? "service '" + stage.service_ref +
                             "' is a GitOps service (gitOpsEnabled: "
                             "true)"
                       : std::string("this is a GitOps stage")) +
               ": use GitOps steps (UpdateReleaseRepo, MergePR, RevertPR, FetchLinkedApps, "
               "GitOpsSync)"});
    } else if (family == StepFamily::kGitOps && !stage_gitops) {
      problems.push_back(
          {step.type_location, "step type " + step.type + " belongs to GitOps services; " +
                                   (gitops ? "service '" + stage.service_ref +
                                                 "' is a CD service (gitOpsEnabled: "
                                                 "false)"
                                           : std::string("this is a CD stage")) +
                                   ": use Kubernetes steps (K8sRollingDeploy, K8sApply, ...)"});
    }
  };
  for_each_step(stage.steps, visit);
  for_each_step(stage.rollback_steps, visit);
}

} // namespace

std::vector<Problem> check_batch(const std::vector<Object>& batch, const StoredModel& stored) {
  std::vector<Problem> problems;
  for (const auto& o : batch) {
    check_references(o, batch, stored, problems);
    if (o.kind == "service") {
      if (auto old = stored("service", o.identifier)) {
        bool was = old->value("gitOpsEnabled", false);
        bool now = o.model.value("gitOpsEnabled", false);
        if (was != now) {
          problems.push_back(
              {o.source, std::string("service '") + o.identifier +
                             "': gitOpsEnabled cannot change after the service is created (it is " +
                             (was ? "true" : "false") +
                             "); whether a service is deployed by GitOps or by pipelines "
                             "is fixed for good. Create a new service with another identifier"});
        }
      }
    } else if (o.kind == "infrastructureDefinition") {
      if (auto old = stored("infrastructureDefinition", o.identifier)) {
        auto was = old->value("environmentRef", "");
        auto now = o.model.value("environmentRef", "");
        if (was != now) {
          problems.push_back({o.source, "infrastructure '" + o.identifier +
                                            "' already belongs to environment '" + was +
                                            "'; infrastructure identifiers are unique across "
                                            "environments, so use another identifier for '" +
                                            now + "'"});
        }
      }
    } else if (o.kind == "pipeline") {
      Pipeline p = pipeline_from_json(o.model);
      for (const auto& stage : p.stages) {
        std::optional<json> service;
        if (stage.type == "Deployment" && !stage.service_ref.empty()) {
          service = find_model(batch, stored, "service", stage.service_ref);
        }
        check_stage_steps(stage, service, problems);
      }
    }
  }
  return problems;
}

} // namespace capstan::model
