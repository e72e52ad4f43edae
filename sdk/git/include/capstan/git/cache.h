// The delegate's repository cache: one bare repository per remote URL, fetched instead of
// re-cloned, locked so concurrent steps (threads or processes) never share a repository at once.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "capstan/git/remote.h"
#include "capstan/git/repository.h"

namespace capstan::git {

struct AcquireOptions {
  bool fetch = true; // bring the cache up to date with the remote (skipped when nothing changed)
  std::chrono::milliseconds lock_timeout{std::chrono::minutes(5)};
};

class RepoCache;

// Exclusive use of one cached repository; the lock is released when the lease dies.
class RepoLease {
public:
  RepoLease(RepoLease&&) noexcept;
  RepoLease& operator=(RepoLease&&) = delete;
  RepoLease(const RepoLease&) = delete;
  RepoLease& operator=(const RepoLease&) = delete;
  ~RepoLease();

  Repository& repo() { return *repo_; }
  Repository* operator->() { return repo_.get(); }
  const std::filesystem::path& directory() const { return directory_; }
  bool cloned() const { return cloned_; } // this acquire made the clone
  const FetchResult& fetched() const { return fetched_; }

private:
  friend class RepoCache;
  RepoLease() = default;
  std::unique_lock<std::timed_mutex> thread_lock_;
  int file_lock_fd_ = -1;
  std::filesystem::path directory_;
  std::unique_ptr<Repository> repo_;
  bool cloned_ = false;
  FetchResult fetched_;
};

class RepoCache {
public:
  // root is created if missing. Repositories live in root/<url_key(url)>/ (bare), the lock file
  // beside them.
  explicit RepoCache(std::filesystem::path root);

  // Locks the URL's repository (waiting up to lock_timeout, else kTimeout), clones it on first
  // use (into a temporary directory renamed into place, so a crash never leaves half a clone),
  // otherwise fetches. A cache that fails to open (corrupted) is discarded and cloned again.
  RepoLease acquire(const RemoteOptions& remote, const AcquireOptions& options = {});

  std::filesystem::path directory_for(const std::string& url) const;
  const std::filesystem::path& root() const { return root_; }

private:
  std::shared_ptr<std::timed_mutex> mutex_for(const std::string& key);
  std::filesystem::path root_;
  std::mutex mutexes_mutex_;
  std::map<std::string, std::shared_ptr<std::timed_mutex>> mutexes_;
};

} // namespace capstan::git
