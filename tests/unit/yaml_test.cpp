#include "capstan/yaml/yaml.h"

#include <gtest/gtest.h>

namespace capstan::yaml {
namespace {

using nlohmann::json;

TEST(YamlLoad, TypesScalarsByTheCoreSchema) {
  auto doc = load(R"(
s: hello
q: "123"
i: 42
neg: -7
hex: 0x1F
f: 1.5
b: true
n: null
tilde: ~
empty:
ver: 1.10
text: |
  line one
  line two
)");
  const json& v = doc.value;
  EXPECT_EQ(v["s"], "hello");
  EXPECT_EQ(v["q"], "123");
  EXPECT_EQ(v["i"], 42);
  EXPECT_EQ(v["neg"], -7);
  EXPECT_EQ(v["hex"], 31);
  EXPECT_DOUBLE_EQ(v["f"].get<double>(), 1.5);
  EXPECT_EQ(v["b"], true);
  EXPECT_TRUE(v["n"].is_null());
  EXPECT_TRUE(v["tilde"].is_null());
  EXPECT_TRUE(v["empty"].is_null());
  EXPECT_DOUBLE_EQ(v["ver"].get<double>(), 1.1);
  EXPECT_EQ(v["text"], "line one\nline two\n");
}

TEST(YamlLoad, RecordsPositionsOfNodes) {
  auto doc = load("a:\n  b:\n    - x\n    - name: y\n      image: z\n", "deploy.yaml");
  EXPECT_EQ(doc.where.find("/a/b/1/image").line, 5);
  EXPECT_EQ(doc.where.find("/a/b/1/image").column, 14);
  EXPECT_EQ(doc.where.locate("/a/b/0"), "deploy.yaml:3:7");
  // A pointer that does not exist falls back to its nearest known ancestor.
  EXPECT_EQ(doc.where.find("/a/b/1/missing").line, 4);
}

TEST(YamlLoad, SyntaxErrorNamesFileLineAndColumn) {
  try {
    load("a: 1\nb: [1, 2\nc: 3\n", "bad.yaml");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.file(), "bad.yaml");
    EXPECT_GE(e.mark().line, 2);
    EXPECT_NE(std::string(e.what()).find("bad.yaml:"), std::string::npos);
  }
}

TEST(YamlLoad, DuplicateKeysAreErrors) {
  try {
    load("a: 1\nb: 2\na: 3\n", "dup.yaml");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.mark().line, 3);
    EXPECT_NE(e.message().find("\"a\" already defined"), std::string::npos);
  }
}

TEST(YamlLoad, MultipleDocumentsAndEmptyOnes) {
  auto docs = load_all("a: 1\n---\n---\nb: 2\n");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].value["a"], 1);
  EXPECT_TRUE(docs[1].value.is_null());
  EXPECT_EQ(docs[2].value["b"], 2);
  EXPECT_EQ(docs[2].start.line, 4);
  EXPECT_THROW(load("a: 1\n---\nb: 2\n"), Error);
}

TEST(YamlLoad, AliasesAndMergeKeys) {
  auto doc = load("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n");
  EXPECT_EQ(doc.value["d"], (json{{"x", 1}, {"y", 3}}));
}

TEST(YamlLoad, AliasBombIsRefused) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + prev;
    bomb += "]\n";
    prev = c;
  }
  EXPECT_THROW(load(bomb), Error);
}

TEST(YamlDump, RoundTripsTrickyStrings) {
  json v = {{"plain", "hello"},
            {"num", "123"},
            {"bool", "true"},
            {"yes", "yes"},
            {"empty", ""},
            {"colon", "a: b"},
            {"hash", "a #b"},
            {"lead", " x"},
            {"dash", "- x"},
            {"multi", "a\nb\n"},
            {"multi2", "a\n  b"},
            {"ctrl", "a\tb"},
            {"null", nullptr},
            {"list", {1, "2", {{"k", "v"}}}},
            {"emptyObj", json::object()},
            {"emptyList", json::array()},
            {"nested", {{"deeper", {{"x", 1.25}}}}}};
  std::string text = dump(v);
  EXPECT_EQ(load(text).value, v) << text;
}

TEST(YamlDump, KubectlLayout) {
  json v = {{"spec", {{"containers", {{{"name", "app"}, {"image", "nginx:1.25"}}}}}}};
  EXPECT_EQ(dump(v), "spec:\n  containers:\n  - image: nginx:1.25\n    name: app\n");
}

} // namespace
} // namespace capstan::yaml
