// The repository cache: bare clones keyed by remote URL, locked per repository.
#include "capstan/git/cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include <git2.h>

#include "libgit2.h"

namespace capstan::git {

namespace fs = std::filesystem;

RepoLease::RepoLease(RepoLease&& other) noexcept
    : thread_lock_(std::move(other.thread_lock_)), file_lock_fd_(other.file_lock_fd_),
      directory_(std::move(other.directory_)), repo_(std::move(other.repo_)),
      cloned_(other.cloned_), fetched_(std::move(other.fetched_)) {
  other.file_lock_fd_ = -1;
}

RepoLease::~RepoLease() {
  repo_.reset(); // close the repository before others may open it
  if (file_lock_fd_ >= 0) {
    ::flock(file_lock_fd_, LOCK_UN);
    ::close(file_lock_fd_);
  }
}

RepoCache::RepoCache(fs::path root) : root_(std::move(root)) {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) {
    throw Error(ErrorKind::kInternal,
                "cannot create the repository cache " + root_.string() + ": " + ec.message());
  }
}

fs::path RepoCache::directory_for(const std::string& url) const {
  return root_ / url_key(url);
}

std::shared_ptr<std::timed_mutex> RepoCache::mutex_for(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutexes_mutex_);
  auto& m = mutexes_[key];
  if (!m) m = std::make_shared<std::timed_mutex>();
  return m;
}

namespace {

// The cache keeps no local branches between leases: each user starts from the remote's state,
// and scratch branches of a crashed step cannot leak into the next one.
void drop_local_branches(Repository& repo) {
  git_repository* raw = repo.raw();
  if (git_repository_head_detached(raw) != 1) {
    if (auto head = repo.try_resolve("HEAD")) {
      git_oid oid = detail::parse_oid(*head);
      git_repository_set_head_detached(raw, &oid);
    }
  }
  for (const auto& name : repo.branches()) {
    try {
      repo.delete_branch(name);
    } catch (const Error&) {
      // An unborn HEAD branch cannot be deleted; it holds nothing.
    }
  }
}

} // namespace

RepoLease RepoCache::acquire(const RemoteOptions& remote, const AcquireOptions& options) {
  detail::ensure_init();
  const std::string key = url_key(remote.url);
  const auto deadline = std::chrono::steady_clock::now() + options.lock_timeout;
  RepoLease lease;
  auto mutex = mutex_for(key);
  lease.thread_lock_ = std::unique_lock<std::timed_mutex>(*mutex, std::defer_lock);
  if (!lease.thread_lock_.try_lock_until(deadline)) {
    throw Error(ErrorKind::kTimeout, "timed out waiting for the cached repository of " +
                                         redact_url(remote.url) + " (in use by another step)");
  }
  const fs::path lock_path = root_ / (key + ".lock");
  lease.file_lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lease.file_lock_fd_ < 0) {
    throw Error(ErrorKind::kInternal,
                "cannot open lock file " + lock_path.string() + ": " + std::strerror(errno));
  }
  while (::flock(lease.file_lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      throw Error(ErrorKind::kInternal,
                  "cannot lock " + lock_path.string() + ": " + std::strerror(errno));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      throw Error(ErrorKind::kTimeout, "timed out waiting for the cached repository of " +
                                           redact_url(remote.url) + " (locked by another process)");
    }
    if (remote.cancelled && remote.cancelled()) {
      throw Error(ErrorKind::kCancelled, "waiting for the cached repository: cancelled");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  lease.directory_ = root_ / key;
  std::error_code ec;
  // Leftovers of clones that died half-way (we hold the lock, so nobody else is cloning).
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(key + ".tmp-", 0) == 0) fs::remove_all(entry.path(), ec);
  }
  if (fs::exists(lease.directory_)) {
    try {
      lease.repo_ = std::make_unique<Repository>(Repository::open(lease.directory_));
    } catch (const Error&) {
      fs::remove_all(lease.directory_, ec); // corrupt: start over
    }
  }
  if (!lease.repo_) {
    std::mt19937_64 rng(std::random_device{}());
    const fs::path tmp =
        root_ / (key + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 100000));
    fs::remove_all(tmp, ec);
    try {
      CloneOptions co;
      co.bare = true;
      Repository cloned = Repository::clone(remote, tmp, co);
      drop_local_branches(cloned);
    } catch (...) {
      fs::remove_all(tmp, ec);
      throw;
    }
    fs::rename(tmp, lease.directory_, ec);
    if (ec) {
      fs::remove_all(tmp, ec);
      throw Error(ErrorKind::kInternal, "cannot move the clone into the cache: " + ec.message());
    }
    lease.repo_ = std::make_unique<Repository>(Repository::open(lease.directory_));
    lease.cloned_ = true;
    return lease;
  }
  drop_local_branches(*lease.repo_);
  if (options.fetch) lease.fetched_ = lease.repo_->fetch(remote);
  return lease;
}

} // namespace capstan::git
