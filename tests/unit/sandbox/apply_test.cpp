// Server-side apply: ownership, removal of fields a manager stops applying, conflicts, force.
#include "capstan/sandbox/managed_fields.h"
#include "capstan/sandbox/schema.h"

#include <gtest/gtest.h>

using namespace capstan::sandbox;
using nlohmann::json;

namespace {

const Schema& schema() {
  static auto s = builtin_schema("apps", "v1", "Deployment");
  return *s;
}

json deployment(const std::string& image, int replicas, json env = json::array()) {
  json c = {{"name", "web"}, {"image", image}};
  if (!env.empty()) c["env"] = env;
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", "web"}, {"labels", {{"app", "web"}}}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", "web"}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", "web"}}}}}, {"spec", {{"containers", {c}}}}}}}}};
}

ManagedFieldsInput who(const std::string& manager) {
  return {manager, "apps/v1", "", "2026-01-01T00:00:00Z"};
}

json entry(const json& obj, const std::string& manager) {
  for (const auto& e : obj["metadata"]["managedFields"])
    if (e["manager"] == manager) return e;
  return json();
}

} // namespace

TEST(ServerSideApply, CreatesAndRecordsFieldsV1LikeUpstream) {
  std::vector<ApplyConflict> conflicts;
  json out = server_side_apply(json(), deployment("nginx:1", 2), schema(), who("kubectl"), false,
                               conflicts);
  EXPECT_TRUE(conflicts.empty());
  EXPECT_EQ(out["spec"]["replicas"], 2);
  json e = entry(out, "kubectl");
  ASSERT_FALSE(e.is_null());
  EXPECT_EQ(e["operation"], "Apply");
  EXPECT_EQ(e["fieldsType"], "FieldsV1");
  const json& f = e["fieldsV1"];
  // Labels are granular, the selector is atomic, list items carry "." and their keys.
  EXPECT_TRUE(f["f:metadata"]["f:labels"].contains("f:app"));
  EXPECT_EQ(f["f:spec"]["f:selector"], json::object());
  json item = f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
  EXPECT_TRUE(item.contains("."));
  EXPECT_TRUE(item.contains("f:image"));
  EXPECT_FALSE(f.contains("f:apiVersion"));
}

TEST(ServerSideApply, ReapplyKeepsFieldsOwnedByOthersAndDropsOwnRemovedOnes) {
  std::vector<ApplyConflict> conflicts;
  json live = server_side_apply(json(), deployment("nginx:1", 2, {{{"name", "A"}, {"value", "1"}}}),
                                schema(), who("kubectl"), false, conflicts);
  // Another writer (an Update) adds an env var.
  json updated = live;
  updated["spec"]["template"]["spec"]["containers"][0]["env"].push_back(
      {{"name", "EXTRA"}, {"value", "x"}});
  updated["metadata"]["managedFields"] =
      record_update(live, updated, schema(), {"kubectl-set", "apps/v1", "", "t"});
  // The applier drops A and changes the image.
  json out = server_side_apply(updated, deployment("nginx:2", 2), schema(), who("kubectl"), false,
                               conflicts);
  ASSERT_TRUE(conflicts.empty());
  json c = out["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["image"], "nginx:2");
  ASSERT_EQ(c["env"].size(), 1u);
  EXPECT_EQ(c["env"][0]["name"], "EXTRA");
}

TEST(ServerSideApply, ConflictWithAnotherManagerUnlessForced) {
  std::vector<ApplyConflict> conflicts;
  json live = server_side_apply(json(), deployment("nginx:1", 2), schema(), who("kubectl"), false,
                                conflicts);
  json scaled = live;
  scaled["spec"]["replicas"] = 5;
  scaled["metadata"]["managedFields"] =
      record_update(live, scaled, schema(), {"kubectl-scale", "apps/v1", "", "t"});
  // Replicas moved to the scaler.
  EXPECT_TRUE(entry(scaled, "kubectl")["fieldsV1"]["f:spec"].value("f:replicas", json()).is_null());
  // A second applier that wants 3 replicas conflicts with kubectl-scale.
  json out =
      server_side_apply(scaled, deployment("nginx:1", 3), schema(), who("other"), false, conflicts);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].manager, "kubectl-scale");
  EXPECT_EQ(conflicts[0].path, ".spec.replicas");
  EXPECT_EQ(out, scaled);
  // Forced: the value changes and ownership moves.
  conflicts.clear();
  out =
      server_side_apply(scaled, deployment("nginx:1", 3), schema(), who("other"), true, conflicts);
  EXPECT_TRUE(conflicts.empty());
  EXPECT_EQ(out["spec"]["replicas"], 3);
  EXPECT_TRUE(entry(out, "kubectl-scale").is_null());
}

TEST(ServerSideApply, SameValueIsSharedOwnershipNotAConflict) {
  std::vector<ApplyConflict> conflicts;
  json live =
      server_side_apply(json(), deployment("nginx:1", 2), schema(), who("a"), false, conflicts);
  json out =
      server_side_apply(live, deployment("nginx:1", 2), schema(), who("b"), false, conflicts);
  EXPECT_TRUE(conflicts.empty());
  EXPECT_FALSE(entry(out, "a").is_null());
  EXPECT_FALSE(entry(out, "b").is_null());
}

TEST(ManagedFields, FieldsV1RoundTrips) {
  FieldSet set = field_set(deployment("nginx:1", 2, {{{"name", "A"}, {"value", "1"}}}), schema());
  EXPECT_EQ(from_fields_v1(to_fields_v1(set)), set);
}

TEST(ManagedFields, DescribePathNamesListItemsByKey) {
  FieldSet set = field_set(deployment("nginx:1", 2), schema());
  bool found = false;
  for (const auto& p : set)
    if (describe_path(p) == ".spec.template.spec.containers[name=\"web\"].image") found = true;
  EXPECT_TRUE(found);
}
