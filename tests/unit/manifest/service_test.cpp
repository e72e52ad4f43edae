// Reading a stage's Harness-shaped service and overrides.
#include <gtest/gtest.h>

#include "capstan/manifest/error.h"
#include "capstan/manifest/service.h"
#include "capstan/yaml/yaml.h"

namespace {

using namespace capstan::manifest;
using nlohmann::json;

json yaml(const char* text) {
  return capstan::yaml::load(text).value;
}

const char* kService = R"(service:
  name: myapp
  identifier: myapp
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
                  connectorRef: repo
                  gitFetchType: Branch
                  branch: main
                  paths: [deploy/k8s]
              valuesPaths: [deploy/values.yaml]
              skipResourceVersioning: true
        - manifest:
            identifier: extra
            type: Values
            spec:
              store:
                type: Inline
                spec:
                  content: "replicas: 2\n"
      artifacts:
        primary:
          sources:
            - identifier: myapp
              type: DockerRegistry
              spec: {imagePath: myorg/myapp, tag: <+input>}
)";

TEST(Service, PlansManifestsAndValuesInPrecedenceOrder) {
  json env = yaml(R"(environment:
  identifier: prod
  type: Production
  overrides:
    manifests:
      - manifest:
          identifier: envvalues
          type: Values
          spec: {store: {type: Git, spec: {connectorRef: repo, paths: [env/prod.yaml]}}}
)");
  json so = yaml(R"(serviceOverrides:
  environmentRef: prod
  serviceRef: myapp
  manifests:
    - manifest:
        identifier: svcprod
        type: Values
        spec: {store: {type: Inline, spec: {content: "replicas: 5\n"}}}
)");
  ManifestPlan plan = plan_manifests(yaml(kService), stage_overrides(env, so, json()));
  EXPECT_EQ(plan.k8s_manifest.identifier, "k8s");
  EXPECT_EQ(plan.k8s_manifest.store.type, "Git");
  EXPECT_EQ(plan.k8s_manifest.store.spec["branch"], "main");
  EXPECT_EQ(plan.k8s_manifest.store.paths, std::vector<std::string>{"deploy/k8s"});
  EXPECT_EQ(plan.k8s_manifest.values_paths, std::vector<std::string>{"deploy/values.yaml"});
  EXPECT_TRUE(plan.k8s_manifest.skip_resource_versioning);
  ASSERT_EQ(plan.values.size(), 3u);
  EXPECT_EQ(plan.values[0].identifier, "extra");
  EXPECT_EQ(plan.values[1].identifier, "envvalues");
  EXPECT_EQ(plan.values[1].origin, "environment prod");
  EXPECT_EQ(plan.values[2].identifier, "svcprod");
  ValuesFile inline_layer = inline_values(plan.values[2]);
  EXPECT_EQ(inline_layer.text, "replicas: 5\n");
}

TEST(Service, RefusesWhatItCannotDeploy) {
  auto message = [](const json& service) {
    try {
      plan_manifests(service);
    } catch (const ManifestError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  json helm = yaml(kService);
  helm["service"]["serviceDefinition"]["spec"]["manifests"][0]["manifest"]["type"] = "HelmChart";
  EXPECT_EQ(message(helm), "service myapp: serviceDefinition.spec.manifests[0].manifest: manifest "
                           "type \"HelmChart\" is not supported (K8sManifest and Values are)");
  json two = yaml(kService);
  two["service"]["serviceDefinition"]["spec"]["manifests"][1] =
      two["service"]["serviceDefinition"]["spec"]["manifests"][0];
  EXPECT_NE(message(two).find("takes one K8sManifest"), std::string::npos);
  json none = yaml(kService);
  none["service"]["serviceDefinition"]["spec"]["manifests"].erase(0);
  EXPECT_EQ(message(none), "service myapp has no K8sManifest manifest");
  json ecs = yaml(kService);
  ecs["service"]["serviceDefinition"]["type"] = "ECS";
  EXPECT_NE(message(ecs).find("need type Kubernetes"), std::string::npos);
  json nopaths = yaml(kService);
  nopaths["service"]["serviceDefinition"]["spec"]["manifests"][0]["manifest"]["spec"]["store"]
         ["spec"]
             .erase("paths");
  EXPECT_NE(message(nopaths).find("lists no file or folder"), std::string::npos);
}

} // namespace
