// Values files: parsing and precedence.
#include <gtest/gtest.h>

#include "capstan/manifest/error.h"
#include "capstan/manifest/values.h"

namespace {

using capstan::manifest::ManifestError;
using capstan::manifest::merge_values;
using capstan::manifest::merge_values_files;
using capstan::manifest::parse_values;
using nlohmann::json;

TEST(Values, LaterLayersWinMapsMergeListsReplace) {
  json merged = merge_values_files({
      {"values.yaml", "name: app\nreplicas: 1\nimage: {repository: nginx, tag: '1.0'}\n"
                      "ports: [80, 443]\nenv: {A: a, B: b}\n"},
      {"env/prod.yaml", "replicas: 3\nimage: {tag: '2.0'}\nports: [8080]\n"},
      {"override", "env: {B: bb, C: c}\n"},
  });
  EXPECT_EQ(merged, json::parse(R"({
    "name": "app", "replicas": 3,
    "image": {"repository": "nginx", "tag": "2.0"},
    "ports": [8080],
    "env": {"A": "a", "B": "bb", "C": "c"}})"));
}

TEST(Values, NullDeletesAKey) {
  json merged = merge_values_files(
      {{"a", "keep: 1\ndrop: 2\nnested: {x: 1, y: 2}\n"}, {"b", "drop: null\nnested: {y: ~}\n"}});
  EXPECT_EQ(merged, json::parse(R"({"keep": 1, "nested": {"x": 1}})"));
}

TEST(Values, ScalarAndMapReplaceEachOther) {
  json base = json::parse(R"({"image": {"tag": "1"}, "name": "x"})");
  merge_values(base, json::parse(R"({"image": "nginx:2", "name": {"first": "x"}})"));
  EXPECT_EQ(base, json::parse(R"({"image": "nginx:2", "name": {"first": "x"}})"));
}

TEST(Values, EmptyFileIsEmptyMap) {
  EXPECT_EQ(parse_values("", "v.yaml"), json::object());
  EXPECT_EQ(parse_values("# only a comment\n", "v.yaml"), json::object());
}

TEST(Values, NonMapTopLevelIsAnErrorWithPosition) {
  try {
    parse_values("\n- a\n- b\n", "values/prod.yaml");
    FAIL() << "accepted a list";
  } catch (const ManifestError& e) {
    EXPECT_STREQ(e.what(), "values/prod.yaml:2:1: values must be a map of keys at the top level, "
                           "not a list");
  }
}

TEST(Values, SyntaxErrorNamesTheFile) {
  try {
    parse_values("a: b\n  c: d\n", "values.yaml");
    FAIL() << "accepted bad YAML";
  } catch (const ManifestError& e) {
    EXPECT_EQ(e.file(), "values.yaml");
    EXPECT_EQ(e.line(), 2);
  }
}

TEST(Values, SecondDocumentIsRefused) {
  EXPECT_THROW(parse_values("a: 1\n---\nb: 2\n", "v.yaml"), ManifestError);
}

} // namespace
