// JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch, with cases from
// the RFCs and from the strategic-merge-patch documentation.
#include "capstan/sandbox/api_error.h"
#include "capstan/sandbox/patch.h"
#include "capstan/sandbox/schema.h"

#include <gtest/gtest.h>

using capstan::sandbox::ApiError;
using capstan::sandbox::apply_json_patch;
using capstan::sandbox::apply_merge_patch;
using capstan::sandbox::apply_strategic_merge_patch;
using capstan::sandbox::builtin_schema;
using nlohmann::json;

TEST(MergePatch, Rfc7386Examples) {
  // Appendix A of RFC 7386.
  struct Case {
    const char* target;
    const char* patch;
    const char* result;
  } cases[] = {
      {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {R"({"a":"b"})", R"({"a":null})", R"({})"},
      {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
      {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(apply_merge_patch(json::parse(c.target), json::parse(c.patch)), json::parse(c.result))
        << c.target << " + " << c.patch;
}

TEST(JsonPatch, Rfc6902Examples) {
  json doc = json::parse(R"({"foo":["bar","baz"],"baz":"qux"})");
  EXPECT_EQ(apply_json_patch(doc, json::parse(R"([{"op":"add","path":"/foo/1","value":"x"}])")),
            json::parse(R"({"foo":["bar","x","baz"],"baz":"qux"})"));
  EXPECT_EQ(apply_json_patch(doc, json::parse(R"([{"op":"remove","path":"/baz"}])")),
            json::parse(R"({"foo":["bar","baz"]})"));
  EXPECT_EQ(apply_json_patch(doc, json::parse(R"([{"op":"replace","path":"/baz","value":"boo"}])")),
            json::parse(R"({"foo":["bar","baz"],"baz":"boo"})"));
  EXPECT_EQ(apply_json_patch(doc, json::parse(R"([{"op":"move","from":"/baz","path":"/moved"}])")),
            json::parse(R"({"foo":["bar","baz"],"moved":"qux"})"));
  EXPECT_EQ(apply_json_patch(doc, json::parse(R"([{"op":"copy","from":"/baz","path":"/c"}])")),
            json::parse(R"({"foo":["bar","baz"],"baz":"qux","c":"qux"})"));
  EXPECT_EQ(apply_json_patch(doc, json::parse(R"([{"op":"add","path":"/foo/-","value":"end"}])")),
            json::parse(R"({"foo":["bar","baz","end"],"baz":"qux"})"));
  EXPECT_NO_THROW(
      apply_json_patch(doc, json::parse(R"([{"op":"test","path":"/baz","value":"qux"}])")));
}

TEST(JsonPatch, FailuresAreRequestErrorsAndChangeNothing) {
  json doc = json::parse(R"({"a":{"b":1}})");
  auto code_of = [&](const char* patch) {
    try {
      apply_json_patch(doc, json::parse(patch));
    } catch (const ApiError& e) {
      return e.code();
    }
    return 0;
  };
  EXPECT_EQ(code_of(R"([{"op":"test","path":"/a/b","value":2}])"), 422);
  EXPECT_EQ(code_of(R"([{"op":"remove","path":"/missing"}])"), 422);
  EXPECT_EQ(code_of(R"([{"op":"replace","path":"/x/y","value":1}])"), 422);
  EXPECT_EQ(code_of(R"([{"op":"frobnicate","path":"/a"}])"), 422);
  EXPECT_EQ(code_of(R"({"op":"add"})"), 422);
  EXPECT_EQ(doc, json::parse(R"({"a":{"b":1}})"));
}

namespace {
json deployment_with(const json& containers) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", "web"}}},
          {"spec", {{"template", {{"spec", {{"containers", containers}}}}}}}};
}
const capstan::sandbox::Schema& deployment_schema() {
  static auto s = builtin_schema("apps", "v1", "Deployment");
  return *s;
}
} // namespace

TEST(StrategicMergePatch, ContainersMergeByNameAndKeepOtherFields) {
  json live = deployment_with(json::parse(R"([
    {"name":"web","image":"nginx:1.25","env":[{"name":"A","value":"1"}],"ports":[{"containerPort":80}]},
    {"name":"sidecar","image":"envoy:1"}])"));
  json patch = json::parse(
      R"({"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.26"}]}}}})");
  json out = apply_strategic_merge_patch(live, patch, &deployment_schema());
  json cs = out["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0]["image"], "nginx:1.26");
  EXPECT_EQ(cs[0]["env"][0]["value"], "1");
  EXPECT_EQ(cs[0]["ports"][0]["containerPort"], 80);
  EXPECT_EQ(cs[1]["name"], "sidecar");
}

TEST(StrategicMergePatch, MergeKeyedListsAppendAndMergeEnv) {
  json live = deployment_with(json::parse(
      R"([{"name":"web","image":"a","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}])"));
  json patch = json::parse(R"({"spec":{"template":{"spec":{"containers":[
      {"name":"web","env":[{"name":"B","value":"20"},{"name":"C","value":"3"}]}]}}}})");
  json env = apply_strategic_merge_patch(
      live, patch, &deployment_schema())["spec"]["template"]["spec"]["containers"][0]["env"];
  EXPECT_EQ(
      env, json::parse(
               R"([{"name":"A","value":"1"},{"name":"B","value":"20"},{"name":"C","value":"3"}])"));
}

TEST(StrategicMergePatch, PatchDeleteDirectiveRemovesListItem) {
  json live =
      deployment_with(json::parse(R"([{"name":"web","image":"a"},{"name":"old","image":"b"}])"));
  json patch = json::parse(
      R"({"spec":{"template":{"spec":{"containers":[{"name":"old","$patch":"delete"}]}}}})");
  json cs = apply_strategic_merge_patch(
      live, patch, &deployment_schema())["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0]["name"], "web");
}

TEST(StrategicMergePatch, PatchReplaceDirectiveReplacesList) {
  json live =
      deployment_with(json::parse(R"([{"name":"web","image":"a"},{"name":"old","image":"b"}])"));
  json patch = json::parse(R"({"spec":{"template":{"spec":{"containers":[
      {"name":"new","image":"c"},{"$patch":"replace"}]}}}})");
  json cs = apply_strategic_merge_patch(
      live, patch, &deployment_schema())["spec"]["template"]["spec"]["containers"];
  EXPECT_EQ(cs, json::parse(R"([{"name":"new","image":"c"}])"));
}

TEST(StrategicMergePatch, PatchReplaceOnAMapReplacesIt) {
  json live = {{"metadata", {{"name", "x"}, {"labels", {{"a", "1"}, {"b", "2"}}}}}};
  json patch = json::parse(R"({"metadata":{"labels":{"c":"3","$patch":"replace"}}})");
  EXPECT_EQ(apply_strategic_merge_patch(live, patch, &deployment_schema())["metadata"]["labels"],
            json::parse(R"({"c":"3"})"));
}

TEST(StrategicMergePatch, RetainKeysDropsFieldsNotListed) {
  // The documented example: switching the strategy from RollingUpdate to Recreate.
  json live = {{"spec",
                {{"strategy",
                  {{"type", "RollingUpdate"},
                   {"rollingUpdate", {{"maxSurge", "25%"}, {"maxUnavailable", "25%"}}}}}}}};
  json patch = json::parse(R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}})");
  EXPECT_EQ(apply_strategic_merge_patch(live, patch, &deployment_schema())["spec"]["strategy"],
            json::parse(R"({"type":"Recreate"})"));
}

TEST(StrategicMergePatch, SetElementOrderOrdersMergedList) {
  json live =
      deployment_with(json::parse(R"([{"name":"a","image":"1"},{"name":"b","image":"2"}])"));
  json patch = json::parse(R"({"spec":{"template":{"spec":{
      "$setElementOrder/containers":[{"name":"c"},{"name":"b"},{"name":"a"}],
      "containers":[{"name":"c","image":"3"}]}}}})");
  json cs = apply_strategic_merge_patch(
      live, patch, &deployment_schema())["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(cs.size(), 3u);
  EXPECT_EQ(cs[0]["name"], "c");
  EXPECT_EQ(cs[1]["name"], "b");
  EXPECT_EQ(cs[2]["name"], "a");
}

TEST(StrategicMergePatch, PrimitiveMergeListsUnionAndDeleteFromPrimitiveList) {
  json live = {{"metadata", {{"finalizers", {"a", "b"}}}}};
  json added = apply_strategic_merge_patch(
      live, json::parse(R"({"metadata":{"finalizers":["c","a"]}})"), &deployment_schema());
  EXPECT_EQ(added["metadata"]["finalizers"], json::parse(R"(["a","b","c"])"));
  json removed = apply_strategic_merge_patch(
      live, json::parse(R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}})"),
      &deployment_schema());
  EXPECT_EQ(removed["metadata"]["finalizers"], json::parse(R"(["b"])"));
}

TEST(StrategicMergePatch, ListsWithoutMergeStrategyAreReplaced) {
  json live = deployment_with(json::parse(R"([{"name":"web","image":"a","args":["x","y"]}])"));
  json patch =
      json::parse(R"({"spec":{"template":{"spec":{"containers":[{"name":"web","args":["z"]}]}}}})");
  EXPECT_EQ(
      apply_strategic_merge_patch(
          live, patch, &deployment_schema())["spec"]["template"]["spec"]["containers"][0]["args"],
      json::parse(R"(["z"])"));
}

TEST(StrategicMergePatch, NullDeletesAField) {
  json live = {{"spec", {{"replicas", 3}, {"paused", true}}}};
  EXPECT_EQ(apply_strategic_merge_patch(live, json::parse(R"({"spec":{"paused":null}})"),
                                        &deployment_schema())["spec"],
            json::parse(R"({"replicas":3})"));
}

TEST(StrategicMergePatch, MissingMergeKeyIsABadRequest) {
  json live = deployment_with(json::parse(R"([{"name":"web","image":"a"}])"));
  json patch = json::parse(R"({"spec":{"template":{"spec":{"containers":[{"image":"b"}]}}}})");
  try {
    apply_strategic_merge_patch(live, patch, &deployment_schema());
    FAIL() << "expected an error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 400);
    EXPECT_NE(std::string(e.what()).find("merge key"), std::string::npos);
  }
}
