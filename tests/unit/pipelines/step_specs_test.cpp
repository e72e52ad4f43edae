// Step specs checked at apply time against the schema of their step type, with the place of
// each problem; expressions accepted wherever a value is.
#include <gtest/gtest.h>

#include "model/object.h"
#include "model/step_specs.h"

namespace capstan::model {
namespace {

const char* kSchemas[][2] = {
    {"Deploy", R"({"type": "object", "additionalProperties": false, "required": ["files"],
      "properties": {"files": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                     "skip": {"type": "boolean"},
                     "mode": {"enum": ["Fast", "Safe"]},
                     "instances": {"oneOf": [{"type": "object", "required": ["count"],
                                              "properties": {"count": {"type": "integer"}}},
                                             {"type": "object", "required": ["percent"],
                                              "properties": {"percent": {"type": "integer"}}}]}}})"},
    {"Broken", R"({"type": "strange"})"},
    {"Unannounced", ""}};

SpecSchemas schemas() {
  SpecSchemas out;
  for (const auto& [type, schema] : kSchemas) out[type] = schema;
  return out;
}

std::string pipeline(const std::string& type, const std::string& spec_lines) {
  return "pipeline:\n"
         "  identifier: p\n"
         "  name: p\n"
         "  stages:\n"
         "    - stage:\n"
         "        identifier: s\n"
         "        name: s\n"
         "        type: Custom\n"
         "        spec:\n"
         "          execution:\n"
         "            steps:\n"
         "              - step:\n"
         "                  identifier: go\n"
         "                  name: go\n"
         "                  type: " +
         type +
         "\n"
         "                  spec:\n" +
         spec_lines;
}

std::vector<Problem> check(const std::string& type, const std::string& spec_lines) {
  auto objects = parse_objects({{"p.yaml", pipeline(type, spec_lines)}});
  return check_step_specs(objects, schemas());
}

std::string all(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) out += p.text() + "\n";
  return out;
}

TEST(StepSpecs, AValidSpecPasses) {
  EXPECT_TRUE(check("Deploy", "                    files: [a.yaml]\n"
                              "                    skip: true\n"
                              "                    mode: Safe\n")
                  .empty());
}

TEST(StepSpecs, EachProblemNamesTheStepThePointerTheRuleAndTheLine) {
  auto problems = check("Deploy", "                    files: [a.yaml, 3]\n"
                                  "                    skip: maybe\n"
                                  "                    mode: Quick\n"
                                  "                    colour: red\n");
  ASSERT_EQ(problems.size(), 4u) << all(problems);
  auto text = all(problems);
  EXPECT_NE(text.find("p.yaml:17:37: step 'go' (Deploy): spec/files/1: "), std::string::npos)
      << text;
  EXPECT_NE(text.find("p.yaml:18:27: step 'go' (Deploy): spec/skip: "), std::string::npos) << text;
  EXPECT_NE(text.find("p.yaml:19:27: step 'go' (Deploy): spec/mode: "), std::string::npos) << text;
  EXPECT_NE(text.find("(enum)"), std::string::npos) << text;
  EXPECT_NE(text.find("(additionalProperties)"), std::string::npos) << text;
}

TEST(StepSpecs, AMissingRequiredPropertyPointsAtTheSpec) {
  auto problems = check("Deploy", "                    skip: false\n");
  ASSERT_EQ(problems.size(), 1u) << all(problems);
  EXPECT_EQ(problems[0].location, "p.yaml:17:21");
  EXPECT_NE(problems[0].message.find("files"), std::string::npos);
  EXPECT_NE(problems[0].message.find("(required)"), std::string::npos);
}

TEST(StepSpecs, ExpressionsAreAcceptedWhereverAValueIs) {
  EXPECT_TRUE(check("Deploy", "                    files: <+input>\n"
                              "                    skip: <+pipeline.sequenceId>\n"
                              "                    mode: <+input>.allowedValues(Fast,Safe)\n"
                              "                    instances: {count: <+pipeline.sequenceId>}\n")
                  .empty());
  // ... but not in place of a property that is not allowed at all.
  auto problems = check("Deploy", "                    files: [a]\n"
                                  "                    colour: <+input>\n");
  ASSERT_EQ(problems.size(), 1u) << all(problems);
  EXPECT_NE(problems[0].message.find("(additionalProperties)"), std::string::npos);
}

TEST(StepSpecs, TypesWithoutASchemaAreNotChecked) {
  EXPECT_TRUE(check("Unannounced", "                    anything: goes\n").empty());
  EXPECT_TRUE(check("NeverHeardOf", "                    anything: goes\n").empty());
}

TEST(StepSpecs, AnUnusableSchemaIsBlamedOnThePlugin) {
  auto problems = check("Broken", "                    x: 1\n");
  ASSERT_EQ(problems.size(), 1u) << all(problems);
  EXPECT_EQ(problems[0].location, "p.yaml:15:25");
  EXPECT_NE(problems[0].message.find("is not usable"), std::string::npos) << problems[0].message;
}

} // namespace
} // namespace capstan::model
