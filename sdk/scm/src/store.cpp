// Pull-request record stores for the local provider: in memory, and one locked JSON file.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "capstan/scm/local.h"

namespace capstan::scm {

using nlohmann::json;
namespace fs = std::filesystem;

PrRecord MemoryPrStore::create(const std::string& repository, PrRecord record) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& repo = records_[repository];
  record.pr.number = repo.empty() ? 1 : repo.rbegin()->first + 1;
  repo[record.pr.number] = record;
  return record;
}

std::optional<PrRecord> MemoryPrStore::get(const std::string& repository, long number) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto r = records_.find(repository);
  if (r == records_.end()) return std::nullopt;
  auto it = r->second.find(number);
  if (it == r->second.end()) return std::nullopt;
  return it->second;
}

bool MemoryPrStore::update(const std::string& repository, const PrRecord& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto r = records_.find(repository);
  if (r == records_.end() || r->second.count(record.pr.number) == 0) return false;
  r->second[record.pr.number] = record;
  return true;
}

std::vector<PrRecord> MemoryPrStore::list(const std::string& repository) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PrRecord> out;
  auto r = records_.find(repository);
  if (r == records_.end()) return out;
  for (const auto& [n, rec] : r->second) out.push_back(rec);
  return out;
}

PrState parse_state(const std::string& text) {
  if (text == "merged") return PrState::kMerged;
  if (text == "closed") return PrState::kClosed;
  return PrState::kOpen;
}

json record_to_json(const PrRecord& r) {
  return {{"number", r.pr.number}, {"title", r.pr.title},      {"body", r.pr.body},
          {"source", r.pr.source}, {"target", r.pr.target},    {"state", to_string(r.pr.state)},
          {"url", r.pr.url},       {"headSha", r.pr.head_sha}, {"mergeCommit", r.pr.merge_commit},
          {"comments", r.comments}};
}

PrRecord record_from_json(const json& j) {
  PrRecord r;
  r.pr.number = j.value("number", 0L);
  r.pr.title = j.value("title", "");
  r.pr.body = j.value("body", "");
  r.pr.source = j.value("source", "");
  r.pr.target = j.value("target", "");
  r.pr.state = parse_state(j.value("state", "open"));
  r.pr.url = j.value("url", "");
  r.pr.head_sha = j.value("headSha", "");
  r.pr.merge_commit = j.value("mergeCommit", "");
  r.comments = j.value("comments", std::vector<std::string>{});
  return r;
}

namespace {

// Holds the file's lock for one read-modify-write.
class Locked {
public:
  explicit Locked(const fs::path& file) : file_(file) {
    const std::string lock = file.string() + ".lock";
    fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) {
      throw Error(ErrorKind::kInternal, "cannot lock " + lock + ": " + std::strerror(errno));
    }
    std::ifstream in(file);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      if (!ss.str().empty()) {
        try {
          data = json::parse(ss.str());
        } catch (const json::exception& e) {
          throw Error(ErrorKind::kInternal,
                      file.string() + ": corrupt pull-request store: " + e.what());
        }
      }
    }
    if (!data.is_object()) data = json{{"repositories", json::object()}};
  }
  ~Locked() {
    if (fd_ >= 0) {
      ::flock(fd_, LOCK_UN);
      ::close(fd_);
    }
  }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;
  void save() {
    const fs::path tmp = file_.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << data.dump(2) << "\n";
      if (!out) throw Error(ErrorKind::kInternal, "cannot write " + tmp.string());
    }
    fs::rename(tmp, file_);
  }
  json& repo(const std::string& name) {
    json& r = data["repositories"][name];
    if (!r.is_object()) r = json{{"next", 1}, {"records", json::array()}};
    return r;
  }
  json data;

private:
  fs::path file_;
  int fd_ = -1;
};

} // namespace

FilePrStore::FilePrStore(fs::path file) : file_(std::move(file)) {
  if (file_.has_parent_path()) fs::create_directories(file_.parent_path());
}

PrRecord FilePrStore::create(const std::string& repository, PrRecord record) {
  std::lock_guard<std::mutex> guard(mutex_);
  Locked l(file_);
  json& repo = l.repo(repository);
  record.pr.number = repo["next"].get<long>();
  repo["next"] = record.pr.number + 1;
  repo["records"].push_back(record_to_json(record));
  l.save();
  return record;
}

std::optional<PrRecord> FilePrStore::get(const std::string& repository, long number) {
  std::lock_guard<std::mutex> guard(mutex_);
  Locked l(file_);
  for (const auto& r : l.repo(repository)["records"]) {
    if (r.value("number", 0L) == number) return record_from_json(r);
  }
  return std::nullopt;
}

bool FilePrStore::update(const std::string& repository, const PrRecord& record) {
  std::lock_guard<std::mutex> guard(mutex_);
  Locked l(file_);
  for (auto& r : l.repo(repository)["records"]) {
    if (r.value("number", 0L) == record.pr.number) {
      r = record_to_json(record);
      l.save();
      return true;
    }
  }
  return false;
}

std::vector<PrRecord> FilePrStore::list(const std::string& repository) {
  std::lock_guard<std::mutex> guard(mutex_);
  Locked l(file_);
  std::vector<PrRecord> out;
  for (const auto& r : l.repo(repository)["records"]) out.push_back(record_from_json(r));
  return out;
}

} // namespace capstan::scm
