// The pure transforms of the deployment steps: versioning, workloads, canary, blue-green, and
// image pull secrets.
#include <gtest/gtest.h>

#include "capstan/manifest/artifact.h"
#include "capstan/manifest/blue_green.h"
#include "capstan/manifest/canary.h"
#include "capstan/manifest/error.h"
#include "capstan/manifest/versioning.h"
#include "capstan/manifest/workloads.h"

namespace {

using namespace capstan::manifest;
using nlohmann::json;

const char* kApp = R"(apiVersion: v1
kind: ConfigMap
metadata: {name: app-config, namespace: web}
data: {A: a}
---
apiVersion: v1
kind: Secret
metadata: {name: app-secret, namespace: web}
stringData: {B: b}
---
apiVersion: v1
kind: Secret
metadata:
  name: regcred
  namespace: web
  annotations: {harness.io/skip-versioning: "true"}
type: kubernetes.io/dockerconfigjson
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config, namespace: other}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      imagePullSecrets: [{name: regcred}, {name: app-secret}]
      initContainers:
      - name: init
        image: busybox
        envFrom: [{configMapRef: {name: app-config}}]
      containers:
      - name: app
        image: registry.example.com/team/app:1.0
        envFrom: [{configMapRef: {name: app-config}}, {secretRef: {name: app-secret}}]
        env:
        - name: A
          valueFrom: {configMapKeyRef: {name: app-config, key: A}}
        - name: B
          valueFrom: {secretKeyRef: {name: app-secret, key: B}}
        - name: UNRELATED
          valueFrom: {configMapKeyRef: {name: not-in-manifests, key: x}}
      volumes:
      - name: c
        configMap: {name: app-config}
      - name: s
        secret: {secretName: app-secret}
      - name: p
        projected:
          sources:
          - configMap: {name: app-config}
          - secret: {name: app-secret}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: web}
spec:
  selector: {app: app}
  ports: [{port: 80, targetPort: 8080}]
)";

std::vector<Resource> app() {
  return parse_resources(kApp, "app.yaml");
}

const Resource& find(const std::vector<Resource>& rs, const std::string& kind,
                     const std::string& name) {
  for (const auto& r : rs) {
    if (r.kind() == kind && r.name() == name) return r;
  }
  throw std::runtime_error("no " + kind + "/" + name);
}

TEST(Versioning, RenamesConfigMapsAndSecretsAndRewritesReferences) {
  auto rs = app();
  auto renamed = apply_versioning(rs, 7);
  ASSERT_EQ(renamed.size(), 3u);
  EXPECT_EQ(renamed[0].to, "app-config-7");
  EXPECT_TRUE(find(rs, "ConfigMap", "app-config-7").versioned);
  EXPECT_EQ(find(rs, "ConfigMap", "app-config-7").namespace_(), "web");
  EXPECT_NO_THROW(find(rs, "Secret", "app-secret-7"));
  EXPECT_NO_THROW(find(rs, "Secret", "regcred")); // opted out
  const auto& pod = find(rs, "Deployment", "app").object["spec"]["template"]["spec"];
  EXPECT_EQ(pod["imagePullSecrets"],
            json::parse(R"([{"name":"regcred"},{"name":"app-secret-7"}])"));
  EXPECT_EQ(pod["initContainers"][0]["envFrom"][0]["configMapRef"]["name"], "app-config-7");
  const auto& c = pod["containers"][0];
  EXPECT_EQ(c["envFrom"][0]["configMapRef"]["name"], "app-config-7");
  EXPECT_EQ(c["envFrom"][1]["secretRef"]["name"], "app-secret-7");
  EXPECT_EQ(c["env"][0]["valueFrom"]["configMapKeyRef"]["name"], "app-config-7");
  EXPECT_EQ(c["env"][1]["valueFrom"]["secretKeyRef"]["name"], "app-secret-7");
  EXPECT_EQ(c["env"][2]["valueFrom"]["configMapKeyRef"]["name"], "not-in-manifests");
  EXPECT_EQ(pod["volumes"][0]["configMap"]["name"], "app-config-7");
  EXPECT_EQ(pod["volumes"][1]["secret"]["secretName"], "app-secret-7");
  EXPECT_EQ(pod["volumes"][2]["projected"]["sources"][0]["configMap"]["name"], "app-config-7");
  EXPECT_EQ(pod["volumes"][2]["projected"]["sources"][1]["secret"]["name"], "app-secret-7");
  // Running it twice does not version twice.
  EXPECT_TRUE(apply_versioning(rs, 7).empty());
}

TEST(Versioning, ReferencesResolveInThePodsNamespace) {
  auto rs = parse_resources(R"(apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: a}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: b}
spec:
  containers: [{name: c, image: x, envFrom: [{configMapRef: {name: cfg}}]}]
)",
                            "m.yaml");
  apply_versioning(rs, 2);
  EXPECT_EQ(rs[1].object["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"], "cfg");
  EXPECT_THROW(apply_versioning(rs, 0), ManifestError);
}

TEST(Workloads, ManagedWorkloadsPerStrategy) {
  auto rs = parse_resources(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
---
apiVersion: batch/v1
kind: Job
metadata: {name: j}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: side
  annotations: {harness.io/direct-apply: "true"}
)",
                            "m.yaml");
  EXPECT_EQ(managed_workloads(rs, Strategy::Rolling), (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(managed_workloads(rs, Strategy::Canary), (std::vector<std::size_t>{0}));
  EXPECT_EQ(single_managed_workload(rs, Strategy::Canary), 0u);
  EXPECT_TRUE(is_workload_kind("Job"));
  EXPECT_FALSE(is_workload_kind("Service"));
}

TEST(Workloads, ExactlyOneForCanaryAndBlueGreenWithHarnessMessages) {
  auto none = parse_resources("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "m.yaml");
  try {
    single_managed_workload(none, Strategy::Canary);
    FAIL();
  } catch (const ManifestError& e) {
    EXPECT_STREQ(e.what(), "No workload found in the Manifests. Can't do Canary Deployment. Only "
                           "Deployment, DeploymentConfig (OpenShift) and StatefulSet workloads "
                           "are supported in Canary workflow type.");
  }
  auto two = parse_resources("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n---\n"
                             "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: b}\n",
                             "m.yaml");
  try {
    single_managed_workload(two, Strategy::BlueGreen);
    FAIL();
  } catch (const ManifestError& e) {
    EXPECT_STREQ(e.what(),
                 "Found 2 workloads in manifest: [Deployment/a (m.yaml:1), StatefulSet/b "
                 "(m.yaml:5)]. Blue/Green Workflows support a single Deployment, DeploymentConfig "
                 "(OpenShift) or StatefulSet workload only. Annotate the others with "
                 "harness.io/direct-apply: \"true\" to apply them without managing them.");
  }
}

TEST(Workloads, ReleaseLabelOnPodTemplates) {
  auto rs = app();
  label_release(rs, Strategy::Rolling, "release-ab12");
  EXPECT_EQ(find(rs, "Deployment", "app")
                .object["spec"]["template"]["metadata"]["labels"][labels::kReleaseName],
            "release-ab12");
}

TEST(Canary, InstancesByCountOrPercentage) {
  EXPECT_EQ(canary_instances(InstanceUnit::Count, 2, 10), 2);
  EXPECT_EQ(canary_instances(InstanceUnit::Percentage, 50, 4), 2);
  EXPECT_EQ(canary_instances(InstanceUnit::Percentage, 70, 4), 3); // 2.8
  EXPECT_EQ(canary_instances(InstanceUnit::Percentage, 50, 3), 2); // 1.5 rounds half up
  EXPECT_EQ(canary_instances(InstanceUnit::Percentage, 30, 4), 1); // 1.2
  EXPECT_EQ(canary_instances(InstanceUnit::Percentage, 5, 2), 1);  // never below one
  EXPECT_THROW(canary_instances(InstanceUnit::Percentage, 0, 4), ManifestError);
  EXPECT_THROW(canary_instances(InstanceUnit::Percentage, 101, 4), ManifestError);
  EXPECT_THROW(canary_instances(InstanceUnit::Count, 0, 4), ManifestError);
}

TEST(Canary, CopiesTheWorkloadWithTrackLabels) {
  CanaryPlan plan = prepare_canary(app(), InstanceUnit::Percentage, 50);
  EXPECT_EQ(plan.workload.key(), "Deployment/web/app");
  EXPECT_EQ(plan.canary_workload.key(), "Deployment/web/app-canary");
  EXPECT_EQ(plan.replicas, 2);
  const auto& d = find(plan.resources, "Deployment", "app-canary").object;
  EXPECT_EQ(d["spec"]["replicas"], 2);
  EXPECT_EQ(d["spec"]["selector"]["matchLabels"],
            json::parse(R"({"app":"app","harness.io/track":"canary"})"));
  EXPECT_EQ(d["spec"]["template"]["metadata"]["labels"],
            json::parse(R"({"app":"app","harness.io/track":"canary"})"));
  EXPECT_THROW(find(plan.resources, "Deployment", "app"), std::runtime_error);
  EXPECT_EQ(plan.resources.size(), app().size());
}

TEST(Canary, StableTrackForThePrimary) {
  auto rs = app();
  Resource& d = const_cast<Resource&>(find(rs, "Deployment", "app"));
  mark_stable(d);
  EXPECT_EQ(d.object["spec"]["selector"]["matchLabels"]["harness.io/track"], "stable");
  EXPECT_EQ(d.object["spec"]["template"]["metadata"]["labels"]["harness.io/track"], "stable");
  auto again = app();
  Resource& e = const_cast<Resource&>(find(again, "Deployment", "app"));
  mark_stable(e, false);
  EXPECT_FALSE(e.object["spec"]["selector"]["matchLabels"].contains("harness.io/track"));
}

TEST(BlueGreen, FirstDeploymentClonesTheStageServiceAndStagesBlue) {
  BlueGreenPlan plan = prepare_blue_green(app(), "");
  EXPECT_EQ(plan.primary_color, "green");
  EXPECT_EQ(plan.stage_color, "blue");
  EXPECT_EQ(plan.workload.key(), "Deployment/web/app-blue");
  EXPECT_EQ(plan.primary_service, "app");
  EXPECT_EQ(plan.stage_service, "app-stage");
  EXPECT_TRUE(plan.stage_service_created);
  EXPECT_EQ(selector_color(find(plan.resources, "Service", "app").object), "green");
  EXPECT_EQ(selector_color(find(plan.resources, "Service", "app-stage").object), "blue");
  const auto& d = find(plan.resources, "Deployment", "app-blue").object;
  EXPECT_EQ(d["spec"]["selector"]["matchLabels"]["harness.io/color"], "blue");
  EXPECT_EQ(d["spec"]["template"]["metadata"]["labels"]["harness.io/color"], "blue");
}

TEST(BlueGreen, ColoursAlternateAndAnnotatedServicesAreUsed) {
  auto rs = parse_resources(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template: {metadata: {labels: {app: web}}, spec: {containers: []}}
---
apiVersion: v1
kind: Service
metadata:
  name: web-live
  annotations: {harness.io/primary-service: "true"}
spec: {selector: {app: web}, type: NodePort, ports: [{port: 80, nodePort: 30080}]}
---
apiVersion: v1
kind: Service
metadata:
  name: web-preview
  annotations: {harness.io/stage-service: "true"}
spec: {selector: {app: web}}
)",
                            "m.yaml");
  BlueGreenPlan plan = prepare_blue_green(rs, "blue");
  EXPECT_EQ(plan.stage_color, "green");
  EXPECT_EQ(plan.workload.name, "web-green");
  EXPECT_EQ(plan.primary_service, "web-live");
  EXPECT_EQ(plan.stage_service, "web-preview");
  EXPECT_FALSE(plan.stage_service_created);
  EXPECT_EQ(selector_color(find(plan.resources, "Service", "web-live").object), "blue");
  EXPECT_EQ(selector_color(find(plan.resources, "Service", "web-preview").object), "green");
  EXPECT_THROW(prepare_blue_green(rs, "purple"), ManifestError);
}

TEST(BlueGreen, ClonedStageServiceDropsAllocatedPorts) {
  auto rs = parse_resources(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, type: NodePort, clusterIP: 10.0.0.5, ports: [{port: 80, nodePort: 30080}]}
)",
                            "m.yaml");
  auto plan = prepare_blue_green(rs, "");
  const auto& stage = find(plan.resources, "Service", "web-stage").object;
  EXPECT_FALSE(stage["spec"].contains("clusterIP"));
  EXPECT_FALSE(stage["spec"]["ports"][0].contains("nodePort"));
  EXPECT_EQ(find(plan.resources, "Service", "web").object["spec"]["ports"][0]["nodePort"], 30080);
}

TEST(BlueGreen, ServicesMustBeIdentifiable) {
  auto rs = parse_resources("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\n---\n"
                            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n"
                            "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n",
                            "m.yaml");
  try {
    prepare_blue_green(rs, "");
    FAIL();
  } catch (const ManifestError& e) {
    EXPECT_NE(std::string(e.what()).find("Could not locate a primary Service among [a (m.yaml:5), "
                                         "b (m.yaml:9)]"),
              std::string::npos)
        << e.what();
  }
  auto no_service =
      parse_resources("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\n", "m.yaml");
  EXPECT_THROW(prepare_blue_green(no_service, ""), ManifestError);
}

TEST(BlueGreen, SwapExchangesColours) {
  json primary = {{"metadata", {{"name", "app"}}},
                  {"spec", {{"selector", {{"app", "app"}, {"harness.io/color", "green"}}}}}};
  json stage = {{"metadata", {{"name", "app-stage"}}},
                {"spec", {{"selector", {{"app", "app"}, {"harness.io/color", "blue"}}}}}};
  swap_service_selectors(primary, stage);
  EXPECT_EQ(selector_color(primary), "blue");
  EXPECT_EQ(selector_color(stage), "green");
  swap_service_selectors(primary, stage); // a rollback swaps back
  EXPECT_EQ(selector_color(primary), "green");
  json plain = {{"metadata", {{"name", "x"}}}, {"spec", {{"selector", {{"app", "x"}}}}}};
  EXPECT_THROW(swap_service_selectors(plain, stage), ManifestError);
  EXPECT_EQ(other_color("blue"), "green");
}

TEST(Artifact, FromJsonAndRegistries) {
  Artifact a = Artifact::from_json({{"imagePath", "myorg/myapp"}, {"tag", "v2.0.0"}});
  EXPECT_EQ(a.image, "myorg/myapp:v2.0.0");
  EXPECT_EQ(a.registry, "docker.io");
  EXPECT_FALSE(a.credentials);
  EXPECT_EQ(registry_of("gcr.io/p/app:1"), "gcr.io");
  EXPECT_EQ(registry_of("localhost:5000/app"), "localhost:5000");
  EXPECT_EQ(registry_of("nginx"), "docker.io");
  EXPECT_EQ(registry_auth_key("docker.io"), "https://index.docker.io/v1/");
  EXPECT_EQ(registry_auth_key("https://registry.example.com/v2/"), "registry.example.com");
  EXPECT_THROW(Artifact::from_json(json::object()), ManifestError);
  EXPECT_EQ(image_pull_secret_dockercfg(a), "");
}

TEST(Artifact, PullSecretFromCredentials) {
  Artifact a = Artifact::from_json({{"image", "registry.example.com/team/app:2.0"},
                                    {"username", "robot"},
                                    {"password", "s3cret"}});
  EXPECT_EQ(
      docker_config_json(a),
      R"({"auths":{"registry.example.com":{"auth":"cm9ib3Q6czNjcmV0","password":"s3cret","username":"robot"}}})");
  json secret = image_pull_secret(a, "app-dockercfg", "web");
  EXPECT_EQ(secret["type"], "kubernetes.io/dockerconfigjson");
  EXPECT_EQ(secret["metadata"]["annotations"]["harness.io/skip-versioning"], "true");
  EXPECT_EQ(secret["data"][".dockerconfigjson"], image_pull_secret_dockerconfigjson(a));

  auto rs = parse_resources(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: a, namespace: web}
spec: {template: {spec: {containers: [{name: a, image: "registry.example.com/team/app:1.0"}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: b, namespace: web}
spec: {template: {spec: {containers: [{name: b, image: nginx}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: c, namespace: web}
spec:
  template:
    spec:
      imagePullSecrets: [{name: mine}]
      containers: [{name: c, image: "registry.example.com/team/app@sha256:abc"}]
)",
                            "m.yaml");
  EXPECT_TRUE(inject_image_pull_secret(rs, a, "app-dockercfg", "web"));
  EXPECT_EQ(rs[0].object["spec"]["template"]["spec"]["imagePullSecrets"][0]["name"],
            "app-dockercfg");
  EXPECT_FALSE(rs[1].object["spec"]["template"]["spec"].contains("imagePullSecrets"));
  EXPECT_EQ(rs[2].object["spec"]["template"]["spec"]["imagePullSecrets"][0]["name"], "mine");
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[3].id().key(), "Secret/web/app-dockercfg");
  Artifact public_image = Artifact::from_json({{"image", "nginx:1"}});
  EXPECT_FALSE(inject_image_pull_secret(rs, public_image, "x", "web"));
}

} // namespace
