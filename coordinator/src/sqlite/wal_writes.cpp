// A VFS that writes each transaction's write-ahead-log frames in one system call.
#include "sqlite/wal_writes.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace capstan::sqlite {

namespace {

// A log frame's header (WAL_FRAME_HDRSIZE): page number, then the database size in pages after
// the commit for the transaction's last frame, 0 for the others.
constexpr int kFrameHeader = 24;
// Bytes held at most before they are written anyway (a large transaction, a migration): the
// unix VFS writes at most 128 KiB per call.
constexpr sqlite3_int64 kMaxHeld = 120 * 1024;

sqlite3_vfs* base_vfs = nullptr; // the default VFS, wrapped

// A write-ahead log opened through the wrapping VFS: the base VFS's file follows it in memory.
struct LogFile {
  sqlite3_file file;  // first: SQLite sees a LogFile as its sqlite3_file
  sqlite3_file* base; // the base VFS's file, right after this struct
  char* held;         // frames written by SQLite, not yet to the file
  sqlite3_int64 held_at;
  sqlite3_int64 held_size;
  sqlite3_int64 held_capacity;
  bool commit_next; // the last write was a commit frame's header: its page ends the transaction
};

int write_held(LogFile* f) {
  if (f->held_size == 0) return SQLITE_OK;
  int rc = f->base->pMethods->xWrite(f->base, f->held, static_cast<int>(f->held_size), f->held_at);
  f->held_size = 0;
  return rc;
}

int log_close(sqlite3_file* file) {
  auto* f = reinterpret_cast<LogFile*>(file);
  int rc = write_held(f);
  int closed = f->base->pMethods->xClose(f->base);
  std::free(f->held);
  f->held = nullptr;
  return rc != SQLITE_OK ? rc : closed;
}

int log_read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  auto* f = reinterpret_cast<LogFile*>(file);
  if (int rc = write_held(f); rc != SQLITE_OK) return rc;
  return f->base->pMethods->xRead(f->base, out, amount, offset);
}

int log_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  auto* f = reinterpret_cast<LogFile*>(file);
  // Only writes that continue the held ones are held (SQLite appends frames in order; a frame
  // rewritten in place or the log's header at a restart comes after what is held is written).
  if (f->held_size > 0 && offset != f->held_at + f->held_size) {
    if (int rc = write_held(f); rc != SQLITE_OK) return rc;
  }
  if (f->held_size + amount > kMaxHeld) {
    if (int rc = write_held(f); rc != SQLITE_OK) return rc;
    if (amount > kMaxHeld) return f->base->pMethods->xWrite(f->base, data, amount, offset);
  }
  if (f->held_size + amount > f->held_capacity) {
    auto capacity = std::max<sqlite3_int64>(2 * f->held_capacity, 32 * 1024);
    while (capacity < f->held_size + amount) capacity *= 2;
    auto* grown = static_cast<char*>(std::realloc(f->held, static_cast<std::size_t>(capacity)));
    if (grown == nullptr) {
      if (int rc = write_held(f); rc != SQLITE_OK) return rc;
      return f->base->pMethods->xWrite(f->base, data, amount, offset);
    }
    f->held = grown;
    f->held_capacity = capacity;
  }
  if (f->held_size == 0) f->held_at = offset;
  std::memcpy(f->held + f->held_size, data, static_cast<std::size_t>(amount));
  f->held_size += amount;
  // The page after a commit frame's header is the transaction's last write: all of it goes to
  // the file now, before SQLite makes the commit visible, and an error fails the commit.
  const bool ends_transaction = f->commit_next;
  const auto* bytes = static_cast<const unsigned char*>(data);
  f->commit_next =
      amount == kFrameHeader && (bytes[4] != 0 || bytes[5] != 0 || bytes[6] != 0 || bytes[7] != 0);
  return ends_transaction ? write_held(f) : SQLITE_OK;
}

int log_truncate(sqlite3_file* file, sqlite3_int64 size) {
  auto* f = reinterpret_cast<LogFile*>(file);
  if (int rc = write_held(f); rc != SQLITE_OK) return rc;
  return f->base->pMethods->xTruncate(f->base, size);
}

int log_sync(sqlite3_file* file, int flags) {
  auto* f = reinterpret_cast<LogFile*>(file);
  if (int rc = write_held(f); rc != SQLITE_OK) return rc;
  return f->base->pMethods->xSync(f->base, flags);
}

int log_file_size(sqlite3_file* file, sqlite3_int64* size) {
  auto* f = reinterpret_cast<LogFile*>(file);
  if (int rc = write_held(f); rc != SQLITE_OK) return rc;
  return f->base->pMethods->xFileSize(f->base, size);
}

int log_lock(sqlite3_file* file, int level) {
  auto* f = reinterpret_cast<LogFile*>(file);
  return f->base->pMethods->xLock(f->base, level);
}

int log_unlock(sqlite3_file* file, int level) {
  auto* f = reinterpret_cast<LogFile*>(file);
  return f->base->pMethods->xUnlock(f->base, level);
}

int log_check_reserved_lock(sqlite3_file* file, int* out) {
  auto* f = reinterpret_cast<LogFile*>(file);
  return f->base->pMethods->xCheckReservedLock(f->base, out);
}

int log_file_control(sqlite3_file* file, int op, void* arg) {
  auto* f = reinterpret_cast<LogFile*>(file);
  if (int rc = write_held(f); rc != SQLITE_OK) return rc;
  return f->base->pMethods->xFileControl(f->base, op, arg);
}

int log_sector_size(sqlite3_file* file) {
  auto* f = reinterpret_cast<LogFile*>(file);
  return f->base->pMethods->xSectorSize(f->base);
}

int log_device_characteristics(sqlite3_file* file) {
  auto* f = reinterpret_cast<LogFile*>(file);
  return f->base->pMethods->xDeviceCharacteristics(f->base);
}

// A log is never mapped or shared-memory-mapped (the database file is): version 1 methods.
const sqlite3_io_methods log_methods = {
    1,
    &log_close,
    &log_read,
    &log_write,
    &log_truncate,
    &log_sync,
    &log_file_size,
    &log_lock,
    &log_unlock,
    &log_check_reserved_lock,
    &log_file_control,
    &log_sector_size,
    &log_device_characteristics,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

int vfs_open(sqlite3_vfs* /*vfs*/, sqlite3_filename name, sqlite3_file* file, int flags,
             int* out_flags) {
  if ((flags & SQLITE_OPEN_WAL) == 0) {
    // Everything but logs is the base VFS's own file, in the same memory.
    return base_vfs->xOpen(base_vfs, name, file, flags, out_flags);
  }
  auto* f = reinterpret_cast<LogFile*>(file);
  std::memset(f, 0, sizeof(LogFile));
  f->base = reinterpret_cast<sqlite3_file*>(f + 1);
  int rc = base_vfs->xOpen(base_vfs, name, f->base, flags, out_flags);
  // SQLite calls xClose only on files whose pMethods is set; the base VFS leaves its own unset
  // when its open fails.
  f->file.pMethods = (rc == SQLITE_OK) ? &log_methods : nullptr;
  return rc;
}

int vfs_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return base_vfs->xDelete(base_vfs, name, sync_dir);
}
int vfs_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return base_vfs->xAccess(base_vfs, name, flags, out);
}
int vfs_full_pathname(sqlite3_vfs*, const char* name, int size, char* out) {
  return base_vfs->xFullPathname(base_vfs, name, size, out);
}
void* vfs_dl_open(sqlite3_vfs*, const char* name) {
  return base_vfs->xDlOpen(base_vfs, name);
}
void vfs_dl_error(sqlite3_vfs*, int size, char* out) {
  base_vfs->xDlError(base_vfs, size, out);
}
void (*vfs_dl_sym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
  return base_vfs->xDlSym(base_vfs, handle, symbol);
}
void vfs_dl_close(sqlite3_vfs*, void* handle) {
  base_vfs->xDlClose(base_vfs, handle);
}
int vfs_randomness(sqlite3_vfs*, int size, char* out) {
  return base_vfs->xRandomness(base_vfs, size, out);
}
int vfs_sleep(sqlite3_vfs*, int microseconds) {
  return base_vfs->xSleep(base_vfs, microseconds);
}
int vfs_current_time(sqlite3_vfs*, double* out) {
  return base_vfs->xCurrentTime(base_vfs, out);
}
int vfs_get_last_error(sqlite3_vfs*, int size, char* out) {
  return base_vfs->xGetLastError ? base_vfs->xGetLastError(base_vfs, size, out) : 0;
}
int vfs_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return base_vfs->xCurrentTimeInt64(base_vfs, out);
}

sqlite3_vfs make_vfs() {
  sqlite3_vfs v{};
  v.iVersion = 2;
  v.szOsFile = static_cast<int>(sizeof(LogFile)) + base_vfs->szOsFile;
  v.mxPathname = base_vfs->mxPathname;
  v.zName = "capstan-wal-batching";
  v.xOpen = &vfs_open;
  v.xDelete = &vfs_delete;
  v.xAccess = &vfs_access;
  v.xFullPathname = &vfs_full_pathname;
  v.xDlOpen = &vfs_dl_open;
  v.xDlError = &vfs_dl_error;
  v.xDlSym = &vfs_dl_sym;
  v.xDlClose = &vfs_dl_close;
  v.xRandomness = &vfs_randomness;
  v.xSleep = &vfs_sleep;
  v.xCurrentTime = &vfs_current_time;
  v.xGetLastError = &vfs_get_last_error;
  v.xCurrentTimeInt64 = &vfs_current_time_int64;
  return v;
}

} // namespace

const char* wal_batching_vfs() {
  static sqlite3_vfs vfs = [] {
    // "unix-excl": the process takes one lock on a database file when it first reads it and
    // holds it until its last connection to the file closes, so other processes cannot open it,
    // and keeps the log's index in its own memory instead of a shared -shm file. Connections of
    // the same process still lock against each other, in memory: a transaction then makes no
    // fcntl call where the default VFS makes six (the database's shared lock, a read slot, the
    // write lock, each taken and released). A build of SQLite without it gets the default VFS.
    base_vfs = sqlite3_vfs_find("unix-excl");
    if (base_vfs == nullptr || base_vfs->iVersion < 2) base_vfs = sqlite3_vfs_find(nullptr);
    if (base_vfs == nullptr || base_vfs->iVersion < 2) {
      throw std::runtime_error("SQLite has no unix VFS of version 2 or later to wrap");
    }
    return make_vfs();
  }();
  static const bool registered = [] {
    if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) {
      throw std::runtime_error("cannot register SQLite VFS " + std::string(vfs.zName));
    }
    return true;
  }();
  (void)registered;
  return vfs.zName;
}

} // namespace capstan::sqlite
