// The gitlab provider against a local server answering with GitLab's documented JSON shapes.
#include <gtest/gtest.h>

#include "capstan/testing/errors.h"

#include "capstan/scm/provider.h"
#include "capstan/testing/fake_api.h"

using capstan::testing::FakeApi;
using capstan::testing::Recorded;
using capstan::testing::reply;
using namespace capstan::scm;
using nlohmann::json;

namespace {

Error error_of(const std::function<void()>& f) {
  return capstan::testing::error_of<Error>(f, ErrorKind::kInternal, "none");
}

const char* kToken = "glpat-SECRET-abc";
const std::string kBase = "/api/v4/projects/group%2Fsub%2Frelease/merge_requests";

json mr(long iid, const std::string& state) {
  return {{"id", 5000 + iid},
          {"iid", iid},
          {"project_id", 42},
          {"title", "Update prod"},
          {"description", "imageTag v2"},
          {"state", state},
          {"source_branch", "update-prod"},
          {"target_branch", "main"},
          {"sha", "aaa111"},
          {"merge_commit_sha", state == "merged" ? json("mmm999") : json(nullptr)},
          {"squash_commit_sha", nullptr},
          {"merge_status", "can_be_merged"},
          {"web_url",
           "https://gitlab.example.com/group/sub/release/-/merge_requests/" + std::to_string(iid)}};
}

HttpProviderConfig config(const FakeApi& api) {
  HttpProviderConfig c;
  c.api_url = api.url("/api/v4");
  c.repository = "group/sub/release";
  c.token = kToken;
  c.max_wait = std::chrono::seconds(5);
  return c;
}

} // namespace

TEST(GitLab, CreateGetCloseNoteWithEncodedProjectPath) {
  FakeApi api([](const Recorded& r, httplib::Response& res) {
    if (r.method == "POST" && r.target == kBase) return reply(res, 201, mr(3, "opened"));
    if (r.method == "GET" && r.target == kBase + "/3") return reply(res, 200, mr(3, "opened"));
    if (r.method == "PUT" && r.target == kBase + "/3") return reply(res, 200, mr(3, "closed"));
    if (r.method == "POST" && r.target == kBase + "/3/notes")
      return reply(res, 201, {{"id", 1}, {"body", "hi"}});
    reply(res, 404, {{"message", "404 Not found"}});
  });
  auto gl = make_gitlab(config(api));
  PullRequest pr = gl->create({"Update prod", "imageTag v2", "update-prod", "main", false});
  EXPECT_EQ(pr.number, 3);
  EXPECT_EQ(pr.url, "https://gitlab.example.com/group/sub/release/-/merge_requests/3");
  EXPECT_EQ(pr.state, PrState::kOpen);
  EXPECT_EQ(gl->get(3).source, "update-prod");
  EXPECT_EQ(gl->close(3).state, PrState::kClosed);
  gl->comment(3, "hi");
  auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 4U);
  for (const auto& r : reqs) {
    EXPECT_EQ(r.header("PRIVATE-TOKEN"), kToken);
    EXPECT_EQ(r.header("Authorization"), "");
  }
  EXPECT_EQ(reqs[0].json(), (json{{"source_branch", "update-prod"},
                                  {"target_branch", "main"},
                                  {"title", "Update prod"},
                                  {"description", "imageTag v2"}}));
  EXPECT_EQ(reqs[2].json(), (json{{"state_event", "close"}}));
  EXPECT_EQ(reqs[3].json(), (json{{"body", "hi"}}));
}

TEST(GitLab, MergeSquashRemovingTheSourceBranch) {
  FakeApi api([](const Recorded& r, httplib::Response& res) {
    if (r.method == "PUT" && r.target == kBase + "/3/merge") {
      json j = mr(3, "merged");
      j["merge_commit_sha"] = nullptr;
      j["squash_commit_sha"] = "sss777";
      return reply(res, 200, j);
    }
    reply(res, 404, {{"message", "404 Not found"}});
  });
  auto gl = make_gitlab(config(api));
  MergeOptions mo;
  mo.method = capstan::git::MergeMethod::kSquash;
  mo.delete_source_branch = true;
  mo.commit_title = "Update prod";
  mo.expected_head = "aaa111";
  PullRequest pr = gl->merge(3, mo);
  EXPECT_EQ(pr.state, PrState::kMerged);
  EXPECT_EQ(pr.merge_commit, "sss777");
  auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 1U);
  EXPECT_EQ(reqs[0].json(), (json{{"should_remove_source_branch", true},
                                  {"squash", true},
                                  {"squash_commit_message", "Update prod"},
                                  {"sha", "aaa111"}}));
}

TEST(GitLab, RebaseMethodRebasesThenMerges) {
  int polls = 0;
  FakeApi api([&](const Recorded& r, httplib::Response& res) {
    if (r.method == "PUT" && r.target == kBase + "/3/rebase")
      return reply(res, 202, {{"rebase_in_progress", true}});
    if (r.method == "GET" && r.target == kBase + "/3?include_rebase_in_progress=true") {
      json j = mr(3, "opened");
      j["rebase_in_progress"] = ++polls < 3;
      j["merge_error"] = nullptr;
      return reply(res, 200, j);
    }
    if (r.method == "PUT" && r.target == kBase + "/3/merge")
      return reply(res, 200, mr(3, "merged"));
    reply(res, 404, {{"message", "404 Not found"}});
  });
  auto gl = make_gitlab(config(api));
  PullRequest pr = gl->merge(3, {capstan::git::MergeMethod::kRebase, false, "", "", ""});
  EXPECT_EQ(pr.merge_commit, "mmm999");
  EXPECT_EQ(polls, 3);
  auto reqs = api.requests();
  EXPECT_EQ(reqs.back().json(), (json{{"should_remove_source_branch", false}, {"squash", false}}));
}

TEST(GitLab, ErrorResponses) {
  FakeApi api([](const Recorded& r, httplib::Response& res) {
    if (r.target == kBase + "/1/merge")
      return reply(res, 405, {{"message", "405 Method Not Allowed"}});
    if (r.target == kBase + "/2/merge")
      return reply(res, 406, {{"message", "Branch cannot be merged"}});
    if (r.target == kBase + "/3/merge")
      return reply(res, 409, {{"message", "SHA does not match HEAD of source branch: bbb"}});
    if (r.method == "POST" && r.target == kBase) {
      return reply(res, 422, {{"message", {{"source_branch", json::array({"is invalid"})}}}});
    }
    if (r.target == kBase + "/4") {
      res.set_header("Retry-After", "3600");
      return reply(res, 429, {{"message", "Retry later"}});
    }
    reply(res, 401, {{"message", "401 Unauthorized"}});
  });
  auto gl = make_gitlab(config(api));
  EXPECT_EQ(error_of([&] { gl->merge(1, {}); }).kind(), ErrorKind::kNotMergeable);
  EXPECT_EQ(error_of([&] { gl->merge(2, {}); }).kind(), ErrorKind::kNotMergeable);
  EXPECT_EQ(error_of([&] { gl->merge(3, {}); }).kind(), ErrorKind::kConflict);
  Error v = error_of([&] { gl->create({"t", "", "bad..branch", "main", false}); });
  EXPECT_EQ(v.kind(), ErrorKind::kValidation);
  EXPECT_NE(std::string(v.what()).find("source_branch is invalid"), std::string::npos) << v.what();
  EXPECT_EQ(error_of([&] { gl->get(4); }).kind(), ErrorKind::kRateLimited);
  Error a = error_of([&] { gl->get(5); });
  EXPECT_EQ(a.kind(), ErrorKind::kAuthentication);
  EXPECT_EQ(std::string(a.what()).find(kToken), std::string::npos);
}

TEST(GitLab, ListsByBranchFollowingNextPage) {
  FakeApi api([](const Recorded& r, httplib::Response& res) {
    if (r.path != "/api/v4/projects/group/sub/release/merge_requests")
      return reply(res, 404, json::object());
    if (r.target.find("page=2") == std::string::npos) {
      res.set_header("X-Next-Page", "2");
      return reply(res, 200, json::array({mr(9, "opened"), mr(8, "merged")}));
    }
    res.set_header("X-Next-Page", "");
    reply(res, 200, json::array({mr(4, "closed")}));
  });
  auto gl = make_gitlab(config(api));
  auto all = gl->list_by_branch("update-prod");
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[1].state, PrState::kMerged);
  EXPECT_EQ(all[1].merge_commit, "mmm999");
  auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 2U);
  EXPECT_NE(reqs[0].target.find("source_branch=update-prod"), std::string::npos);
  EXPECT_NE(reqs[0].target.find("state=all"), std::string::npos);
}
