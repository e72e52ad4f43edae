// The pull_requests table.
#include "store/pull_requests.h"

#include <chrono>
#include <stdexcept>

#include "store/store.h"
#include "store/stored_json.h"

namespace capstan::store {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxText = 64 * 1024;

constexpr const char* kColumns =
    "repository, number, provider, connector, title, body, source, target, state, url, head_sha, "
    "merge_commit, commit_id, comments, execution_id, step, updated_by, created_at, updated_at";

PullRequestRecord read_pr(sqlite::Statement& s) {
  PullRequestRecord r;
  r.repository = s.text(0);
  r.number = s.int64(1);
  r.provider = s.text(2);
  r.connector = s.text(3);
  r.title = s.text(4);
  r.body = s.text(5);
  r.source = s.text(6);
  r.target = s.text(7);
  r.state = s.text(8);
  r.url = s.text(9);
  r.head_sha = s.text(10);
  r.merge_commit = s.text(11);
  r.commit_id = s.text(12);
  try {
    r.comments = stored_json(s.text(13), "pull_requests.comments",
                             [&] { return r.repository + " #" + std::to_string(r.number); });
  } catch (const StoredValueDamaged& e) {
    // Listed all the same; the next report of the pull request stores its comments again.
    r.unreadable = e.what();
  }
  r.execution_id = s.text(14);
  r.step = s.text(15);
  r.updated_by = s.text(16);
  r.created_at = s.int64(17);
  r.updated_at = s.int64(18);
  return r;
}

std::string field(const json& j, const char* key, bool required = false) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) throw std::invalid_argument(std::string("'") + key + "' is missing");
    return "";
  }
  if (!it->is_string()) throw std::invalid_argument(std::string("'") + key + "' is not a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > kMaxText) {
    throw std::invalid_argument(std::string("'") + key + "' is longer than 64 KiB");
  }
  if (required && s.empty()) throw std::invalid_argument(std::string("'") + key + "' is empty");
  return s;
}

} // namespace

json to_json(const PullRequestRecord& r) {
  json j = {{"repository", r.repository},
            {"number", r.number},
            {"provider", r.provider},
            {"connector", r.connector},
            {"title", r.title},
            {"body", r.body},
            {"source", r.source},
            {"target", r.target},
            {"state", r.state},
            {"url", r.url},
            {"headSha", r.head_sha},
            {"mergeCommit", r.merge_commit},
            {"commitId", r.commit_id},
            {"comments", r.comments},
            {"executionId", r.execution_id},
            {"step", r.step},
            {"updatedBy", r.updated_by},
            {"createdAt", r.created_at},
            {"updatedAt", r.updated_at}};
  if (!r.unreadable.empty()) j["unreadable"] = r.unreadable;
  return j;
}

PullRequestRecord pull_request_from_step(const json& j) {
  if (!j.is_object()) throw std::invalid_argument("the record is not a JSON object");
  PullRequestRecord r;
  r.repository = field(j, "repository", true);
  auto n = j.find("number");
  if (n == j.end() || !n->is_number_integer() || n->get<std::int64_t>() <= 0) {
    throw std::invalid_argument("'number' must be a positive integer");
  }
  r.number = n->get<std::int64_t>();
  r.provider = field(j, "provider");
  if (r.provider.empty()) r.provider = "local";
  if (r.provider != "local" && r.provider != "github" && r.provider != "gitlab") {
    throw std::invalid_argument("'provider' must be local, github or gitlab");
  }
  r.connector = field(j, "connector");
  r.title = field(j, "title");
  r.body = field(j, "body");
  r.source = field(j, "source");
  r.target = field(j, "target");
  r.state = field(j, "state");
  if (r.state.empty()) r.state = "open";
  if (r.state != "open" && r.state != "merged" && r.state != "closed") {
    throw std::invalid_argument("'state' must be open, merged or closed");
  }
  r.url = field(j, "url");
  r.head_sha = field(j, "headSha");
  r.merge_commit = field(j, "mergeCommit");
  r.commit_id = field(j, "commitId");
  r.comments = json::array();
  if (j.contains("comments")) {
    if (!j["comments"].is_array()) throw std::invalid_argument("'comments' is not a list");
    for (const auto& c : j["comments"]) {
      if (!c.is_string()) throw std::invalid_argument("'comments' holds a non-string");
      r.comments.push_back(c);
    }
  }
  return r;
}

// Both writes run in the caller's transaction when one is open (the engine batches its writes),
// else each statement commits on its own.
std::int64_t Store::reserve_pull_request_number(const std::string& repository) {
  auto& q =
      writer_->prepare("INSERT INTO pull_request_numbers (repository, next) VALUES (?, 2) "
                       "ON CONFLICT (repository) DO UPDATE SET next = next + 1 RETURNING next - 1");
  q.bind(1, repository);
  q.step();
  std::int64_t n = q.int64(0);
  q.reset();
  return n;
}

PullRequestRecord Store::put_pull_request(const PullRequestRecord& in) {
  PullRequestRecord r = in;
  const std::int64_t now = now_ms();
  auto& get = writer_->prepare(std::string("SELECT ") + kColumns +
                               " FROM pull_requests WHERE repository = ? AND number = ?");
  get.bind(1, r.repository).bind(2, r.number);
  if (get.step()) {
    PullRequestRecord old = read_pr(get);
    r.created_at = old.created_at;
    r.execution_id = old.execution_id;
    r.step = old.step;
    if (r.commit_id.empty()) r.commit_id = old.commit_id;
  } else {
    r.created_at = now;
  }
  get.reset();
  r.updated_at = now;
  auto& put =
      writer_->prepare(std::string("INSERT OR REPLACE INTO pull_requests (") + kColumns +
                       ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  put.bind(1, r.repository).bind(2, r.number).bind(3, r.provider).bind(4, r.connector);
  put.bind(5, r.title).bind(6, r.body).bind(7, r.source).bind(8, r.target).bind(9, r.state);
  put.bind(10, r.url).bind(11, r.head_sha).bind(12, r.merge_commit).bind(13, r.commit_id);
  put.bind(14, r.comments.dump()).bind(15, r.execution_id).bind(16, r.step);
  put.bind(17, r.updated_by).bind(18, r.created_at).bind(19, r.updated_at);
  put.run();
  if (r.provider == "local") {
    // Numbers the coordinator never reserved (a record from an older store) still move the
    // counter past them.
    auto& bump =
        writer_->prepare("INSERT INTO pull_request_numbers (repository, next) VALUES (?1, ?2 + 1) "
                         "ON CONFLICT (repository) DO UPDATE SET next = max(next, ?2 + 1)");
    bump.bind(1, r.repository).bind(2, r.number);
    bump.run();
  }
  return r;
}

namespace {

std::vector<PullRequestRecord> query(sqlite::Database& db, const PullRequestFilter& f) {
  auto& q = db.prepare(std::string("SELECT ") + kColumns +
                       " FROM pull_requests WHERE (?1 = '' OR repository = ?1) AND "
                       "(?2 = '' OR state = ?2) AND (?3 = '' OR execution_id = ?3) AND "
                       "(?5 = 0 OR number = ?5) "
                       "ORDER BY created_at DESC, number DESC LIMIT ?4");
  q.bind(1, f.repository).bind(2, f.state).bind(3, f.execution_id).bind(4, f.limit);
  q.bind(5, f.number);
  std::vector<PullRequestRecord> out;
  while (q.step()) out.push_back(read_pr(q));
  q.reset();
  return out;
}

} // namespace

std::vector<PullRequestRecord> Store::pull_requests(const PullRequestFilter& f) {
  return read([&](sqlite::Database& db) { return query(db, f); });
}

std::vector<PullRequestRecord> Store::pull_requests_written(const PullRequestFilter& f) {
  return query(*writer_, f);
}

std::optional<PullRequestRecord> Store::pull_request(const std::string& repository,
                                                     std::int64_t number) {
  return read([&](sqlite::Database& db) -> std::optional<PullRequestRecord> {
    auto& q = db.prepare(std::string("SELECT ") + kColumns +
                         " FROM pull_requests WHERE repository = ? AND number = ?");
    q.bind(1, repository).bind(2, number);
    std::optional<PullRequestRecord> out;
    if (q.step()) out = read_pr(q);
    q.reset();
    return out;
  });
}

} // namespace capstan::store
