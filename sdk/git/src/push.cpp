// Pushing commits, and pushing with rebuild-and-retry when the remote branch moved.
#include <git2.h>

#include <algorithm>
#include <random>
#include <thread>

#include "capstan/git/repository.h"
#include "libgit2.h"

namespace capstan::git {

using namespace detail;

void Repository::push(const RemoteOptions& remote, const std::vector<PushSpec>& specs) {
  RemoteSession session(remote);
  git_remote* raw = nullptr;
  int rc = git_remote_lookup(&raw, repo_, "origin");
  if (rc == GIT_ENOTFOUND && !remote.url.empty()) {
    rc = git_remote_create(&raw, repo_, "origin", remote.url.c_str());
  } else if (rc == 0 && !remote.url.empty() && remote.url != git_remote_url(raw)) {
    git_remote_free(raw);
    raw = nullptr;
    rc = git_remote_set_url(repo_, "origin", remote.url.c_str());
    if (rc == 0) rc = git_remote_lookup(&raw, repo_, "origin");
  }
  if (rc < 0) session.fail(rc, "push to");
  RemoteHandle r(raw);

  // libgit2 pushes refs, not bare commits: stage each source under a private ref.
  std::vector<std::string> temp_refs;
  std::vector<std::string> refspecs;
  std::vector<std::string> destinations;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& spec = specs[i];
    std::string dest = spec.destination.rfind("refs/", 0) == 0 ? spec.destination
                                                               : "refs/heads/" + spec.destination;
    destinations.push_back(dest);
    if (spec.source.empty()) {
      refspecs.push_back(":" + dest);
      continue;
    }
    const std::string oid = resolve(spec.source);
    const std::string temp = "refs/capstan/push/" + std::to_string(i);
    set_ref(temp, oid);
    temp_refs.push_back(temp);
    refspecs.push_back(std::string(spec.force ? "+" : "") + temp + ":" + dest);
  }
  struct Cleanup {
    git_repository* repo;
    std::vector<std::string>* refs;
    ~Cleanup() {
      for (const auto& name : *refs) {
        git_reference* ref = nullptr;
        if (git_reference_lookup(&ref, repo, name.c_str()) == 0) {
          git_reference_delete(ref);
          git_reference_free(ref);
        }
      }
    }
  } cleanup{repo_, &temp_refs};

  std::vector<const char*> ptrs;
  for (const auto& s : refspecs) ptrs.push_back(s.c_str());
  git_strarray arr{const_cast<char**>(ptrs.data()), ptrs.size()};
  git_push_options opts = GIT_PUSH_OPTIONS_INIT;
  opts.callbacks = session.callbacks();
  opts.proxy_opts = session.proxy();
  opts.custom_headers = headers_of(session);
  rc = git_remote_upload(r.get(), &arr, &opts);
  std::string dests;
  for (const auto& d : destinations) dests += (dests.empty() ? "" : ", ") + d;
  if (rc == GIT_ENONFASTFORWARD) {
    throw Error(ErrorKind::kNonFastForward, "push " + dests + " to " + redact_url(remote.url) +
                                                ": rejected (non-fast-forward: the remote has "
                                                "commits that are not here; fetch first)");
  }
  if (rc < 0) session.fail(rc, "push " + dests + " to");
  for (const auto& [ref, status] : session.rejected) {
    const bool stale = status.find("non-fast-forward") != std::string::npos ||
                       status.find("fetch first") != std::string::npos ||
                       status.find("stale") != std::string::npos ||
                       status.find("failed to lock") != std::string::npos ||
                       status.find("failed to update ref") != std::string::npos ||
                       status.find("cannot lock") != std::string::npos;
    throw Error(stale ? ErrorKind::kNonFastForward : ErrorKind::kConflict,
                "push " + ref + " to " + redact_url(remote.url) + ": rejected by the remote (" +
                    status + ")");
  }
  // Keep remote-tracking refs equal to what the remote now has.
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const std::string& dest = destinations[i];
    if (dest.rfind("refs/heads/", 0) != 0) continue;
    const std::string tracking = "refs/remotes/origin/" + dest.substr(11);
    if (specs[i].source.empty()) {
      git_reference* ref = nullptr;
      if (git_reference_lookup(&ref, repo_, tracking.c_str()) == 0) {
        git_reference_delete(ref);
        git_reference_free(ref);
      }
    } else {
      set_ref(tracking, resolve(specs[i].source));
    }
  }
}

PushResult Repository::push_with_retry(const RemoteOptions& remote, const std::string& branch,
                                       const CommitBuilder& build, const RetryPolicy& policy) {
  const std::string tracking = "refs/remotes/origin/" + branch;
  std::mt19937_64 rng(std::random_device{}());
  PushResult result;
  const int attempts = std::max(1, policy.max_attempts);
  for (int attempt = 1;; ++attempt) {
    if (remote.cancelled && remote.cancelled()) {
      throw Error(ErrorKind::kCancelled, "push to " + branch + ": cancelled");
    }
    result.attempts = attempt;
    std::optional<std::string> head = try_resolve(tracking);
    const std::string oid = build(head);
    if (head && oid == *head) {
      result.oid = oid;
      return result;
    }
    try {
      push(remote, {PushSpec{oid, branch, false}});
      result.oid = oid;
      result.pushed = true;
      return result;
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kNonFastForward) throw;
      if (attempt >= attempts) {
        throw Error(ErrorKind::kNonFastForward, std::string(e.what()) + " (gave up after " +
                                                    std::to_string(attempt) + " attempts)");
      }
    }
    // Full jitter keeps two racing writers from colliding in lockstep.
    auto cap = std::min<long long>(policy.max_backoff.count(), policy.initial_backoff.count()
                                                                   << std::min(attempt - 1, 16));
    std::uniform_int_distribution<long long> dist(cap / 2, std::max<long long>(cap / 2, cap));
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(dist(rng));
    while (std::chrono::steady_clock::now() < until) {
      if (remote.cancelled && remote.cancelled()) {
        throw Error(ErrorKind::kCancelled, "push to " + branch + ": cancelled");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    fetch(remote, {"+refs/heads/" + branch + ":" + tracking});
  }
}

PushResult Repository::push_rebasing(const RemoteOptions& remote, const std::string& branch,
                                     const std::string& base, const std::string& tip,
                                     const Signature& committer, const RetryPolicy& policy) {
  const std::string base_oid = resolve(base);
  const std::string tip_oid = resolve(tip);
  return push_with_retry(
      remote, branch,
      [&](const std::optional<std::string>& head) {
        if (!head || *head == base_oid) return tip_oid;
        if (is_ancestor(tip_oid, *head)) return *head; // already landed
        return rebase(base_oid, tip_oid, *head, committer);
      },
      policy);
}

} // namespace capstan::git
