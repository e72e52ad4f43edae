// The store's online backup: a consistent copy of the live database, taken beside the writer.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "store/store.h"

namespace capstan::store {

namespace {

// Pages copied per step (4 MiB of 4 KiB pages): the copy's memory stays small whatever the size
// of the database.
constexpr int kBackupPagesPerStep = 1024;
constexpr int kBackupBusyPauseMs = 5;
constexpr auto kBackupBusyLimit = std::chrono::seconds(10);

class BackupTarget {
public:
  explicit BackupTarget(const std::filesystem::path& file) {
    // The default VFS: the copy is an ordinary file of its own, not one held by this process.
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw sqlite::Error("cannot open the backup file " + file.string() + ": " + why);
    }
  }
  ~BackupTarget() { sqlite3_close_v2(db_); }
  BackupTarget(const BackupTarget&) = delete;
  BackupTarget& operator=(const BackupTarget&) = delete;
  sqlite3* handle() const { return db_; }
  void exec(const char* sql, const std::string& what) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      throw sqlite::Error(what + ": " + sqlite3_errmsg(db_));
    }
  }

private:
  sqlite3* db_ = nullptr;
};

// Removes the file and SQLite's companions of it (a copy in WAL mode has a log while open).
void remove_backup_file(const std::string& path) {
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
}

} // namespace

Store::Backup::Backup(Backup&& other) noexcept
    : fd(other.fd), bytes(other.bytes), pages(other.pages) {
  other.fd = -1;
}

Store::Backup::~Backup() {
  if (fd >= 0) ::close(fd);
}

Store::Backup Store::backup() {
  std::string path = (file_.parent_path() / (std::string(kBackupPrefix) + "XXXXXX")).string();
  int created = ::mkstemp(path.data()); // mode 0600
  if (created < 0) {
    throw BackupError("cannot create a backup file in " + file_.parent_path().string() + ": " +
                          std::strerror(errno),
                      errno == ENOSPC || errno == EDQUOT);
  }
  ::close(created);
  Backup out;
  try {
    // Its own read connection, one read transaction for the whole copy: every step copies pages
    // of the same snapshot (the database as of the transaction's first read), so the copy is
    // consistent however many commits the writer makes meanwhile. WAL lets the writer commit
    // beside a reader; the checkpoints are passive, they never wait for it either. While the
    // copy runs the log cannot start over, so it grows by what is committed meanwhile.
    sqlite::Database source(file_, true);
    source.exec("BEGIN");
    auto& first = source.prepare("SELECT count(*) FROM sqlite_schema");
    first.step();
    first.reset();
    BackupTarget copy(path);
    // Nothing to roll back in a file no one else sees until it is complete.
    copy.exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF", "cannot prepare the backup file");
    sqlite3_backup* b = sqlite3_backup_init(copy.handle(), "main", source.handle(), "main");
    if (b == nullptr) {
      throw sqlite::Error(std::string("cannot start the backup: ") + sqlite3_errmsg(copy.handle()));
    }
    // Neither BUSY nor LOCKED is expected (the source is one read transaction under WAL, the
    // target private), but should one come, the copy waits a little before trying again, as
    // SQLite's own example does, and gives up after kBackupBusyLimit rather than spin.
    int rc = SQLITE_OK;
    auto busy_since = std::chrono::steady_clock::time_point{};
    while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      rc = sqlite3_backup_step(b, kBackupPagesPerStep);
      if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
        busy_since = {};
        continue;
      }
      const auto now = std::chrono::steady_clock::now();
      if (busy_since == std::chrono::steady_clock::time_point{}) {
        busy_since = now;
      } else if (now - busy_since > kBackupBusyLimit) {
        break;
      }
      sqlite3_sleep(kBackupBusyPauseMs);
    }
    out.pages = sqlite3_backup_pagecount(b);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
      throw BackupError(
          std::string("the copy stopped: ") + sqlite3_errstr(rc) +
              (rc == SQLITE_FULL
                   ? " (no space left in the data dir " + file_.parent_path().string() + ")"
               : rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? " (still busy after 10 s of tries)"
                                                          : std::string()),
          rc == SQLITE_FULL);
    }
    source.exec("COMMIT");
    // The copy carries the source's WAL mark; a rollback-journal file is one file, openable
    // where it lies even read-only. The coordinator puts it back in WAL mode when it opens it.
    copy.exec("PRAGMA journal_mode=DELETE", "cannot finish the backup file");
  } catch (const BackupError&) {
    remove_backup_file(path);
    throw;
  } catch (const std::exception& e) {
    remove_backup_file(path);
    // SQLite says "database or disk is full" for a write that found no space.
    throw BackupError(e.what(), std::strstr(e.what(), "disk is full") != nullptr);
  }
  out.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  const int open_errno = errno;
  remove_backup_file(path);
  struct stat st {};
  if (out.fd < 0 || ::fstat(out.fd, &st) != 0) {
    throw BackupError("cannot read back the backup file " + path + ": " +
                          std::strerror(out.fd < 0 ? open_errno : errno),
                      false);
  }
  out.bytes = st.st_size;
  return out;
}

} // namespace capstan::store
