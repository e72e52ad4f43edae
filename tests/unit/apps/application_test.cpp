// Application documents: every supported field, and errors that name the field and line.
#include <gtest/gtest.h>

#include <capstan/apps/application.h>
#include <capstan/apps/history.h>
#include <capstan/yaml/yaml.h>

namespace {

using capstan::apps::Application;
using capstan::apps::Error;
using capstan::apps::parse_application;

Application parse(const std::string& text) {
  auto doc = capstan::yaml::load(text, "app.yaml");
  return parse_application(doc.value, doc.where);
}

std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

const char* kFull = R"(apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
  namespace: argocd
spec:
  project: team-a
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    targetRevision: main
    path: guestbook
    directory:
      recurse: true
      include: '{*.yaml,*.json}'
      exclude: 'secret-*.yaml'
  destination:
    server: https://kubernetes.default.svc
    namespace: web
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
    syncOptions:
      - CreateNamespace=true
      - PruneLast=true
      - ApplyOutOfSyncOnly=true
      - Replace=false
      - ServerSideApply=true
    retry:
      limit: 5
      backoff:
        duration: 5s
        factor: 2
        maxDuration: 3m
  ignoreDifferences:
    - group: apps
      kind: Deployment
      jsonPointers: [/spec/replicas]
    - kind: ConfigMap
      name: tuned
      managedFieldsManagers: [kube-controller-manager]
  revisionHistoryLimit: 3
)";

TEST(Application, ParsesEveryField) {
  Application app = parse(kFull);
  EXPECT_EQ(app.name, "guestbook");
  EXPECT_EQ(app.namespace_, "argocd");
  EXPECT_EQ(app.project, "team-a");
  EXPECT_EQ(app.source.repo_url, "https://github.com/argoproj/argocd-example-apps.git");
  EXPECT_EQ(app.source.target_revision, "main");
  EXPECT_EQ(app.source.path, "guestbook");
  ASSERT_TRUE(app.source.directory);
  EXPECT_TRUE(app.source.directory->recurse);
  EXPECT_EQ(app.source.directory->include, "{*.yaml,*.json}");
  EXPECT_EQ(app.source.directory->exclude, "secret-*.yaml");
  EXPECT_EQ(app.destination.server, "https://kubernetes.default.svc");
  EXPECT_EQ(app.destination.namespace_, "web");
  EXPECT_TRUE(app.sync_policy.automated);
  EXPECT_TRUE(app.sync_policy.prune);
  EXPECT_TRUE(app.sync_policy.self_heal);
  const auto& o = app.sync_policy.options;
  EXPECT_TRUE(o.create_namespace);
  EXPECT_TRUE(o.prune_last);
  EXPECT_TRUE(o.apply_out_of_sync_only);
  EXPECT_FALSE(o.replace);
  EXPECT_TRUE(o.server_side_apply);
  ASSERT_TRUE(app.sync_policy.retry);
  EXPECT_EQ(app.sync_policy.retry->limit, 5);
  EXPECT_EQ(app.sync_policy.retry->backoff.duration.count(), 5000);
  EXPECT_EQ(app.sync_policy.retry->backoff.max_duration.count(), 180000);
  EXPECT_EQ(app.sync_policy.retry->backoff.delay(1).count(), 5000);
  EXPECT_EQ(app.sync_policy.retry->backoff.delay(3).count(), 20000);
  EXPECT_EQ(app.sync_policy.retry->backoff.delay(10).count(), 180000); // capped
  ASSERT_EQ(app.ignore_differences.size(), 2u);
  EXPECT_EQ(app.ignore_differences[0].json_pointers.at(0), "/spec/replicas");
  EXPECT_TRUE(app.ignore_differences[0].matches("apps", "Deployment", "web", "any"));
  EXPECT_FALSE(app.ignore_differences[0].matches("", "ConfigMap", "web", "any"));
  EXPECT_EQ(app.ignore_differences[1].managed_fields_managers.at(0), "kube-controller-manager");
  EXPECT_FALSE(app.ignore_differences[1].matches("", "ConfigMap", "web", "other"));
  EXPECT_EQ(app.revision_history_limit, 3);
}

TEST(Application, DefaultsFollowArgoCd) {
  Application app = parse(R"(apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: plain}
spec:
  source: {repoURL: file:///repo, path: apps/plain}
  destination: {name: in-cluster}
)");
  EXPECT_EQ(app.project, "default");
  EXPECT_EQ(app.source.target_revision, "HEAD");
  EXPECT_EQ(app.destination.name, "in-cluster");
  EXPECT_FALSE(app.sync_policy.automated);
  EXPECT_FALSE(app.sync_policy.retry);
  EXPECT_EQ(app.revision_history_limit, 10);
}

TEST(Application, KustomizeOptions) {
  Application app = parse(R"(apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: k}
spec:
  source:
    repoURL: file:///repo
    path: overlays/prod
    kustomize:
      namePrefix: prod-
      images: [nginx=nginx:1.27]
      commonLabels: {team: a}
  destination: {server: https://x, namespace: k}
)");
  ASSERT_TRUE(app.source.kustomize);
  EXPECT_EQ(app.source.kustomize->name_prefix, "prod-");
  EXPECT_EQ(app.source.kustomize->images.at(0), "nginx=nginx:1.27");
  EXPECT_EQ(app.source.kustomize->common_labels.at("team"), "a");
}

TEST(Application, ErrorsNameFieldAndLine) {
  std::string base = R"(apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: file:///r, path: p}
  destination: {server: https://x, namespace: n}
)";
  EXPECT_EQ(error_of(base + "  syncPolicy:\n    automated: {prune: yes}\n"),
            "app.yaml:8:24: spec.syncPolicy.automated.prune must be true or false, not \"yes\"")
      << "YAML 1.2: yes is a string";
  EXPECT_EQ(error_of(base + "  syncPolicy:\n    syncOptions: [Prune=sometimes]\n"),
            "app.yaml:8:18: syncOptions: unknown option 'Prune' (supported: CreateNamespace, "
            "PruneLast, ApplyOutOfSyncOnly, Replace, ServerSideApply, Validate, "
            "RespectIgnoreDifferences, PrunePropagationPolicy)");
  EXPECT_EQ(error_of(base + "  syncPolicy:\n    syncOptions: [CreateNamespace]\n"),
            "app.yaml:8:18: syncOptions[0] 'CreateNamespace' must read Name=value (e.g. "
            "CreateNamespace=true)");
  EXPECT_EQ(error_of(base + "  revisionHistoryLimit: -1\n"),
            "app.yaml:7:25: spec.revisionHistoryLimit must not be negative");
  EXPECT_EQ(
      error_of(base + "  syncPolicy:\n    retry: {backoff: {duration: soon}}\n"),
      "app.yaml:8:33: spec.syncPolicy.retry.backoff.duration: 'soon' is not a duration (units: "
      "ms, s, m, h; e.g. 5s, 3m)");
  EXPECT_EQ(
      error_of(base + "  ignoreDifferences:\n  - kind: Deployment\n    jsonPointers: [spec]\n"),
      "app.yaml:9:19: spec.ignoreDifferences[0].jsonPointers: 'spec' is not a JSON pointer "
      "(it must start with '/')");
  EXPECT_EQ(error_of(base + "  ignoreDifferences:\n  - kind: Deployment\n"),
            "app.yaml:8:5: spec.ignoreDifferences[0] needs jsonPointers or managedFieldsManagers");
  EXPECT_EQ(error_of(base + "  sourcez: {}\n"),
            "app.yaml:7:12: unknown field spec.sourcez (known here: source, sources, destination, "
            "project, syncPolicy, ignoreDifferences, revisionHistoryLimit, info)");
}

// Labels are checked as the Kubernetes API checks them: selectors (apps list -l) match them.
TEST(Application, LabelsFollowKubernetesRules) {
  auto with_labels = [](const std::string& labels) {
    return "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: a\n"
           "  labels:\n" +
           labels +
           "spec:\n  source: {repoURL: file:///r, path: p}\n"
           "  destination: {server: https://x, namespace: n}\n";
  };
  EXPECT_EQ(error_of(with_labels("    tier: web\n    app.kubernetes.io/part-of: shop\n    "
                                 "empty: \"\"\n")),
            "no error");
  // A YAML number or boolean is taken as written, as selectors compare it.
  EXPECT_EQ(error_of(with_labels("    tier: 1\n")), "no error");
  EXPECT_EQ(error_of(with_labels("    tier: [web]\n")),
            "app.yaml:6:11: metadata.labels.tier must be a string, not a list");
  EXPECT_EQ(error_of(with_labels("    tier: web\n    Team/x: a\n")),
            "app.yaml:7:13: metadata.labels: label key 'Team/x': its prefix must be a "
            "lower-case DNS subdomain (such as example.com)");
  EXPECT_EQ(error_of(with_labels("    tier: web server\n")),
            "app.yaml:6:11: metadata.labels.tier: label value 'web server' must consist of "
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character");
}

TEST(Application, RefusesWhatItCannotReconcile) {
  EXPECT_EQ(error_of(R"(apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: https://charts, chart: nginx, helm: {releaseName: x}}
  destination: {server: https://x}
)"),
            "app.yaml:5:57: spec.source.helm: Helm and plugin sources are not supported; use a "
            "directory of plain YAML/JSON or a Kustomize folder");
  EXPECT_NE(error_of(R"(apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec:
  sources: [{repoURL: file:///r}]
  destination: {server: https://x}
)")
                .find("several sources are not supported"),
            std::string::npos);
  EXPECT_EQ(error_of(R"(apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: file:///r}
  destination: {server: https://x, name: in-cluster}
)"),
            "app.yaml:6:16: spec.destination needs exactly one of server (the cluster's API URL) "
            "or name (the cluster's name)");
  EXPECT_EQ(error_of(R"(apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: Bad_Name}
spec:
  source: {repoURL: file:///r, path: ../outside}
  destination: {server: https://x}
)"),
            "app.yaml:3:18: metadata.name 'Bad_Name' must be lower-case letters, digits, '-' and "
            "'.', starting and ending with a letter or digit");
  EXPECT_EQ(error_of(R"(apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a}
spec:
  source: {repoURL: file:///r, path: ../outside}
  destination: {server: https://x}
)"),
            "app.yaml:5:38: spec.source.path '../outside' must stay inside the repository");
  EXPECT_EQ(error_of("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"),
            "app.yaml:1:13: apiVersion must be argoproj.io/v1alpha1, not 'v1'");
  EXPECT_EQ(error_of("apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\n"),
            "app.yaml:1:1: spec is required");
}

TEST(OperationHistory, KeepsTheNewestUpToTheLimit) {
  capstan::apps::OperationHistory history(2);
  for (int i = 0; i < 4; ++i) {
    capstan::apps::OperationRecord r;
    r.revision = "rev" + std::to_string(i);
    r.phase = "Succeeded";
    history.add(r);
  }
  ASSERT_EQ(history.entries().size(), 2u);
  EXPECT_EQ(history.entries().front().id, 3);
  EXPECT_EQ(history.entries().back().revision, "rev3");
  EXPECT_FALSE(history.find(1));
  ASSERT_TRUE(history.find(4));
  auto restored = capstan::apps::OperationHistory::from_json(history.to_json(), 1);
  ASSERT_EQ(restored.entries().size(), 1u);
  EXPECT_EQ(restored.entries().front().revision, "rev3");
  EXPECT_EQ(restored.add({}).id, 5) << "ids are never reused";
  history.set_limit(0);
  EXPECT_TRUE(history.entries().empty());
}

} // namespace
