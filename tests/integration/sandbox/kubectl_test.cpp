// Conformance: the real kubectl, unmodified and with its defaults, against capstan-sandbox.
#include "sandbox_fixture.h"

#include <future>
#include <regex>
#include <set>
#include <thread>

using capstan::sandbox::testing::app_manifest;
using capstan::sandbox::testing::SandboxTest;
using nlohmann::json;
namespace ct = capstan::testing;

namespace {
bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}
std::size_t count_lines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}
} // namespace

TEST_F(SandboxTest, VersionAndDiscovery) {
  json v = get_json({"version"});
  EXPECT_EQ(v["serverVersion"]["major"], "1");
  EXPECT_TRUE(contains(v["serverVersion"].value("gitVersion", ""), "v1.32"));
  std::string resources = kubectl_ok({"api-resources"});
  for (const char* r : {"deployments", "statefulsets", "daemonsets", "jobs", "ingresses",
                        "horizontalpodautoscalers", "poddisruptionbudgets",
                        "customresourcedefinitions", "serviceaccounts", "events"})
    EXPECT_TRUE(contains(resources, r)) << r << " missing from:\n" << resources;
  // kubectl explain reads the OpenAPI v3 documents.
  std::string explain = kubectl_ok({"explain", "deployment.spec.strategy"});
  EXPECT_TRUE(contains(explain, "rollingUpdate")) << explain;
}

TEST_F(SandboxTest, ClientSideApplyCreatesAndReapplyIsUnchanged) {
  auto file = manifest("app.yaml", app_manifest("nginx:1.25"));
  std::string out = kubectl_ok({"apply", "-f", file});
  EXPECT_TRUE(contains(out, "configmap/web-config created")) << out;
  EXPECT_TRUE(contains(out, "deployment.apps/web created")) << out;
  EXPECT_TRUE(contains(out, "service/web created")) << out;
  out = kubectl_ok({"apply", "-f", file});
  EXPECT_TRUE(contains(out, "deployment.apps/web unchanged")) << out;
  json d = get_json({"get", "deployment", "web"});
  EXPECT_EQ(d["spec"]["replicas"], 3);
  // Server-filled defaults as upstream fills them.
  EXPECT_EQ(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
  EXPECT_EQ(d["spec"]["revisionHistoryLimit"], 10);
  EXPECT_EQ(d["spec"]["progressDeadlineSeconds"], 600);
  json c = d["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["imagePullPolicy"], "IfNotPresent");
  EXPECT_EQ(c["terminationMessagePath"], "/dev/termination-log");
  EXPECT_EQ(c["ports"][0]["protocol"], "TCP");
  EXPECT_TRUE(
      d["metadata"]["annotations"].contains("kubectl.kubernetes.io/last-applied-configuration"));
  EXPECT_EQ(d["metadata"]["generation"], 1);
  json svc = get_json({"get", "service", "web"});
  EXPECT_TRUE(
      std::regex_match(svc["spec"].value("clusterIP", ""), std::regex(R"(10\.96\.\d+\.\d+)")));
  EXPECT_EQ(svc["spec"]["type"], "ClusterIP");
  EXPECT_EQ(get_json({"get", "configmap", "web-config"})["data"]["greeting"], "hello");
}

TEST_F(SandboxTest, ServerSideApplyRecordsOwnership) {
  auto file = manifest("app.yaml", app_manifest("nginx:1.25"));
  std::string out = kubectl_ok({"apply", "--server-side", "-f", file});
  EXPECT_TRUE(contains(out, "deployment.apps/web serverside-applied")) << out;
  json d = get_json({"get", "deployment", "web", "--show-managed-fields"});
  bool kubectl_apply = false;
  for (const auto& e : d["metadata"]["managedFields"])
    if (e["manager"] == "kubectl" && e["operation"] == "Apply") {
      kubectl_apply = true;
      EXPECT_TRUE(e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"].contains(
          "k:{\"name\":\"web\"}"));
    }
  EXPECT_TRUE(kubectl_apply) << d["metadata"].dump(2);
  // A conflicting manager is refused, then forced.
  kubectl_ok({"scale", "deployment", "web", "--replicas=5"});
  auto r = kubectl({"apply", "--server-side", "-f", file});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "conflict")) << r.err;
  EXPECT_TRUE(contains(r.err, ".spec.replicas")) << r.err;
  kubectl_ok({"apply", "--server-side", "--force-conflicts", "-f", file});
  EXPECT_EQ(get_json({"get", "deployment", "web"})["spec"]["replicas"], 3);
}

TEST_F(SandboxTest, ReapplyWithOnlyTheImageChangedKeepsOtherFields) {
  for (bool server_side : {false, true}) {
    SCOPED_TRACE(server_side ? "server-side" : "client-side");
    auto file = manifest("v1.yaml", app_manifest("nginx:1.25"));
    std::vector<std::string> apply = {"apply", "-f", file};
    if (server_side) apply.insert(apply.begin() + 1, "--server-side");
    kubectl_ok(apply);
    // Another writer adds an env var; the manifest never mentions it.
    kubectl_ok({"set", "env", "deployment/web", "EXTRA=kept"});
    auto file2 = manifest("v2.yaml", app_manifest("nginx:1.26"));
    apply.back() = file2;
    kubectl_ok(apply);
    json d = get_json({"get", "deployment", "web"});
    json c = d["spec"]["template"]["spec"]["containers"][0];
    EXPECT_EQ(c["image"], "nginx:1.26");
    EXPECT_EQ(c["ports"][0]["containerPort"], 80);
    EXPECT_EQ(c["resources"]["limits"]["memory"], "64Mi");
    EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    std::set<std::string> env;
    for (const auto& e : c["env"]) env.insert(e["name"]);
    EXPECT_EQ(env, (std::set<std::string>{"MODE", "EXTRA"})) << c.dump(2);
    EXPECT_EQ(d["metadata"]["generation"], 3); // create, set env, image
    kubectl_ok({"delete", "deployment", "web"});
  }
}

TEST_F(SandboxTest, RolloutStatusScaleAndUndo) {
  kubectl_ok({"apply", "-f", manifest("v1.yaml", app_manifest("nginx:1.25"))});
  std::string out = kubectl_ok({"rollout", "status", "deployment/web", "--timeout=60s"});
  EXPECT_TRUE(contains(out, "successfully rolled out")) << out;
  json d = get_json({"get", "deployment", "web"});
  EXPECT_EQ(d["status"]["readyReplicas"], 3);
  EXPECT_EQ(d["status"]["availableReplicas"], 3);
  EXPECT_EQ(d["status"]["observedGeneration"], d["metadata"]["generation"]);
  bool available = false, progressing = false;
  for (const auto& c : d["status"]["conditions"]) {
    if (c["type"] == "Available")
      available = c["status"] == "True" && c["reason"] == "MinimumReplicasAvailable";
    if (c["type"] == "Progressing")
      progressing = c["status"] == "True" && c["reason"] == "NewReplicaSetAvailable";
  }
  EXPECT_TRUE(available && progressing) << d["status"].dump(2);

  kubectl_ok({"apply", "-f", manifest("v2.yaml", app_manifest("nginx:1.26"))});
  kubectl_ok({"rollout", "status", "deployment/web", "--timeout=60s"});
  json rs = get_json({"get", "rs", "-l", "app=web"});
  ASSERT_EQ(rs["items"].size(), 2u);
  for (const auto& r : rs["items"]) {
    std::string image = r["spec"]["template"]["spec"]["containers"][0]["image"];
    EXPECT_EQ(r["spec"]["replicas"], image == "nginx:1.26" ? 3 : 0);
  }
  std::string history = kubectl_ok({"rollout", "history", "deployment/web"});
  EXPECT_TRUE(contains(history, "1 ") && contains(history, "2 ")) << history;

  out = kubectl_ok({"scale", "deployment/web", "--replicas=5"});
  EXPECT_TRUE(contains(out, "deployment.apps/web scaled")) << out;
  kubectl_ok({"rollout", "status", "deployment/web", "--timeout=60s"});
  EXPECT_EQ(count_lines(kubectl_ok({"get", "pods", "-l", "app=web", "--no-headers"})), 5u);

  out = kubectl_ok({"rollout", "undo", "deployment/web"});
  EXPECT_TRUE(contains(out, "rolled back")) << out;
  kubectl_ok({"rollout", "status", "deployment/web", "--timeout=60s"});
  d = get_json({"get", "deployment", "web"});
  EXPECT_EQ(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25");
  EXPECT_EQ(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3");
  EXPECT_EQ(d["spec"]["replicas"], 5);
  std::string events = kubectl_ok({"get", "events", "--field-selector", "involvedObject.name=web"});
  EXPECT_TRUE(contains(events, "ScalingReplicaSet")) << events;
}

TEST_F(SandboxTest, GetJsonAndWide) {
  kubectl_ok({"apply", "-f", manifest("app.yaml", app_manifest("nginx:1.25", 2))});
  kubectl_ok({"rollout", "status", "deployment/web", "--timeout=60s"});
  std::string wide = kubectl_ok({"get", "pods", "-o", "wide"});
  EXPECT_TRUE(contains(wide, "NODE")) << wide;
  EXPECT_TRUE(contains(wide, "sandbox-node-")) << wide;
  EXPECT_TRUE(contains(wide, "Running")) << wide;
  std::string deploy = kubectl_ok({"get", "deployments", "-o", "wide"});
  EXPECT_TRUE(std::regex_search(
      deploy, std::regex(R"(web\s+2/2\s+2\s+2\s+\S+\s+web\s+nginx:1.25\s+app=web)")))
      << deploy;
  std::string svc = kubectl_ok({"get", "svc", "web"});
  EXPECT_TRUE(
      std::regex_search(svc, std::regex(R"(web\s+ClusterIP\s+10\.96\.\S+\s+<none>\s+80/TCP)")))
      << svc;
  json pods = get_json({"get", "pods"});
  ASSERT_EQ(pods["kind"], "List");
  ASSERT_EQ(pods["items"].size(), 2u);
  for (const auto& p : pods["items"]) {
    EXPECT_EQ(p["status"]["phase"], "Running");
    EXPECT_EQ(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
  }
  std::string describe = kubectl_ok({"describe", "deployment", "web"});
  EXPECT_TRUE(contains(describe, "RollingUpdateStrategy:  25% max unavailable, 25% max surge"))
      << describe;
  EXPECT_TRUE(contains(describe, "NewReplicaSet:")) << describe;
}

TEST_F(SandboxTest, DeleteWaitsAndCascades) {
  kubectl_ok({"apply", "-f", manifest("app.yaml", app_manifest("nginx:1.25", 2))});
  kubectl_ok({"rollout", "status", "deployment/web", "--timeout=60s"});
  std::string out = kubectl_ok({"delete", "deployment", "web", "--wait=true", "--timeout=60s"});
  EXPECT_TRUE(contains(out, "deployment.apps \"web\" deleted")) << out;
  auto r = kubectl({"get", "deployment", "web"});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "NotFound")) << r.err;
  EXPECT_TRUE(ct::wait_until(
      [&] {
        return kubectl_ok({"get", "rs,pods", "-l", "app=web", "-o", "name"}).empty();
      },
      std::chrono::seconds(30), std::chrono::milliseconds(200)));
  // Foreground deletion waits for the dependents before the owner goes.
  kubectl_ok({"apply", "-f", manifest("app.yaml", app_manifest("nginx:1.25", 2))});
  kubectl_ok({"rollout", "status", "deployment/web", "--timeout=60s"});
  kubectl_ok({"delete", "deployment", "web", "--cascade=foreground", "--timeout=60s"});
  EXPECT_TRUE(kubectl_ok({"get", "rs", "-l", "app=web", "-o", "name"}).empty());
  // Orphaning keeps the ReplicaSet.
  kubectl_ok({"apply", "-f", manifest("app.yaml", app_manifest("nginx:1.25", 1))});
  kubectl_ok({"rollout", "status", "deployment/web", "--timeout=60s"});
  kubectl_ok({"delete", "deployment", "web", "--cascade=orphan", "--timeout=60s"});
  json rs = get_json({"get", "rs", "-l", "app=web"});
  ASSERT_EQ(rs["items"].size(), 1u);
  EXPECT_FALSE(rs["items"][0]["metadata"].contains("ownerReferences"));
}

TEST_F(SandboxTest, LabelAndFieldSelectors) {
  for (const auto& [name, tier] :
       std::vector<std::pair<std::string, std::string>>{{"a", "front"}, {"b", "back"}, {"c", ""}}) {
    kubectl_ok({"create", "configmap", name});
    if (!tier.empty()) kubectl_ok({"label", "configmap", name, "tier=" + tier});
  }
  EXPECT_EQ(kubectl_ok({"get", "cm", "-l", "tier=front", "-o", "name"}), "configmap/a\n");
  EXPECT_EQ(kubectl_ok({"get", "cm", "-l", "tier in (front,back)", "-o", "name"}),
            "configmap/a\nconfigmap/b\n");
  EXPECT_EQ(kubectl_ok({"get", "cm", "-l", "tier!=front,tier", "-o", "name"}), "configmap/b\n");
  std::string no_tier = kubectl_ok({"get", "cm", "-l", "!tier", "-o", "name"});
  EXPECT_TRUE(contains(no_tier, "configmap/c")) << no_tier;
  EXPECT_FALSE(contains(no_tier, "configmap/a")) << no_tier;
  EXPECT_EQ(kubectl_ok({"get", "cm", "--field-selector", "metadata.name=b", "-o", "name"}),
            "configmap/b\n");
  std::string not_front = kubectl_ok({"get", "cm", "-l", "tier notin (front)", "-o", "name"});
  EXPECT_TRUE(contains(not_front, "configmap/b") && contains(not_front, "configmap/c") &&
              !contains(not_front, "configmap/a"))
      << not_front;
  auto bad = kubectl({"get", "cm", "-l", "a=b=c"});
  EXPECT_FALSE(bad.status.success());
  EXPECT_TRUE(contains(bad.err, "at character 4")) << bad.err;
  // Paging: kubectl asks for 500 at a time; ask for 1 to exercise continue tokens.
  std::string paged = kubectl_ok({"get", "cm", "--chunk-size=1", "-o", "name", "-l", "tier"});
  EXPECT_EQ(paged, "configmap/a\nconfigmap/b\n");
}

TEST_F(SandboxTest, CustomResourceDefinitionAndCustomResource) {
  kubectl_ok({"apply", "-f", manifest("crd.yaml", R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.size, statusReplicasPath: .status.size}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer}
              color: {type: string, enum: [red, blue]}
              tags: {type: array, items: {type: string}}
          status:
            type: object
            properties:
              size: {type: integer}
)")});
  kubectl_ok({"wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=30s"});
  auto cr = manifest("w.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: "
                               "w1\nspec:\n  size: 3\n  color: red\n");
  std::string out = kubectl_ok({"apply", "-f", cr});
  EXPECT_TRUE(contains(out, "widget.example.com/w1 created")) << out;
  std::string table = kubectl_ok({"get", "widgets"});
  EXPECT_TRUE(std::regex_search(table, std::regex(R"(NAME\s+SIZE\s+COLOR\s+AGE)"))) << table;
  EXPECT_TRUE(std::regex_search(table, std::regex(R"(w1\s+3\s+red)"))) << table;
  EXPECT_EQ(get_json({"get", "wd", "w1"})["spec"]["size"], 3);
  kubectl_ok({"apply", "--server-side", "-f",
              manifest("w2.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: "
                                  "w1\nspec:\n  size: 4\n  color: red\n"),
              "--force-conflicts"});
  EXPECT_EQ(get_json({"get", "widget", "w1"})["spec"]["size"], 4);
  kubectl_ok({"scale", "widget/w1", "--replicas=6"});
  EXPECT_EQ(get_json({"get", "widget", "w1"})["spec"]["size"], 6);
  // Schema checks: unknown fields (kubectl validates strictly), enum and required values.
  auto r = kubectl({"apply", "-f",
                    manifest("bad1.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  "
                                          "name: w2\nspec:\n  size: 1\n  shape: round\n")});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "unknown field \"spec.shape\"")) << r.err;
  r = kubectl({"apply", "-f",
               manifest("bad2.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: "
                                     "w2\nspec:\n  color: green\n")});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "spec.size: Required value")) << r.err;
  EXPECT_TRUE(contains(r.err, "Unsupported value: \"green\"")) << r.err;
  // Deleting the definition removes its resources.
  kubectl_ok({"delete", "crd", "widgets.example.com"});
  EXPECT_TRUE(ct::wait_until(
      [&] {
        return !kubectl({"get", "widgets"}).status.success();
      },
      std::chrono::seconds(20), std::chrono::milliseconds(200)));
}

TEST_F(SandboxTest, StateSurvivesARestart) {
  kubectl_ok({"apply", "-f", manifest("app.yaml", app_manifest("nginx:1.25", 2))});
  kubectl_ok({"rollout", "status", "deployment/web", "--timeout=60s"});
  json before = get_json({"get", "deployment", "web"});
  stop_sandbox();
  start_sandbox();
  json after = get_json({"get", "deployment", "web"});
  EXPECT_EQ(after["metadata"]["uid"], before["metadata"]["uid"]);
  EXPECT_EQ(after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"]);
  kubectl_ok({"scale", "deployment/web", "--replicas=3"});
  kubectl_ok({"rollout", "status", "deployment/web", "--timeout=60s"});
  json scaled = get_json({"get", "deployment", "web"});
  EXPECT_GT(std::stoll(scaled["metadata"]["resourceVersion"].get<std::string>()),
            std::stoll(before["metadata"]["resourceVersion"].get<std::string>()));
  EXPECT_EQ(scaled["status"]["readyReplicas"], 3);
}

TEST_F(SandboxTest, FailingImagesNeverBecomeReadyAndReportWhy) {
  auto file = manifest("bad.yaml", R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: crash}
spec:
  replicas: 2
  progressDeadlineSeconds: 2
  selector: {matchLabels: {app: crash}}
  template:
    metadata: {labels: {app: crash}}
    spec:
      containers: [{name: app, image: "example/app:crashloop"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: pull}
spec:
  replicas: 1
  selector: {matchLabels: {app: pull}}
  template:
    metadata: {labels: {app: pull}}
    spec:
      containers: [{name: app, image: "example/app:pullfail"}]
)");
  kubectl_ok({"apply", "-f", file});
  auto r = kubectl({"rollout", "status", "deployment/crash", "--timeout=30s"});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "exceeded its progress deadline")) << r.out << r.err;
  json d = get_json({"get", "deployment", "crash"});
  bool deadline = false;
  for (const auto& c : d["status"]["conditions"])
    deadline = deadline || (c["type"] == "Progressing" && c["status"] == "False" &&
                            c["reason"] == "ProgressDeadlineExceeded");
  EXPECT_TRUE(deadline) << d["status"].dump(2);
  EXPECT_TRUE(ct::wait_until(
      [&] {
        json pods = get_json({"get", "pods", "-l", "app=crash"});
        for (const auto& p : pods["items"])
          if (p["status"]["containerStatuses"][0].value("restartCount", 0) >= 2 &&
              p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] ==
                  "CrashLoopBackOff")
            return true;
        return false;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(200)));
  EXPECT_TRUE(contains(kubectl_ok({"get", "pods", "-l", "app=crash"}), "CrashLoopBackOff"));
  EXPECT_TRUE(ct::wait_until(
      [&] {
        std::string s = kubectl_ok({"get", "pods", "-l", "app=pull"});
        return contains(s, "ErrImagePull") || contains(s, "ImagePullBackOff");
      },
      std::chrono::seconds(30), std::chrono::milliseconds(200)));
  std::string events = kubectl_ok({"get", "events", "--field-selector", "reason=BackOff"});
  EXPECT_TRUE(contains(events, "Back-off restarting failed container app")) << events;
  std::string describe = kubectl_ok({"describe", "pods", "-l", "app=pull"});
  EXPECT_TRUE(contains(describe, "Failed to pull image \"example/app:pullfail\"")) << describe;
}

TEST_F(SandboxTest, StatefulSetDaemonSetAndJob) {
  kubectl_ok({"apply", "-f", manifest("w.yaml", R"(apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "postgres:16"}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: "fluentbit:3"}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: "migrate:1"}]
)")});
  kubectl_ok({"rollout", "status", "statefulset/db", "--timeout=60s"});
  EXPECT_EQ(kubectl_ok({"get", "pods", "-l", "app=db", "-o", "name"}),
            "pod/db-0\npod/db-1\npod/db-2\n");
  kubectl_ok({"rollout", "status", "daemonset/agent", "--timeout=60s"});
  EXPECT_EQ(count_lines(kubectl_ok({"get", "pods", "-l", "app=agent", "-o", "name"})),
            2u); // 2 nodes
  kubectl_ok({"wait", "--for=condition=Complete", "job/migrate", "--timeout=60s"});
  json job = get_json({"get", "job", "migrate"});
  EXPECT_EQ(job["status"]["succeeded"], 2);
  // A rolling update of the StatefulSet replaces pods from the highest ordinal.
  kubectl_ok({"set", "image", "statefulset/db", "db=postgres:17"});
  kubectl_ok({"rollout", "status", "statefulset/db", "--timeout=60s"});
  json pods = get_json({"get", "pods", "-l", "app=db"});
  for (const auto& p : pods["items"]) EXPECT_EQ(p["spec"]["containers"][0]["image"], "postgres:17");
}

TEST_F(SandboxTest, BadInputGetsStatusErrors) {
  // Unknown fields under kubectl's default strict validation.
  auto r = kubectl(
      {"apply", "-f",
       manifest(
           "unknown.yaml",
           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {a: b}\nextra: 1\n")});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "strict decoding error: unknown field \"extra\"")) << r.err;
  // Invalid names and missing required fields.
  r = kubectl({"create", "configmap", "Bad_Name"});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "metadata.name: Invalid value: \"Bad_Name\"")) << r.err;
  r = kubectl({"apply", "-f",
               manifest("noimage.yaml",
                        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  "
                        "selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: "
                        "b}}\n    spec: {containers: [{name: c}]}\n")});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "spec.template.spec.containers[0].image: Required value")) << r.err;
  r = kubectl({"apply", "-f",
               manifest("mismatch.yaml",
                        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  "
                        "selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: "
                        "c}}\n    spec: {containers: [{name: c, image: x}]}\n")});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "`selector` does not match template `labels`")) << r.err;
  // A missing namespace, a wrong token, an unknown kind.
  r = kubectl({"-n", "nowhere", "create", "configmap", "x"});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "namespaces \"nowhere\" not found")) << r.err;
  r = kubectl({"--token=wrong", "get", "pods"});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "Unauthorized") || contains(r.err, "provide credentials")) << r.err;
  r = kubectl({"get", "gadgets"});
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "the server doesn't have a resource type \"gadgets\"")) << r.err;
  // Optimistic concurrency: a stale resourceVersion is a conflict.
  kubectl_ok({"create", "configmap", "cc", "--from-literal=a=1"});
  json cm = get_json({"get", "configmap", "cc"});
  kubectl_ok({"label", "configmap", "cc", "x=y"});
  cm["data"]["a"] = "2";
  r = kubectl({"replace", "-f", "-"}, cm.dump());
  EXPECT_FALSE(r.status.success());
  EXPECT_TRUE(contains(r.err, "the object has been modified")) << r.err;
  // The sandbox is still serving.
  kubectl_ok({"get", "configmaps"});
}

TEST_F(SandboxTest, DryRunChangesNothing) {
  auto file = manifest("app.yaml", app_manifest("nginx:1.25"));
  std::string out = kubectl_ok({"apply", "--dry-run=server", "-f", file});
  EXPECT_TRUE(contains(out, "deployment.apps/web created (server dry run)")) << out;
  EXPECT_FALSE(kubectl({"get", "deployment", "web"}).status.success());
  kubectl_ok({"apply", "--server-side", "-f", file});
  kubectl_ok({"apply", "--server-side", "--dry-run=server", "-f",
              manifest("v2.yaml", app_manifest("nginx:9"))});
  EXPECT_EQ(
      get_json({"get", "deployment", "web"})["spec"]["template"]["spec"]["containers"][0]["image"],
      "nginx:1.25");
  std::string diff = kubectl({"diff", "-f", manifest("v3.yaml", app_manifest("nginx:1.27"))}).out;
  EXPECT_TRUE(contains(diff, "+        image: nginx:1.27")) << diff;
}

TEST_F(SandboxTest, NamespacesAndWatches) {
  kubectl_ok({"create", "namespace", "team-a"});
  kubectl_ok({"-n", "team-a", "create", "configmap", "c1"});
  EXPECT_EQ(kubectl_ok({"-n", "team-a", "get", "sa", "-o", "name"}), "serviceaccount/default\n");
  // A watch sees a change made while it runs, then the namespace's deletion empties it.
  auto watcher = std::async(std::launch::async, [&] {
    return kubectl(
        {"-n", "team-a", "get", "configmaps", "--watch", "--request-timeout=5s", "-o", "name"});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  kubectl_ok({"-n", "team-a", "create", "configmap", "c2"});
  auto w = watcher.get();
  EXPECT_TRUE(contains(w.out, "configmap/c1")) << w.out << w.err;
  EXPECT_TRUE(contains(w.out, "configmap/c2")) << w.out << w.err;
  std::string out = kubectl_ok({"delete", "namespace", "team-a", "--timeout=60s"});
  EXPECT_TRUE(contains(out, "namespace \"team-a\" deleted")) << out;
  EXPECT_FALSE(kubectl({"get", "namespace", "team-a"}).status.success());
}
