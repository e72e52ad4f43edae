#include "capstan/json_schema/schema.h"

#include <gtest/gtest.h>

namespace capstan::json_schema {
namespace {

using nlohmann::json;

std::vector<Violation> check(const char* schema, const char* doc) {
  return Schema::compile(json::parse(schema)).validate(json::parse(doc));
}

std::string first(const char* schema, const char* doc) {
  auto v = check(schema, doc);
  return v.empty() ? std::string("valid") : v.front().to_string();
}

TEST(JsonSchema, TypesIncludingIntegerAndUnions) {
  EXPECT_EQ(first(R"({"type":"string"})", R"("x")"), "valid");
  EXPECT_EQ(first(R"({"type":"string"})", "3"), "/: must be string, got an integer (type)");
  EXPECT_EQ(first(R"({"type":"integer"})", "3.0"), "valid");
  EXPECT_EQ(first(R"({"type":"integer"})", "3.5"), "/: must be integer, got a number (type)");
  EXPECT_EQ(first(R"({"type":"number"})", "3"), "valid");
  EXPECT_EQ(first(R"({"type":["string","null"]})", "null"), "valid");
  EXPECT_EQ(first(R"({"type":["string","null"]})", "{}"),
            "/: must be null or string, got an object (type)");
}

TEST(JsonSchema, RequiredAndAdditionalPropertiesNameThePointer) {
  const char* schema = R"({
    "type": "object",
    "required": ["source"],
    "additionalProperties": false,
    "properties": {
      "source": {
        "type": "object",
        "required": ["type", "spec"],
        "properties": {"type": {"enum": ["Inline"]}, "spec": {"type": "object"}}
      },
      "shell": {"type": "string"}
    }
  })";
  auto v = check(schema, R"({"shel": "Bash", "source": {"type": "File", "sepc": {}}})");
  ASSERT_EQ(v.size(), 3u) << summarize(v);
  EXPECT_EQ(v[0].to_string(), "/shel: unknown property (allowed: shell, source) "
                              "(additionalProperties)");
  EXPECT_EQ(v[1].to_string(), "/source: required property \"spec\" is missing (required)");
  EXPECT_EQ(v[2].pointer, "/source/type");
  EXPECT_EQ(v[2].rule, "enum");
  EXPECT_EQ(v[2].message, R"(must be one of "Inline", got "File")");
}

TEST(JsonSchema, ArraysItemsAndCounts) {
  const char* schema = R"({"type":"array","minItems":1,"maxItems":3,"uniqueItems":true,
                           "items":{"type":"object","required":["name"],
                                    "properties":{"name":{"type":"string","minLength":1}}}})";
  EXPECT_EQ(first(schema, R"([{"name":"a"}])"), "valid");
  EXPECT_EQ(first(schema, "[]"), "/: must have at least 1 items, got 0 (minItems)");
  EXPECT_EQ(first(schema, R"([{"name":"a"},{"name":""}])"),
            "/1/name: must not be empty (minLength)");
  EXPECT_EQ(first(schema, R"([{"name":"a"},{"name":"a"}])"),
            "/: items 0 and 1 are equal (uniqueItems)");
  EXPECT_EQ(first(schema, R"([{"name":"a"},{"name":"b"},{"name":"c"},{"name":"d"}])"),
            "/: must have at most 3 items, got 4 (maxItems)");
  EXPECT_EQ(
      first(R"({"prefixItems":[{"type":"string"}],"items":{"type":"integer"}})", R"(["a",1,"b"])"),
      "/2: must be integer, got a string (type)");
}

TEST(JsonSchema, NumbersAndStrings) {
  EXPECT_EQ(first(R"({"minimum":1,"maximum":10})", "0"), "/: must be >= 1, got 0 (minimum)");
  EXPECT_EQ(first(R"({"minimum":1,"maximum":10})", "11"), "/: must be <= 10, got 11 (maximum)");
  EXPECT_EQ(first(R"({"exclusiveMinimum":0})", "0"), "/: must be > 0, got 0 (exclusiveMinimum)");
  EXPECT_EQ(first(R"({"multipleOf":0.5})", "1.5"), "valid");
  EXPECT_EQ(first(R"({"multipleOf":2})", "3"), "/: must be a multiple of 2, got 3 (multipleOf)");
  // Lengths count code points, not bytes.
  EXPECT_EQ(first(R"({"maxLength":2})", R"("é€")"), "valid");
  EXPECT_EQ(first(R"({"minLength":3})", R"("ab")"),
            "/: must be at least 3 characters long, got 2 (minLength)");
}

TEST(JsonSchema, PatternIsUnanchoredEcmaStyleAndNeverEchoesTheValue) {
  const char* schema = R"({"type":"string","pattern":"^[A-Za-z_][A-Za-z0-9_]*$"})";
  EXPECT_EQ(first(schema, R"("my_var1")"), "valid");
  EXPECT_EQ(first(schema, R"("1secret-value")"),
            R"(/: must match the pattern "^[A-Za-z_][A-Za-z0-9_]*$" (pattern))");
  EXPECT_EQ(first(R"({"pattern":"\\d+"})", R"("abc12")"), "valid");
  // `$` matches at the very end only, as in ECMA-262 (not before a trailing newline).
  EXPECT_NE(first(R"({"pattern":"^a$"})", R"("a\n")"), "valid");
}

TEST(JsonSchema, LongValuesDoNotOverflowTheStack) {
  // std::regex recurses per character and crashes on values like these; the validator must not.
  std::string big(2'000'000, 'a');
  auto simple = Schema::compile(json::parse(R"({"pattern":"^[a-z]+$"})"));
  EXPECT_TRUE(simple.accepts(json(big)));
  EXPECT_FALSE(simple.accepts(json(big + "!")));
  // A pattern that backtracks per character runs into the match limit: refused, with why.
  auto grouped = Schema::compile(json::parse(R"({"pattern":"^(a|b)*$"})"));
  auto v = grouped.validate(json(big));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].message.rfind("could not be checked against its pattern: ", 0), 0u)
      << v[0].message;
}

TEST(JsonSchema, CatastrophicPatternEndsWithAViolationNotAHang) {
  auto schema = Schema::compile(json::parse(R"({"pattern":"^(a+)+$"})"));
  auto v = schema.validate(json(std::string(40, 'a') + "!"));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].rule, "pattern");
}

TEST(JsonSchema, CombinatorsExplainWhichAlternativeFailed) {
  const char* any = R"({"anyOf":[{"type":"string"},{"type":"object","required":["a"]}]})";
  EXPECT_EQ(first(any, R"("x")"), "valid");
  EXPECT_EQ(first(any, R"({})"),
            "/: matches none of the alternatives: [0] /: must be string, got an object (type); "
            "[1] /: required property \"a\" is missing (required) (anyOf)");
  const char* one = R"({"oneOf":[{"type":"integer"},{"type":"number"}]})";
  EXPECT_EQ(first(one, "1.5"), "valid");
  EXPECT_EQ(first(one, "1"), "/: matches alternatives 0 and 1, but exactly one is allowed (oneOf)");
  EXPECT_EQ(first(R"({"allOf":[{"minimum":1},{"maximum":2}]})", "3"),
            "/: must be <= 2, got 3 (maximum)");
  EXPECT_EQ(first(R"({"not":{"const":"x"}})", R"("x")"),
            "/: must not match the schema under \"not\" (not)");
  const char* cond = R"({"if":{"properties":{"type":{"const":"Secret"}}},
                         "then":{"required":["ref"]},"else":{"required":["value"]}})";
  EXPECT_EQ(first(cond, R"({"type":"Secret","ref":"x"})"), "valid");
  EXPECT_EQ(first(cond, R"({"type":"String"})"),
            "/: required property \"value\" is missing (required)");
}

TEST(JsonSchema, RefsToDefsIncludingRecursion) {
  const char* schema = R"({
    "$defs": {"node": {"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/$defs/node"}},
                                                    "name":{"type":"string"}}}},
    "$ref": "#/$defs/node"
  })";
  EXPECT_EQ(first(schema, R"({"name":"a","children":[{"name":"b","children":[{"name":"c"}]}]})"),
            "valid");
  EXPECT_EQ(first(schema, R"({"children":[{"children":[{"name":3}]}]})"),
            "/children/0/children/0/name: must be string, got an integer (type)");
  EXPECT_EQ(first(R"({"definitions":{"n":{"type":"null"}},"$ref":"#/definitions/n"})", "1"),
            "/: must be null, got an integer (type)");
}

TEST(JsonSchema, RefLoopEndsWithAViolation) {
  auto schema =
      Schema::compile(json::parse(R"({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},
                                               "$ref":"#/$defs/a"})"));
  auto v = schema.validate(json(1));
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v[0].rule, "$ref");
}

TEST(JsonSchema, PointerEscapesSlashAndTilde) {
  EXPECT_EQ(first(R"({"additionalProperties":{"type":"string"}})", R"({"a/b~c": 1})"),
            "/a~1b~0c: must be string, got an integer (type)");
}

TEST(JsonSchema, BooleanSchemasAndAnnotations) {
  EXPECT_EQ(first("true", "1"), "valid");
  EXPECT_EQ(first("false", "1"), "/: no value is allowed here (false)");
  EXPECT_EQ(first(R"({"$schema":"https://json-schema.org/draft/2020-12/schema","title":"t",
                      "description":"d","default":1,"x-vendor":true})",
                  "1"),
            "valid");
}

TEST(JsonSchema, MaxViolationsBoundsTheWalk) {
  auto schema = Schema::compile(json::parse(R"({"items":{"type":"string"}})"));
  auto v = schema.validate(json::parse("[1,2,3,4,5,6,7,8,9,10]"), 3);
  EXPECT_EQ(v.size(), 3u);
  EXPECT_EQ(summarize(schema.validate(json::parse("[1,2,3]")), 2),
            "/0: must be string, got an integer (type); /1: must be string, got an integer (type) "
            "(and 1 more)");
}

TEST(JsonSchema, BadSchemasAreRefusedWithTheirLocation) {
  auto error_of = [](const char* schema) {
    try {
      Schema::compile(json::parse(schema));
    } catch (const SchemaError& e) {
      return std::string(e.what());
    }
    return std::string("compiled");
  };
  EXPECT_EQ(error_of(R"({"properties":{"a":{"type":"strnig"}}})"),
            "schema at /properties/a/type: unknown type \"strnig\" (use null, boolean, object, "
            "array, number, string, integer)");
  EXPECT_EQ(error_of(R"({"pattern":"(unclosed"})")
                .rfind("schema at /pattern: pattern \"(unclosed\" "
                       "is not a valid regular expression",
                       0),
            0u);
  EXPECT_EQ(error_of(R"({"$ref":"#/$defs/missing"})"),
            "schema at /$ref: $ref \"#/$defs/missing\" points to nothing in this schema");
  EXPECT_EQ(error_of(R"({"$ref":"https://example.com/s.json"})"),
            "schema at /$ref: only local references (\"#\", \"#/$defs/...\") are supported, got "
            "\"https://example.com/s.json\"");
  EXPECT_EQ(error_of(R"({"required":"name"})"),
            "schema at /required: required must be an array of strings");
  EXPECT_EQ(error_of(R"({"minLength":-1})"),
            "schema at /minLength: must be a non-negative integer, got -1");
  EXPECT_EQ(error_of("[]"), "schema: a schema must be an object or a boolean, got an array");
}

} // namespace
} // namespace capstan::json_schema
