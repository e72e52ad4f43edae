// The VFS that writes a transaction's log frames at once, against plain SQLite connections.
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "capstan/testing/testing.h"
#include "sqlite/database.h"

namespace capstan::sqlite {
namespace {

// A connection through SQLite's default VFS, as another process or tool would open the file.
class PlainReader {
public:
  explicit PlainReader(const std::filesystem::path& file) {
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << file << ": " << sqlite3_errmsg(db_);
    }
  }
  ~PlainReader() { sqlite3_close(db_); }
  PlainReader(const PlainReader&) = delete;
  PlainReader& operator=(const PlainReader&) = delete;

  std::string text(const char* sql) {
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      const auto* p = sqlite3_column_text(s, 0);
      out = p ? reinterpret_cast<const char*>(p) : "";
    } else {
      out = std::string("error: ") + sqlite3_errmsg(db_);
    }
    sqlite3_finalize(s);
    return out;
  }

private:
  sqlite3* db_ = nullptr;
};

void insert_rows(Database& db, int first, int count, int size) {
  auto& ins = db.prepare("INSERT INTO t (id, body) VALUES (?, ?)");
  for (int i = first; i < first + count; ++i) {
    ins.reset().bind(1, i).bind(2, std::string(static_cast<std::size_t>(size), 'a' + i % 26)).run();
  }
}

// Inserts in a transaction of their own, committed.
void commit_rows(Database& db, int first, int count, int size) {
  Transaction tx(db);
  insert_rows(db, first, count, size);
  tx.commit();
}

TEST(WalWrites, CommitsOfAnySizeAreSeenByAPlainConnectionWhileTheWriterIsOpen) {
  testing::TempDir dir;
  auto file = dir.path() / "w.db";
  Database db(file);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  commit_rows(db, 0, 1, 10); // one frame or two
  PlainReader reader(file);
  EXPECT_EQ(reader.text("SELECT count(*) FROM t"), "1");
  // About 1 MiB of log: written in several parts, as the unix VFS takes at most 128 KiB a call.
  commit_rows(db, 1, 400, 2500);
  EXPECT_EQ(reader.text("SELECT count(*) || ' ' || sum(length(body)) FROM t"), "401 1000010");
  EXPECT_EQ(reader.text("PRAGMA integrity_check"), "ok");
}

TEST(WalWrites, AProcessThatDiesAfterItsCommitLeavesItInTheFile) {
  testing::TempDir dir;
  auto file = dir.path() / "w.db";
  {
    Database db(file);
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  }
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // No close, no checkpoint: as if killed right after COMMIT returned.
    auto* db = new Database(file); // NOLINT: never destroyed, on purpose
    commit_rows(*db, 0, 50, 3000);
    commit_rows(*db, 50, 1, 5);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  PlainReader reader(file);
  EXPECT_EQ(reader.text("SELECT count(*) || ' ' || sum(length(body)) FROM t"), "51 150005");
  EXPECT_EQ(reader.text("PRAGMA integrity_check"), "ok");
}

TEST(WalWrites, ATransactionThatSpilledFramesAndRolledBackLeavesNothing) {
  testing::TempDir dir;
  auto file = dir.path() / "w.db";
  Database db(file);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL); PRAGMA cache_size=8");
  {
    // More pages than the cache holds: SQLite writes some to the log before the commit, then
    // reads them back.
    Transaction tx(db);
    insert_rows(db, 0, 200, 3000);
    auto& q = db.prepare("SELECT sum(length(body)) FROM t");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.int64(0), 600000);
    q.reset();
  } // rolled back
  commit_rows(db, 1000, 3, 7);
  PlainReader reader(file);
  EXPECT_EQ(reader.text("SELECT group_concat(id) FROM t"), "1000,1001,1002");
  EXPECT_EQ(reader.text("PRAGMA integrity_check"), "ok");
  Database again(file, true);
  auto& q = again.prepare("SELECT count(*) FROM t");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.int64(0), 3);
}

} // namespace
} // namespace capstan::sqlite
