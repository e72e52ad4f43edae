// GitHub REST v3 pull requests.
#include "http.h"

namespace capstan::scm {

using detail::HttpResponse;
using detail::RestClient;
using detail::url_encode;
using nlohmann::json;

namespace {

PullRequest from_github(const json& j) {
  PullRequest pr;
  pr.number = j.value("number", 0L);
  pr.title = detail::string_field(j, "title");
  pr.body = detail::string_field(j, "body");
  pr.url = detail::string_field(j, "html_url");
  if (j.contains("head") && j["head"].is_object()) {
    pr.source = detail::string_field(j["head"], "ref");
    pr.head_sha = detail::string_field(j["head"], "sha");
  }
  if (j.contains("base") && j["base"].is_object())
    pr.target = detail::string_field(j["base"], "ref");
  const bool merged =
      (j.contains("merged") && j["merged"].is_boolean() && j["merged"].get<bool>()) ||
      (j.contains("merged_at") && j["merged_at"].is_string());
  pr.state = merged                                       ? PrState::kMerged
             : detail::string_field(j, "state") == "open" ? PrState::kOpen
                                                          : PrState::kClosed;
  if (merged) pr.merge_commit = detail::string_field(j, "merge_commit_sha");
  return pr;
}

// rel="next" of a Link header, or "".
std::string next_link(const std::string& link) {
  std::size_t pos = 0;
  while (pos < link.size()) {
    std::size_t lt = link.find('<', pos);
    std::size_t gt = link.find('>', lt);
    if (lt == std::string::npos || gt == std::string::npos) break;
    std::size_t comma = link.find(',', gt);
    std::string params =
        link.substr(gt + 1, comma == std::string::npos ? std::string::npos : comma - gt - 1);
    if (params.find("rel=\"next\"") != std::string::npos) return link.substr(lt + 1, gt - lt - 1);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return "";
}

class GitHub : public Provider {
public:
  explicit GitHub(const HttpProviderConfig& config)
      : client_(config, config.api_url.empty() ? "https://api.github.com" : config.api_url,
                {"Authorization: Bearer " + config.token, "Accept: application/vnd.github+json",
                 "X-GitHub-Api-Version: 2022-11-28"},
                "github"),
        repo_(config.repository) {
    const auto slash = repo_.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == repo_.size() ||
        repo_.find('/', slash + 1) != std::string::npos) {
      throw Error(ErrorKind::kInvalidInput,
                  "github: repository must be \"owner/name\", got \"" + repo_ + "\"");
    }
    owner_ = repo_.substr(0, slash);
    base_ = "/repos/" + url_encode(owner_) + "/" + url_encode(repo_.substr(slash + 1));
  }

  std::string name() const override { return "github"; }

  PullRequest create(const CreateOptions& o) override {
    json body = {{"title", o.title}, {"head", o.source}, {"base", o.target}, {"body", o.body}};
    if (o.draft) body["draft"] = true;
    auto r = client_.send("POST", base_ + "/pulls", body,
                          "create pull request " + o.source + " → " + o.target + " in " + repo_);
    return from_github(r.json());
  }

  PullRequest get(long number) override {
    auto r = client_.send("GET", base_ + "/pulls/" + std::to_string(number), nullptr,
                          "get pull request #" + std::to_string(number) + " in " + repo_);
    return from_github(r.json());
  }

  PullRequest merge(long number, const MergeOptions& o) override {
    const std::string what = "merge pull request #" + std::to_string(number) + " in " + repo_;
    if (o.method == git::MergeMethod::kFastForward) {
      throw Error(ErrorKind::kInvalidInput,
                  "github: " + what + ": GitHub merges with merge, squash or rebase");
    }
    PullRequest before = get(number);
    json body = {{"merge_method", git::to_string(o.method)}};
    if (!o.commit_title.empty()) body["commit_title"] = o.commit_title;
    if (!o.commit_message.empty()) body["commit_message"] = o.commit_message;
    if (!o.expected_head.empty()) body["sha"] = o.expected_head;
    auto r = client_.send("PUT", base_ + "/pulls/" + std::to_string(number) + "/merge", body, what);
    const json result = r.json();
    if (result.is_object() && result.contains("merged") && result["merged"] == false) {
      throw Error(ErrorKind::kNotMergeable,
                  "github: " + what + ": " + detail::string_field(result, "message"), 200);
    }
    if (o.delete_source_branch && !before.source.empty()) {
      // 422 "Reference does not exist" means someone already deleted it: fine.
      auto d = client_.send_raw("DELETE", base_ + "/git/refs/heads/" + before.source, nullptr);
      if (d.status != 204 && d.status != 422 && d.status != 404) {
        client_.fail(d, "delete branch " + before.source + " in " + repo_);
      }
    }
    PullRequest after = get(number);
    if (after.merge_commit.empty()) after.merge_commit = detail::string_field(result, "sha");
    after.state = PrState::kMerged;
    return after;
  }

  PullRequest close(long number) override {
    auto r =
        client_.send("PATCH", base_ + "/pulls/" + std::to_string(number), json{{"state", "closed"}},
                     "close pull request #" + std::to_string(number) + " in " + repo_);
    return from_github(r.json());
  }

  void comment(long number, const std::string& body) override {
    client_.send("POST", base_ + "/issues/" + std::to_string(number) + "/comments",
                 json{{"body", body}},
                 "comment on pull request #" + std::to_string(number) + " in " + repo_);
  }

  std::vector<PullRequest> list_by_branch(const std::string& source,
                                          std::optional<PrState> state) override {
    std::string gh_state = "all";
    if (state == PrState::kOpen) gh_state = "open";
    if (state == PrState::kClosed || state == PrState::kMerged) gh_state = "closed";
    std::string url = base_ + "/pulls?head=" + url_encode(owner_ + ":" + source) +
                      "&state=" + gh_state + "&sort=created&direction=desc&per_page=100";
    std::vector<PullRequest> out;
    for (int page = 0; !url.empty() && page < 100; ++page) {
      auto r =
          client_.send("GET", url, nullptr, "list pull requests of " + source + " in " + repo_);
      const json items = r.json();
      if (!items.is_array()) break;
      for (const auto& item : items) {
        PullRequest pr = from_github(item);
        if (!state || pr.state == *state) out.push_back(std::move(pr));
      }
      url = next_link(r.header("link"));
    }
    return out;
  }

private:
  RestClient client_;
  std::string repo_;
  std::string owner_;
  std::string base_;
};

} // namespace

std::unique_ptr<Provider> make_github(const HttpProviderConfig& config) {
  return std::make_unique<GitHub>(config);
}

} // namespace capstan::scm
