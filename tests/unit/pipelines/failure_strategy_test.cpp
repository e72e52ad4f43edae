// Failure strategies: parsing with positions, and which strategy handles which error.
#include <gtest/gtest.h>

#include "model/failure.h"
#include "model/object.h"
#include "model/pipeline.h"

namespace capstan::model {
namespace {

std::vector<FailureStrategy> parse(const std::string& yaml_text, std::vector<Problem>& problems) {
  auto doc = yaml::load(yaml_text, "f.yaml");
  Checker check(doc.where, problems);
  return parse_failure_strategies(doc.value, "", check);
}

const char* kStrategies = R"(failureStrategies:
  - onFailure:
      errors: [Timeout]
      action:
        type: Retry
        spec:
          retryCount: 2
          retryIntervals: [1s, 5s]
          onRetryFailure:
            action:
              type: ManualIntervention
              spec:
                timeout: 1h
                onTimeout:
                  action:
                    type: StageRollback
  - onFailure:
      errors: [AllErrors]
      action:
        type: Ignore
)";

TEST(FailureStrategies, ParseNestedActions) {
  std::vector<Problem> problems;
  auto list = parse(kStrategies, problems);
  ASSERT_TRUE(problems.empty()) << problems[0].text();
  ASSERT_EQ(list.size(), 2u);
  const auto& retry = list[0].action;
  EXPECT_EQ(retry.type, "Retry");
  EXPECT_EQ(retry.retry_count, 2);
  EXPECT_EQ(retry.retry_interval(1), std::chrono::seconds(1));
  EXPECT_EQ(retry.retry_interval(2), std::chrono::seconds(5));
  EXPECT_EQ(retry.retry_interval(7), std::chrono::seconds(5)) << "the last interval repeats";
  ASSERT_EQ(retry.then.size(), 1u);
  EXPECT_EQ(retry.then[0].type, "ManualIntervention");
  EXPECT_EQ(retry.then[0].timeout, std::chrono::hours(1));
  ASSERT_EQ(retry.then[0].then.size(), 1u);
  EXPECT_EQ(retry.then[0].then[0].type, "StageRollback");
  EXPECT_EQ(list[0].location, "f.yaml:2:5");
  // The stored form round-trips.
  nlohmann::json j = list;
  auto back = j.get<std::vector<FailureStrategy>>();
  EXPECT_EQ(back[0].action.then[0].then[0].type, "StageRollback");
  EXPECT_EQ(back[0].action.retry_intervals, retry.retry_intervals);
}

TEST(FailureStrategies, BadStrategiesNameWhereAndWhy) {
  struct Case {
    const char* yaml;
    const char* location;
    const char* message;
  };
  const Case cases[] = {
      {"failureStrategies:\n  - onFailure:\n      errors: [Timeouts]\n      action: {type: "
       "Abort}\n",
       "f.yaml:3:16", "unknown error type 'Timeouts'"},
      {"failureStrategies:\n  - onFailure:\n      errors: [AllErrors]\n      action: {type: "
       "Panic}\n",
       "f.yaml:4:22", "unknown type 'Panic'"},
      {"failureStrategies:\n  - onFailure:\n      errors: [AllErrors]\n      action: {type: "
       "Retry}\n",
       "f.yaml:4:15", "needs spec.retryCount"},
      {"failureStrategies:\n  - onFailure:\n      errors: [AllErrors]\n      action:\n        "
       "type: Retry\n        spec: {retryCount: 0, retryIntervals: [1s], onRetryFailure: "
       "{action: {type: Abort}}}\n",
       "f.yaml:6:28", "retryCount must be a whole number"},
      {"failureStrategies:\n  - onFailure:\n      errors: [AllErrors]\n      action:\n        "
       "type: Retry\n        spec: {retryCount: 1, retryIntervals: [soon], onRetryFailure: "
       "{action: {type: Abort}}}\n",
       "f.yaml:6:48", "invalid retry interval 'soon'"},
      {"failureStrategies:\n  - onFailure:\n      errors: [AllErrors]\n      action:\n        "
       "type: Retry\n        spec: {retryCount: 1, retryIntervals: [1s], onRetryFailure: "
       "{action: {type: Retry}}}\n",
       "f.yaml:6:85", "onRetryFailure cannot retry again"},
      {"failureStrategies:\n  - onFailure:\n      errors: [AllErrors]\n      action:\n        "
       "type: ManualIntervention\n        spec: {timeout: 1h, onTimeout: {action: {type: "
       "ManualIntervention}}}\n",
       "f.yaml:6:56", "onTimeout of a manual intervention must end the wait"},
      {"failureStrategies:\n  - onFailure:\n      errors: [AllErrors]\n      action: {type: "
       "Abort}\n  - onFailure:\n      errors: [AllErrors]\n      action: {type: Ignore}\n",
       "f.yaml:6:16", "already handled by the strategy at f.yaml:2:5"},
      {"failureStrategies:\n  - onFailure:\n      errors: []\n      action: {type: Abort}\n",
       "f.yaml:3:15", "needs at least one error type"},
      {"failureStrategies:\n  - onFailure:\n      errors: [AllErrors]\n      action: {type: Abort, "
       "spec: {x: 1}}\n",
       "f.yaml:4:35", "takes no spec"},
  };
  for (const auto& c : cases) {
    std::vector<Problem> problems;
    parse(c.yaml, problems);
    ASSERT_FALSE(problems.empty()) << c.yaml;
    EXPECT_EQ(problems[0].location, c.location) << c.yaml << "\n" << problems[0].text();
    EXPECT_NE(problems[0].message.find(c.message), std::string::npos) << problems[0].text();
  }
}

FailureStrategy strategy(std::vector<std::string> errors, const std::string& action,
                         const std::string& where) {
  FailureStrategy s;
  s.errors = std::move(errors);
  s.action.type = action;
  s.location = where;
  return s;
}

TEST(FailureStrategies, ResolutionPrefersTheInnermostLevelAndTheNamedErrorType) {
  std::vector<FailureStrategy> step = {strategy({"Timeout"}, "Retry", "step")};
  std::vector<FailureStrategy> group = {strategy({"AllErrors"}, "Ignore", "group-all"),
                                        strategy({"Connectivity"}, "Abort", "group-conn")};
  std::vector<FailureStrategy> stage = {strategy({"AllErrors"}, "StageRollback", "stage")};
  std::vector<const std::vector<FailureStrategy>*> levels = {&step, &group, &stage};
  struct Case {
    const char* error;
    const char* where;
  };
  const Case cases[] = {
      {"Timeout", "step"},            // the step names it
      {"Connectivity", "group-conn"}, // named beats AllErrors within the group, though listed later
      {"Authentication", "group-all"}, // the group's AllErrors before the stage's
      {"InvalidInput", "group-all"},   // plugin error types outside the list are Unknown
      {"", "group-all"},
  };
  for (const auto& c : cases) {
    auto r = resolve_failure(levels, c.error);
    ASSERT_TRUE(r) << c.error;
    EXPECT_EQ(r->location, c.where) << c.error;
  }
  // Without the group, the stage's strategy applies; without any, nothing does.
  std::vector<const std::vector<FailureStrategy>*> no_group = {&step, nullptr, &stage};
  EXPECT_EQ(resolve_failure(no_group, "Unknown")->action.type, "StageRollback");
  std::vector<const std::vector<FailureStrategy>*> none = {&step};
  EXPECT_FALSE(resolve_failure(none, "Unknown"));
  EXPECT_EQ(failure_category("InvalidInput"), "Unknown");
  EXPECT_EQ(failure_category("Timeout"), "Timeout");
  EXPECT_EQ(default_deployment_strategy().action.type, "StageRollback");
}

} // namespace
} // namespace capstan::model
