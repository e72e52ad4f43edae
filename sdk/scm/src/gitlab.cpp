// GitLab REST v4 merge requests.
#include <thread>

#include "http.h"

namespace capstan::scm {

using detail::RestClient;
using detail::url_encode;
using nlohmann::json;

namespace {

PullRequest from_gitlab(const json& j) {
  PullRequest pr;
  pr.number = j.value("iid", 0L);
  pr.title = detail::string_field(j, "title");
  pr.body = detail::string_field(j, "description");
  pr.url = detail::string_field(j, "web_url");
  pr.source = detail::string_field(j, "source_branch");
  pr.target = detail::string_field(j, "target_branch");
  pr.head_sha = detail::string_field(j, "sha");
  const std::string state = detail::string_field(j, "state");
  pr.state = state == "merged"                        ? PrState::kMerged
             : state == "opened" || state == "locked" ? PrState::kOpen
                                                      : PrState::kClosed;
  if (pr.state == PrState::kMerged) {
    pr.merge_commit = detail::string_field(j, "merge_commit_sha");
    if (pr.merge_commit.empty()) pr.merge_commit = detail::string_field(j, "squash_commit_sha");
    if (pr.merge_commit.empty()) pr.merge_commit = pr.head_sha; // fast-forward merges
  }
  return pr;
}

class GitLab : public Provider {
public:
  explicit GitLab(const HttpProviderConfig& config)
      : client_(config, config.api_url.empty() ? "https://gitlab.com/api/v4" : config.api_url,
                {"PRIVATE-TOKEN: " + config.token, "Accept: application/json"}, "gitlab"),
        project_(config.repository), base_("/projects/" + url_encode(config.repository)) {}

  std::string name() const override { return "gitlab"; }

  PullRequest create(const CreateOptions& o) override {
    json body = {{"source_branch", o.source},
                 {"target_branch", o.target},
                 {"title", o.draft ? "Draft: " + o.title : o.title},
                 {"description", o.body}};
    auto r =
        client_.send("POST", base_ + "/merge_requests", body,
                     "create merge request " + o.source + " → " + o.target + " in " + project_);
    return from_gitlab(r.json());
  }

  PullRequest get(long number) override {
    auto r = client_.send("GET", mr(number), nullptr,
                          "get merge request !" + std::to_string(number) + " in " + project_);
    return from_gitlab(r.json());
  }

  PullRequest merge(long number, const MergeOptions& o) override {
    const std::string what = "merge merge request !" + std::to_string(number) + " in " + project_;
    if (o.method == git::MergeMethod::kFastForward) {
      throw Error(ErrorKind::kInvalidInput,
                  "gitlab: " + what +
                      ": use merge, squash or rebase (fast-forward is a project "
                      "setting in GitLab)");
    }
    if (o.method == git::MergeMethod::kRebase) rebase(number, what);
    json body = {{"should_remove_source_branch", o.delete_source_branch},
                 {"squash", o.method == git::MergeMethod::kSquash}};
    std::string message = o.commit_title;
    if (!o.commit_message.empty()) message += (message.empty() ? "" : "\n\n") + o.commit_message;
    if (!message.empty()) {
      body[o.method == git::MergeMethod::kSquash ? "squash_commit_message"
                                                 : "merge_commit_message"] = message;
    }
    if (!o.expected_head.empty()) body["sha"] = o.expected_head;
    auto r = client_.send("PUT", mr(number) + "/merge", body, what);
    PullRequest pr = from_gitlab(r.json());
    if (pr.state != PrState::kMerged) {
      // Accepted but not merged yet (e.g. waiting for a pipeline): report it as not mergeable now.
      throw Error(ErrorKind::kNotMergeable,
                  "gitlab: " + what + ": accepted but not merged (state " +
                      detail::string_field(r.json(), "state") + ", merge_status " +
                      detail::string_field(r.json(), "merge_status") + ")",
                  r.status);
    }
    return pr;
  }

  PullRequest close(long number) override {
    auto r = client_.send("PUT", mr(number), json{{"state_event", "close"}},
                          "close merge request !" + std::to_string(number) + " in " + project_);
    return from_gitlab(r.json());
  }

  void comment(long number, const std::string& body) override {
    client_.send("POST", mr(number) + "/notes", json{{"body", body}},
                 "comment on merge request !" + std::to_string(number) + " in " + project_);
  }

  std::vector<PullRequest> list_by_branch(const std::string& source,
                                          std::optional<PrState> state) override {
    std::string gl_state = "all";
    if (state == PrState::kOpen) gl_state = "opened";
    if (state == PrState::kClosed) gl_state = "closed";
    if (state == PrState::kMerged) gl_state = "merged";
    std::vector<PullRequest> out;
    std::string page = "1";
    for (int n = 0; !page.empty() && n < 100; ++n) {
      auto r = client_.send("GET",
                            base_ + "/merge_requests?source_branch=" + url_encode(source) +
                                "&state=" + gl_state +
                                "&order_by=created_at&sort=desc&per_page=100&page=" + page,
                            nullptr, "list merge requests of " + source + " in " + project_);
      const json items = r.json();
      if (!items.is_array()) break;
      for (const auto& item : items) out.push_back(from_gitlab(item));
      page = r.header("x-next-page");
    }
    return out;
  }

private:
  std::string mr(long number) const { return base_ + "/merge_requests/" + std::to_string(number); }

  // PUT /rebase is asynchronous: poll until GitLab says the rebase finished (or failed).
  void rebase(long number, const std::string& what) {
    client_.send("PUT", mr(number) + "/rebase", json::object(), what + " (rebase)");
    const auto deadline = std::chrono::steady_clock::now() + client_.config().max_wait;
    for (;;) {
      auto r = client_.send("GET", mr(number) + "?include_rebase_in_progress=true", nullptr,
                            what + " (rebase status)");
      const json j = r.json();
      if (j.is_object() && !j.value("rebase_in_progress", false)) {
        const std::string err = detail::string_field(j, "merge_error");
        if (!err.empty()) {
          throw Error(ErrorKind::kNotMergeable, "gitlab: " + what + ": rebase failed: " + err);
        }
        return;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        throw Error(ErrorKind::kTimeout, "gitlab: " + what + ": the rebase did not finish in time");
      }
      client_.sleep_for(std::chrono::milliseconds(250), "rebasing");
    }
  }

  RestClient client_;
  std::string project_;
  std::string base_;
};

} // namespace

std::unique_ptr<Provider> make_gitlab(const HttpProviderConfig& config) {
  return std::make_unique<GitLab>(config);
}

} // namespace capstan::scm
