// The pipeline model: Harness-shaped YAML in, problems with file:line:column out.
#include <gtest/gtest.h>

#include "model/duration.h"
#include "model/object.h"
#include "model/pipeline.h"

namespace capstan::model {
namespace {

const char* kGood = R"(pipeline:
  identifier: demo
  name: Demo
  variables:
    - name: tag
      type: String
      value: <+input>.default(v1).allowedValues(v1,v2)
  stages:
    - stage:
        identifier: build
        name: Build
        type: Custom
        spec:
          execution:
            steps:
              - step:
                  type: ShellScript
                  identifier: first
                  name: First
                  timeout: 1h 30m
                  spec:
                    script: echo <+pipeline.variables.tag>
              - step:
                  type: ShellScript
                  identifier: second
                  name: Second
                  spec:
                    value: <+execution.steps.first.output.outputVariables.x>
)";

std::vector<Problem> problems_of(const std::string& text) {
  try {
    parse_objects({{"p.yaml", text}});
  } catch (const ValidationError& e) {
    return e.problems();
  }
  return {};
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

TEST(PipelineModel, AValidPipelineParses) {
  auto objects = parse_objects({{"p.yaml", kGood}});
  ASSERT_EQ(objects.size(), 1u);
  const auto& o = objects[0];
  EXPECT_EQ(o.kind, "pipeline");
  EXPECT_EQ(o.identifier, "demo");
  ASSERT_EQ(o.step_types.size(), 2u);
  EXPECT_EQ(o.step_types[0].location, "p.yaml:17:25");
  Pipeline p = pipeline_from_json(o.model);
  ASSERT_EQ(p.stages.size(), 1u);
  EXPECT_EQ(p.stages[0].steps[0].timeout, std::chrono::minutes(90));
  EXPECT_EQ(p.stages[0].steps[1].timeout, kDefaultStepTimeout);
  EXPECT_EQ(p.stages[0].steps[0].expression_locations.at("/script"), "p.yaml:22:29");
}

TEST(PipelineModel, SyntaxErrorsNameLineAndColumn) {
  auto problems = problems_of("pipeline:\n  identifier: x\n  name: [oops\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].location.rfind("p.yaml:", 0), 0u);
  EXPECT_NE(problems[0].location, "p.yaml:0:0");
}

TEST(PipelineModel, MissingFieldsAreReportedAtTheirParent) {
  auto problems = problems_of(replace(kGood, "                  name: First\n", ""));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].text(), "p.yaml:17:19: missing required field 'name'");
}

TEST(PipelineModel, EveryProblemIsReportedNotJustTheFirst) {
  std::string text = replace(kGood, "type: Custom", "type: Bogus");
  text = replace(text, "timeout: 1h 30m", "timeout: soon");
  text = replace(text, "identifier: second", "identifier: first");
  auto problems = problems_of(text);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].location, "p.yaml:12:15");
  EXPECT_NE(problems[0].message.find("unknown stage type 'Bogus'"), std::string::npos);
  EXPECT_EQ(problems[1].location, "p.yaml:20:28");
  EXPECT_NE(problems[1].message.find("invalid timeout 'soon'"), std::string::npos);
  EXPECT_NE(problems[2].message.find("used twice"), std::string::npos);
}

TEST(PipelineModel, ExpressionsAreCheckedAgainstWhatExists) {
  auto problems = problems_of(replace(kGood, "pipeline.variables.tag", "pipeline.variables.nope"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].location, "p.yaml:22:29");
  EXPECT_NE(problems[0].message.find("declares no variable 'nope'"), std::string::npos);

  // A step may only read outputs of steps that ran before it.
  problems = problems_of(
      replace(kGood, "pipeline.variables.tag", "execution.steps.second.output.outputVariables.x"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].message.find("no step 'second' runs before this one"), std::string::npos);

  problems = problems_of(replace(kGood, "<+pipeline.variables.tag>", "<+pipeline.variables.tag"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].location, "p.yaml:22:29");
}

TEST(PipelineModel, UnknownFieldsAndUnsupportedFeaturesAreNamed) {
  auto problems = problems_of(replace(kGood, "  name: Demo\n", "  name: Demo\n  colour: red\n"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].location, "p.yaml:4:11");
  EXPECT_NE(problems[0].message.find("unknown field 'colour'"), std::string::npos);
}

TEST(PipelineModel, UnknownKindAndDuplicatesAcrossDocuments) {
  auto problems = problems_of("widget:\n  identifier: s\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].message.find("unknown kind 'widget'"), std::string::npos);
  problems = problems_of(std::string(kGood) + "---\n" + kGood);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].message.find("also defined at p.yaml:1"), std::string::npos);
}

TEST(PipelineModel, EachDocumentKeepsItsOwnText) {
  std::string second = replace(kGood, "identifier: demo", "identifier: other");
  auto objects = parse_objects({{"p.yaml", std::string(kGood) + "---\n" + second}});
  ASSERT_EQ(objects.size(), 2u);
  EXPECT_EQ(objects[0].yaml, kGood);
  EXPECT_EQ(objects[1].yaml, second);
  EXPECT_EQ(objects[1].source, "p.yaml:30");
}

TEST(PipelineModel, RunVariablesBindDefaultsInputsAndRefuseUnknownNames) {
  Pipeline p = pipeline_from_json(parse_objects({{"p.yaml", kGood}})[0].model);
  EXPECT_EQ(bind_variables(p, {}).at("tag"), "v1");
  EXPECT_EQ(bind_variables(p, {{"tag", "v2"}}).at("tag"), "v2");
  EXPECT_THROW(bind_variables(p, {{"tag", "v3"}}), ValidationError) << "not an allowed value";
  try {
    bind_variables(p, {{"tga", "v2"}});
    FAIL();
  } catch (const ValidationError& e) {
    EXPECT_NE(e.problems()[0].message.find("has no variable 'tga' (variables: tag)"),
              std::string::npos);
  }
}

TEST(Duration, HarnessForms) {
  EXPECT_EQ(parse_duration("10m"), std::chrono::minutes(10));
  EXPECT_EQ(parse_duration("1h 30m"), std::chrono::minutes(90));
  EXPECT_EQ(parse_duration("1d2h"), std::chrono::hours(26));
  EXPECT_EQ(parse_duration("500ms"), std::chrono::milliseconds(500));
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("10"));
  EXPECT_FALSE(parse_duration("5m 1h"));
  EXPECT_FALSE(parse_duration("0s"));
  EXPECT_FALSE(parse_duration("10 minutes"));
  EXPECT_EQ(format_duration(std::chrono::milliseconds(1500)), "1.5s");
  EXPECT_EQ(format_duration(std::chrono::minutes(90)), "1h30m");
}

} // namespace
} // namespace capstan::model
