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

// A process forked now, before this one opens the file, that reads it as another process would
// once told to (a byte on the pipe), and exits 0 when what it read is `expect`.
pid_t read_in_another_process(const std::filesystem::path& file, const std::string& expect,
                              int (&go)[2]) {
  if (pipe(go) != 0) return -1;
  pid_t child = fork();
  if (child == 0) {
    close(go[1]);
    char byte = 0;
    if (read(go[0], &byte, 1) != 1) _exit(3);
    PlainReader reader(file);
    _exit(reader.text("SELECT count(*) FROM t") == expect ? 0 : 1);
  }
  close(go[0]);
  return child;
}

int release_and_wait(pid_t child, int (&go)[2]) {
  char byte = 1;
  EXPECT_EQ(write(go[1], &byte, 1), 1);
  close(go[1]);
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, 0), child);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(WalWrites, NoOtherProcessOpensTheFileWhileThisOneHasItOpen) {
  testing::TempDir dir;
  auto file = dir.path() / "w.db";
  int go[2];
  pid_t refused = read_in_another_process(file, "error: database is locked", go);
  ASSERT_GT(refused, 0);
  {
    Database db(file);
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    commit_rows(db, 0, 1, 10);
    Database reader(file, true); // this process's readers are not kept out
    EXPECT_EQ(release_and_wait(refused, go), 0) << "another process read the file";
    auto& q = reader.prepare("SELECT count(*) FROM t");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.int64(0), 1);
    q.reset();
  }
  pid_t reads = read_in_another_process(file, "1", go); // once every connection has closed
  ASSERT_GT(reads, 0);
  EXPECT_EQ(release_and_wait(reads, go), 0) << "another process could not read the closed file";
}

TEST(WalWrites, AReaderSeesEachCommitAndWritesNothing) {
  testing::TempDir dir;
  auto file = dir.path() / "w.db";
  Database db(file);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  Database reader(file, true);
  auto count = [&] {
    auto& q = reader.prepare("SELECT count(*) FROM t");
    EXPECT_TRUE(q.step());
    auto n = q.int64(0);
    q.reset();
    return n;
  };
  for (int i = 0; i < 5; ++i) {
    commit_rows(db, i * 10, 10, 100);
    EXPECT_EQ(count(), (i + 1) * 10);
  }
  EXPECT_THROW(reader.exec("INSERT INTO t (id, body) VALUES (1000, 'x')"), Error);
  EXPECT_EQ(count(), 50);
  EXPECT_THROW(Database(dir.path() / "absent.db", true), Error);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "absent.db"));
}

} // namespace
} // namespace capstan::sqlite
