// ApplicationSets: generators, both template modes, and their errors.
#include <gtest/gtest.h>

#include <capstan/apps/application_set.h>
#include <capstan/apps/glob.h>
#include <capstan/yaml/yaml.h>

#include <map>

namespace {

using capstan::apps::ApplicationSet;
using capstan::apps::Error;
using capstan::apps::GenerateContext;
using capstan::apps::RepoTree;

ApplicationSet parse(const std::string& text) {
  auto doc = capstan::yaml::load(text, "appset.yaml");
  return capstan::apps::parse_application_set(doc.value, doc.where);
}

// A release repository as the seed describes it.
GenerateContext release_repo(
    std::map<std::string, std::string> files = {
        {"cluster-config/dev/config.json",
         R"({"imageTag": "v1.9.0", "cluster": {"name": "dev", "address": "https://dev:6443"}})"},
        {"cluster-config/prod/config.json",
         R"({"imageTag": "v2.0.0", "cluster": {"name": "prod", "address": "https://prod:6443"}})"},
        {"cluster-config/prod/eu/config.json",
         R"({"imageTag": "v2.0.0", "cluster": {"name": "prod-eu", "address": "https://eu:6443"}})"},
        {"apps/web/deploy.yaml", "kind: x"},
        {"apps/api/deploy.yaml", "kind: x"},
        {"apps/.hidden/deploy.yaml", "kind: x"},
        {"README.md", "x"}}) {
  GenerateContext ctx;
  ctx.repo = [files](const std::string& url, const std::string& revision) {
    if (url != "https://git.example/release.git") throw std::runtime_error("no such repo " + url);
    EXPECT_EQ(revision, "main");
    RepoTree tree;
    for (const auto& [path, _] : files) tree.files.push_back(path);
    tree.read = [files](const std::string& path) { return files.at(path); };
    return tree;
  };
  ctx.clusters = {{"in-cluster", "https://kubernetes.default.svc", {{"env", "dev"}}},
                  {"Prod_EU", "https://eu:6443", {{"env", "prod"}}}};
  return ctx;
}

const char* kGitFiles = R"(apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: release, namespace: argocd}
spec:
  generators:
  - git:
      repoURL: https://git.example/release.git
      revision: main
      files:
      - path: cluster-config/**/config.json
  template:
    metadata:
      name: '{{cluster.name}}-web'
      labels: {env: '{{path.basename}}', top: '{{path[0]}}', file: '{{path.filename}}'}
    spec:
      project: default
      source:
        repoURL: https://git.example/release.git
        targetRevision: main
        path: 'apps/web/{{path.basenameNormalized}}'
        kustomize:
          images: ['web=registry/web:{{imageTag}}']
      destination:
        server: '{{cluster.address}}'
        namespace: web
      syncPolicy: {automated: {prune: true, selfHeal: true}}
)";

TEST(ApplicationSet, GitFilesFlattenValuesAndPathParams) {
  auto apps = capstan::apps::generate_applications(parse(kGitFiles), release_repo());
  ASSERT_EQ(apps.size(), 3u);
  // Files in sorted order: dev, prod, prod/eu.
  EXPECT_EQ(apps[0].name, "dev-web");
  EXPECT_EQ(apps[0].destination.server, "https://dev:6443");
  EXPECT_EQ(apps[0].source.kustomize->images.at(0), "web=registry/web:v1.9.0");
  EXPECT_EQ(apps[0].document["metadata"]["labels"]["env"], "dev");
  EXPECT_EQ(apps[0].document["metadata"]["labels"]["top"], "cluster-config");
  EXPECT_EQ(apps[0].document["metadata"]["labels"]["file"], "config.json");
  EXPECT_EQ(apps[0].namespace_, "argocd");
  EXPECT_EQ(apps[0].document["metadata"]["ownerReferences"][0]["name"], "release");
  EXPECT_EQ(apps[2].name, "prod-eu-web");
  EXPECT_EQ(apps[2].source.path, "apps/web/eu");
  EXPECT_TRUE(apps[2].sync_policy.self_heal);
}

TEST(ApplicationSet, GeneratedApplicationsDeleteTheirResourcesUnlessPreserved) {
  auto apps = capstan::apps::generate_applications(parse(kGitFiles), release_repo());
  ASSERT_FALSE(apps.empty());
  EXPECT_EQ(apps[0].document["metadata"]["finalizers"],
            nlohmann::json::array({"resources-finalizer.argocd.argoproj.io"}));
  EXPECT_TRUE(capstan::apps::deletes_resources(apps[0].document));

  std::string preserved = kGitFiles;
  preserved.replace(preserved.find("spec:\n  generators:"), 5,
                    "spec:\n  syncPolicy: {preserveResourcesOnDeletion: true}");
  auto kept = capstan::apps::generate_applications(parse(preserved), release_repo());
  ASSERT_FALSE(kept.empty());
  EXPECT_FALSE(kept[0].document["metadata"].contains("finalizers"));
  EXPECT_FALSE(capstan::apps::deletes_resources(kept[0].document));
  EXPECT_TRUE(capstan::apps::deletes_resources(nlohmann::json::parse(
      R"({"metadata": {"finalizers": ["resources-finalizer.argocd.argoproj.io/background"]}})")));
}

TEST(ApplicationSet, ApplicationsSyncPolicies) {
  for (const char* policy : {"create-only", "create-update", "create-delete", "sync"}) {
    std::string text = kGitFiles;
    text.replace(text.find("spec:\n  generators:"), 5,
                 std::string("spec:\n  syncPolicy: {applicationsSync: ") + policy + "}");
    EXPECT_EQ(parse(text).applications_sync, policy);
  }
  std::string bad = kGitFiles;
  bad.replace(bad.find("spec:\n  generators:"), 5, "spec:\n  syncPolicy: {applicationsSync: all}");
  try {
    parse(bad);
    FAIL() << "an unknown applicationsSync was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("appset.yaml:5:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("create-only"), std::string::npos) << e.what();
  }
}

TEST(ApplicationSet, GitFilesInGoTemplateModeKeepStructure) {
  auto set = parse(R"(apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: release}
spec:
  goTemplate: true
  goTemplateOptions: ["missingkey=error"]
  generators:
  - git:
      repoURL: https://git.example/release.git
      revision: main
      files: [{path: "cluster-config/*/config.json"}]
  template:
    metadata:
      name: '{{.cluster.name}}-{{index .path.segments 1}}'
      annotations: {tag: '{{.imageTag | upper}}', dir: '{{.path.path}}'}
    spec:
      source: {repoURL: https://git.example/release.git, path: 'envs/{{.path.basename}}'}
      destination: {server: '{{.cluster.address}}', namespace: web}
)");
  auto apps = capstan::apps::generate_applications(set, release_repo());
  ASSERT_EQ(apps.size(), 2u) << "'*' does not cross folders";
  EXPECT_EQ(apps[0].name, "dev-dev");
  EXPECT_EQ(apps[1].name, "prod-prod");
  EXPECT_EQ(apps[1].document["metadata"]["annotations"]["tag"], "V2.0.0");
  EXPECT_EQ(apps[1].document["metadata"]["annotations"]["dir"], "cluster-config/prod");
  EXPECT_EQ(apps[1].source.path, "envs/prod");
}

TEST(ApplicationSet, MissingKeyErrorNamesTheTemplate) {
  auto set = parse(R"(apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: release}
spec:
  goTemplate: true
  goTemplateOptions: ["missingkey=error"]
  generators:
  - list:
      elements: [{cluster: dev}]
  template:
    metadata: {name: '{{.cluster}}-{{.nope}}'}
    spec:
      source: {repoURL: file:///r}
      destination: {server: https://x}
)");
  try {
    capstan::apps::generate_applications(set, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("appset.yaml:11:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("spec.generators[0]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
  // Without the option a missing key prints "<no value>", as Go does, and the name is invalid.
  set.missing_key_error = false;
  EXPECT_THROW(capstan::apps::generate_applications(set, {}), Error);
}

TEST(ApplicationSet, GitDirectoriesWithExclude) {
  auto set = parse(R"(apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: dirs}
spec:
  generators:
  - git:
      repoURL: https://git.example/release.git
      revision: main
      directories:
      - path: apps/*
      - path: apps/api
        exclude: true
  template:
    metadata: {name: '{{path.basename}}'}
    spec:
      source: {repoURL: https://git.example/release.git, path: '{{path}}'}
      destination: {server: https://x, namespace: '{{path[1]}}'}
)");
  auto apps = capstan::apps::generate_applications(set, release_repo());
  ASSERT_EQ(apps.size(), 1u) << "api excluded, hidden folders never listed";
  EXPECT_EQ(apps[0].name, "web");
  EXPECT_EQ(apps[0].source.path, "apps/web");
  EXPECT_EQ(apps[0].destination.namespace_, "web");
}

TEST(ApplicationSet, ListAndMatrixOfClustersAndGit) {
  auto set = parse(R"(apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: matrix}
spec:
  generators:
  - matrix:
      generators:
      - clusters: {}
      - list:
          elements:
          - {app: web, values: {replicas: 2}}
          - {app: api}
  template:
    metadata: {name: '{{nameNormalized}}-{{app}}', labels: {env: '{{metadata.labels.env}}'}}
    spec:
      source: {repoURL: file:///r, path: 'apps/{{app}}'}
      destination: {server: '{{server}}', namespace: '{{app}}'}
)");
  auto apps = capstan::apps::generate_applications(set, release_repo());
  ASSERT_EQ(apps.size(), 4u);
  EXPECT_EQ(apps[0].name, "in-cluster-web");
  EXPECT_EQ(apps[1].name, "in-cluster-api");
  EXPECT_EQ(apps[2].name, "prod-eu-web");
  EXPECT_EQ(apps[3].destination.server, "https://eu:6443");
  EXPECT_EQ(apps[3].document["metadata"]["labels"]["env"], "prod");
}

TEST(ApplicationSet, MatrixSecondGeneratorSeesTheFirstOnesParams) {
  auto set = parse(R"(apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: m}
spec:
  generators:
  - matrix:
      generators:
      - list: {elements: [{env: dev}, {env: prod}]}
      - git:
          repoURL: https://git.example/release.git
          revision: main
          files: [{path: 'cluster-config/{{env}}/config.json'}]
  template:
    metadata: {name: '{{env}}-{{imageTag}}'}
    spec:
      source: {repoURL: file:///r}
      destination: {server: '{{cluster.address}}'}
)");
  auto apps = capstan::apps::generate_applications(set, release_repo());
  ASSERT_EQ(apps.size(), 2u);
  EXPECT_EQ(apps[0].name, "dev-v1.9.0");
  EXPECT_EQ(apps[1].name, "prod-v2.0.0");
}

TEST(ApplicationSet, DefaultModeLeavesUnknownParamsAsWritten) {
  auto set = parse(R"(apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: l}
spec:
  generators: [{list: {elements: [{n: a}]}}]
  template:
    metadata: {name: '{{ n }}', annotations: {note: '{{unknown}}'}}
    spec:
      source: {repoURL: file:///r}
      destination: {server: https://x}
)");
  auto apps = capstan::apps::generate_applications(set, {});
  ASSERT_EQ(apps.size(), 1u);
  EXPECT_EQ(apps[0].name, "a");
  EXPECT_EQ(apps[0].document["metadata"]["annotations"]["note"], "{{unknown}}");
}

std::string error_of(const std::string& text, const GenerateContext& ctx = {}) {
  try {
    capstan::apps::generate_applications(parse(text), ctx);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(ApplicationSet, BadInputIsNamed) {
  std::string head =
      "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: s}\n";
  std::string tmpl =
      "  template:\n    metadata: {name: '{{n}}'}\n    spec:\n      source: {repoURL: "
      "file:///r}\n      destination: {server: https://x}\n";
  EXPECT_EQ(error_of(head + "spec:\n  generators: [{scmProvider: {}}]\n" + tmpl),
            "appset.yaml:5:30: spec.generators[0]: the scmProvider generator is not supported "
            "(list, clusters, git and matrix are)");
  EXPECT_EQ(error_of(head + "spec:\n  generators: [{matrix: {generators: [{list: {}}]}}]\n" + tmpl),
            "appset.yaml:5:25: spec.generators[0].matrix.generators must list exactly two "
            "generators, not 1");
  EXPECT_EQ(
      error_of(head +
               "spec:\n  generators: [{git: {repoURL: x, files: [{path: a}], directories: []}}]\n" +
               tmpl),
      "appset.yaml:5:22: spec.generators[0].git needs exactly one of files or directories");
  // Two elements that render the same name.
  EXPECT_EQ(error_of(head + "spec:\n  generators: [{list: {elements: [{n: a}, {n: a}]}}]\n" + tmpl),
            "appset.yaml:5:16: spec.generators[0] generated a second application named 'a'; "
            "application names must be unique within the set");
  // A generated Application that is invalid says which parameters made it.
  std::string err =
      error_of(head + "spec:\n  generators: [{list: {elements: [{n: Upper}]}}]\n" + tmpl);
  EXPECT_NE(err.find("generated an invalid Application: metadata.name 'Upper'"), std::string::npos)
      << err;
  EXPECT_NE(err.find("\"n\":\"Upper\""), std::string::npos) << err;
  // A broken config.json names the file.
  auto ctx = release_repo({{"cluster-config/dev/config.json", "{\"imageTag\": "}});
  err = error_of(kGitFiles, ctx);
  EXPECT_NE(err.find("unable to process file 'cluster-config/dev/config.json': "
                     "cluster-config/dev/config.json:1:"),
            std::string::npos)
      << err;
  // An unreachable repository.
  auto broken = release_repo();
  broken.repo = [](const std::string&, const std::string&) -> RepoTree {
    throw std::runtime_error("connection refused");
  };
  err = error_of(kGitFiles, broken);
  EXPECT_NE(err.find("cannot read https://git.example/release.git at main: connection refused"),
            std::string::npos)
      << err;
}

TEST(Glob, MatchesLikeArgoCd) {
  using capstan::apps::glob_match;
  EXPECT_TRUE(glob_match("cluster-config/**/config.json", "cluster-config/dev/config.json"));
  EXPECT_TRUE(glob_match("cluster-config/**/config.json", "cluster-config/a/b/config.json"));
  EXPECT_TRUE(glob_match("cluster-config/**/config.json", "cluster-config/config.json"));
  EXPECT_FALSE(glob_match("cluster-config/*/config.json", "cluster-config/a/b/config.json"));
  EXPECT_TRUE(glob_match("{*.yaml,*.json}", "a.json"));
  EXPECT_FALSE(glob_match("{*.yaml,*.json}", "a.yml"));
  EXPECT_TRUE(glob_match("app-[0-9].yaml", "app-7.yaml"));
  EXPECT_FALSE(glob_match("app-[!0-9].yaml", "app-7.yaml"));
  EXPECT_TRUE(glob_match("?.yaml", "a.yaml"));
  EXPECT_FALSE(glob_match("*.yaml", "sub/a.yaml"));
}

TEST(SanitizeName, AsArgoCd) {
  EXPECT_EQ(capstan::apps::sanitize_name("Prod_EU"), "prod-eu");
  EXPECT_EQ(capstan::apps::sanitize_name("-a.b-"), "a.b");
  EXPECT_EQ(capstan::apps::sanitize_name(std::string(300, 'x')).size(), 253u);
}

} // namespace
