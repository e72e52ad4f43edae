// Pipelines with step groups, parallel blocks, `when` conditions, failure strategies and
// rollback steps: what parses, what each expression may see, and the stored form.
#include <gtest/gtest.h>

#include "model/object.h"
#include "model/pipeline.h"

namespace capstan::model {
namespace {

const char* kPipeline = R"(pipeline:
  identifier: flow
  name: Flow
  variables:
    - name: env
      type: String
      value: <+input>.allowedValues(dev,prod)
  stages:
    - stage:
        identifier: build
        name: Build
        type: Custom
        failureStrategies:
          - onFailure:
              errors: [AllErrors]
              action: {type: Abort}
        spec:
          execution:
            steps:
              - step:
                  type: ShellScript
                  identifier: version
                  name: Version
                  spec: {script: echo 1}
              - parallel:
                  - step:
                      type: ShellScript
                      identifier: lint
                      name: Lint
                      spec: {script: echo <+execution.steps.version.output.outputVariables.v>}
                  - stepGroup:
                      identifier: tests
                      name: Tests
                      failureStrategies:
                        - onFailure:
                            errors: [Timeout]
                            action:
                              type: Retry
                              spec:
                                retryCount: 2
                                retryIntervals: [1s]
                                onRetryFailure: {action: {type: MarkAsFailure}}
                      steps:
                        - step:
                            type: ShellScript
                            identifier: unit
                            name: Unit
                            timeout: 5m
                            spec: {script: make test}
                        - step:
                            type: ShellScript
                            identifier: report
                            name: Report
                            when:
                              stageStatus: All
                              condition: <+pipeline.variables.env> == "prod"
                            spec: {script: echo <+execution.steps.tests.steps.unit.output.outputVariables.r>}
                      rollbackSteps:
                        - step:
                            type: ShellScript
                            identifier: clean
                            name: Clean
                            spec: {script: echo cleaning}
              - step:
                  type: Wait
                  identifier: pause
                  name: Pause
                  spec: {duration: 30s}
    - parallel:
        - stage:
            identifier: a
            name: A
            type: Custom
            when:
              pipelineStatus: All
            spec:
              execution:
                steps:
                  - step:
                      type: ShellScript
                      identifier: x
                      name: X
                      spec: {script: echo <+pipeline.stages.build.spec.execution.steps.tests.steps.unit.output.outputVariables.r>}
        - stage:
            identifier: b
            name: B
            type: Custom
            spec:
              execution:
                steps:
                  - step:
                      type: ShellScript
                      identifier: y
                      name: Y
                      spec: {script: echo}
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
  if (pos == std::string::npos) return s;
  return s.replace(pos, from.size(), to);
}

TEST(PipelineStructure, GroupsParallelWhenAndStrategiesParse) {
  auto objects = parse_objects({{"p.yaml", kPipeline}});
  ASSERT_EQ(objects.size(), 1u);
  Pipeline p = pipeline_from_json(objects[0].model);
  ASSERT_EQ(p.stages.size(), 3u);
  const auto& build = p.stages[0];
  ASSERT_EQ(build.steps.size(), 3u);
  EXPECT_EQ(build.steps[1].kind, NodeKind::kParallel);
  ASSERT_EQ(build.steps[1].children.size(), 2u);
  const auto& group = build.steps[1].children[1];
  EXPECT_EQ(group.kind, NodeKind::kStepGroup);
  EXPECT_EQ(group.identifier, "tests");
  ASSERT_EQ(group.children.size(), 2u);
  EXPECT_EQ(group.children[0].timeout, std::chrono::minutes(5));
  ASSERT_TRUE(group.children[1].when);
  EXPECT_EQ(group.children[1].when->status, "All");
  EXPECT_EQ(group.children[1].when->condition, "<+pipeline.variables.env> == \"prod\"");
  ASSERT_EQ(group.rollback.size(), 1u);
  EXPECT_EQ(group.failure_strategies[0].action.retry_count, 2);
  EXPECT_EQ(build.failure_strategies[0].action.type, "Abort");
  EXPECT_EQ(build.steps[2].type, "Wait");
  // Stages of one parallel block share a group; the others have their own.
  EXPECT_NE(p.stages[0].parallel_group, p.stages[1].parallel_group);
  EXPECT_EQ(p.stages[1].parallel_group, p.stages[2].parallel_group);
  EXPECT_EQ(p.stages[1].when->status, "All");
  // Every step type is reported with where it is written.
  EXPECT_EQ(objects[0].step_types.size(), 8u);
  // The stored form round-trips.
  EXPECT_EQ(to_json(pipeline_from_json(to_json(p))), to_json(p));
}

TEST(PipelineStructure, StepsSeeOnlyWhatEndedBeforeThem) {
  // A parallel sibling has not ended when a step starts.
  auto problems = problems_of(replace(kPipeline, "echo <+execution.steps.version.output",
                                      "echo <+execution.steps.tests.output"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].location, "p.yaml:30:38");
  EXPECT_NE(problems[0].message.find("no step 'tests' runs before this one"), std::string::npos)
      << problems[0].text();
  // Inside a group, a step is addressed through the group.
  problems = problems_of(
      replace(kPipeline, "execution.steps.tests.steps.unit.output", "execution.steps.unit.output"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].message.find("no step 'unit' runs before this one"), std::string::npos);
  // Stages of one parallel block do not see each other.
  problems = problems_of(replace(kPipeline, "spec: {script: echo}",
                                 "spec: {script: echo <+pipeline.stages.a.spec.execution.steps.x."
                                 "output.outputVariables.z>}"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].message.find("stage 'a' runs after this point"), std::string::npos)
      << problems[0].text();
  // What a Custom stage has not got.
  problems = problems_of(replace(kPipeline, "spec: {script: echo cleaning}",
                                 "spec: {script: echo <+artifact.image>}"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].message.find("only available in a Deployment stage"), std::string::npos);
  // Conditions are checked too.
  problems = problems_of(replace(kPipeline, "<+pipeline.variables.env> == \"prod\"",
                                 "<+pipeline.variables.envv> == \"prod\""));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].location, "p.yaml:56:42");
  EXPECT_NE(problems[0].message.find("declares no variable 'envv'"), std::string::npos);
}

TEST(PipelineStructure, StructuralMistakesNameWhereAndWhy) {
  struct Case {
    const char* from;
    const char* to;
    const char* location;
    const char* message;
  };
  const Case cases[] = {
      {"                  identifier: lint\n", "                  identifier: version\n",
       "p.yaml:28:35", "identifier 'version' is used twice in stage 'build'"},
      {"              - step:\n                  type: Wait",
       "              - steps:\n                  type: Wait", "p.yaml:65:19",
       "unknown field 'steps'"},
      {"              pipelineStatus: All", "              pipelineStatus: Sometimes",
       "p.yaml:75:31", "unknown pipelineStatus 'Sometimes'"},
      {"                  spec: {duration: 30s}", "                  spec: {duration: soon}",
       "p.yaml:68:36", "invalid duration 'soon'"},
      {"                  spec: {duration: 30s}", "                  spec: {}", "p.yaml:68:25",
       "missing required field 'duration'"},
      {"                              stageStatus: All",
       "                              pipelineStatus: All", "p.yaml:55:47",
       "unknown field 'pipelineStatus'"},
      {"                      rollbackSteps:", "                      rollbackStep:",
       "p.yaml:59:25", "unknown field 'rollbackStep'"},
  };
  for (const auto& c : cases) {
    auto problems = problems_of(replace(kPipeline, c.from, c.to));
    ASSERT_FALSE(problems.empty()) << c.to;
    EXPECT_EQ(problems[0].location, c.location) << problems[0].text();
    EXPECT_NE(problems[0].message.find(c.message), std::string::npos) << problems[0].text();
  }
}

} // namespace
} // namespace capstan::model
