// The local provider: pull requests as branches on any Git remote plus records in a PrStore.
#include <algorithm>

#include "capstan/scm/local.h"

namespace capstan::scm {

namespace {

ErrorKind map_kind(git::ErrorKind k) {
  switch (k) {
  case git::ErrorKind::kAuthentication:
    return ErrorKind::kAuthentication;
  case git::ErrorKind::kConnectivity:
    return ErrorKind::kConnectivity;
  case git::ErrorKind::kNotFound:
    return ErrorKind::kNotFound;
  case git::ErrorKind::kConflict:
    return ErrorKind::kNotMergeable;
  case git::ErrorKind::kNonFastForward:
    return ErrorKind::kConflict;
  case git::ErrorKind::kInvalidInput:
    return ErrorKind::kInvalidInput;
  case git::ErrorKind::kTimeout:
    return ErrorKind::kTimeout;
  case git::ErrorKind::kCancelled:
    return ErrorKind::kCancelled;
  case git::ErrorKind::kInternal:
    return ErrorKind::kInternal;
  }
  return ErrorKind::kInternal;
}

template <typename F> auto guarded(const std::string& what, F&& f) {
  try {
    return f();
  } catch (const git::Error& e) {
    throw Error(map_kind(e.kind()), "local: " + what + ": " + e.what());
  }
}

} // namespace

LocalProvider::LocalProvider(LocalProviderConfig config, git::RepoCache& cache, PrStore& store)
    : config_(std::move(config)), cache_(cache), store_(store) {
  if (config_.remote.url.empty()) throw Error(ErrorKind::kInvalidInput, "local: no remote URL");
  if (config_.repository.empty()) config_.repository = git::redact_url(config_.remote.url);
}

PrRecord LocalProvider::record(long number) {
  auto rec = store_.get(config_.repository, number);
  if (!rec) {
    throw Error(ErrorKind::kNotFound, "local: pull request #" + std::to_string(number) +
                                          " not found in " + config_.repository);
  }
  return *rec;
}

PullRequest LocalProvider::create(const CreateOptions& o) {
  const std::string what = "create pull request " + o.source + " → " + o.target;
  if (o.title.empty() || o.source.empty() || o.target.empty()) {
    throw Error(ErrorKind::kValidation,
                "local: " + what + ": title, source and target are required");
  }
  if (o.source == o.target) {
    throw Error(ErrorKind::kValidation,
                "local: " + what + ": source and target are the same branch");
  }
  auto heads = guarded(what, [&] { return git::ls_remote(config_.remote); });
  auto head_of = [&](const std::string& branch) -> std::string {
    for (const auto& h : heads) {
      if (h.name == "refs/heads/" + branch) return h.oid;
    }
    throw Error(ErrorKind::kNotFound, "local: " + what + ": branch '" + branch +
                                          "' does not exist on " + config_.repository);
  };
  const std::string head = head_of(o.source);
  head_of(o.target);
  for (const auto& r : store_.list(config_.repository)) {
    if (r.pr.state == PrState::kOpen && r.pr.source == o.source && r.pr.target == o.target) {
      throw Error(ErrorKind::kValidation, "local: " + what + ": pull request #" +
                                              std::to_string(r.pr.number) + " is already open");
    }
  }
  PrRecord rec;
  rec.pr.title = o.title;
  rec.pr.body = o.body;
  rec.pr.source = o.source;
  rec.pr.target = o.target;
  rec.pr.head_sha = head;
  rec = store_.create(config_.repository, rec);
  rec.pr.url = config_.repository + "#" + std::to_string(rec.pr.number);
  store_.update(config_.repository, rec);
  return rec.pr;
}

PullRequest LocalProvider::get(long number) {
  return record(number).pr;
}

PullRequest LocalProvider::merge(long number, const MergeOptions& o) {
  PrRecord rec = record(number);
  const std::string what = "merge pull request #" + std::to_string(number);
  if (rec.pr.state != PrState::kOpen) {
    throw Error(ErrorKind::kNotMergeable,
                "local: " + what + ": it is " + std::string(to_string(rec.pr.state)), 405);
  }
  return guarded(what, [&] {
    git::RepoLease lease = cache_.acquire(config_.remote);
    auto source = lease->try_resolve("refs/remotes/origin/" + rec.pr.source);
    if (!source) {
      throw Error(ErrorKind::kNotFound,
                  "local: " + what + ": source branch '" + rec.pr.source + "' no longer exists");
    }
    if (!o.expected_head.empty() && o.expected_head != *source) {
      throw Error(ErrorKind::kConflict,
                  "local: " + what + ": the source branch moved to " + *source + " (expected " +
                      o.expected_head + ")",
                  409);
    }
    std::string title = o.commit_title;
    if (title.empty()) {
      title = o.method == git::MergeMethod::kMerge
                  ? "Merge pull request #" + std::to_string(number) + " from " + rec.pr.source
                  : rec.pr.title + " (#" + std::to_string(number) + ")";
    }
    std::string body = o.commit_message.empty() && o.method == git::MergeMethod::kMerge
                           ? rec.pr.title
                           : o.commit_message;
    git::MergeOptions mo;
    mo.method = o.method;
    mo.message = title + (body.empty() ? "" : "\n\n" + body) + "\n";
    mo.author = config_.merger;
    const std::string source_oid = *source;
    git::PushResult landed = lease->push_with_retry(
        config_.remote, rec.pr.target,
        [&](const std::optional<std::string>& head) {
          if (!head) {
            throw git::Error(git::ErrorKind::kNotFound,
                             "target branch '" + rec.pr.target + "' does not exist");
          }
          return lease->merge(*head, source_oid, mo).oid;
        },
        config_.push_retry);
    if (o.delete_source_branch) {
      lease->push(config_.remote, {git::PushSpec{"", rec.pr.source, false}});
    }
    rec.pr.state = PrState::kMerged;
    rec.pr.head_sha = source_oid;
    rec.pr.merge_commit = landed.oid;
    store_.update(config_.repository, rec);
    return rec.pr;
  });
}

PullRequest LocalProvider::close(long number) {
  PrRecord rec = record(number);
  if (rec.pr.state == PrState::kMerged) {
    throw Error(ErrorKind::kValidation,
                "local: close pull request #" + std::to_string(number) + ": it is already merged");
  }
  rec.pr.state = PrState::kClosed;
  store_.update(config_.repository, rec);
  return rec.pr;
}

void LocalProvider::comment(long number, const std::string& body) {
  PrRecord rec = record(number);
  rec.comments.push_back(body);
  store_.update(config_.repository, rec);
}

std::vector<PullRequest> LocalProvider::list_by_branch(const std::string& source,
                                                       std::optional<PrState> state) {
  std::vector<PullRequest> out;
  for (const auto& r : store_.list(config_.repository)) {
    if (r.pr.source == source && (!state || r.pr.state == *state)) out.push_back(r.pr);
  }
  std::sort(out.begin(), out.end(),
            [](const PullRequest& a, const PullRequest& b) { return a.number > b.number; });
  return out;
}

} // namespace capstan::scm
