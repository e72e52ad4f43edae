// The plugin test fixture.
#include "plugin_fixture.h"

#include "capstan/yaml/yaml.h"

namespace capstan::plugins::kubernetes::testing {

PluginTest::PluginTest() : host_(json::object(), state_.path(), "test-delegate") {}

void PluginTest::SetUp() {
  host_.load({ct::plugin_dir()});
  for (const auto& r : host_.rejections()) {
    if (r.path.filename() == "kubernetes.so") FAIL() << r.reason;
  }
  // Images tagged crashloop, pullfail and fails misbehave on purpose.
  sandbox_ = std::make_unique<ct::Sandbox>(
      dir_ / "sandbox",
      std::string(ct::kFastSandbox) +
          "failureRules:\n"
          "- {image: \"*:crashloop\", reason: CrashLoopBackOff}\n"
          "- {image: \"*:pullfail\", reason: ErrImagePull}\n"
          "- {image: \"*:fails\", reason: Error, exitCode: 2, message: \"migration failed\"}\n");
  client_ = std::make_unique<kube::Client>(kube::load_kubeconfig(sandbox_->kubeconfig()));
  write_app();
  service_ = {
      {"identifier", "web"},
      {"name", "web"},
      {"baseDir", (dir_ / "app").string()},
      {"serviceDefinition",
       {{"type", "Kubernetes"},
        {"spec",
         {{"manifests",
           json::array({{{"manifest",
                          {{"identifier", "app"},
                           {"type", "K8sManifest"},
                           {"spec",
                            {{"store", {{"type", "Local"}, {"spec", {{"paths", {"manifests"}}}}}},
                             {"valuesPaths", {"values.yaml"}}}}}}}})},
          {"artifacts",
           {{"primary",
             {{"sources",
               json::array({{{"identifier", "img"},
                             {"type", "DockerRegistry"},
                             {"spec", {{"imagePath", "myorg/web"}, {"tag", "v1"}}}}})}}}}}}}}}};
  connector_ = {{"identifier", "sandbox"},
                {"type", "K8sCluster"},
                {"credential",
                 {{"type", "Kubeconfig"}, {"kubeconfigPath", sandbox_->kubeconfig().string()}}}};
}

void PluginTest::write(const std::string& rel, const std::string& text) {
  ct::write_file(dir_ / "app" / rel, text);
}

void PluginTest::write_app() {
  write("manifests/deployment.yaml", R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: {{ .Values.image }}
        envFrom:
        - configMapRef: {name: web-config}
)");
  write("manifests/configmap.yaml", R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: {{ .Values.greeting }}
)");
  write("manifests/service.yaml", R"(apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
)");
  write("values.yaml", "replicas: 3\ngreeting: hello\nimage: <+artifact.image>\n");
}

json PluginTest::context(const RunOptions& o) const {
  json service = service_;
  service["serviceDefinition"]["spec"]["artifacts"]["primary"]["sources"][0]["spec"]["tag"] = o.tag;
  json out = {
      {"pipeline",
       {{"identifier", "deploy"},
        {"name", "deploy"},
        {"executionId", o.execution},
        {"sequenceId", 7},
        {"variables", json::object()}}},
      {"stage", {{"identifier", "deploy"}, {"name", "Deploy"}, {"type", "Deployment"}}},
      {"service", service},
      {"environment", {{"identifier", "dev"}, {"name", "dev"}, {"type", "PreProduction"}}},
      {"infrastructure",
       {{"identifier", "sandbox"},
        {"type", "KubernetesDirect"},
        {"spec",
         {{"connectorRef", "sandbox"}, {"namespace", namespace_}, {"releaseName", release_}}}}},
      {"connectors", {{"sandbox", connector_}}}};
  if (!o.environment) {
    out.erase("environment");
    out["pipeline"].erase("variables");
  }
  return out;
}

StepResult PluginTest::run(const std::string& type, const json& spec, ct::Recorder& rec,
                           const RunOptions& o) {
  plugin::v1::StepRequest r;
  r.set_execution_id(o.execution);
  r.set_task_id(o.execution + "-" + type);
  r.set_attempt(1);
  r.set_step_type(type);
  r.set_step_identifier("step");
  r.set_step_name(type);
  r.set_spec_json(spec.dump());
  r.set_timeout_ms(o.timeout_ms);
  auto work = dir_ / ("work-" + std::to_string(++works_));
  std::filesystem::create_directories(work);
  r.set_work_dir(work.string());
  r.set_context_json(context(o).dump());
  r.set_rollback(o.rollback);
  return host_.execute(r, rec.callbacks());
}

void PluginTest::run_ok(const std::string& type, const json& spec, const RunOptions& o) {
  ct::Recorder rec;
  auto r = run(type, spec, rec, o);
  ASSERT_EQ(r.status(), StepResult::STATUS_SUCCEEDED) << type << ": " << r.message() << "\n"
                                                      << rec.all_text();
}

json PluginTest::get(const std::string& api_version, const std::string& kind,
                     const std::string& name, const std::string& ns) {
  return client_->get({api_version, kind, ns, name});
}

bool PluginTest::exists(const std::string& api_version, const std::string& kind,
                        const std::string& name, const std::string& ns) {
  return client_->try_get({api_version, kind, ns, name}).has_value();
}

json PluginTest::history() {
  auto cm = client_->try_get({"v1", "ConfigMap", namespace_, release_});
  if (!cm) return json();
  return yaml::load((*cm)["data"]["releaseHistory"].get<std::string>()).value;
}

} // namespace capstan::plugins::kubernetes::testing
