// SQLite connections, statements and transactions.
#include "sqlite/database.h"

#include "sqlite/wal_writes.h"

#include <algorithm>

namespace capstan::sqlite {

namespace {
[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw Error(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}
} // namespace

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt_, nullptr) != SQLITE_OK) {
    fail(db, "cannot prepare \"" + std::string(sql.substr(0, 80)) + "\"");
  }
  parameters_ = sqlite3_bind_parameter_count(stmt_);
  // Sized once: SQLite holds pointers into these strings (short ones live inside them).
  texts_.resize(static_cast<std::size_t>(parameters_));
  all_ = parameters_ > 64    ? 0
         : parameters_ == 64 ? ~std::uint64_t{0}
                             : (std::uint64_t{1} << parameters_) - 1;
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

Statement& Statement::reset() {
  sqlite3_reset(stmt_);
  if (parameters_ > 64) {
    sqlite3_clear_bindings(stmt_); // too many to track
    kept_ = 0;
  }
  bound_ = 0;
  stepping_ = false;
  return *this;
}

void Statement::null_unbound() {
  for (int i = 1; i <= std::min(parameters_, 64); ++i) {
    if ((bound_ & bit(i)) == 0) {
      sqlite3_bind_null(stmt_, i);
      mark_not_kept(i);
    }
  }
  bound_ = all_;
}

Statement& Statement::bind(int index, std::int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) fail(db_, "bind");
  mark_bound(index);
  mark_not_kept(index);
  return *this;
}

Statement& Statement::bind(int index, double value) {
  if (sqlite3_bind_double(stmt_, index, value) != SQLITE_OK) fail(db_, "bind");
  mark_bound(index);
  mark_not_kept(index);
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  // SQLite's own copy (SQLITE_TRANSIENT) frees and allocates a buffer at every bind, under its
  // allocator's mutex: a fifth of the store's instructions for a run. The statement keeps a buffer
  // per parameter instead, reused from one run to the next, and SQLite reads it in place until the
  // parameter is bound again. Long texts (plans) are not kept.
  if (index >= 1 && index <= parameters_ && value.size() <= kKeptText) {
    auto& kept = texts_[static_cast<std::size_t>(index - 1)];
    if ((kept_ & bit(index)) != 0 && kept == value) { // still bound to the same text
      mark_bound(index);
      return *this;
    }
    kept.assign(value);
    if (sqlite3_bind_text64(stmt_, index, kept.data(), kept.size(), SQLITE_STATIC, SQLITE_UTF8) !=
        SQLITE_OK) {
      mark_not_kept(index);
      fail(db_, "bind");
    }
    kept_ |= bit(index);
  } else {
    mark_not_kept(index);
    if (sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                            SQLITE_UTF8) != SQLITE_OK) {
      fail(db_, "bind");
    }
  }
  mark_bound(index);
  return *this;
}

Statement& Statement::bind_null(int index) {
  if (sqlite3_bind_null(stmt_, index) != SQLITE_OK) fail(db_, "bind");
  mark_bound(index);
  mark_not_kept(index);
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view value) {
  if (index < 1 || index > parameters_) {
    throw Error("bind: the statement has no parameter " + std::to_string(index));
  }
  auto& kept = texts_[static_cast<std::size_t>(index - 1)];
  kept.assign(value);
  mark_not_kept(index); // kept_ is for texts: a text bound next is bound again
  if (sqlite3_bind_blob64(stmt_, index, kept.data(), kept.size(), SQLITE_STATIC) != SQLITE_OK) {
    fail(db_, "bind");
  }
  mark_bound(index);
  return *this;
}

bool Statement::step() {
  if (!stepping_) {
    if (bound_ != all_ && parameters_ <= 64) null_unbound();
    stepping_ = true;
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string sql = sqlite3_sql(stmt_) ? sqlite3_sql(stmt_) : "";
  sqlite3_reset(stmt_);
  fail(db_, "\"" + sql.substr(0, 80) + "\" failed");
}

void Statement::run() {
  while (step()) {
  }
}

std::int64_t Statement::int64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

double Statement::real(int column) const {
  return sqlite3_column_double(stmt_, column);
}

std::string Statement::text(int column) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (p == nullptr) return {};
  return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::string_view Statement::blob(int column) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
  if (p == nullptr) return {};
  return {p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

namespace {
// SQLite counts every allocation under a global mutex for sqlite3_memory_used(), which nothing
// here reads: off, before the first connection initialises the library (a no-op if something
// else initialised it first).
void configure_library() {
  static const bool done = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)done;
}
} // namespace

Database::Database(const std::filesystem::path& file, bool read_only) {
  configure_library();
  // A reader is opened read-write (without creating the file) and refuses writes itself
  // (query_only): the VFS keeps a process's file locks to the process only for connections that
  // may write; a read-only one would take and drop real locks on the file (wal_writes.h).
  int flags = read_only ? SQLITE_OPEN_READWRITE : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX; // each connection is used by one thread at a time
  // Each transaction's log frames in one write (sqlite/wal_writes.h).
  if (sqlite3_open_v2(file.c_str(), &db_, flags, wal_batching_vfs()) != SQLITE_OK) {
    std::string msg = "cannot open database " + file.string();
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(msg + ": " + why);
  }
  sqlite3_busy_timeout(db_, 10000);
  if (read_only) {
    exec("PRAGMA query_only=ON;");
  } else {
    // WAL: readers never block the writer; NORMAL: a commit survives a process crash (kill -9);
    // only a power loss can take back the last commits.
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  }
  exec("PRAGMA foreign_keys=ON;");
}

Database::~Database() {
  by_address_.clear();
  cache_.clear();
  sqlite3_close_v2(db_);
}

Statement& Database::prepare(std::string_view sql) {
  auto seen = by_address_.find(sql.data());
  if (seen != by_address_.end() && *seen->second.text == sql) {
    return seen->second.statement->reset();
  }
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    it = cache_.emplace(std::string(sql), std::make_unique<Statement>(db_, sql)).first;
  }
  // Texts built at run time come at ever new addresses: forgotten now and then.
  if (by_address_.size() >= 512) by_address_.clear();
  by_address_[sql.data()] = Seen{&it->first, it->second.get()};
  return it->second->reset();
}

void Database::exec(std::string_view sql) {
  char* err = nullptr;
  std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw Error("\"" + text.substr(0, 80) + "\" failed: " + msg);
  }
}

std::int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

int Database::changes() const {
  return sqlite3_changes(db_);
}

Transaction::Transaction(Database& db) : db_(db) {
  db_.prepare("BEGIN IMMEDIATE").run();
}

Transaction::~Transaction() {
  if (!done_) {
    try {
      db_.prepare("ROLLBACK").run();
    } catch (...) { // NOLINT(bugprone-empty-catch): nothing more can be done in a destructor
    }
  }
}

void Transaction::commit() {
  db_.prepare("COMMIT").run();
  done_ = true;
}

} // namespace capstan::sqlite
