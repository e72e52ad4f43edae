// The coordinator's pull-request records on a real SQLite file: reserved numbers, upserts from
// step results, filters, and records it refuses.
#include <gtest/gtest.h>

#include "capstan/testing/testing.h"
#include "store/store.h"

namespace capstan::store {
namespace {

using nlohmann::json;

json reported(const std::string& repo, long number, const std::string& state) {
  return {{"repository", repo}, {"provider", "local"},      {"connector", "release_repo"},
          {"number", number},   {"title", "Update"},        {"source", "capstan-gitops/x"},
          {"target", "main"},   {"state", state},           {"headSha", "abc"},
          {"commitId", "c1"},   {"comments", json::array()}};
}

TEST(PullRequestStore, ReservesNumbersPerRepositoryAcrossRestarts) {
  testing::TempDir dir("capstan-pr-store");
  {
    Store s(dir.path());
    EXPECT_EQ(s.reserve_pull_request_number("git://a/release.git"), 1);
    EXPECT_EQ(s.reserve_pull_request_number("git://a/release.git"), 2);
    EXPECT_EQ(s.reserve_pull_request_number("git://b/other.git"), 1);
  }
  Store s(dir.path());
  EXPECT_EQ(s.reserve_pull_request_number("git://a/release.git"), 3);
}

TEST(PullRequestStore, UpsertKeepsWhoOpenedItAndFilters) {
  testing::TempDir dir("capstan-pr-store");
  Store s(dir.path());
  auto opened = pull_request_from_step(reported("git://a/release.git", 1, "open"));
  opened.execution_id = "e1";
  opened.step = "deploy.update";
  s.put_pull_request(opened);
  auto merged = pull_request_from_step(reported("git://a/release.git", 1, "merged"));
  merged.merge_commit = "m1";
  merged.commit_id.clear();
  merged.execution_id = "e2";
  merged.step = "deploy.merge";
  merged.updated_by = "e2 deploy.merge";
  s.put_pull_request(merged);
  s.put_pull_request(pull_request_from_step(reported("git://b/other.git", 1, "open")));

  auto one = s.pull_request("git://a/release.git", 1);
  ASSERT_TRUE(one);
  EXPECT_EQ(one->state, "merged");
  EXPECT_EQ(one->merge_commit, "m1");
  EXPECT_EQ(one->commit_id, "c1");    // kept from the opening step
  EXPECT_EQ(one->execution_id, "e1"); // who opened it
  EXPECT_EQ(one->updated_by, "e2 deploy.merge");
  EXPECT_EQ(s.pull_requests({}).size(), 2u);
  EXPECT_EQ(s.pull_requests({"", "open", "", 0, 10}).size(), 1u);
  EXPECT_EQ(s.pull_requests({"", "", "e1", 0, 10}).size(), 1u);
  EXPECT_EQ(s.pull_requests({"", "", "", 1, 10}).size(), 2u); // number 1 in two repositories
  EXPECT_EQ(to_json(*one)["mergeCommit"], "m1");
  // A local number the coordinator never reserved still moves the counter past it.
  s.put_pull_request(pull_request_from_step(reported("git://a/release.git", 7, "open")));
  EXPECT_EQ(s.reserve_pull_request_number("git://a/release.git"), 8);
}

TEST(PullRequestStore, RefusesMalformedRecordsSayingWhy) {
  auto why = [](const json& j) {
    try {
      pull_request_from_step(j);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(why(json::array()), "the record is not a JSON object");
  EXPECT_EQ(why({{"number", 1}}), "'repository' is missing");
  auto j = reported("git://a/r.git", 0, "open");
  EXPECT_EQ(why(j), "'number' must be a positive integer");
  j = reported("git://a/r.git", 1, "approved");
  EXPECT_EQ(why(j), "'state' must be open, merged or closed");
  j = reported("git://a/r.git", 1, "open");
  j["provider"] = "bitbucket";
  EXPECT_EQ(why(j), "'provider' must be local, github or gitlab");
  j = reported("git://a/r.git", 1, "open");
  j["title"] = std::string(70 * 1024, 'x');
  EXPECT_EQ(why(j), "'title' is longer than 64 KiB");
}

} // namespace
} // namespace capstan::store
