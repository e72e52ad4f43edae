// Every object kind `capstan apply` accepts: valid documents, each error path with its
// file:line:column, and the checks across objects (references, deployment models).
#include <gtest/gtest.h>

#include <algorithm>

#include "capstan/testing/testing.h"
#include "model/catalog.h"
#include "model/object.h"
#include "model/pipeline.h"

namespace capstan::model {
namespace {

using nlohmann::json;

const char* kConnectors = R"(connector:
  identifier: sandbox
  name: Sandbox
  type: K8sCluster
  spec:
    credential:
      type: Kubeconfig
      spec:
        path: /tmp/kubeconfig
---
connector:
  identifier: prodk8s
  name: Prod cluster
  type: K8sCluster
  spec:
    delegateSelectors: [prod]
    credential:
      type: ManualConfig
      spec:
        masterUrl: https://10.0.0.1:6443
        auth:
          type: ServiceAccount
          spec:
            serviceAccountTokenRef: account.k8s_token
            caCertRef: k8s_ca
---
connector:
  identifier: gitrepo
  name: Git repo
  type: Git
  spec:
    url: https://git.example.com/org/config.git
    connectionType: Repo
    type: Http
    spec:
      username: deployer
      passwordRef: git_token
---
connector:
  identifier: gh
  name: GitHub
  type: Github
  spec:
    url: https://github.com/org/config
    connectionType: Repo
    authentication:
      type: Http
      spec:
        type: UsernameToken
        spec:
          username: bot
          tokenRef: git_token
    apiAccess:
      type: Token
      spec:
        tokenRef: git_token
)";

const char* kSecrets = R"(secret:
  identifier: git_token
  name: Git token
  type: SecretText
  spec:
    secretManagerIdentifier: harnessSecretManager
    valueType: Inline
    value: ghp_s3cr3tvalue
---
secret:
  identifier: k8s_token
  name: K8s token
  type: SecretText
  spec:
    value: eyJhbGciOi
---
secret:
  identifier: k8s_ca
  name: CA
  type: SecretText
  spec:
    value: "-----BEGIN CERTIFICATE-----"
---
userGroup:
  identifier: ops
  name: Ops
  users: [alice, bob]
)";

const char* kService = R"(service:
  identifier: myapp
  name: My app
  gitOpsEnabled: false
  serviceDefinition:
    type: Kubernetes
    spec:
      manifests:
        - manifest:
            identifier: k8s
            type: K8sManifest
            spec:
              store:
                type: Git
                spec:
                  connectorRef: gitrepo
                  gitFetchType: Branch
                  branch: main
                  paths: [k8s/]
              valuesPaths: [values.yaml]
      artifacts:
        primary:
          sources:
            - identifier: myapp
              type: DockerRegistry
              spec:
                imagePath: myorg/myapp
                tag: <+input>
      variables:
        - name: replicas
          type: String
          value: "2"
)";

const char* kGitOpsService = R"(service:
  identifier: myapp_gitops
  name: My app (GitOps)
  gitOpsEnabled: true
  serviceDefinition:
    type: Kubernetes
    spec:
      manifests:
        - manifest:
            identifier: releaseRepo
            type: ReleaseRepo
            spec:
              store:
                type: Github
                spec:
                  connectorRef: gh
                  gitFetchType: Branch
                  branch: main
                  paths: [cluster-config/<+env.name>/config.json]
)";

const char* kEnvironment = R"(environment:
  identifier: prod
  name: prod
  type: Production
  variables:
    - name: region
      type: String
      value: eu-west-1
  overrides:
    variables:
      - name: replicas
        type: String
        value: "5"
---
infrastructureDefinition:
  identifier: sandbox_default
  name: Sandbox default
  environmentRef: prod
  deploymentType: Kubernetes
  type: KubernetesDirect
  spec:
    connectorRef: sandbox
    namespace: default
)";

const char* kPipeline = R"(pipeline:
  identifier: deploy
  name: Deploy
  stages:
    - stage:
        identifier: deploy
        name: Deploy
        type: Deployment
        spec:
          deploymentType: Kubernetes
          service:
            serviceRef: myapp
          environment:
            environmentRef: prod
            infrastructureDefinitions:
              - identifier: sandbox_default
          execution:
            steps:
              - step:
                  type: K8sRollingDeploy
                  identifier: rollout
                  name: Rolling
                  timeout: 10m
                  spec:
                    skipDryRun: false
              - step:
                  type: HarnessApproval
                  identifier: approve
                  name: Approve
                  spec:
                    approvalMessage: ship <+artifact.image> to <+env.name>?
                    approvers:
                      userGroups: [ops]
                      minimumCount: 1
            rollbackSteps:
              - step:
                  type: K8sRollingRollback
                  identifier: rollback
                  name: Rollback
                  spec: {}
)";

std::vector<SourceFile> all_files() {
  return {{"connectors.yaml", kConnectors}, {"secrets.yaml", kSecrets},
          {"service.yaml", kService},       {"gitops.yaml", kGitOpsService},
          {"env.yaml", kEnvironment},       {"pipeline.yaml", kPipeline}};
}

std::vector<Problem> problems_of(const std::vector<SourceFile>& files) {
  try {
    parse_objects(files);
  } catch (const ValidationError& e) {
    return e.problems();
  }
  return {};
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos == std::string::npos) return s;
  return s.replace(pos, from.size(), to);
}

const Object& find(const std::vector<Object>& objects, const std::string& kind,
                   const std::string& id) {
  for (const auto& o : objects) {
    if (o.kind == kind && o.identifier == id) return o;
  }
  throw std::runtime_error("no " + kind + "/" + id);
}

StoredModel nothing_stored() {
  return [](const std::string&, const std::string&) -> std::optional<json> { return std::nullopt; };
}

TEST(ObjectsModel, EveryKindParses) {
  auto objects = parse_objects(all_files());
  EXPECT_EQ(objects.size(), 13u);
  const auto& infra = find(objects, "infrastructureDefinition", "sandbox_default");
  EXPECT_EQ(infra.model["spec"]["releaseName"], "release-<+INFRA_KEY>") << "Harness's default";
  EXPECT_EQ(infra.model["allowSimultaneousDeployments"], false);
  const auto& svc = find(objects, "service", "myapp");
  EXPECT_EQ(svc.model["gitOpsEnabled"], false);
  EXPECT_EQ(svc.model["artifacts"]["sources"][0]["spec"]["tag"], "<+input>");
  EXPECT_EQ(svc.model["variables"][0]["name"], "replicas");
  const auto& conn = find(objects, "connector", "prodk8s");
  bool token_ref = false;
  for (const auto& r : conn.references) {
    if (r.kind == "secret" && r.identifier == "k8s_token") token_ref = true; // scope stripped
  }
  EXPECT_TRUE(token_ref);
  const auto& p = find(objects, "pipeline", "deploy");
  std::set<std::string> refs;
  for (const auto& r : p.references) refs.insert(r.kind + "/" + r.identifier);
  EXPECT_TRUE(refs.count("service/myapp"));
  EXPECT_TRUE(refs.count("environment/prod"));
  EXPECT_TRUE(refs.count("infrastructureDefinition/sandbox_default"));
  EXPECT_TRUE(refs.count("userGroup/ops"));
  EXPECT_TRUE(check_batch(objects, nothing_stored()).empty());
}

TEST(ObjectsModel, ASecretsValueNeverStaysInItsDocument) {
  auto objects = parse_objects({{"secrets.yaml", kSecrets}});
  const auto& s = find(objects, "secret", "git_token");
  ASSERT_TRUE(s.secret_value);
  EXPECT_EQ(*s.secret_value, "ghp_s3cr3tvalue");
  EXPECT_EQ(s.yaml.find("ghp_s3cr3tvalue"), std::string::npos) << s.yaml;
  EXPECT_EQ(s.document.dump().find("ghp_s3cr3tvalue"), std::string::npos);
  EXPECT_EQ(s.model.dump().find("ghp_s3cr3tvalue"), std::string::npos);
  EXPECT_NE(s.yaml.find("secretManagerIdentifier: harnessSecretManager"), std::string::npos);
}

TEST(ObjectsModel, ExpressionsInServicesAreCheckedForSyntaxAndRoot) {
  auto problems =
      problems_of({{"s.yaml", replace(kService, "myorg/myapp", "myorg/<+environment.name>")}});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].location, "s.yaml:27:28");
  EXPECT_NE(problems[0].message.find("unknown expression"), std::string::npos);
  problems = problems_of({{"s.yaml", replace(kService, "myorg/myapp", "myorg/<+env.name")}});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].message.find("never closed"), std::string::npos);
}

struct BadCase {
  const char* file; // which fixture to break
  const char* from;
  const char* to;
  const char* location; // of the first problem
  const char* message;  // part of its message
};

TEST(ObjectsModel, EachErrorPathNamesFileLineAndColumn) {
  const BadCase cases[] = {
      {"connectors.yaml", "type: Kubeconfig", "type: Magic", "connectors.yaml:7:13",
       "unknown type 'Magic'"},
      {"connectors.yaml", "        path: /tmp/kubeconfig\n", "        context: x\n",
       "connectors.yaml:9:9", "exactly one of 'path'"},
      {"connectors.yaml", "https://10.0.0.1:6443", "10.0.0.1:6443", "connectors.yaml:20:20",
       "masterUrl must be an http(s) URL"},
      {"connectors.yaml", "serviceAccountTokenRef: account.k8s_token", "tokenRef: x",
       "connectors.yaml:24:23", "unknown field 'tokenRef'"},
      {"connectors.yaml", "url: https://git.example.com/org/config.git", "url: example.com/x",
       "connectors.yaml:32:10", "is not a Git URL"},
      {"connectors.yaml", "    type: Http\n    spec:\n      username: deployer",
       "    type: Ssh\n    spec:\n      username: deployer", "connectors.yaml:37:20",
       "unknown field 'passwordRef' (expected one of: sshKeyRef)"},
      {"connectors.yaml", "type: Github", "type: Bitbucket", "connectors.yaml:42:9",
       "unknown type 'Bitbucket'"},
      {"secrets.yaml", "type: SecretText\n  spec:\n    secretManagerIdentifier",
       "type: SecretFile\n  spec:\n    secretManagerIdentifier", "secrets.yaml:4:9",
       "unknown secret type 'SecretFile'"},
      {"secrets.yaml", "valueType: Inline", "valueType: Reference", "secrets.yaml:7:16",
       "unknown valueType 'Reference'"},
      {"secrets.yaml", "users: [alice, bob]", "users: alice", "secrets.yaml:27:10",
       "'users' must be a list"},
      {"service.yaml", "type: K8sManifest", "type: ReleaseRepo", "service.yaml:11:19",
       "a CD service (gitOpsEnabled: false) takes K8sManifest and Values manifests"},
      {"service.yaml", "type: K8sManifest", "type: HelmChart", "service.yaml:11:19",
       "manifest type 'HelmChart' is not supported"},
      {"service.yaml", "gitFetchType: Branch", "gitFetchType: Tag", "service.yaml:17:33",
       "unknown gitFetchType 'Tag'"},
      {"service.yaml", "                  branch: main\n", "", "service.yaml:16:19",
       "missing required field 'branch'"},
      {"service.yaml", "type: DockerRegistry", "type: Ecr", "service.yaml:25:21",
       "artifact source type 'Ecr' is not supported"},
      {"service.yaml", "                imagePath: myorg/myapp\n", "", "service.yaml:27:17",
       "missing required field 'imagePath'"},
      {"service.yaml", "type: Kubernetes", "type: Helm", "service.yaml:6:11",
       "unknown service type 'Helm'"},
      {"gitops.yaml", "type: ReleaseRepo", "type: K8sManifest", "gitops.yaml:11:19",
       "a GitOps service (gitOpsEnabled: true) takes ReleaseRepo and DeploymentRepo"},
      {"env.yaml", "type: Production", "type: Staging", "env.yaml:4:9",
       "unknown type 'Staging' (expected PreProduction or Production)"},
      {"env.yaml", "namespace: default", "namespace: Not_Valid", "env.yaml:23:16",
       "is not a valid Kubernetes namespace"},
      {"env.yaml", "type: KubernetesDirect", "type: KubernetesGcp", "env.yaml:20:9",
       "unknown type 'KubernetesGcp'"},
      {"env.yaml", "  environmentRef: prod\n", "", "env.yaml:16:3",
       "missing required field 'environmentRef'"},
      {"pipeline.yaml", "type: Deployment", "type: Build", "pipeline.yaml:8:15",
       "unknown stage type 'Build'"},
      {"pipeline.yaml", "            serviceRef: myapp\n", "", "pipeline.yaml:10:11",
       "missing required field 'service'"},
      {"pipeline.yaml", "              - identifier: sandbox_default\n", "", "pipeline.yaml:14:13",
       "needs 'infrastructureDefinitions: [{identifier: ...}]'"},
      {"pipeline.yaml", "              - identifier: sandbox_default\n",
       "              - identifier: sandbox_default\n              - identifier: other\n",
       "pipeline.yaml:16:15", "deploying to several"},
      {"pipeline.yaml", "                      minimumCount: 1",
       "                      minimumCount: 0", "pipeline.yaml:34:37",
       "minimumCount must be a whole number of at least 1"},
      {"pipeline.yaml",
       "                    approvalMessage: ship <+artifact.image> to <+env.name>?\n", "",
       "pipeline.yaml:31:21", "missing required field 'approvalMessage'"},
      {"pipeline.yaml", "timeout: 10m", "timeout: ten minutes", "pipeline.yaml:23:28",
       "invalid timeout 'ten minutes'"},
  };
  for (const auto& c : cases) {
    auto files = all_files();
    bool found = false;
    for (auto& f : files) {
      if (f.name != c.file) continue;
      f.content = replace(f.content, c.from, c.to);
      found = true;
    }
    ASSERT_TRUE(found) << c.file;
    auto problems = problems_of(files);
    ASSERT_FALSE(problems.empty()) << c.from << " -> " << c.to;
    auto it = std::find_if(problems.begin(), problems.end(), [&](const Problem& p) {
      return p.message.find(c.message) != std::string::npos;
    });
    ASSERT_NE(it, problems.end()) << c.message << "\n" << problems[0].text();
    EXPECT_EQ(it->location, c.location) << it->text();
  }
}

TEST(ObjectsModel, ReferencesMustExistAndBeOfTheRightType) {
  // The pipeline alone: nothing it refers to exists.
  auto objects = parse_objects({{"pipeline.yaml", kPipeline}});
  auto problems = check_batch(objects, nothing_stored());
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_NE(problems[0].message.find("refers to service 'myapp', which does not exist"),
            std::string::npos)
      << problems[0].text();
  EXPECT_EQ(problems[0].location, "pipeline.yaml:6:9");

  // A store pointing at a K8sCluster connector.
  auto files = all_files();
  files[2].content = replace(kService, "connectorRef: gitrepo", "connectorRef: sandbox");
  problems = check_batch(parse_objects(files), nothing_stored());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].location, "service.yaml:16:33");
  EXPECT_NE(problems[0].message.find("needs a Git connector, but connector 'sandbox' is a "
                                     "K8sCluster connector"),
            std::string::npos)
      << problems[0].text();

  // Objects stored earlier count.
  auto stored = parse_objects(all_files());
  StoredModel lookup = [&](const std::string& kind, const std::string& id) -> std::optional<json> {
    for (const auto& o : stored) {
      if (o.kind == kind && o.identifier == id) return o.model;
    }
    return std::nullopt;
  };
  EXPECT_TRUE(check_batch(parse_objects({{"pipeline.yaml", kPipeline}}), lookup).empty());
}

TEST(ObjectsModel, GitOpsEnabledIsFixedAtCreation) {
  auto stored = parse_objects({{"service.yaml", kService}, {"connectors.yaml", kConnectors}});
  StoredModel lookup = [&](const std::string& kind, const std::string& id) -> std::optional<json> {
    for (const auto& o : stored) {
      if (o.kind == kind && o.identifier == id) return o.model;
    }
    return std::nullopt;
  };
  std::string flipped = replace(kService, "gitOpsEnabled: false", "gitOpsEnabled: true");
  flipped = replace(flipped, "type: K8sManifest", "type: ReleaseRepo");
  flipped = replace(flipped, "              valuesPaths: [values.yaml]\n", "");
  auto problems = check_batch(parse_objects({{"service.yaml", flipped}}), lookup);
  ASSERT_EQ(problems.size(), 1u) << problems[0].text();
  EXPECT_NE(problems[0].message.find("service 'myapp': gitOpsEnabled cannot change after the "
                                     "service is created"),
            std::string::npos)
      << problems[0].text();
}

TEST(ObjectsModel, StageStepsMustMatchTheServiceModel) {
  auto files = all_files();
  files[5].content = replace(kPipeline, "type: K8sRollingDeploy", "type: UpdateReleaseRepo");
  auto problems = check_batch(parse_objects(files), nothing_stored());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].location, "pipeline.yaml:20:25");
  EXPECT_NE(problems[0].message.find("UpdateReleaseRepo belongs to GitOps services; service "
                                     "'myapp' is a CD service"),
            std::string::npos)
      << problems[0].text();

  files = all_files();
  files[5].content = replace(kPipeline, "serviceRef: myapp", "serviceRef: myapp_gitops");
  problems = check_batch(parse_objects(files), nothing_stored());
  ASSERT_GE(problems.size(), 2u);
  EXPECT_NE(problems[0].message.find("set spec.gitOpsEnabled: true"), std::string::npos)
      << problems[0].text();
  EXPECT_NE(problems[1].message.find("K8sRollingDeploy deploys to a cluster directly"),
            std::string::npos)
      << problems[1].text();
}

TEST(ObjectsModel, TheExamplesValidate) {
  // What `capstan apply -f DIR` reads in each example folder: its *.yaml files (manifests in
  // the folders below them are the services' files, not Capstan objects).
  std::vector<SourceFile> files;
  for (const char* dir : {"examples", "examples/cd"}) {
    for (const auto& e : std::filesystem::directory_iterator(testing::source_dir() / dir)) {
      if (e.is_regular_file() && e.path().extension() == ".yaml") {
        files.push_back({e.path().filename().string(), testing::read_file(e.path())});
      }
    }
  }
  ASSERT_FALSE(files.empty());
  auto objects = parse_objects(files);
  // examples/cd deploys through the `sandbox` connector that `capstan up` registers.
  auto up_registered = [](const std::string& kind, const std::string& id) -> std::optional<json> {
    if (kind == "connector" && id == "sandbox") {
      return json{{"identifier", "sandbox"}, {"type", "K8sCluster"}};
    }
    return std::nullopt;
  };
  auto problems = check_batch(objects, up_registered);
  EXPECT_TRUE(problems.empty()) << problems[0].text();
}

TEST(ObjectsModel, TheGitOpsExampleValidates) {
  // examples/gitops applies on its own (its release-repo/ folder is the Git repository's content).
  std::vector<SourceFile> files;
  for (const auto& e :
       std::filesystem::directory_iterator(testing::source_dir() / "examples" / "gitops")) {
    if (e.is_regular_file() && e.path().extension() == ".yaml") {
      files.push_back({e.path().filename().string(), testing::read_file(e.path())});
    }
  }
  ASSERT_EQ(files.size(), 5u);
  auto objects = parse_objects(files);
  auto problems = check_batch(objects, nothing_stored());
  EXPECT_TRUE(problems.empty()) << problems[0].text();
  int clusters = 0;
  for (const auto& o : objects) clusters += o.kind == "gitopsCluster";
  EXPECT_EQ(clusters, 3);
}

TEST(ObjectsModel, GitOpsClustersNameAK8sClusterConnectorAndServeTheStagesEnvironment) {
  const std::string conn = "connector:\n  identifier: api\n  name: api\n  type: Git\n  spec:\n"
                           "    url: https://git.example/r.git\n    connectionType: Repo\n"
                           "    type: Http\n    spec: {}\n";
  const std::string cluster = "gitopsCluster:\n  identifier: c1\n  name: c1\n"
                              "  connectorRef: api\n  environments: [prod]\n";
  auto problems =
      check_batch(parse_objects({{"c.yaml", conn + "---\n" + cluster}}), nothing_stored());
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].message.find("needs a K8sCluster connector"), std::string::npos)
      << problems[0].text();
  try {
    parse_objects({{"c.yaml", "gitopsCluster:\n  identifier: c1\n  name: c1\n"
                              "  connectorRef: api\n  environments: []\n"}});
    ADD_FAILURE() << "an empty environment list was accepted";
  } catch (const ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("c.yaml:5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("at least one environment"), std::string::npos)
        << e.what();
  }
}

// Environment groups (Harness's environmentGroup) and GitOps stages that deploy to one.
const char* kGroupObjects = R"(environment:
  identifier: dev
  name: dev
  type: PreProduction
---
environment:
  identifier: qa
  name: qa
  type: PreProduction
---
environmentGroup:
  name: Non prod
  identifier: nonprod
  description: ""
  tags: {team: web}
  orgIdentifier: default
  projectIdentifier: web
  envIdentifiers:
    - dev
    - qa
---
gitopsCluster:
  identifier: dev_cluster
  name: dev
  connectorRef: sandbox
  environments: [dev]
---
gitopsCluster:
  identifier: qa_cluster
  name: qa
  connectorRef: sandbox
  environments: [qa]
)";

std::string group_pipeline(const std::string& environment_group) {
  return "pipeline:\n  identifier: pr\n  name: pr\n  stages:\n    - stage:\n"
         "        identifier: deploy\n        name: deploy\n        type: Deployment\n"
         "        spec:\n          deploymentType: Kubernetes\n          gitOpsEnabled: true\n"
         "          service:\n            serviceRef: myapp_gitops\n" +
         environment_group +
         "          execution:\n            steps:\n              - step:\n"
         "                  type: UpdateReleaseRepo\n                  name: update\n"
         "                  identifier: update\n                  spec: {}\n";
}

TEST(ObjectsModel, EnvironmentGroupsListEnvironmentsAndGitOpsStagesDeployToThem) {
  const std::string picked =
      "          environmentGroup:\n            envGroupRef: nonprod\n"
      "            deployToAll: false\n            environments:\n"
      "              - environmentRef: qa\n                deployToAll: false\n"
      "                gitOpsClusters:\n"
      "                  - identifier: qa_cluster\n";
  auto files = all_files();
  files.push_back({"group.yaml", kGroupObjects});
  files.push_back({"pr.yaml", group_pipeline(picked)});
  auto objects = parse_objects(files);
  auto problems = check_batch(objects, nothing_stored());
  EXPECT_TRUE(problems.empty()) << problems[0].text();
  const auto& group = find(objects, "environmentGroup", "nonprod");
  EXPECT_EQ(group.model["envIdentifiers"], json({"dev", "qa"}));
  EXPECT_EQ(group.model["name"], "Non prod");
  const auto& pr = find(objects, "pipeline", "pr");
  const json stored = pr.model["stages"][0]["environmentGroup"];
  EXPECT_EQ(stored["envGroupRef"], "nonprod");
  EXPECT_EQ(stored["environments"][0]["gitOpsClusters"], json({"qa_cluster"}));
  // The stored form reads back.
  auto back = pipeline_from_json(pr.model);
  ASSERT_TRUE(back.stages[0].environment_group.has_value());
  EXPECT_EQ(back.stages[0].environment_group->environments[0].environment_ref, "qa");
  // The pipeline refers to the group: deleting it is refused while the pipeline stays.
  bool refers = false;
  for (const auto& r : pr.references) refers = refers || r.kind == "environmentGroup";
  EXPECT_TRUE(refers);
  EXPECT_TRUE(find_kind("envgroups") != nullptr &&
              find_kind("envgroups")->name == "environmentGroup");

  // deployToAll: every environment of the group, all their clusters.
  files.back() = {"pr.yaml", group_pipeline("          environmentGroup:\n"
                                            "            envGroupRef: nonprod\n"
                                            "            deployToAll: true\n")};
  problems = check_batch(parse_objects(files), nothing_stored());
  EXPECT_TRUE(problems.empty()) << problems[0].text();

  // An environment the group does not hold, a cluster that does not serve it.
  files.back() = {"pr.yaml",
                  replace(group_pipeline(picked), "environmentRef: qa", "environmentRef: prod")};
  problems = check_batch(parse_objects(files), nothing_stored());
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].text().find("pr.yaml:15:13: environment 'prod' is not in environment "
                                    "group 'nonprod' (its environments: [\"dev\",\"qa\"])"),
            std::string::npos)
      << problems[0].text();
  EXPECT_NE(problems[1].text().find("does not serve environment 'prod'"), std::string::npos)
      << problems[1].text();

  // A group that lists an environment that does not exist.
  auto bad = files;
  bad[bad.size() - 2] = {"group.yaml",
                         replace(kGroupObjects, "    - qa\n", "    - qa\n    - uat\n")};
  bad.pop_back();
  problems = check_batch(parse_objects(bad), nothing_stored());
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].text().find("group.yaml:21:7: environment group 'nonprod' refers to "
                                    "environment 'uat', which does not exist"),
            std::string::npos)
      << problems[0].text();

  // Shape errors, each where it is.
  struct Case {
    std::string group, where, message;
  };
  for (const Case& c : std::vector<Case>{
           {"          environmentGroup:\n            envGroupRef: nonprod\n", "pr.yaml:15:13",
            "name the group's environments"},
           {"          environmentGroup:\n            envGroupRef: nonprod\n"
            "            deployToAll: true\n            environments:\n"
            "              - environmentRef: qa\n                deployToAll: true\n",
            "pr.yaml:18:15", "remove 'environments'"},
           {"          environment:\n            environmentRef: qa\n            deployToAll: "
            "true\n"
            "          environmentGroup:\n            envGroupRef: nonprod\n"
            "            deployToAll: true\n",
            "pr.yaml:18:13", "an 'environment' or an 'environmentGroup', not both"},
           {"          environmentGroup:\n            envGroupRef: nonprod\n"
            "            environments:\n              - environmentRef: qa\n",
            "pr.yaml:17:17", "names its clusters"},
           {"          environmentGroup:\n            envGroupRef: nonprod\n"
            "            deployToAll: true\n            colour: red\n",
            "pr.yaml:17:21", "unknown field 'colour'"},
       }) {
    auto with = files;
    with.back() = {"pr.yaml", group_pipeline(c.group)};
    auto found = problems_of(with);
    ASSERT_FALSE(found.empty()) << c.group;
    EXPECT_NE(found[0].text().find(c.where), std::string::npos) << found[0].text();
    EXPECT_NE(found[0].text().find(c.message), std::string::npos) << found[0].text();
  }
  // CD stages deploy to one environment.
  auto cd = files;
  cd.back() = {"pr.yaml", replace(replace(group_pipeline("          environmentGroup:\n"
                                                         "            envGroupRef: nonprod\n"
                                                         "            deployToAll: true\n"),
                                          "gitOpsEnabled: true", "gitOpsEnabled: false"),
                                  "serviceRef: myapp_gitops", "serviceRef: myapp")};
  auto found = problems_of(cd);
  ASSERT_FALSE(found.empty());
  EXPECT_NE(found[0].text().find("environment groups are supported in GitOps stages"),
            std::string::npos)
      << found[0].text();
}

// A stage over an environment group has no single environment: <+env.*> is resolved per GitOps
// cluster in UpdateReleaseRepo's variables and refused everywhere else in the stage.
TEST(ObjectsModel, EnvironmentGroupStagesReadEnvOnlyPerCluster) {
  const std::string group = "          environmentGroup:\n"
                            "            envGroupRef: nonprod\n"
                            "            deployToAll: true\n";
  const std::string per_cluster = "                  spec:\n"
                                  "                    variables:\n"
                                  "                      - {name: zone, type: String, value: "
                                  "<+env.name>-zone}\n"
                                  "                      - {name: kind, type: String, value: "
                                  "<+env.type>}\n";
  auto files = all_files();
  files.push_back({"group.yaml", kGroupObjects});
  files.push_back(
      {"pr.yaml", replace(group_pipeline(group), "                  spec: {}\n", per_cluster)});
  auto problems = problems_of(files);
  EXPECT_TRUE(problems.empty()) << problems[0].text();

  const std::string shell = "              - step:\n"
                            "                  type: ShellScript\n"
                            "                  name: announce\n"
                            "                  identifier: announce\n"
                            "                  spec: {script: echo deployed to <+env.name>}\n";
  struct Case {
    std::string pipeline, where, message;
  };
  const std::string base = group_pipeline(group);
  for (const Case& c : std::vector<Case>{
           {base + shell, "pr.yaml:28:34",
            "<+env.name>: the stage deploys to an environment group"},
           {replace(base, "        type: Deployment\n",
                    "        type: Deployment\n        variables:\n"
                    "          - {name: where, type: String, value: 'to <+env.identifier>'}\n"),
            "pr.yaml:10:48", "<+env.identifier>: the stage deploys to an environment group"},
           {replace(base, "        type: Deployment\n",
                    "        type: Deployment\n        when:\n"
                    "          pipelineStatus: Success\n"
                    "          condition: <+env.type> == \"Production\"\n"),
            "pr.yaml:11:22", "<+env.type>: the stage deploys to an environment group"},
           {replace(base, "                  spec: {}\n",
                    "                  spec:\n                    variables:\n"
                    "                      - {name: zone, type: String, value: "
                    "<+env.name.toUpperCase()>}\n"),
            "pr.yaml:25:59", "over an environment group <+env.name>"},
       }) {
    auto with = files;
    with.back() = {"pr.yaml", c.pipeline};
    auto found = problems_of(with);
    ASSERT_FALSE(found.empty()) << c.pipeline;
    EXPECT_NE(found[0].text().find(c.where), std::string::npos) << found[0].text();
    EXPECT_NE(found[0].text().find(c.message), std::string::npos) << found[0].text();
  }
  // A pipeline variable is resolved where it is used: one that reads <+env...>, directly or
  // through another, counts as <+env...> there; in UpdateReleaseRepo's variables it is resolved
  // per cluster like <+env...> itself.
  const std::string vars =
      "  variables:\n"
      "    - {name: target, type: String, value: <+env.name>-app}\n"
      "    - {name: chained, type: String, value: 'to <+pipeline.variables.target>'}\n"
      "    - {name: plain, type: String, value: <+pipeline.name>}\n  stages:\n";
  const std::string echo = "              - step:\n"
                           "                  type: ShellScript\n"
                           "                  name: announce\n"
                           "                  identifier: announce\n"
                           "                  spec: {script: echo <+pipeline.variables.chained>}\n";
  auto via = files;
  via.back() = {"pr.yaml", replace(base, "  stages:\n", vars) + echo};
  auto found = problems_of(via);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_NE(found[0].text().find("pr.yaml:32:34: <+pipeline.variables.chained>: the pipeline "
                                 "variable reads <+env.name>, and the stage deploys to an "
                                 "environment group"),
            std::string::npos)
      << found[0].text();
  via.back() = {"pr.yaml",
                replace(replace(base, "  stages:\n", vars), "                  spec: {}\n",
                        "                  spec:\n                    variables:\n"
                        "                      - {name: zone, type: String, value: "
                        "<+pipeline.variables.target>}\n") +
                    replace(echo, "chained", "plain")};
  problems = problems_of(via);
  EXPECT_TRUE(problems.empty()) << problems[0].text();
  // The same expressions are fine in a stage with one environment.
  auto single = all_files();
  single.push_back({"group.yaml", kGroupObjects});
  single.push_back({"pr.yaml", replace(base, group,
                                       "          environment:\n            environmentRef: dev\n"
                                       "            deployToAll: true\n") +
                                   shell});
  problems = problems_of(single);
  EXPECT_TRUE(problems.empty()) << problems[0].text();
  single.back() = {"pr.yaml", replace(single.back().content, "  stages:\n", vars) +
                                  replace(echo, "identifier: announce", "identifier: echo")};
  problems = problems_of(single);
  EXPECT_TRUE(problems.empty()) << problems[0].text();
}

} // namespace
} // namespace capstan::model
