// The ApplicationSet post selector (`selector:` beside any generator): which parameter sets it
// keeps, in both template modes and in a matrix, and the errors for malformed selectors.
#include <gtest/gtest.h>

#include <capstan/apps/application_set.h>
#include <capstan/yaml/yaml.h>

#include <map>
#include <string>
#include <vector>

namespace {

using capstan::apps::GenerateContext;
using capstan::apps::RepoTree;
using Names = std::vector<std::string>;

GenerateContext release_repo() {
  static const std::map<std::string, std::string> kFiles = {
      {"cluster-config/dev/config.json",
       R"({"replicas": 1, "canary": true, "cluster": {"name": "dev", "address": "https://dev:6443"}})"},
      {"cluster-config/prod/config.json",
       R"({"replicas": 3, "canary": false, "cluster": {"name": "prod", "address": "https://prod:6443"}})"},
      {"cluster-config/prod/eu/config.json",
       R"({"replicas": 3, "cluster": {"name": "prod-eu", "address": "https://eu:6443"}})"}};
  GenerateContext ctx;
  ctx.repo = [](const std::string&, const std::string&) {
    RepoTree tree;
    for (const auto& [path, _] : kFiles) tree.files.push_back(path);
    tree.read = [](const std::string& path) { return kFiles.at(path); };
    return tree;
  };
  ctx.clusters = {{"dev", "https://dev:6443", {{"env", "dev"}}},
                  {"prod", "https://prod:6443", {{"env", "prod"}}}};
  return ctx;
}

// A set whose spec starts with `head` (goTemplate and the generators, indented by two) and
// names each application `name`.
std::string set_with(const std::string& head, const std::string& name) {
  return "apiVersion: argoproj.io/v1alpha1\n"
         "kind: ApplicationSet\n"
         "metadata: {name: s}\n"
         "spec:\n" +
         head +
         "  template:\n"
         "    metadata: {name: '" +
         name +
         "'}\n"
         "    spec:\n"
         "      source: {repoURL: file:///r, path: apps/web}\n"
         "      destination: {server: 'https://kubernetes.default.svc', namespace: web}\n";
}

Names names(const std::string& head, const std::string& name) {
  auto doc = capstan::yaml::load(set_with(head, name), "appset.yaml");
  auto set = capstan::apps::parse_application_set(doc.value, doc.where);
  Names out;
  for (const auto& a : capstan::apps::generate_applications(set, release_repo()))
    out.push_back(a.name);
  return out;
}

std::string error_of(const std::string& head) {
  try {
    auto doc = capstan::yaml::load(set_with(head, "x"), "appset.yaml");
    capstan::apps::parse_application_set(doc.value, doc.where);
  } catch (const capstan::apps::Error& e) {
    return e.what();
  }
  return "no error";
}

const char* kList = "  generators:\n"
                    "  - list:\n"
                    "      elements:\n"
                    "      - {cluster: engineering-dev, url: 'https://dev:6443', env: staging}\n"
                    "      - {cluster: engineering-prod, url: 'https://prod:6443', env: prod}\n"
                    "      - {cluster: engineering-qa, url: 'https://qa:6443'}\n";

TEST(PostSelector, MatchLabelsKeepsTheListElementsItMatches) {
  EXPECT_EQ(names(std::string(kList) + "    selector:\n      matchLabels: {env: staging}\n",
                  "{{cluster}}"),
            (Names{"engineering-dev"}));
  // Without a selector, or with an empty one, every element stays.
  EXPECT_EQ(names(kList, "{{cluster}}").size(), 3u);
  EXPECT_EQ(names(std::string(kList) + "    selector: {}\n", "{{cluster}}").size(), 3u);
}

TEST(PostSelector, MatchExpressionsTakeAnyTextAsValuesAndMissingKeysAsMissingLabels) {
  // A server URL is no label value, yet Argo CD's post selector takes it.
  EXPECT_EQ(names(std::string(kList) +
                      "    selector:\n      matchExpressions:\n"
                      "      - {key: url, operator: In, values: ['https://prod:6443']}\n",
                  "{{cluster}}"),
            (Names{"engineering-prod"}));
  // An element without `env` is kept by NotIn and DoesNotExist, dropped by In and Exists.
  EXPECT_EQ(names(std::string(kList) + "    selector:\n      matchExpressions:\n"
                                       "      - {key: env, operator: NotIn, values: [prod]}\n",
                  "{{cluster}}"),
            (Names{"engineering-dev", "engineering-qa"}));
  EXPECT_EQ(names(std::string(kList) + "    selector:\n      matchExpressions:\n"
                                       "      - {key: env, operator: DoesNotExist}\n",
                  "{{cluster}}"),
            (Names{"engineering-qa"}));
  // matchLabels and matchExpressions are ANDed.
  EXPECT_EQ(names(std::string(kList) +
                      "    selector:\n      matchLabels: {env: prod}\n      matchExpressions:\n"
                      "      - {key: env, operator: Exists}\n"
                      "      - {key: cluster, operator: NotIn, values: [engineering-prod]}\n",
                  "{{cluster}}"),
            Names{});
}

const char* kGit = "  - git:\n"
                   "      repoURL: https://git.example/release.git\n"
                   "      revision: main\n"
                   "      files: [{path: 'cluster-config/**/config.json'}]\n";

TEST(PostSelector, SeesFlattenedParametersInBothTemplateModes) {
  // Default mode: the parameters are flat already (`cluster.address`, `path.basename`); numbers
  // and booleans are their text.
  EXPECT_EQ(names(std::string("  generators:\n") + kGit +
                      "    selector:\n      matchLabels: {replicas: '3', path.basename: prod}\n",
                  "{{cluster.name}}"),
            (Names{"prod"}));
  EXPECT_EQ(names(std::string("  generators:\n") + kGit +
                      "    selector:\n      matchLabels: {canary: 'true'}\n",
                  "{{cluster.name}}"),
            (Names{"dev"}));
  // goTemplate mode: nested values are joined with dots, list items by their index.
  EXPECT_EQ(names(std::string("  goTemplate: true\n  generators:\n") + kGit +
                      "    selector:\n      matchExpressions:\n"
                      "      - {key: cluster.address, operator: NotIn, values: "
                      "['https://dev:6443']}\n"
                      "      - {key: path.segments.2, operator: Exists}\n",
                  "{{.cluster.name}}"),
            (Names{"prod-eu"}));
  EXPECT_EQ(names(std::string("  goTemplate: true\n  generators:\n") + kGit +
                      "    selector:\n      matchLabels: {replicas: '1', canary: 'true'}\n",
                  "{{.cluster.name}}"),
            (Names{"dev"}));
}

TEST(PostSelector, MatrixAppliesEachGeneratorsSelectorAndItsOwn) {
  const std::string matrix = "  generators:\n"
                             "  - matrix:\n"
                             "      generators:\n"
                             "      - clusters: {}\n"
                             "        selector:\n"
                             "          matchLabels: {metadata.labels.env: prod}\n"
                             "      - list:\n"
                             "          elements: [{app: web}, {app: api}, {app: batch}]\n"
                             "        selector:\n"
                             "          matchExpressions:\n"
                             "          - {key: app, operator: In, values: [web, api]}\n";
  EXPECT_EQ(names(matrix, "{{app}}-{{name}}"), (Names{"web-prod", "api-prod"}));
  // The matrix's own selector sees the merged parameters.
  EXPECT_EQ(names(matrix + "    selector:\n      matchLabels: {app: api, name: prod}\n",
                  "{{app}}-{{name}}"),
            (Names{"api-prod"}));
}

TEST(PostSelector, MalformedSelectorsAreRefusedWithTheirPlace) {
  const std::string list = "  generators:\n"
                           "  - list:\n"
                           "      elements: [{env: dev}]\n";
  EXPECT_EQ(error_of(list + "    selector:\n      matchLabels: {'bad key': x}\n"),
            "appset.yaml:9:32: spec.generators[0].selector.matchLabels: label key 'bad key': the "
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character");
  EXPECT_EQ(error_of(list + "    selector:\n      matchExpressions:\n"
                            "      - {key: env, operator: Equals, values: [dev]}\n"),
            "appset.yaml:10:30: spec.generators[0].selector.matchExpressions[0].operator 'Equals' "
            "is not a label selector operator (In, NotIn, Exists, DoesNotExist)");
  EXPECT_EQ(error_of(list + "    selector:\n      matchExpressions:\n"
                            "      - {key: env, operator: In}\n"),
            "appset.yaml:10:9: spec.generators[0].selector.matchExpressions[0].values must list "
            "at least one value for operator In");
  EXPECT_EQ(error_of(list + "    selector:\n      matchLabel: {env: dev}\n"),
            "appset.yaml:9:19: unknown field spec.generators[0].selector.matchLabel (known here: "
            "matchLabels, matchExpressions)");
  EXPECT_EQ(error_of(list + "    selector: [env]\n"),
            "appset.yaml:8:15: spec.generators[0].selector must be a mapping, not a list");
  // Inside a matrix too.
  EXPECT_EQ(error_of("  generators:\n"
                     "  - matrix:\n"
                     "      generators:\n"
                     "      - list: {elements: [{env: dev}]}\n"
                     "      - list: {elements: [{app: web}]}\n"
                     "        selector: {matchExpressions: [{key: app, operator: Exists, "
                     "values: [web]}]}\n"),
            "appset.yaml:10:76: spec.generators[0].matrix.generators[1].selector."
            "matchExpressions[0].values must be empty for operator Exists");
}

} // namespace
