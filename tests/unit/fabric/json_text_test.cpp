// JsonText, which writes the context every task carries: the text parses to what the same
// members built as a tree would, with strings escaped as nlohmann::json escapes them.
#include <gtest/gtest.h>

#include "engine/json_text.h"

namespace capstan::engine {
namespace {

using nlohmann::json;

TEST(JsonText, StringsAreEscapedAsATreeDumpEscapesThem) {
  std::string every_byte;
  for (int c = 1; c < 128; ++c) every_byte.push_back(static_cast<char>(c));
  for (const std::string& value :
       {std::string(), every_byte, std::string("say \"hi\"\n\tthere \\ ok"),
        std::string("caf\xc3\xa9 \xe2\x9c\x93")}) {
    std::string quoted;
    JsonText::quote(quoted, value);
    EXPECT_EQ(quoted, json(value).dump());
    EXPECT_EQ(json::parse(quoted), value);
  }
}

TEST(JsonText, InvalidUtf8BecomesTheReplacementCharacterAndStaysJson) {
  const auto replaced = [](const std::string& v) {
    return json(v).dump(-1, ' ', false, json::error_handler_t::replace);
  };
  for (const std::string& value :
       {std::string("cut \xc3"), std::string("\xff lead"), std::string("over\xc0\xafong"),
        std::string("surrogate \xed\xa0\x80"), std::string("past \xf4\x90\x80\x80"),
        std::string("a \"quoted\" \xe2\x9c cut\n")}) {
    EXPECT_FALSE(JsonText::valid_utf8(value)) << value;
    std::string quoted = "prefix:";
    JsonText::quote(quoted, value);
    EXPECT_EQ(quoted, "prefix:" + replaced(value));
    EXPECT_NO_THROW(json::parse(quoted.substr(7))) << quoted;
  }
  EXPECT_TRUE(JsonText::valid_utf8("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x80"));
  JsonText text;
  text.member("tree", json{{"k", std::string("bad \xc3")}});
  EXPECT_EQ(json::parse(std::move(text).take())["tree"]["k"], "bad \xef\xbf\xbd");
}

TEST(JsonText, MembersAndNestedObjectsParseToTheTreeTheyDescribe) {
  JsonText text;
  text.member("schemaVersion", std::int64_t{1});
  text.open("pipeline")
      .member("name", "p \"1\"")
      .member("sequenceId", std::int64_t{-7})
      .member("variables", json{{"a", "b"}, {"n", 2}})
      .close();
  text.open("empty").close();
  text.member("rollback", false).member("done", true);
  text.raw_member("expressions", R"({"pipeline.name":"p"})");
  auto written = std::move(text).take();
  EXPECT_EQ(json::parse(written), json::parse(R"({
    "schemaVersion": 1,
    "pipeline": {"name": "p \"1\"", "sequenceId": -7, "variables": {"a": "b", "n": 2}},
    "empty": {},
    "rollback": false,
    "done": true,
    "expressions": {"pipeline.name": "p"}
  })"))
      << written;
  EXPECT_EQ(std::move(JsonText()).take(), "{}");
}

TEST(JsonText, ATreeMemberIsWrittenByteForByteAsItsDump) {
  const json tree = {
      {"s", "a \"q\" \xc3"}, {"n", -3},  {"f", 1.5}, {"l", json::array({1, "x", nullptr})},
      {"o", json::object()}, {"b", true}};
  JsonText text;
  text.member("first", "v").member("tree", tree).member("last", std::int64_t{2});
  EXPECT_EQ(std::move(text).take(), R"({"first":"v","tree":)" +
                                        tree.dump(-1, ' ', false, json::error_handler_t::replace) +
                                        R"(,"last":2})");
}

} // namespace
} // namespace capstan::engine
