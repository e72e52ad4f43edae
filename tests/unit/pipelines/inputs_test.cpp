// Runtime inputs: their full names, binding from --set and inputs files, and what is refused.
#include <gtest/gtest.h>

#include <algorithm>

#include "model/inputs.h"
#include "model/problem.h"

namespace capstan::model {
namespace {

using nlohmann::json;

const char* kPipeline = R"(pipeline:
  identifier: p
  name: P
  variables:
    - name: env
      type: String
      value: <+input>.allowedValues(dev,prod)
    - name: note
      type: String
      value: <+input>.default(none)
  stages:
    - stage:
        identifier: deploy
        name: Deploy
        type: Custom
        spec:
          execution:
            steps:
              - parallel:
                  - step:
                      identifier: a
                      name: A
                      type: ShellScript
                      spec:
                        script: <+input>.regex(^echo .*)
                  - stepGroup:
                      identifier: g
                      name: G
                      steps:
                        - step:
                            identifier: b
                            name: B
                            type: ShellScript
                            spec:
                              script: <+input>.executionInput()
)";

std::vector<InputSite> sites_of(const std::string& text) {
  auto doc = yaml::load(text, "p.yaml");
  return find_inputs(doc.value["pipeline"], "/pipeline", "pipeline", doc.where);
}

TEST(Inputs, FullNamesFollowHarness) {
  auto sites = sites_of(kPipeline);
  ASSERT_EQ(sites.size(), 4u);
  EXPECT_EQ(sites[0].fqn, "pipeline.variables.env");
  EXPECT_EQ(sites[0].location, "p.yaml:7:14");
  EXPECT_EQ(sites[1].fqn, "pipeline.variables.note");
  // Parallel blocks are transparent; step groups nest.
  EXPECT_EQ(sites[2].fqn, "pipeline.stages.deploy.spec.execution.steps.a.spec.script");
  EXPECT_EQ(sites[2].stage, "deploy");
  EXPECT_EQ(sites[2].step, "a");
  EXPECT_EQ(sites[3].fqn, "pipeline.stages.deploy.spec.execution.steps.g.steps.b.spec.script");
  EXPECT_EQ(sites[3].step, "g.b");
  EXPECT_TRUE(sites[3].input.execution_input);
  EXPECT_EQ(sites[2].pointer,
            "/pipeline/stages/0/stage/spec/execution/steps/0/parallel/0/step/spec/script");
}

TEST(Inputs, BindingFromSetFileDefaultsAndExecutionInputs) {
  auto sites = sites_of(kPipeline);
  std::vector<Problem> problems;
  auto bound =
      bind_inputs(sites, {{"env", "prod"}, {"a.spec.script", "echo hi"}}, {}, {}, problems);
  ASSERT_TRUE(problems.empty()) << problems[0].text();
  EXPECT_EQ(bound.values.at("pipeline.variables.env"), "prod");
  EXPECT_EQ(bound.values.at("pipeline.variables.note"), "none") << "the default";
  EXPECT_EQ(bound.values.at("pipeline.stages.deploy.spec.execution.steps.a.spec.script"),
            "echo hi");
  ASSERT_EQ(bound.pending.size(), 1u) << "asked when its step starts";
  EXPECT_EQ(bound.pending[0].step, "g.b");

  // An inputs file in Harness's shape; --set wins over it.
  auto file = read_inputs_file(R"(inputSet:
  identifier: s
  pipeline:
    identifier: p
    variables:
      - name: env
        type: String
        value: dev
    stages:
      - stage:
          identifier: deploy
          type: Custom
          spec:
            execution:
              steps:
                - parallel:
                    - step:
                        identifier: a
                        type: ShellScript
                        spec:
                          script: echo from file
)",
                               "in.yaml");
  EXPECT_EQ(file.at("pipeline.variables.env"), "dev");
  bound = bind_inputs(sites, {{"env", "prod"}}, file, {}, problems);
  ASSERT_TRUE(problems.empty()) << problems[0].text();
  EXPECT_EQ(bound.values.at("pipeline.variables.env"), "prod");
  EXPECT_EQ(bound.values.at("pipeline.stages.deploy.spec.execution.steps.a.spec.script"),
            "echo from file");

  // Substitution writes the values where the markers stood.
  auto doc = yaml::load(kPipeline, "p.yaml");
  substitute(doc.value, sites, bound.values);
  EXPECT_EQ(doc.value["pipeline"]["variables"][0]["value"], "prod");
  EXPECT_EQ(doc.value["pipeline"]["stages"][0]["stage"]["spec"]["execution"]["steps"][0]["parallel"]
                     [0]["step"]["spec"]["script"],
            "echo from file");
}

TEST(Inputs, WhatIsRefusedAndWhy) {
  auto sites = sites_of(kPipeline);
  struct Case {
    std::map<std::string, std::string> set;
    const char* message;
    const char* location;
  };
  const Case cases[] = {
      {{{"env", "staging"}, {"script", "x"}},
       "is not one of the allowed values (dev, prod)",
       "p.yaml:7:14"},
      {{{"env", "dev"}, {"a.spec.script", "rm -rf /"}}, "does not match ^echo .*", "p.yaml:25:33"},
      {{{"a.spec.script", "echo"}},
       "runtime input pipeline.variables.env needs a value: pass --set env=VALUE",
       "p.yaml:7:14"},
      {{{"env", "dev"}, {"a.spec.script", "echo"}, {"colour", "red"}},
       "--set colour: no runtime input is named 'colour'",
       ""},
      {{{"env", "dev"}, {"script", "echo"}}, "--set script is ambiguous", ""},
  };
  for (const auto& c : cases) {
    std::vector<Problem> problems;
    bind_inputs(sites, c.set, {}, {}, problems);
    ASSERT_FALSE(problems.empty()) << c.message;
    auto it = std::find_if(problems.begin(), problems.end(), [&](const Problem& p) {
      return p.message.find(c.message) != std::string::npos;
    });
    ASSERT_NE(it, problems.end()) << c.message << "\n" << problems[0].text();
    EXPECT_EQ(it->location, c.location) << it->text();
  }
  // A value from a file for something that is not an input.
  std::vector<Problem> problems;
  bind_inputs(sites, {{"env", "dev"}, {"a.spec.script", "echo hi"}},
              {{"pipeline.variables.colour", "red"}}, {}, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].message.find("not a runtime input of this run"), std::string::npos);
  // A file that is not an inputs file.
  EXPECT_THROW(read_inputs_file("service:\n  identifier: x\n", "in.yaml"), ValidationError);
  EXPECT_THROW(read_inputs_file("pipeline: [oops\n", "in.yaml"), ValidationError);
}

TEST(Inputs, FixedValuesOfAStageCountAsGiven) {
  auto doc = yaml::load(R"(service:
  identifier: myapp
  serviceDefinition:
    type: Kubernetes
    spec:
      artifacts:
        primary:
          sources:
            - identifier: myapp
              type: DockerRegistry
              spec:
                imagePath: myorg/myapp
                tag: <+input>
)",
                        "svc.yaml");
  const std::string prefix = "pipeline.stages.deploy.spec.service.serviceInputs";
  auto sites = find_inputs(doc.value["service"], "/service", prefix, doc.where);
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].fqn,
            prefix + ".serviceDefinition.spec.artifacts.primary.sources.myapp.spec.tag");
  auto fixed = flatten_values(json::parse(R"({"serviceDefinition": {"type": "Kubernetes", "spec":
      {"artifacts": {"primary": {"sources": [{"identifier": "myapp", "type": "DockerRegistry",
      "spec": {"tag": "v1.9.0"}}]}}}}})"),
                              prefix);
  std::vector<Problem> problems;
  auto bound = bind_inputs(sites, {}, {}, fixed, problems);
  ASSERT_TRUE(problems.empty()) << problems[0].text();
  EXPECT_EQ(bound.values.at(sites[0].fqn), "v1.9.0");
  // And --set tag=... works on the service's input directly.
  bound = bind_inputs(sites, {{"tag", "v2.0.0"}}, {}, {}, problems);
  ASSERT_TRUE(problems.empty());
  EXPECT_EQ(bound.values.at(sites[0].fqn), "v2.0.0");
}

} // namespace
} // namespace capstan::model
