// The github provider against a local server answering with GitHub's documented JSON shapes.
#include <gtest/gtest.h>

#include "capstan/testing/errors.h"

#include <ctime>

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

const char* kToken = "ghp_secretTOKEN123";

json pull(long number, const std::string& state, bool merged, const std::string& merge_sha = "") {
  return {{"url", "https://api.github.com/repos/octo/release/pulls/" + std::to_string(number)},
          {"id", 1000 + number},
          {"number", number},
          {"state", state},
          {"locked", false},
          {"title", "Update prod"},
          {"body", "imageTag v2"},
          {"html_url", "https://github.com/octo/release/pull/" + std::to_string(number)},
          {"user", {{"login", "bot"}}},
          {"head", {{"label", "octo:update-prod"}, {"ref", "update-prod"}, {"sha", "aaa111"}}},
          {"base", {{"label", "octo:main"}, {"ref", "main"}, {"sha", "bbb222"}}},
          {"merged", merged},
          {"merged_at", merged ? json("2024-01-01T00:00:00Z") : json(nullptr)},
          {"mergeable", true},
          {"merge_commit_sha", merge_sha.empty() ? json(nullptr) : json(merge_sha)}};
}

HttpProviderConfig config(const FakeApi& api) {
  HttpProviderConfig c;
  c.api_url = api.url();
  c.repository = "octo/release";
  c.token = kToken;
  c.request_timeout = std::chrono::seconds(10);
  c.max_wait = std::chrono::seconds(5);
  return c;
}

void expect_github_headers(const Recorded& r) {
  EXPECT_EQ(r.header("Authorization"), std::string("Bearer ") + kToken);
  EXPECT_EQ(r.header("Accept"), "application/vnd.github+json");
  EXPECT_EQ(r.header("X-GitHub-Api-Version"), "2022-11-28");
  EXPECT_FALSE(r.header("User-Agent").empty());
}

} // namespace

TEST(GitHub, CreateGetCloseComment) {
  FakeApi api([](const Recorded& r, httplib::Response& res) {
    if (r.method == "POST" && r.path == "/repos/octo/release/pulls")
      return reply(res, 201, pull(7, "open", false));
    if (r.method == "GET" && r.path == "/repos/octo/release/pulls/7")
      return reply(res, 200, pull(7, "open", false));
    if (r.method == "PATCH" && r.path == "/repos/octo/release/pulls/7")
      return reply(res, 200, pull(7, "closed", false));
    if (r.method == "POST" && r.path == "/repos/octo/release/issues/7/comments") {
      return reply(res, 201, {{"id", 1}, {"body", "done"}});
    }
    reply(res, 404, {{"message", "Not Found"}});
  });
  auto gh = make_github(config(api));
  PullRequest pr = gh->create({"Update prod", "imageTag v2", "update-prod", "main", false});
  EXPECT_EQ(pr.number, 7);
  EXPECT_EQ(pr.url, "https://github.com/octo/release/pull/7");
  EXPECT_EQ(pr.source, "update-prod");
  EXPECT_EQ(pr.target, "main");
  EXPECT_EQ(pr.head_sha, "aaa111");
  EXPECT_EQ(pr.state, PrState::kOpen);
  EXPECT_EQ(gh->get(7).title, "Update prod");
  EXPECT_EQ(gh->close(7).state, PrState::kClosed);
  gh->comment(7, "done");

  auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 4U);
  for (const auto& r : reqs) expect_github_headers(r);
  EXPECT_EQ(reqs[0].json(), (json{{"title", "Update prod"},
                                  {"head", "update-prod"},
                                  {"base", "main"},
                                  {"body", "imageTag v2"}}));
  EXPECT_EQ(reqs[2].json(), (json{{"state", "closed"}}));
  EXPECT_EQ(reqs[3].json(), (json{{"body", "done"}}));
}

TEST(GitHub, MergeSquashAndDeleteSourceBranch) {
  bool merged = false;
  FakeApi api([&](const Recorded& r, httplib::Response& res) {
    if (r.method == "GET" && r.path == "/repos/octo/release/pulls/7") {
      return reply(res, 200, pull(7, merged ? "closed" : "open", merged, merged ? "ccc333" : ""));
    }
    if (r.method == "PUT" && r.path == "/repos/octo/release/pulls/7/merge") {
      merged = true;
      return reply(
          res, 200,
          {{"sha", "ccc333"}, {"merged", true}, {"message", "Pull Request successfully merged"}});
    }
    if (r.method == "DELETE" && r.path == "/repos/octo/release/git/refs/heads/update-prod") {
      res.status = 204;
      return;
    }
    reply(res, 404, {{"message", "Not Found"}});
  });
  auto gh = make_github(config(api));
  MergeOptions mo;
  mo.method = capstan::git::MergeMethod::kSquash;
  mo.delete_source_branch = true;
  mo.commit_title = "Update prod (#7)";
  mo.expected_head = "aaa111";
  PullRequest pr = gh->merge(7, mo);
  EXPECT_EQ(pr.state, PrState::kMerged);
  EXPECT_EQ(pr.merge_commit, "ccc333");
  auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 4U);
  EXPECT_EQ(reqs[1].method, "PUT");
  EXPECT_EQ(
      reqs[1].json(),
      (json{{"merge_method", "squash"}, {"commit_title", "Update prod (#7)"}, {"sha", "aaa111"}}));
  EXPECT_EQ(reqs[2].method, "DELETE");
  EXPECT_EQ(reqs[2].path, "/repos/octo/release/git/refs/heads/update-prod");
  EXPECT_THROW(gh->merge(7, {capstan::git::MergeMethod::kFastForward, false, "", "", ""}), Error);
}

TEST(GitHub, ErrorResponsesAreTypedAndNeverCarryTheToken) {
  FakeApi api([](const Recorded& r, httplib::Response& res) {
    if (r.method == "POST" && r.path == "/repos/octo/release/pulls") {
      return reply(
          res, 422,
          {{"message", "Validation Failed"},
           {"errors",
            json::array({{{"resource", "PullRequest"},
                          {"code", "custom"},
                          {"message", "A pull request already exists for octo:update-prod."}}})},
           {"documentation_url",
            "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"}});
    }
    if (r.path == "/repos/octo/release/pulls/1") return reply(res, 200, pull(1, "open", false));
    if (r.path == "/repos/octo/release/pulls/1/merge")
      return reply(res, 405, {{"message", "Pull Request is not mergeable"}});
    if (r.path == "/repos/octo/release/pulls/2") return reply(res, 200, pull(2, "open", false));
    if (r.path == "/repos/octo/release/pulls/2/merge") {
      return reply(res, 409,
                   {{"message", "Head branch was modified. Review and try the merge again."}});
    }
    if (r.path == "/repos/octo/release/pulls/3")
      return reply(res, 401, {{"message", "Bad credentials"}});
    reply(res, 404, {{"message", "Not Found"}});
  });
  auto gh = make_github(config(api));
  Error e = error_of([&] { gh->create({"t", "", "update-prod", "main", false}); });
  EXPECT_EQ(e.kind(), ErrorKind::kValidation);
  EXPECT_EQ(e.http_status(), 422);
  EXPECT_NE(std::string(e.what()).find("A pull request already exists for octo:update-prod."),
            std::string::npos)
      << e.what();
  e = error_of([&] { gh->merge(1, {}); });
  EXPECT_EQ(e.kind(), ErrorKind::kNotMergeable) << e.what();
  e = error_of([&] { gh->merge(2, {}); });
  EXPECT_EQ(e.kind(), ErrorKind::kConflict) << e.what();
  e = error_of([&] { gh->get(3); });
  EXPECT_EQ(e.kind(), ErrorKind::kAuthentication) << e.what();
  EXPECT_EQ(std::string(e.what()).find(kToken), std::string::npos);
  e = error_of([&] { gh->get(99); });
  EXPECT_EQ(e.kind(), ErrorKind::kNotFound) << e.what();
}

TEST(GitHub, WaitsForRateLimitResetWithinTheAllowedWait) {
  int calls = 0;
  FakeApi api([&](const Recorded& r, httplib::Response& res) {
    if (r.path != "/repos/octo/release/pulls/7") return reply(res, 404, {{"message", "Not Found"}});
    if (++calls == 1) {
      res.set_header("x-ratelimit-limit", "5000");
      res.set_header("x-ratelimit-remaining", "0");
      res.set_header("x-ratelimit-reset", std::to_string(std::time(nullptr) + 1));
      return reply(res, 403, {{"message", "API rate limit exceeded for user ID 1."}});
    }
    if (calls == 2) {
      res.set_header("retry-after", "1");
      return reply(res, 429, {{"message", "You have exceeded a secondary rate limit."}});
    }
    reply(res, 200, pull(7, "open", false));
  });
  std::vector<std::string> logs;
  auto c = config(api);
  c.log = [&](const std::string& line) { logs.push_back(line); };
  auto gh = make_github(c);
  EXPECT_EQ(gh->get(7).number, 7);
  EXPECT_EQ(calls, 3);
  ASSERT_EQ(logs.size(), 2U);
  EXPECT_NE(logs[0].find("rate limited"), std::string::npos);
}

TEST(GitHub, RateLimitBeyondTheAllowedWaitIsAClearError) {
  FakeApi api([](const Recorded&, httplib::Response& res) {
    res.set_header("x-ratelimit-remaining", "0");
    res.set_header("x-ratelimit-reset", std::to_string(std::time(nullptr) + 3600));
    reply(res, 403, {{"message", "API rate limit exceeded"}});
  });
  auto gh = make_github(config(api));
  Error e = error_of([&] { gh->get(7); });
  EXPECT_EQ(e.kind(), ErrorKind::kRateLimited);
  EXPECT_NE(std::string(e.what()).find("resets in"), std::string::npos) << e.what();
  EXPECT_EQ(api.requests().size(), 1U);
}

TEST(GitHub, ListsByBranchAcrossPages) {
  FakeApi* self = nullptr;
  FakeApi api([&](const Recorded& r, httplib::Response& res) {
    if (r.path != "/repos/octo/release/pulls") return reply(res, 404, {{"message", "Not Found"}});
    if (r.target.find("page=2") == std::string::npos) {
      res.set_header(
          "Link",
          "<" + self->url("/repos/octo/release/pulls?head=octo%3Aupdate-prod&state=all&page=2") +
              ">; rel=\"next\", <" + self->url("/x?page=2") + ">; rel=\"last\"");
      return reply(res, 200, json::array({pull(9, "open", false), pull(8, "closed", true, "m8")}));
    }
    reply(res, 200, json::array({pull(5, "closed", false)}));
  });
  self = &api;
  auto gh = make_github(config(api));
  auto all = gh->list_by_branch("update-prod");
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[1].state, PrState::kMerged);
  EXPECT_EQ(all[2].state, PrState::kClosed);
  auto reqs = api.requests();
  ASSERT_EQ(reqs.size(), 2U);
  EXPECT_NE(reqs[0].target.find("head=octo%3Aupdate-prod"), std::string::npos) << reqs[0].target;
  EXPECT_NE(reqs[0].target.find("state=all"), std::string::npos);
  auto merged = gh->list_by_branch("update-prod", PrState::kMerged);
  ASSERT_EQ(merged.size(), 1U);
  EXPECT_EQ(merged[0].number, 8);
}

TEST(GitHub, TimeoutsAndUnreachableServers) {
  FakeApi api([](const Recorded&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    reply(res, 200, json::object());
  });
  auto c = config(api);
  c.request_timeout = std::chrono::milliseconds(200);
  EXPECT_EQ(error_of([&] { make_github(c)->get(1); }).kind(), ErrorKind::kTimeout);
  c.api_url = "http://127.0.0.1:1";
  EXPECT_EQ(error_of([&] { make_github(c)->get(1); }).kind(), ErrorKind::kConnectivity);
  c.repository = "not-a-repo";
  EXPECT_EQ(error_of([&] { make_github(c); }).kind(), ErrorKind::kInvalidInput);
}
