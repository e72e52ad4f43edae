// capstan::configedit: surgical edits of JSON and YAML that keep everything else as it was.
#include <gtest/gtest.h>

#include "capstan/configedit/configedit.h"

using namespace capstan::configedit;
using nlohmann::json;

namespace {

std::string edit(const std::string& text, Format f, std::vector<Edit> edits) {
  return apply(text, f, edits, f == Format::kJson ? "config.json" : "values.yaml").text;
}

std::string yaml(const std::string& text, const std::string& path, const json& v) {
  return edit(text, Format::kYaml, {{path, v}});
}

std::string jsn(const std::string& text, const std::string& path, const json& v) {
  return edit(text, Format::kJson, {{path, v}});
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

} // namespace

TEST(ConfigEditPath, ParsesKeysIndexesAndQuotedKeys) {
  auto p = parse_path("spec.containers[0].image");
  ASSERT_EQ(p.size(), 4U);
  EXPECT_EQ(p[1].key, "containers");
  EXPECT_EQ(p[2].index, 0);
  EXPECT_EQ(p[3].key, "image");
  auto q = parse_path("metadata.annotations[\"example.com/team\"]");
  ASSERT_EQ(q.size(), 3U);
  EXPECT_EQ(q[2].key, "example.com/team");
  for (const char* bad : {"", "a..b", ".a", "a.", "a[x]", "a[0]b", "a[\"x]"}) {
    EXPECT_THROW(parse_path(bad), Error) << bad;
  }
}

TEST(ConfigEditJson, ReplacesScalarsInPlace) {
  const std::string in =
      "{\n  \"imageTag\": \"v1.9.0\",\n  \"replicas\": 3,\n  \"debug\": false\n}\n";
  EXPECT_EQ(jsn(in, "imageTag", "v2.0.0"),
            "{\n  \"imageTag\": \"v2.0.0\",\n  \"replicas\": 3,\n  \"debug\": false\n}\n");
  // A string for a number keeps the number type; for a string it stays a string.
  EXPECT_EQ(jsn(in, "replicas", "5"),
            "{\n  \"imageTag\": \"v1.9.0\",\n  \"replicas\": 5,\n  \"debug\": false\n}\n");
  EXPECT_EQ(jsn(in, "debug", "true"),
            "{\n  \"imageTag\": \"v1.9.0\",\n  \"replicas\": 3,\n  \"debug\": true\n}\n");
  EXPECT_EQ(jsn(in, "replicas", "many"),
            "{\n  \"imageTag\": \"v1.9.0\",\n  \"replicas\": \"many\",\n  \"debug\": false\n}\n");
  EXPECT_EQ(jsn("{\"tag\": \"1\"}", "tag", "2"), "{\"tag\": \"2\"}");
  EXPECT_EQ(jsn("{\"tag\": \"1\"}", "tag", 2), "{\"tag\": 2}");
}

TEST(ConfigEditJson, CreatesNestedKeysInTheFilesLayout) {
  const std::string in = "{\n    \"imageTag\": \"v1\"\n}\n";
  EXPECT_EQ(jsn(in, "a.b.c", "v"),
            "{\n    \"imageTag\": \"v1\",\n    \"a\": {\n        \"b\": {\n            \"c\": "
            "\"v\"\n        }\n    }\n}\n");
  EXPECT_EQ(jsn("{\"x\":1}", "y", "z"), "{\"x\":1, \"y\":\"z\"}");
  EXPECT_EQ(jsn("{}", "a.b", "v"), "{\"a\": {\"b\": \"v\"}}");
  EXPECT_EQ(jsn("{\n  \"a\": {}\n}\n", "a.b", "v"), "{\n  \"a\": {\n    \"b\": \"v\"\n  }\n}\n");
  EXPECT_EQ(jsn("{\n  \"a\": null\n}\n", "a.b", "v"), "{\n  \"a\": {\n    \"b\": \"v\"\n  }\n}\n");
}

TEST(ConfigEditJson, EditsListItemsOnlyWhenTheyExist) {
  const std::string in =
      "{\"spec\": {\"containers\": [{\"name\": \"app\", \"image\": \"app:1\"}]}}";
  EXPECT_EQ(jsn(in, "spec.containers[0].image", "app:2"),
            "{\"spec\": {\"containers\": [{\"name\": \"app\", \"image\": \"app:2\"}]}}");
  EXPECT_EQ(jsn(in, "spec.containers[0].env.LEVEL", "debug"),
            "{\"spec\": {\"containers\": [{\"name\": \"app\", \"image\": \"app:1\", \"env\": "
            "{\"LEVEL\": \"debug\"}}]}}");
  EXPECT_NE(error_of([&] {
              jsn(in, "spec.containers[1].image", "x");
            }).find("index 1 is out of range (spec.containers has 1 items)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { jsn(in, "spec.containers.image", "x"); }).find("not a mapping"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { jsn(in, "spec.volumes[0].name", "x"); }).find("list items are never created"),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              jsn(in, "spec.containers[0].name.first", "x");
            }).find("spec.containers[0].name is a string, not a mapping"),
            std::string::npos);
  EXPECT_NE(error_of([&] { jsn(in, "spec", "x"); }).find("set the keys inside it"),
            std::string::npos);
}

TEST(ConfigEditJson, KeepsUnicodeEscapesCrlfAndOtherFormatting) {
  const std::string in = "{\r\n\t\"name\": \"caf\\u00e9\",\r\n\t\"city\" : \"Zürich\",\r\n\t\"n\": "
                         "1.50e2\r\n}";
  const std::string out = jsn(in, "city", "Genève");
  EXPECT_EQ(out, "{\r\n\t\"name\": \"caf\\u00e9\",\r\n\t\"city\" : \"Genève\",\r\n\t\"n\": "
                 "1.50e2\r\n}");
  const std::string added = jsn(in, "zone.id", "eu");
  EXPECT_EQ(added.substr(added.find("1.50e2")),
            "1.50e2,\r\n\t\"zone\": {\r\n\t\t\"id\": \"eu\"\r\n\t}\r\n}");
  EXPECT_EQ(json::parse(added)["zone"]["id"], "eu");
  EXPECT_EQ(jsn("{\"a\\\"b\": 1}", "[\"a\\\"b\"]", "2"), "{\"a\\\"b\": 2}");
}

TEST(ConfigEditJson, BlankValuesAreSkipped) {
  auto r = apply("{\"a\": 1}", Format::kJson, {{"a", ""}, {"b", "  "}, {"c", nullptr}});
  EXPECT_FALSE(r.changed);
  EXPECT_EQ(r.skipped.size(), 3U);
  EXPECT_EQ(r.text, "{\"a\": 1}");
}

TEST(ConfigEditJson, MalformedInputNamesFileLineAndColumn) {
  EXPECT_EQ(error_of([] { jsn("{\n  \"a\": 1,\n  \"b\" 2\n}", "a", "3"); }),
            "config.json:3:7: expected ':' after the key");
  EXPECT_EQ(error_of([] { jsn("{\"a\": 1, \"a\": 2}", "a", "3"); }),
            "config.json:1:10: duplicate key \"a\"");
  EXPECT_EQ(error_of([] { jsn("", "a", "3"); }),
            "config.json:1:1: the file is empty; expected a JSON value");
  EXPECT_EQ(error_of([] { jsn("{\"a\": tru}", "a", "3"); }),
            "config.json:1:7: unexpected character 't'");
  // Blank edits still refuse a broken file.
  EXPECT_NE(error_of([] { apply("{", Format::kJson, {}, "x.json"); }), "no error");
}

TEST(ConfigEditYaml, ReplacesScalarsKeepingCommentsAndQuoting) {
  const std::string in = "# release values\n"
                         "image:\n"
                         "  repository: myorg/myapp   # the app\n"
                         "  tag: \"v1.9.0\"\n"
                         "  pullPolicy: 'IfNotPresent'\n"
                         "replicas: 3 # scale\n"
                         "\n"
                         "resources: {limits: {cpu: 500m, memory: 128Mi}}\n";
  EXPECT_EQ(yaml(in, "image.tag", "v2.0.0"),
            "# release values\nimage:\n  repository: myorg/myapp   # the app\n  tag: "
            "\"v2.0.0\"\n  pullPolicy: 'IfNotPresent'\nreplicas: 3 # scale\n\nresources: {limits: "
            "{cpu: 500m, memory: 128Mi}}\n");
  EXPECT_EQ(yaml(in, "image.repository", "other/app"),
            "# release values\nimage:\n  repository: other/app   # the app\n  tag: "
            "\"v1.9.0\"\n  pullPolicy: 'IfNotPresent'\nreplicas: 3 # scale\n\nresources: {limits: "
            "{cpu: 500m, memory: 128Mi}}\n");
  EXPECT_NE(yaml(in, "image.pullPolicy", "It's").find("  pullPolicy: 'It''s'\n"),
            std::string::npos);
  EXPECT_NE(yaml(in, "replicas", "5").find("replicas: 5 # scale\n"), std::string::npos);
  // A plain string that would read as a number gets quoted, so it stays a string.
  EXPECT_NE(yaml(in, "image.repository", "5").find("  repository: \"5\"   # the app\n"),
            std::string::npos);
  EXPECT_NE(yaml(in, "resources.limits.cpu", "1")
                .find("resources: {limits: {cpu: \"1\", memory: 128Mi}}"),
            std::string::npos);
}

TEST(ConfigEditYaml, CreatesNestedKeysWithTheFilesIndentation) {
  const std::string in = "image:\n    tag: v1  # pinned\n# trailing comment\nname: app\n";
  EXPECT_EQ(yaml(in, "image.digest", "sha256:abc"),
            "image:\n    tag: v1  # pinned\n    digest: sha256:abc\n# trailing comment\nname: "
            "app\n");
  EXPECT_EQ(yaml(in, "a.b.c", "v"),
            "image:\n    tag: v1  # pinned\n# trailing comment\nname: app\na:\n    b:\n        c: "
            "v\n");
  EXPECT_EQ(yaml("overrides:\nname: x\n", "overrides.tag", "v2"),
            "overrides:\n  tag: v2\nname: x\n");
  EXPECT_EQ(yaml("overrides: ~ # none yet\nname: x\n", "overrides.tag", "v2"),
            "overrides: # none yet\n  tag: v2\nname: x\n");
  EXPECT_EQ(yaml("", "a.b", "v"), "a:\n  b: v\n");
  EXPECT_EQ(yaml("# only a comment\n", "a", "v"), "# only a comment\na: v\n");
  EXPECT_EQ(yaml("labels: {app: web}\n", "labels.tier", "front"),
            "labels: {app: web, tier: front}\n");
  EXPECT_EQ(yaml("labels: {}\n", "labels.tier", "front"), "labels: {tier: front}\n");
  EXPECT_EQ(yaml("a: 1\n", "b", "yes"), "a: 1\nb: \"yes\"\n");
}

TEST(ConfigEditYaml, EditsListItems) {
  const std::string in = "spec:\n"
                         "  containers:\n"
                         "  - name: app\n"
                         "    image: app:1\n"
                         "  - name: sidecar\n"
                         "    image: proxy:1\n"
                         "  ports: [80, 443]\n";
  EXPECT_EQ(yaml(in, "spec.containers[1].image", "proxy:2"),
            "spec:\n  containers:\n  - name: app\n    image: app:1\n  - name: sidecar\n    image: "
            "proxy:2\n  ports: [80, 443]\n");
  EXPECT_EQ(yaml(in, "spec.containers[0].resources.cpu", "1"),
            "spec:\n  containers:\n  - name: app\n    image: app:1\n    resources:\n      cpu: "
            "\"1\"\n  - name: sidecar\n    image: proxy:1\n  ports: [80, 443]\n");
  EXPECT_EQ(yaml(in, "spec.ports[1]", "8443"),
            "spec:\n  containers:\n  - name: app\n    image: app:1\n  - name: sidecar\n    image: "
            "proxy:1\n  ports: [80, 8443]\n");
  EXPECT_EQ(yaml(in, "spec.extra", "x"),
            "spec:\n  containers:\n  - name: app\n    image: app:1\n  - name: sidecar\n    image: "
            "proxy:1\n  ports: [80, 443]\n  extra: x\n");
  EXPECT_NE(error_of([&] { yaml(in, "spec.containers[2].image", "x"); })
                .find("values.yaml:3:3: cannot set spec.containers[2].image: index 2 is out of "
                      "range (spec.containers has 2 items)"),
            std::string::npos);
}

TEST(ConfigEditYaml, QuotedKeysUnicodeAndCrlf) {
  const std::string in = "\"app.kubernetes.io/name\": web\r\nnote: \"naïve café\"\r\n名前: 値\r\n";
  EXPECT_EQ(yaml(in, "[\"app.kubernetes.io/name\"]", "api"),
            "\"app.kubernetes.io/name\": api\r\nnote: \"naïve café\"\r\n名前: 値\r\n");
  EXPECT_EQ(yaml(in, "名前", "新しい"),
            "\"app.kubernetes.io/name\": web\r\nnote: \"naïve café\"\r\n名前: 新しい\r\n");
  EXPECT_EQ(yaml(in, "note", "déjà vu"),
            "\"app.kubernetes.io/name\": web\r\nnote: \"déjà vu\"\r\n名前: 値\r\n");
  EXPECT_EQ(yaml(in, "new.key", "v"),
            "\"app.kubernetes.io/name\": web\r\nnote: \"naïve café\"\r\n名前: 値\r\nnew:\r\n  key: "
            "v\r\n");
}

TEST(ConfigEditYaml, BlockScalarsAnchorsAndAliases) {
  const std::string in = "script: |\n  echo one\n  echo two\nafter: 1\n";
  EXPECT_EQ(yaml(in, "script", "echo three\n"), "script: |\n  echo three\nafter: 1\n");
  EXPECT_EQ(yaml(in, "script", "short"), "script: short\nafter: 1\n");
  const std::string anchors = "base: &tag v1\nprod:\n  tag: *tag\n";
  // Editing an anchor would change its aliases too, and an alias cannot be edited in place.
  EXPECT_NE(error_of([&] { yaml(anchors, "base", "v2"); }).find("values.yaml:1:7: cannot set base"),
            std::string::npos);
  EXPECT_NE(error_of([&] { yaml(anchors, "prod.tag", "v3"); }).find("alias"), std::string::npos);
  EXPECT_EQ(yaml("base: &tag v1\nother: 2\n", "base", "v2"), "base: &tag v2\nother: 2\n");
}

TEST(ConfigEditYaml, MergeKeysAndDocumentMarkers) {
  // A key that only comes from a merge gets its own override in the mapping.
  const std::string merged =
      "defaults: &d\n  tag: v1\n  pull: Always\nprod:\n  <<: *d\n  name: p\n";
  EXPECT_EQ(yaml(merged, "prod.extra", "x"),
            "defaults: &d\n  tag: v1\n  pull: Always\nprod:\n  <<: *d\n  name: p\n  extra: x\n");
  EXPECT_EQ(yaml("---\na: 1\n...\n", "b", "2"), "---\na: 1\nb: \"2\"\n...\n");
  EXPECT_EQ(yaml("a: 1", "b", "x"), "a: 1\nb: x");
}

TEST(ConfigEditYaml, MalformedInputNamesFileLineAndColumn) {
  std::string msg = error_of([] { yaml("a: 1\nb: [1, 2\n", "a", "2"); });
  EXPECT_EQ(msg.rfind("values.yaml:", 0), 0U) << msg;
  EXPECT_NE(msg.find(":3:"), std::string::npos) << msg;
  msg = error_of([] { yaml("a: 1\na: 2\n", "a", "3"); });
  EXPECT_EQ(msg, "values.yaml:2:1: mapping key \"a\" already defined");
  EXPECT_NE(error_of([] { format_for("config.toml"); }).find("unsupported"), std::string::npos);
  EXPECT_EQ(format_for("cluster-config/prod/config.JSON"), Format::kJson);
  EXPECT_EQ(format_for("values.yml"), Format::kYaml);
}

TEST(ConfigEdit, SeveralEditsInOneGo) {
  const std::string in = "{\n  \"imageTag\": \"v1.9.0\",\n  \"replicas\": 2\n}\n";
  auto r = apply(in, Format::kJson,
                 {{"imageTag", "v2.1.0"}, {"replicas", "5"}, {"resources.cpu", "500m"}, {"x", ""}},
                 "config.json");
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.applied, (std::vector<std::string>{"imageTag", "replicas", "resources.cpu"}));
  EXPECT_EQ(r.skipped, std::vector<std::string>{"x"});
  EXPECT_EQ(r.text, "{\n  \"imageTag\": \"v2.1.0\",\n  \"replicas\": 5,\n  \"resources\": {\n    "
                    "\"cpu\": \"500m\"\n  }\n}\n");
  // Setting what is already there changes nothing.
  auto same = apply(r.text, Format::kJson, {{"imageTag", "v2.1.0"}}, "config.json");
  EXPECT_FALSE(same.changed);
}
