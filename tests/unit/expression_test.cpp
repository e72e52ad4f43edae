#include "capstan/expression/expression.h"

#include <gtest/gtest.h>

namespace capstan::expression {
namespace {

using nlohmann::json;

class TestScope : public JsonScope {
public:
  TestScope()
      : JsonScope(json::parse(R"({
          "pipeline": {"variables": {"env": "prod", "replicas": "3", "flag": "true",
                                     "name": "<+service.name>-svc", "loop": "<+pipeline.variables.loop>",
                                     "list": "a,b,c", "empty": ""},
                       "sequenceId": 42, "executionId": "ex-1",
                       "stages": {"deploy": {"spec": {"execution": {"steps": {"update": {
                          "output": {"outputVariables": {"commitId": "abc123"}}}}}}}}},
          "stage": {"variables": {"region": "eu"}},
          "service": {"name": "myapp", "identifier": "myapp_id"},
          "env": {"name": "prod", "type": "Production"},
          "infra": {"namespace": "default", "releaseName": "rel"},
          "artifact": {"image": "myorg/myapp:v2.0.0", "tag": "v2.0.0", "imagePath": "myorg/myapp"},
          "nums": [1, 2, 3]
        })")) {}

  std::optional<Value> call(const std::vector<std::string>& target, const std::string& fn,
                            const std::vector<Value>& args) const override {
    if (target == std::vector<std::string>{"secrets"} && fn == "getValue" && args.size() == 1) {
      if (args[0] == "db_pass") return Value("s3cr3t");
    }
    return std::nullopt;
  }
  bool is_secret_call(const std::vector<std::string>& target,
                      const std::string& fn) const override {
    return target == std::vector<std::string>{"secrets"} && fn == "getValue";
  }
};

struct Case {
  const char* text;
  json expected;
};

TEST(ExpressionTemplate, ResolvesReferences) {
  TestScope scope;
  const Case cases[] = {
      {"<+pipeline.variables.env>", "prod"},
      {"app-<+env.name>-<+infra.namespace>", "app-prod-default"},
      {"<+service.identifier>", "myapp_id"},
      {"<+env.type>", "Production"},
      {"<+artifact.image>", "myorg/myapp:v2.0.0"},
      {"<+artifact.tag>/<+artifact.imagePath>", "v2.0.0/myorg/myapp"},
      {"<+pipeline.sequenceId>", 42},
      {"run-<+pipeline.sequenceId>", "run-42"},
      {"<+pipeline.stages.deploy.spec.execution.steps.update.output.outputVariables.commitId>",
       "abc123"},
      {"<+pipeline.variables.name>", "myapp-svc"}, // nested expression in a variable
      {"<+pipeline.variables.env.toUpperCase()>", "PROD"},
      {"<+pipeline.variables.list.split(\",\")>", json({"a", "b", "c"})},
      {"<+pipeline.variables.list.split(\",\")[1]>", "b"},
      {"<+pipeline.variables[\"env\"]>", "prod"},
      {"<+<+pipeline.variables.env>.length()>", 4},
      {"<+pipeline.variables.env == \"prod\" ? \"big\" : \"small\">", "big"},
      {"<+(pipeline.variables.replicas > 2) ? \"many\" : \"few\">", "many"},
      {"plain text", "plain text"},
      {"<+nums[2]>", 3},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Expression::parse_template(c.text).evaluate(scope), c.expected) << c.text;
  }
}

TEST(ExpressionCondition, ComparisonsAndLogic) {
  TestScope scope;
  const std::pair<const char*, bool> cases[] = {
      {"<+pipeline.variables.env> == \"prod\"", true},
      {"<+pipeline.variables.env> != \"prod\"", false},
      {"<+pipeline.variables.env> == \"prod\" && <+stage.variables.region> == \"us\"", false},
      {"<+pipeline.variables.env> == \"prod\" || <+stage.variables.region> == \"us\"", true},
      {"<+pipeline.variables.replicas> > 2", true},
      {"<+pipeline.variables.replicas> >= 3 && <+pipeline.variables.replicas> < 4", true},
      {"<+pipeline.variables.replicas> == 3", true}, // "3" == 3 numerically
      {"<+pipeline.variables.flag> == true", true},
      {"<+pipeline.variables.flag>", true},
      {"!<+pipeline.variables.flag>", false},
      {"<+pipeline.variables.empty>", false},
      {"<+pipeline.variables.env>.startsWith(\"pr\")", true},
      {"<+pipeline.variables.env> =~ [\"dev\", \"prod\"]", true},
      {"<+pipeline.variables.env> =~ \"p.*\"", true},
      {"pipeline.variables.env == 'prod' and not (1 > 2)", true},
      // short-circuit: the unresolvable right side is never evaluated
      {"<+pipeline.variables.env> == \"dev\" && <+pipeline.variables.missing> == \"x\"", false},
      {"true ? true : <+nope>", true},
  };
  for (const auto& [text, expected] : cases) {
    EXPECT_EQ(Expression::parse_condition(text).evaluate_bool(scope), expected) << text;
  }
}

TEST(ExpressionErrors, UnresolvableNamesTheExpression) {
  TestScope scope;
  try {
    Expression::parse_template("x-<+pipeline.variables.missing>").evaluate(scope);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.expression(), "x-<+pipeline.variables.missing>");
    EXPECT_NE(e.reason().find("<+pipeline.variables.missing>"), std::string::npos);
  }
}

TEST(ExpressionErrors, MalformedTextIsASyntaxError) {
  const char* bad[] = {"<+pipeline.variables.env",
                       "<+>",
                       "<+a ==>",
                       "<+a.>",
                       "<+\"unclosed>",
                       "<+a ? b>",
                       "<+a.f(1,>",
                       "<+a )>"};
  for (const char* text : bad) {
    EXPECT_THROW(Expression::parse_template(text), Error) << text;
  }
  EXPECT_THROW(Expression::parse_condition(""), Error);
  EXPECT_THROW(Expression::parse_condition("a =="), Error);
}

TEST(ExpressionErrors, RuntimeErrors) {
  TestScope scope;
  const char* bad[] = {"<+pipeline.variables.loop>", "<+nums[7]>",
                       "<+pipeline.variables.env.nope()>", "<+1 / 0>",
                       "<+pipeline.variables.env.substring(2, 99)>"};
  for (const char* text : bad) {
    EXPECT_THROW(Expression::parse_template(text).evaluate(scope), Error) << text;
  }
}

TEST(ExpressionSecrets, RecordsSecretValues) {
  TestScope scope;
  std::vector<std::string> secrets;
  EvalOptions options;
  options.secrets_used = &secrets;
  EXPECT_EQ(render("pw=<+secrets.getValue(\"db_pass\")>", scope, options), "pw=s3cr3t");
  EXPECT_EQ(secrets, std::vector<std::string>{"s3cr3t"});
  EXPECT_THROW(render("<+secrets.getValue(\"nope\")>", scope), Error);
}

TEST(ExpressionTemplate, DeferredRootsStayAsWritten) {
  TestScope scope;
  EvalOptions options;
  options.deferred_roots = {"cluster", "envgroup"};
  EXPECT_EQ(Expression::parse_template("cluster-config/<+env.name>/<+cluster.name>/config.json")
                .evaluate(scope, options),
            "cluster-config/prod/<+cluster.name>/config.json");
  EXPECT_EQ(Expression::parse_template("<+envgroup.name>").evaluate(scope, options),
            "<+envgroup.name>");
  // Without the option they are ordinary references (and this one does not resolve).
  EXPECT_THROW(Expression::parse_template("<+cluster.name>").evaluate(scope), Error);
}

TEST(RuntimeInput, ParsesMarkers) {
  EXPECT_FALSE(parse_runtime_input("v1.2.3").has_value());
  EXPECT_FALSE(parse_runtime_input("<+pipeline.variables.x>").has_value());
  auto plain = parse_runtime_input("<+input>");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->default_value);
  auto full = parse_runtime_input(
      "<+input>.default(v1.9.0).allowedValues(v1.9.0, v2.0.0,'v3,0').executionInput()");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->default_value, "v1.9.0");
  EXPECT_EQ(full->allowed_values, (std::vector<std::string>{"v1.9.0", "v2.0.0", "v3,0"}));
  EXPECT_TRUE(full->execution_input);
  EXPECT_FALSE(full->reject("v2.0.0"));
  EXPECT_TRUE(full->reject("v9"));
  auto re = parse_runtime_input("<+input>.regex(v[0-9]+\\.[0-9]+\\.[0-9]+)");
  ASSERT_TRUE(re);
  EXPECT_FALSE(re->reject("v2.0.0"));
  EXPECT_TRUE(re->reject("latest"));
}

// As Harness (Java's Matcher.matches()): the whole value must match, not a part of it.
TEST(RuntimeInput, RegexMatchesTheWholeValue) {
  auto re = parse_runtime_input("<+input>.regex(v[0-9]+)");
  ASSERT_TRUE(re);
  EXPECT_FALSE(re->reject("v12"));
  EXPECT_TRUE(re->reject("v1.2"));   // only a prefix matches
  EXPECT_TRUE(re->reject("xv1"));    // only a suffix matches
  EXPECT_TRUE(re->reject("a v1 b")); // only the middle matches
  auto anchored = parse_runtime_input("<+input>.regex(^prod-.*$)");
  ASSERT_TRUE(anchored);
  EXPECT_FALSE(anchored->reject("prod-eu"));
  EXPECT_TRUE(anchored->reject("preprod-eu"));
  auto why = re->reject("v1.2");
  ASSERT_TRUE(why);
  EXPECT_EQ(*why, "'v1.2' does not match v[0-9]+");
}

TEST(RuntimeInput, RejectsMalformedMarkers) {
  EXPECT_THROW(parse_runtime_input("<+input>.default(x"), Error);
  EXPECT_THROW(parse_runtime_input("<+input>.bogus(x)"), Error);
  EXPECT_THROW(parse_runtime_input("<+input>x"), Error);
  EXPECT_THROW(parse_runtime_input("<+input>.regex([)"), Error);
  EXPECT_THROW(parse_runtime_input("<+input>.default(c).allowedValues(a,b)"), Error);
}

} // namespace
} // namespace capstan::expression
