// Objects from rendered YAML: validation, namespaces, apply order.
#include <gtest/gtest.h>

#include "capstan/manifest/error.h"
#include "capstan/manifest/resource.h"

namespace {

using namespace capstan::manifest;
using nlohmann::json;

std::string expect_error(std::string_view text) {
  try {
    parse_resources(text, "m.yaml");
  } catch (const ManifestError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Resources, SplitsDocumentsAndDropsEmptyOnes) {
  auto rs = parse_resources("---\n# comment only\n---\napiVersion: v1\nkind: ConfigMap\n"
                            "metadata: {name: a}\n---\n---\napiVersion: v1\nkind: Service\n"
                            "metadata: {name: b, namespace: web}\n",
                            "m.yaml");
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].id().key(), "ConfigMap/a");
  EXPECT_EQ(rs[0].line, 4);
  EXPECT_EQ(rs[1].id().key(), "Service/web/b");
  EXPECT_EQ(rs[1].where(), "m.yaml:9");
}

TEST(Resources, ExpandsLists) {
  auto rs = parse_resources("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: "
                            "ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Secret\n"
                            "  metadata: {name: s}\n",
                            "m.yaml");
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].kind(), "Secret");
  EXPECT_EQ(rs[1].line, 7);
}

TEST(Resources, ClearErrorsForThingsThatAreNotObjects) {
  EXPECT_EQ(expect_error("- a\n- b\n"),
            "m.yaml:1:1: document is not a Kubernetes object (a map with apiVersion, kind and "
            "metadata); found a list");
  EXPECT_EQ(expect_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\njust text\n"),
            "m.yaml:5:1: document is not a Kubernetes object (a map with apiVersion, kind and "
            "metadata); found the text \"just text\"");
  EXPECT_EQ(expect_error("kind: ConfigMap\nmetadata: {name: a}\n"),
            "m.yaml:1:1: document has no apiVersion");
  EXPECT_EQ(expect_error("apiVersion: v1\nmetadata: {name: a}\n"),
            "m.yaml:1:1: document has no kind");
  EXPECT_EQ(expect_error("apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {}}\n"),
            "m.yaml:1:1: ConfigMap object has no metadata.name");
  EXPECT_EQ(expect_error("apiVersion: v1\nkind: ConfigMap\n"),
            "m.yaml:1:1: ConfigMap object has no metadata");
  EXPECT_EQ(expect_error("a: [\n"), expect_error("a: [\n")); // deterministic
  EXPECT_NE(expect_error("a: [\n").find("m.yaml:"), std::string::npos);
}

TEST(Resources, NamespaceDefaultingSkipsClusterScopedKinds) {
  auto rs = parse_resources(
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n---\n"
      "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n---\n"
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d, namespace: other}\n---\n"
      "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
      "m.yaml");
  default_namespace(rs, "web");
  EXPECT_EQ(rs[0].namespace_(), "");
  EXPECT_EQ(rs[1].namespace_(), "");
  EXPECT_EQ(rs[2].namespace_(), "web");
  EXPECT_EQ(rs[3].namespace_(), "other");
  EXPECT_EQ(rs[4].namespace_(), "web");
  // Discovery can say a custom kind is cluster-scoped.
  auto again =
      parse_resources("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n", "m.yaml");
  default_namespace(again, "web", [](const Resource& r) { return r.kind() == "Widget"; });
  EXPECT_EQ(again[0].namespace_(), "");
}

TEST(Resources, ApplyOrderFollowsHarness) {
  std::string text;
  for (const char* kind : {"Ingress", "Deployment", "Service", "Widget", "ConfigMap", "Secret",
                           "Namespace", "ServiceAccount", "CustomResourceDefinition", "Job",
                           "StatefulSet", "Gadget", "PersistentVolumeClaim", "Role"}) {
    text += std::string("---\napiVersion: v1\nkind: ") + kind + "\nmetadata: {name: x}\n";
  }
  text += "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: A-first}\n";
  auto rs = parse_resources(text, "m.yaml");
  sort_for_apply(rs);
  std::vector<std::string> order;
  for (const auto& r : rs) order.push_back(r.kind() + "/" + r.name());
  EXPECT_EQ(order, (std::vector<std::string>{"Namespace/x", "Secret/x", "ConfigMap/A-first",
                                             "ConfigMap/x", "PersistentVolumeClaim/x",
                                             "ServiceAccount/x", "CustomResourceDefinition/x",
                                             "Role/x", "Service/x", "Deployment/x", "StatefulSet/x",
                                             "Job/x", "Ingress/x", "Gadget/x", "Widget/x"}));
  sort_for_delete(rs);
  EXPECT_EQ(rs.front().kind(), "Widget");
  EXPECT_EQ(rs.back().kind(), "Namespace");
}

TEST(Resources, DuplicatesNameBothPlaces) {
  auto rs = parse_resources("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
                            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
                            "m.yaml");
  try {
    check_duplicates(rs);
    FAIL() << "duplicates accepted";
  } catch (const ManifestError& e) {
    EXPECT_STREQ(e.what(), "m.yaml:5: ConfigMap/a is defined twice: also at m.yaml:1");
  }
}

TEST(Resources, PodSpecsOfEveryWorkloadShape) {
  auto rs = parse_resources(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n---\n"
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n"
      "    spec: {containers: []}\n---\n"
      "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n"
      "    spec:\n      template:\n        spec: {containers: []}\n---\n"
      "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: []}\n",
      "m.yaml");
  EXPECT_EQ(pod_specs(rs[0].object).size(), 1u);
  EXPECT_EQ(pod_specs(rs[1].object).size(), 1u);
  EXPECT_EQ(pod_specs(rs[2].object).size(), 1u);
  EXPECT_EQ(pod_specs(rs[3].object).size(), 0u);
}

} // namespace
