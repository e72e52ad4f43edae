// Label selectors in Kubernetes' string form: what each operator matches, and where and why a
// malformed selector is refused.
#include <gtest/gtest.h>

#include <capstan/apps/label_selector.h>

namespace {

using capstan::apps::LabelSelector;
using nlohmann::json;

// The names of `objects` (name -> labels) the selector matches, in name order.
std::vector<std::string> matching(const std::string& selector, const json& objects) {
  std::string error;
  auto s = LabelSelector::parse(selector, error);
  EXPECT_TRUE(s) << selector << ": " << error;
  std::vector<std::string> out;
  if (!s) return out;
  for (const auto& [name, labels] : objects.items()) {
    if (s->matches(labels)) out.push_back(name);
  }
  return out;
}

std::string problem(const std::string& selector) {
  std::string error;
  auto s = LabelSelector::parse(selector, error);
  EXPECT_FALSE(s) << selector << " was taken";
  return error;
}

const json kApps = json::parse(R"({
  "a": {"tier": "web", "env": "dev", "app.kubernetes.io/instance": "shop"},
  "b": {"tier": "web", "env": "prod", "replicas": 3},
  "c": {"tier": "db", "env": "qa", "legacy": ""},
  "d": {}
})");

using V = std::vector<std::string>;

TEST(LabelSelector, EachOperatorMatchesAsKubernetesDoes) {
  EXPECT_EQ(matching("", kApps), (V{"a", "b", "c", "d"}));
  EXPECT_EQ(matching("tier=web", kApps), (V{"a", "b"}));
  EXPECT_EQ(matching("tier==web", kApps), (V{"a", "b"}));
  // != and notin also match objects without the label.
  EXPECT_EQ(matching("tier!=web", kApps), (V{"c", "d"}));
  EXPECT_EQ(matching("env in (dev,qa)", kApps), (V{"a", "c"}));
  EXPECT_EQ(matching("env notin (dev, qa)", kApps), (V{"b", "d"}));
  EXPECT_EQ(matching("legacy", kApps), (V{"c"}));
  EXPECT_EQ(matching("!legacy", kApps), (V{"a", "b", "d"}));
  EXPECT_EQ(matching("legacy=", kApps), (V{"c"}));
  EXPECT_EQ(matching("app.kubernetes.io/instance=shop", kApps), (V{"a"}));
  // A comma is AND; spaces around tokens do not matter.
  EXPECT_EQ(matching(" tier = web , env!=dev ", kApps), (V{"b"}));
  EXPECT_EQ(matching("tier in (web),!legacy,env notin (prod)", kApps), (V{"a"}));
  // Numbers: a YAML number is compared as written; > and < compare integers.
  EXPECT_EQ(matching("replicas=3", kApps), (V{"b"}));
  EXPECT_EQ(matching("replicas>2", kApps), (V{"b"}));
  EXPECT_EQ(matching("replicas<3", kApps), V{});
  // Anything but an object has no labels.
  std::string error;
  auto s = LabelSelector::parse("!x", error);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->matches(json()));
  EXPECT_FALSE(LabelSelector::parse("x", error)->matches(json::array()));
}

TEST(LabelSelector, MalformedSelectorsNameTheCharacterAndWhy) {
  EXPECT_EQ(problem("env in dev"), "at character 8: expected '(' after 'in', found 'dev'");
  EXPECT_EQ(problem("env in ()"), "at character 9: 'in' needs at least one value between its "
                                  "parentheses");
  EXPECT_EQ(problem("env notin (a b)"),
            "at character 14: expected ',' or ')' in the values of 'notin', found 'b'");
  EXPECT_EQ(problem("env in (a"),
            "at character 10: expected ',' or ')' in the values of 'in', found the end");
  EXPECT_EQ(problem("tier=web,"), "at character 10: expected a label key, found the end");
  EXPECT_EQ(problem(",tier"), "at character 1: expected a label key, found ','");
  EXPECT_EQ(problem("!"), "at character 2: expected a label key, found the end");
  EXPECT_EQ(problem("tier=web=x"),
            "at character 9: expected ',' between requirements or the end of the selector, "
            "found '='");
  EXPECT_EQ(problem("tier web"), "at character 6: expected an operator after 'tier' (=, ==, !=, "
                                 "in, notin, >, <), ',' or the end of the selector, found 'web'");
  EXPECT_EQ(problem("replicas>two"), "at character 10: expected an integer after '>', found 'two'");
  EXPECT_EQ(problem("tier=(web)"), "at character 6: expected a value after '=', found '('");
  EXPECT_EQ(problem("-tier=web"),
            "at character 1: label key '-tier': the name part must consist of alphanumeric "
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character");
  EXPECT_EQ(problem("Example.com/tier"),
            "at character 1: label key 'Example.com/tier': its prefix must be a lower-case DNS "
            "subdomain (such as example.com)");
  EXPECT_EQ(problem("tier=web!"),
            "at character 9: expected ',' between requirements or the end of the selector, "
            "found '!'");
  EXPECT_EQ(problem("tier=a$b"),
            "at character 6: label value 'a$b' must consist of alphanumeric characters, '-', '_' "
            "or '.', and must start and end with an alphanumeric character");
  EXPECT_EQ(problem("tier=" + std::string(64, 'x')), "at character 6: label value '" +
                                                         std::string(64, 'x') +
                                                         "' must be no more than 63 characters");
}

} // namespace
