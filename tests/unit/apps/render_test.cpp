// Rendering source folders: plain directories, Kustomize, the Argo CD example apps, bad input.
#include <gtest/gtest.h>

#include <capstan/apps/render.h>
#include <capstan/apps/resources.h>
#include <capstan/testing/testing.h>

#include <filesystem>

namespace {

namespace fs = std::filesystem;
using capstan::apps::ComparisonError;
using capstan::apps::DesiredObject;
using capstan::apps::render_source;
using capstan::apps::Source;
using capstan::testing::TempDir;
using capstan::testing::write_file;

fs::path corpus() {
  return capstan::testing::source_dir() / "tests/fixtures/apps/argocd-example-apps";
}

Source source(const std::string& path) {
  Source s;
  s.repo_url = "file:///repo";
  s.path = path;
  return s;
}

std::vector<std::string> names(const std::vector<DesiredObject>& objects) {
  std::vector<std::string> out;
  for (const auto& o : objects)
    out.push_back(
        o.object["kind"].get<std::string>() + "/" +
        o.object["metadata"].value("name", o.object["metadata"].value("generateName", "")));
  return out;
}

std::string error_of(const fs::path& root, const Source& s,
                     const capstan::apps::RenderOptions& options = {}) {
  try {
    render_source(root, s, options);
  } catch (const ComparisonError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Render, GuestbookPlainYaml) {
  auto objects = render_source(corpus(), source("guestbook"));
  EXPECT_EQ(names(objects),
            (std::vector<std::string>{"Deployment/guestbook-ui", "Service/guestbook-ui"}));
  EXPECT_EQ(objects[0].where(), "guestbook/guestbook-ui-deployment.yaml:1");
}

TEST(Render, SyncWavesMultiDocument) {
  auto objects = render_source(corpus(), source("sync-waves"));
  ASSERT_EQ(objects.size(), 7u);
  EXPECT_EQ(names(objects).front(), "Job/upgrade-sql-schema");
  EXPECT_EQ(objects[1].where(), "sync-waves/manifests.yaml:17");
}

TEST(Render, KustomizeGuestbookAndSockShop) {
  if (!capstan::apps::kustomize_available()) GTEST_SKIP() << "kubectl kustomize is not installed";
  auto objects = render_source(corpus(), source("kustomize-guestbook"));
  EXPECT_EQ(names(objects), (std::vector<std::string>{"Service/kustomize-guestbook-ui",
                                                      "Deployment/kustomize-guestbook-ui"}));
  auto shop = render_source(corpus(), source("sock-shop"));
  EXPECT_EQ(shop.size(), 29u);
  // pre-post-sync builds on kustomize-guestbook (a base outside its folder) and adds hooks.
  auto hooks = render_source(corpus(), source("pre-post-sync"));
  auto n = names(hooks);
  EXPECT_NE(std::find(n.begin(), n.end(), "Job/pre-post-sync-before"), n.end());
  EXPECT_NE(std::find(n.begin(), n.end(), "Deployment/pre-post-sync-kustomize-guestbook-ui"),
            n.end());
}

TEST(Render, KustomizeOptionsGoIntoAnOverlay) {
  if (!capstan::apps::kustomize_available()) GTEST_SKIP() << "kubectl kustomize is not installed";
  Source s = source("kustomize-guestbook");
  capstan::apps::KustomizeOptions k;
  k.name_prefix = "prod-";
  k.namespace_ = "shop";
  k.common_labels = {{"team", "a"}};
  k.images = {"gcr.io/google-samples/gb-frontend=registry.local/guestbook:v2"};
  s.kustomize = k;
  auto objects = render_source(corpus(), s);
  ASSERT_EQ(objects.size(), 2u);
  const auto& deploy = objects[1].object;
  EXPECT_EQ(deploy["metadata"]["name"], "prod-kustomize-guestbook-ui");
  EXPECT_EQ(deploy["metadata"]["namespace"], "shop");
  EXPECT_EQ(deploy["metadata"]["labels"]["team"], "a");
  EXPECT_EQ(deploy["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.local/guestbook:v2");
}

TEST(Render, MissingKubectlIsAClearCondition) {
  Source s = source("kustomize-guestbook");
  capstan::apps::RenderOptions options;
  options.kubectl = "/nonexistent/kubectl";
  EXPECT_FALSE(capstan::apps::kustomize_available(options));
  std::string err = error_of(corpus(), s, options);
  EXPECT_NE(err.find("Kustomize is not available"), std::string::npos) << err;
}

TEST(Render, DirectoryRecurseIncludeExclude) {
  TempDir dir;
  auto cm = [](const std::string& name) {
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n";
  };
  write_file(dir / "app/a.yaml", cm("a"));
  write_file(dir / "app/b.yml", cm("b") + "---\n" + cm("b2"));
  write_file(dir / "app/c.json",
             R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}})");
  write_file(dir / "app/notes.txt", "not yaml: [");
  write_file(dir / "app/.hidden.yaml", cm("hidden"));
  write_file(dir / "app/sub/d.yaml", cm("d"));
  write_file(dir / "app/sub/skip-e.yaml", cm("e"));
  write_file(dir / "app/.git/f.yaml", cm("f"));
  write_file(dir / "app/list.yaml",
             "apiVersion: v1\nkind: List\nitems:\n- " +
                 std::string("{apiVersion: v1, kind: ConfigMap, metadata: {name: l1}}") +
                 "\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: l2}}\n");

  EXPECT_EQ(names(render_source(dir.path(), source("app"))),
            (std::vector<std::string>{"ConfigMap/a", "ConfigMap/b", "ConfigMap/b2", "ConfigMap/c",
                                      "ConfigMap/l1", "ConfigMap/l2"}));
  Source s = source("app");
  s.directory = capstan::apps::DirectoryOptions{true, "", "**/skip-*"};
  EXPECT_EQ(names(render_source(dir.path(), s)),
            (std::vector<std::string>{"ConfigMap/a", "ConfigMap/b", "ConfigMap/b2", "ConfigMap/c",
                                      "ConfigMap/l1", "ConfigMap/l2", "ConfigMap/d"}));
  s.directory = capstan::apps::DirectoryOptions{true, "{*.json,sub/*.yaml}", "sub/skip-*"};
  EXPECT_EQ(names(render_source(dir.path(), s)),
            (std::vector<std::string>{"ConfigMap/c", "ConfigMap/d"}));
}

TEST(Render, InvalidYamlNamesFileAndLine) {
  TempDir dir;
  write_file(dir / "app/good.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n");
  write_file(dir / "app/bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [b\n");
  std::string err = error_of(dir.path(), source("app"));
  EXPECT_EQ(err.rfind("app/bad.yaml:", 0), 0u) << err;
  write_file(dir / "app/bad.yaml", "apiVersion: v1\nkind: ConfigMap\n---\n- just\n- a list\n");
  EXPECT_EQ(error_of(dir.path(), source("app")),
            "app/bad.yaml:1:1: the object has no metadata.name");
  write_file(dir / "app/bad.yaml",
             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n- a\n");
  EXPECT_EQ(error_of(dir.path(), source("app")),
            "app/bad.yaml:5:1: a document must be a Kubernetes object (a mapping)");
  write_file(dir / "app/bad.yaml", "kind: ConfigMap\nmetadata: {name: x}\n");
  EXPECT_EQ(error_of(dir.path(), source("app")), "app/bad.yaml:1:1: the object has no apiVersion");
  EXPECT_EQ(error_of(dir.path(), source("nope")),
            "app path 'nope' does not exist in the repository");
}

TEST(Render, KustomizeFailureCarriesItsMessage) {
  if (!capstan::apps::kustomize_available()) GTEST_SKIP() << "kubectl kustomize is not installed";
  TempDir dir;
  write_file(dir / "k/kustomization.yaml", "resources:\n- missing.yaml\n");
  std::string err = error_of(dir.path(), source("k"));
  EXPECT_EQ(err.rfind("kustomize build failed", 0), 0u) << err;
  EXPECT_NE(err.find("missing.yaml"), std::string::npos) << err;
}

TEST(Render, LinksOutOfTheRepositoryAreRefused) {
  TempDir dir;
  TempDir outside;
  write_file(outside / "secret.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n");
  fs::create_directories(dir / "app");
  fs::create_symlink(outside / "secret.yaml", dir / "app/link.yaml");
  std::string err = error_of(dir.path(), source("app"));
  EXPECT_NE(err.find("leads outside the repository"), std::string::npos) << err;
}

TEST(PrepareDesired, NamespacesTrackingAndDuplicates) {
  capstan::apps::Application app;
  app.name = "shop";
  app.destination.namespace_ = "web";
  std::vector<DesiredObject> objects = {
      {{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "a"}}}}, "a.yaml", 1},
      {{{"apiVersion", "v1"},
        {"kind", "Namespace"},
        {"metadata", {{"name", "web"}, {"namespace", "x"}}}},
       "ns.yaml",
       1},
      {{{"apiVersion", "apps/v1"},
        {"kind", "Deployment"},
        {"metadata", {{"name", "d"}, {"namespace", "other"}}}},
       "d.yaml",
       3}};
  auto out = capstan::apps::prepare_desired(app, objects);
  EXPECT_EQ(out[0].object["metadata"]["namespace"], "web");
  EXPECT_EQ(out[0].object["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
            "shop:/ConfigMap:web/a");
  EXPECT_FALSE(out[1].object["metadata"].contains("namespace"));
  EXPECT_EQ(out[1].object["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
            "shop:/Namespace:/web");
  EXPECT_EQ(out[2].object["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
            "shop:apps/Deployment:other/d");
  EXPECT_EQ(capstan::apps::tracked_by(out[2].object), "shop");
  // A copy of an object carrying another object's id is not tracked.
  auto copy = out[2].object;
  copy["metadata"]["name"] = "copy";
  EXPECT_FALSE(capstan::apps::tracked_by(copy));

  objects.push_back({{{"apiVersion", "v1"},
                      {"kind", "ConfigMap"},
                      {"metadata", {{"name", "a"}, {"namespace", "web"}}}},
                     "b.yaml",
                     7});
  try {
    capstan::apps::prepare_desired(app, objects);
    FAIL();
  } catch (const ComparisonError& e) {
    EXPECT_STREQ(e.what(), "b.yaml:7: ConfigMap a is defined twice (also at a.yaml:1)");
  }
}

} // namespace
