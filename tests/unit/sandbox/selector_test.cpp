// The sandbox's label selectors: the string form as the Kubernetes API server reads
// ?labelSelector= (through the parser capstan::labels shares), and the object form of workloads.
#include <gtest/gtest.h>

#include <capstan/sandbox/api_error.h>
#include <capstan/sandbox/util.h>

#include <string>

namespace {

using capstan::sandbox::ApiError;
using capstan::sandbox::LabelSelector;
using nlohmann::json;

const json kWeb = {{"app", "web"}, {"tier", "front"}, {"rank", "3"}};
const json kDb = {{"app", "db"}, {"rank", "10"}};

TEST(SandboxLabelSelector, StringFormAsKubernetes) {
  auto m = [](const std::string& text, const json& labels) {
    return LabelSelector::parse(text).matches(labels);
  };
  EXPECT_TRUE(m("", kWeb));
  EXPECT_TRUE(m("app=web,tier", kWeb));
  EXPECT_TRUE(m("app==web", kWeb));
  EXPECT_FALSE(m("app!=web", kWeb));
  EXPECT_TRUE(m("tier!=back", kDb)); // also true without the label
  EXPECT_TRUE(m("app in (db, web)", kDb));
  EXPECT_TRUE(m("tier notin (front)", kDb));
  EXPECT_FALSE(m("!tier", kWeb));
  EXPECT_TRUE(m("rank>5", kDb));
  EXPECT_FALSE(m("rank>5", kWeb));
  EXPECT_TRUE(m("rank<5,app", kWeb));
}

std::string error_of(const std::string& text) {
  try {
    (void)LabelSelector::parse(text);
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 400);
    return e.what();
  }
  return "no error";
}

TEST(SandboxLabelSelector, MalformedSelectorsAreBadRequestsSayingWhere) {
  EXPECT_EQ(error_of("a=b=c"),
            "unable to parse requirement 'a=b=c': at character 4: expected ',' between "
            "requirements or the end of the selector, found '='");
  EXPECT_EQ(error_of("env in dev"),
            "unable to parse requirement 'env in dev': at character 8: expected '(' after 'in', "
            "found 'dev'");
  EXPECT_EQ(error_of("rank>x"),
            "unable to parse requirement 'rank>x': at character 6: expected an integer after "
            "'>', found 'x'");
  EXPECT_NE(error_of("Bad_/x=y").find("at character 1: label key 'Bad_/x'"), std::string::npos)
      << error_of("Bad_/x=y");
}

TEST(SandboxLabelSelector, ObjectFormMatchesAndPrintsAsKubernetes) {
  auto sel = LabelSelector::from_object(
      {{"matchLabels", {{"app", "web"}}},
       {"matchExpressions",
        json::array({{{"key", "tier"}, {"operator", "In"}, {"values", {"front", "back"}}},
                     {{"key", "legacy"}, {"operator", "DoesNotExist"}}})}});
  EXPECT_EQ(sel.str(), "app=web,tier in (front,back),!legacy");
  EXPECT_TRUE(sel.matches(kWeb));
  EXPECT_FALSE(sel.matches(kDb));
  EXPECT_TRUE(LabelSelector::from_object(json()).empty());
}

} // namespace
