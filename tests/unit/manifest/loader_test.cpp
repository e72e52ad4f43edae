// Gathering manifest files from stores and rendering them into objects.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "capstan/manifest/error.h"
#include "capstan/manifest/loader.h"
#include "capstan/testing/testing.h"

namespace {

namespace fs = std::filesystem;
using namespace capstan::manifest;
using capstan::testing::TempDir;
using capstan::testing::write_file;
using nlohmann::json;

std::map<std::string, int> count_kinds(const std::vector<Resource>& rs) {
  std::map<std::string, int> out;
  for (const auto& r : rs) ++out[r.kind()];
  return out;
}

// The example Harness documents for Go-templated manifests with a private image.
void write_harness_example(const fs::path& root) {
  write_file(root / "app/values.yaml", R"(name: harness-example
replicas: 2
image: nginx:1.0
dockercfg: ""
createNamespace: true
namespace: web
serviceType: LoadBalancer
servicePort: 80
serviceTargetPort: 80
env:
  config:
    key1: value10
  secrets:
    key2: value2
)");
  write_file(root / "app/templates/deployment.yaml", R"({{- if .Values.env.config}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{.Values.name}}
data:
{{.Values.env.config | toYaml | indent 2}}
---
{{- end}}

{{- if .Values.env.secrets}}
apiVersion: v1
kind: Secret
metadata:
  name: {{.Values.name}}
stringData:
{{.Values.env.secrets | toYaml | indent 2}}
---
{{- end}}

{{- if .Values.dockercfg}}
apiVersion: v1
kind: Secret
metadata:
  name: {{.Values.name}}-dockercfg
  annotations:
    harness.io/skip-versioning: "true"
data:
  .dockercfg: {{.Values.dockercfg}}
type: kubernetes.io/dockercfg
---
{{- end}}

apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{.Values.name}}-deployment
spec:
  replicas: {{int .Values.replicas}}
  selector:
    matchLabels:
      app: {{.Values.name}}
  template:
    metadata:
      labels:
        app: {{.Values.name}}
    spec:
      {{- if .Values.dockercfg}}
      imagePullSecrets:
      - name: {{.Values.name}}-dockercfg
      {{- end}}
      containers:
      - name: {{.Values.name}}
        image: {{.Values.image}}
        {{- if or .Values.env.config .Values.env.secrets}}
        envFrom:
        {{- if .Values.env.config}}
        - configMapRef:
            name: {{.Values.name}}
        {{- end}}
        {{- if .Values.env.secrets}}
        - secretRef:
            name: {{.Values.name}}
        {{- end}}
        {{- end}}
)");
  write_file(root / "app/templates/namespace.yaml", R"({{- if .Values.createNamespace}}
apiVersion: v1
kind: Namespace
metadata:
  name: {{.Values.namespace}}
{{- end}}
)");
  write_file(root / "app/templates/service.yaml", R"(apiVersion: v1
kind: Service
metadata:
  name: {{.Values.name}}-svc
spec:
  type: {{.Values.serviceType}}
  ports:
  - port: {{.Values.servicePort}}
    targetPort: {{.Values.serviceTargetPort}}
    protocol: TCP
  selector:
    app: {{.Values.name}}
)");
}

TEST(Loader, FolderGivesManifestsHelpersAndItsValuesFile) {
  TempDir dir;
  write_file(dir / "k8s/values.yaml", "a: 1\n");
  write_file(dir / "k8s/templates/b.yml", "x: 1\n");
  write_file(dir / "k8s/templates/a.yaml", "x: 1\n");
  write_file(dir / "k8s/templates/_helpers.tpl", "{{ define \"x\" }}{{ end }}\n");
  write_file(dir / "k8s/templates/NOTES.txt", "ignored\n");
  write_file(dir / "k8s/.git/config.yaml", "ignored: true\n");
  write_file(dir / "k8s/.hidden.yaml", "ignored: true\n");
  write_file(dir / "other/prod.yaml", "a: 2\n");
  auto loaded = load_manifests({dir.path(), {"k8s"}, {"other/prod.yaml"}, "m", {}});
  ASSERT_EQ(loaded.templates.size(), 2u);
  EXPECT_EQ(loaded.templates[0].path, "k8s/templates/a.yaml");
  EXPECT_EQ(loaded.templates[0].relative, "templates/a.yaml");
  EXPECT_EQ(loaded.templates[1].path, "k8s/templates/b.yml");
  ASSERT_EQ(loaded.helpers.size(), 1u);
  ASSERT_EQ(loaded.values.size(), 2u);
  EXPECT_EQ(loaded.values[0].name, "k8s/values.yaml");
  EXPECT_EQ(loaded.values[1].name, "other/prod.yaml");
}

TEST(Loader, StandInTextsReplaceFilesOnDiskOnly) {
  TempDir dir;
  write_file(dir / "k8s/values.yaml", "a: <+x>\n");
  write_file(dir / "k8s/a.yaml", "x: <+y>\n");
  write_file(dir / "k8s/b.yaml", "x: 2\n");
  write_file(dir / "prod.yaml", "a: <+z>\n");
  FileTexts texts = {
      {"k8s/values.yaml", "a: 1\n"}, {"k8s/a.yaml", "x: 1\n"}, {"prod.yaml", "a: 3\n"}};
  auto loaded = load_manifests({dir.path(), {"k8s"}, {"prod.yaml"}, "m", texts});
  ASSERT_EQ(loaded.templates.size(), 2u);
  EXPECT_EQ(loaded.templates[0].text, "x: 1\n");
  EXPECT_EQ(loaded.templates[1].text, "x: 2\n"); // no stand-in: read from disk
  ASSERT_EQ(loaded.values.size(), 2u);
  EXPECT_EQ(loaded.values[0].text, "a: 1\n");
  EXPECT_EQ(loaded.values[1].text, "a: 3\n");
  EXPECT_EQ(capstan::testing::read_file(dir / "k8s/a.yaml"),
            "x: <+y>\n"); // the files themselves stay
  auto values = load_values_files(dir.path(), {"prod.yaml"}, "v", texts);
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values[0].text, "a: 3\n");
}

TEST(Loader, RendersHarnessDocumentedExample) {
  TempDir dir;
  write_harness_example(dir.path());
  RenderRequest req;
  req.sources.push_back({dir.path(), {"app"}, {}, "k8s", {}});
  req.overrides.push_back({"environment prod", "replicas: 5\ndockercfg: ZG9ja2VyY2Zn\n"});
  req.namespace_ = "web";
  RenderResult out = render_manifests(req);
  EXPECT_EQ(
      count_kinds(out.resources),
      (std::map<std::string, int>{
          {"ConfigMap", 1}, {"Deployment", 1}, {"Namespace", 1}, {"Secret", 2}, {"Service", 1}}));
  EXPECT_TRUE(out.warnings.empty());
  const Resource* deployment = nullptr;
  for (const auto& r : out.resources) {
    if (r.kind() == "Deployment") deployment = &r;
    if (r.kind() != "Namespace") {
      EXPECT_EQ(r.namespace_(), "web") << r.id().key();
    }
  }
  ASSERT_NE(deployment, nullptr);
  EXPECT_EQ(deployment->file, "app/templates/deployment.yaml");
  EXPECT_EQ(deployment->object["spec"]["replicas"], 5);
  const auto& pod = deployment->object["spec"]["template"]["spec"];
  EXPECT_EQ(pod["imagePullSecrets"][0]["name"], "harness-example-dockercfg");
  EXPECT_EQ(pod["containers"][0]["image"], "nginx:1.0");
  EXPECT_EQ(pod["containers"][0]["envFrom"].size(), 2u);
  EXPECT_EQ(out.values["replicas"], 5);
  EXPECT_EQ(out.files.size(), 3u);
}

TEST(Loader, ArtifactImageFillsValuesOnlyWhenUnset) {
  TempDir dir;
  write_file(dir / "m/deploy.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
                                    "data: {image: \"{{ .Values.image }}\"}\n");
  RenderRequest req;
  req.sources.push_back({dir.path(), {"m"}, {}, "k8s", {}});
  req.overrides.push_back({"v", "other: 1\n"});
  req.artifact = Artifact::from_json({{"imagePath", "myorg/myapp"}, {"tag", "v2.0.0"}});
  EXPECT_EQ(render_manifests(req).resources[0].object["data"]["image"], "myorg/myapp:v2.0.0");
  req.overrides.push_back({"v2", "image: pinned:1\n"});
  EXPECT_EQ(render_manifests(req).resources[0].object["data"]["image"], "pinned:1");
}

TEST(Loader, WithoutValuesFilesTemplatesAreNotRendered) {
  TempDir dir;
  write_file(dir / "m/alerts.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: alerts}\n"
                                    "data:\n  rule: \"{{ $labels.instance }} is down\"\n");
  RenderRequest req;
  req.sources.push_back({dir.path(), {"m"}, {}, "k8s", {}});
  auto out = render_manifests(req);
  ASSERT_EQ(out.resources.size(), 1u);
  EXPECT_EQ(out.resources[0].object["data"]["rule"], "{{ $labels.instance }} is down");
}

TEST(Loader, SkipFileForDeployUnlessAppliedByName) {
  TempDir dir;
  write_file(dir / "m/job.yaml", "# harness.io/skip-file-for-deploy\napiVersion: batch/v1\n"
                                 "kind: Job\nmetadata: {name: migrate}\n");
  write_file(dir / "m/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n");
  RenderRequest req;
  req.sources.push_back({dir.path(), {"m"}, {}, "k8s", {}});
  auto out = render_manifests(req);
  ASSERT_EQ(out.resources.size(), 1u);
  ASSERT_EQ(out.skipped.size(), 1u);
  EXPECT_EQ(out.skipped[0].name(), "migrate");
  req.only_files = {"job.yaml"};
  out = render_manifests(req);
  ASSERT_EQ(out.resources.size(), 1u);
  EXPECT_EQ(out.resources[0].kind(), "Job");
  EXPECT_TRUE(out.skipped.empty());
}

TEST(Loader, ApplyFilePathsAreRelativeToTheManifestFolderOrTheStore) {
  TempDir dir;
  write_file(dir / "m/jobs/job.yaml", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n");
  write_file(dir / "m/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n");
  RenderRequest req;
  req.sources.push_back({dir.path(), {"m"}, {}, "k8s", {}});
  req.only_files = {"jobs/job.yaml"};
  EXPECT_EQ(render_manifests(req).resources.size(), 1u);
  req.only_files = {"m/jobs"};
  EXPECT_EQ(render_manifests(req).resources.at(0).kind(), "Job");
  // A broken file that is not applied does not fail the apply.
  write_file(dir / "m/broken.yaml", "{{ if }}\n");
  req.overrides.push_back({"v", "a: 1\n"});
  req.only_files = {"jobs/job.yaml"};
  EXPECT_EQ(render_manifests(req).resources.at(0).kind(), "Job");
  req.only_files = {"broken.yaml"};
  EXPECT_THROW(render_manifests(req), TemplateError);
  req.only_files = {"nope.yaml"};
  try {
    render_manifests(req);
    FAIL() << "unknown file accepted";
  } catch (const ManifestError& e) {
    EXPECT_STREQ(e.what(), "file path \"nope.yaml\" matches no manifest file");
  }
}

TEST(Loader, PathsMayNotLeaveTheStore) {
  TempDir dir;
  write_file(dir / "store/m/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n");
  write_file(dir / "secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n");
  fs::path store = dir / "store";
  auto message = [&](std::vector<std::string> paths) {
    try {
      load_manifests({store, paths, {}, "k8s", {}});
    } catch (const ManifestError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(message({"../secret.yaml"}), "k8s: manifest path \"../secret.yaml\" leaves the store");
  EXPECT_EQ(message({(dir / "secret.yaml").string()}),
            "k8s: manifest path \"" + (dir / "secret.yaml").string() +
                "\" must be relative to the store, not absolute");
  EXPECT_EQ(message({"m/missing.yaml"}),
            "k8s: manifest path \"m/missing.yaml\" does not exist in the store");
  fs::create_symlink(dir / "secret.yaml", store / "m/link.yaml");
  EXPECT_NE(message({"m"}).find("leads outside the store"), std::string::npos);
}

TEST(Loader, TemplateErrorsNameTheStorePath) {
  TempDir dir;
  write_file(dir / "m/values.yaml", "image: {tag: ~}\n");
  write_file(dir / "m/templates/deploy.yaml",
             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.image.tag.x }}\n");
  RenderRequest req;
  req.sources.push_back({dir.path(), {"m"}, {}, "k8s", {}});
  try {
    render_manifests(req);
    FAIL() << "rendered";
  } catch (const TemplateError& e) {
    EXPECT_STREQ(e.what(), "m/templates/deploy.yaml:4:11: executing \"m/templates/deploy.yaml\" at "
                           "<.Values.image.tag.x>: nil pointer evaluating interface {}.x");
  }
}

TEST(Loader, YamlErrorsAfterRenderingSayso) {
  TempDir dir;
  write_file(dir / "m/values.yaml", "items: [a, b]\n");
  write_file(dir / "m/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n"
                                "{{ range .Values.items }}  {{ . }}: x\n {{ end }}\n");
  RenderRequest req;
  req.sources.push_back({dir.path(), {"m"}, {}, "k8s", {}});
  try {
    render_manifests(req);
    FAIL() << "rendered";
  } catch (const ManifestError& e) {
    EXPECT_EQ(e.file(), "m/cm.yaml");
    EXPECT_NE(std::string(e.what()).find("of the rendered file"), std::string::npos) << e.what();
  }
}

TEST(Loader, ManyFilesKeepTheirOrderAndTheFirstErrorIsReported) {
  TempDir dir;
  auto name = [](int i) {
    std::string n = std::to_string(i);
    return std::string(3 - n.size(), '0') + n; // sorted by name = numeric order
  };
  for (int i = 0; i < 200; ++i) {
    write_file(dir / "m" / (name(i) + ".yaml"),
               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c" + name(i) + "\n");
  }
  RenderRequest req;
  req.sources.push_back({dir.path(), {"m"}, {}, "k8s", {}});
  auto out = render_manifests(req);
  ASSERT_EQ(out.resources.size(), 200u);
  ASSERT_EQ(out.files.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(out.resources[i].name(), "c" + name(i));
    EXPECT_EQ(out.files[i].path, "m/" + name(i) + ".yaml");
  }
  // Two broken files: the one a file-by-file reading meets first is named, every time.
  write_file(dir / "m/150.yaml", "metadata: [oops\n");
  write_file(dir / "m/040.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n");
  for (int attempt = 0; attempt < 5; ++attempt) {
    try {
      render_manifests(req);
      FAIL() << "rendered";
    } catch (const ManifestError& e) {
      EXPECT_EQ(e.file(), "m/040.yaml") << e.what();
    }
  }
}

// The Argo CD example apps (shared/corpus beside the repository, or CAPSTAN_CORPUS_DIR), copied
// into the test's own folder and taken as plain manifests.
fs::path copy_corpus(const TempDir& dir, const std::string& app) {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("CAPSTAN_CORPUS_DIR")) candidates.emplace_back(env);
  fs::path src = capstan::testing::source_dir();
  candidates.push_back(src.parent_path() / "shared/corpus/argocd-example-apps");
  candidates.push_back(src.parent_path().parent_path() / "shared/corpus/argocd-example-apps");
  candidates.emplace_back("/work/shared/corpus/argocd-example-apps");
  for (const auto& c : candidates) {
    if (fs::is_directory(c / app)) {
      fs::path to = dir / app;
      fs::copy(c / app, to, fs::copy_options::recursive);
      return to;
    }
  }
  ADD_FAILURE() << "the argocd-example-apps corpus was not found; set CAPSTAN_CORPUS_DIR";
  return dir / app;
}

TEST(Loader, RendersArgoGuestbook) {
  TempDir dir;
  fs::path root = copy_corpus(dir, "guestbook");
  RenderRequest req;
  req.sources.push_back({root, {"."}, {}, "guestbook", {}});
  req.namespace_ = "guestbook";
  auto out = render_manifests(req);
  EXPECT_EQ(count_kinds(out.resources),
            (std::map<std::string, int>{{"Deployment", 1}, {"Service", 1}}));
  sort_for_apply(out.resources);
  EXPECT_EQ(out.resources[0].id().key(), "Service/guestbook/guestbook-ui");
  EXPECT_EQ(out.resources[1].id().key(), "Deployment/guestbook/guestbook-ui");
}

TEST(Loader, RendersArgoSockShopBase) {
  TempDir dir;
  fs::path root = copy_corpus(dir, "sock-shop");
  RenderRequest req;
  req.sources.push_back({root, {"base"}, {}, "sock-shop", {}});
  // An (empty) values layer sends every file through the template engine.
  req.overrides.push_back({"values", ""});
  req.namespace_ = "sock-shop";
  auto out = render_manifests(req);
  EXPECT_EQ(out.resources.size(), 29u);
  EXPECT_EQ(count_kinds(out.resources),
            (std::map<std::string, int>{{"Deployment", 14}, {"Ingress", 1}, {"Service", 14}}));
  EXPECT_EQ(out.files.size(), 29u);
  for (const auto& f : out.files) {
    EXPECT_EQ(f.text, capstan::testing::read_file(root / f.path)) << f.path;
  }
  // The folder above holds a kustomization.yaml, which is not a Kubernetes object.
  req.sources[0].paths = {"."};
  try {
    render_manifests(req);
    FAIL() << "kustomization.yaml accepted as a manifest";
  } catch (const ManifestError& e) {
    EXPECT_STREQ(e.what(), "kustomization.yaml:1:1: document has no apiVersion");
  }
}

} // namespace
