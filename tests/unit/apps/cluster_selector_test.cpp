// The ApplicationSet clusters generator's label selector: matchLabels, matchExpressions and the
// errors for malformed selectors.
#include <gtest/gtest.h>

#include <capstan/apps/application_set.h>
#include <capstan/yaml/yaml.h>

#include <string>
#include <vector>

namespace {

using capstan::apps::GenerateContext;

GenerateContext three_clusters() {
  GenerateContext ctx;
  ctx.clusters = {{"dev", "https://dev:6443", {{"env", "dev"}, {"tier", "web"}}},
                  {"staging", "https://staging:6443", {{"env", "staging"}, {"canary", ""}}},
                  {"prod", "https://prod:6443", {{"env", "prod"}, {"tier", "web"}}}};
  return ctx;
}

std::string set_with(const std::string& clusters_body) {
  return "apiVersion: argoproj.io/v1alpha1\n"
         "kind: ApplicationSet\n"
         "metadata: {name: s}\n"
         "spec:\n"
         "  generators:\n"
         "  - clusters:\n" +
         clusters_body +
         "  template:\n"
         "    metadata: {name: 'web-{{name}}'}\n"
         "    spec:\n"
         "      source: {repoURL: file:///r, path: apps/web}\n"
         "      destination: {server: '{{server}}', namespace: web}\n";
}

std::vector<std::string> names(const std::string& clusters_body,
                               const GenerateContext& ctx = three_clusters()) {
  auto doc = capstan::yaml::load(set_with(clusters_body), "appset.yaml");
  auto set = capstan::apps::parse_application_set(doc.value, doc.where);
  std::vector<std::string> out;
  for (const auto& a : capstan::apps::generate_applications(set, ctx)) out.push_back(a.name);
  return out;
}

std::string error_of(const std::string& clusters_body) {
  try {
    auto doc = capstan::yaml::load(set_with(clusters_body), "appset.yaml");
    capstan::apps::parse_application_set(doc.value, doc.where);
  } catch (const capstan::apps::Error& e) {
    return e.what();
  }
  return "no error";
}

using Names = std::vector<std::string>;

TEST(ClusterSelector, MatchLabelsSelectsClustersByTheirLabels) {
  EXPECT_EQ(names("      selector:\n        matchLabels: {tier: web}\n"),
            (Names{"web-dev", "web-prod"}));
  EXPECT_EQ(names("      selector:\n        matchLabels: {tier: web, env: prod}\n"),
            (Names{"web-prod"}));
  EXPECT_EQ(names("      selector:\n        matchLabels: {tier: db}\n"), Names{});
}

TEST(ClusterSelector, EmptyOrAbsentSelectorSelectsEveryCluster) {
  EXPECT_EQ(names("      selector: {}\n"), (Names{"web-dev", "web-staging", "web-prod"}));
  EXPECT_EQ(names("      {}\n"), (Names{"web-dev", "web-staging", "web-prod"}));
}

TEST(ClusterSelector, MatchExpressionsOperators) {
  EXPECT_EQ(names("      selector:\n        matchExpressions:\n"
                  "        - {key: env, operator: In, values: [dev, staging]}\n"),
            (Names{"web-dev", "web-staging"}));
  // NotIn also selects clusters without the label, as Kubernetes does.
  EXPECT_EQ(names("      selector:\n        matchExpressions:\n"
                  "        - {key: tier, operator: NotIn, values: [web]}\n"),
            (Names{"web-staging"}));
  EXPECT_EQ(names("      selector:\n        matchExpressions:\n"
                  "        - {key: canary, operator: Exists}\n"),
            (Names{"web-staging"}));
  EXPECT_EQ(names("      selector:\n        matchExpressions:\n"
                  "        - {key: canary, operator: DoesNotExist}\n"),
            (Names{"web-dev", "web-prod"}));
  // matchLabels and matchExpressions are ANDed.
  EXPECT_EQ(names("      selector:\n        matchLabels: {tier: web}\n        matchExpressions:\n"
                  "        - {key: env, operator: NotIn, values: [prod]}\n"),
            (Names{"web-dev"}));
}

TEST(ClusterSelector, EveryClusterCarriesArgoCDsSecretTypeLabel) {
  EXPECT_EQ(names("      selector:\n        matchLabels: {argocd.argoproj.io/secret-type: "
                  "cluster}\n"),
            (Names{"web-dev", "web-staging", "web-prod"}));
  // ... and offers it as a parameter, as Argo CD offers every label of the cluster's Secret.
  auto text = set_with("      selector: {matchLabels: {env: dev}}\n");
  const std::string name = "{name: 'web-{{name}}'}";
  text.replace(
      text.find(name), name.size(),
      "{name: 'web-{{name}}', annotations: {type: "
      "'{{metadata.labels.argocd.argoproj.io/secret-type}}', env: '{{metadata.labels.env}}'}}");
  auto doc = capstan::yaml::load(text, "appset.yaml");
  auto apps = capstan::apps::generate_applications(
      capstan::apps::parse_application_set(doc.value, doc.where), three_clusters());
  ASSERT_EQ(apps.size(), 1u);
  EXPECT_EQ(apps[0].document["metadata"]["annotations"]["type"], "cluster");
  EXPECT_EQ(apps[0].document["metadata"]["annotations"]["env"], "dev");
}

TEST(ClusterSelector, MalformedSelectorsAreNamedWithTheirPlace) {
  EXPECT_EQ(error_of("      selector:\n        matchExpressions:\n"
                     "        - {key: env, operator: Equals, values: [dev]}\n"),
            "appset.yaml:9:32: spec.generators[0].clusters.selector.matchExpressions[0].operator "
            "'Equals' is not a label selector operator (In, NotIn, Exists, DoesNotExist)");
  EXPECT_EQ(error_of("      selector:\n        matchExpressions:\n"
                     "        - {key: env, operator: In, values: []}\n"),
            "appset.yaml:9:44: spec.generators[0].clusters.selector.matchExpressions[0].values "
            "must list at least one value for operator In");
  EXPECT_EQ(error_of("      selector:\n        matchExpressions:\n"
                     "        - {key: env, operator: NotIn}\n"),
            "appset.yaml:9:11: spec.generators[0].clusters.selector.matchExpressions[0].values "
            "must list at least one value for operator NotIn");
  EXPECT_EQ(error_of("      selector:\n        matchExpressions:\n"
                     "        - {key: env, operator: Exists, values: [dev]}\n"),
            "appset.yaml:9:48: spec.generators[0].clusters.selector.matchExpressions[0].values "
            "must be empty for operator Exists");
  EXPECT_EQ(error_of("      selector:\n        matchExpressions:\n"
                     "        - {operator: Exists}\n"),
            "appset.yaml:9:11: spec.generators[0].clusters.selector.matchExpressions[0].key "
            "is required");
  EXPECT_EQ(error_of("      selector:\n        matchLabels: {'bad key': x}\n"),
            "appset.yaml:8:34: spec.generators[0].clusters.selector.matchLabels: label key "
            "'bad key': the name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character");
  EXPECT_EQ(error_of("      selector:\n        matchLabels: {env: -dev}\n"),
            "appset.yaml:8:28: spec.generators[0].clusters.selector.matchLabels.env: label value "
            "'-dev' must consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an alphanumeric character");
  EXPECT_EQ(error_of("      selector:\n        matchLabel: {env: dev}\n"),
            "appset.yaml:8:21: unknown field spec.generators[0].clusters.selector.matchLabel "
            "(known here: matchLabels, matchExpressions)");
}

} // namespace
