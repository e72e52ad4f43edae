// SQLite floor: the CPU time a task's durable record costs at the least, without the engine,
// the wire or any JSON. Each task is inserted in one transaction (its dispatch) and updated in a
// later one (its result), both committed before they would take effect, with the store's
// settings (WAL, synchronous=NORMAL, prepared statements reused) and one transaction per batch
// of tasks, as the engine commits one per batch of events.
//
//   sqlite_floor_bench [--tasks N]
#include <sqlite3.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "capstan/testing/testing.h"

namespace {

void check(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
  }
}

void exec(sqlite3* db, const char* sql) {
  check(db, sqlite3_exec(db, sql, nullptr, nullptr, nullptr), sql);
}

double thread_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Figures {
  double cpu_us = 0;  // CPU time of this thread per task
  double wall_us = 0; // elapsed per task
};

// `rows` rows per task (the store writes an execution, a stage, a step and an audit record per
// run of a one-step pipeline; the result updates the first three), keyed by an id in creation
// order, `batch` tasks per transaction.
Figures run(const std::filesystem::path& dir, int tasks, int batch, int rows) {
  auto file = dir / ("floor-" + std::to_string(batch) + "-" + std::to_string(rows) + ".db");
  sqlite3* db = nullptr;
  if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open");
  exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
           "CREATE TABLE t (id TEXT NOT NULL, part INTEGER NOT NULL, status TEXT NOT NULL, "
           "ended_at INTEGER NOT NULL, PRIMARY KEY (id, part)) WITHOUT ROWID;");
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* insert = nullptr;
  sqlite3_stmt* update = nullptr;
  sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, nullptr);
  sqlite3_prepare_v2(db, "COMMIT", -1, &commit, nullptr);
  sqlite3_prepare_v2(db, "INSERT INTO t (id, part, status, ended_at) VALUES (?, ?, 'Running', 0)",
                     -1, &insert, nullptr);
  sqlite3_prepare_v2(db,
                     "UPDATE t SET status = 'Succeeded', ended_at = ? WHERE id = ? AND part = ?",
                     -1, &update, nullptr);
  auto step = [&](sqlite3_stmt* s) {
    check(db, sqlite3_step(s), sqlite3_sql(s));
    sqlite3_reset(s);
  };
  auto id_of = [](int task) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%018d", task);
    return std::string(buf);
  };
  double cpu0 = thread_cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  for (int first = 0; first < tasks; first += batch) {
    int last = std::min(tasks, first + batch);
    step(begin); // the batch's dispatches
    for (int task = first; task < last; ++task) {
      auto id = id_of(task);
      for (int part = 0; part < rows; ++part) {
        sqlite3_bind_text(insert, 1, id.c_str(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
        sqlite3_bind_int(insert, 2, part);
        step(insert);
      }
    }
    step(commit);
    step(begin); // their results
    for (int task = first; task < last; ++task) {
      auto id = id_of(task);
      for (int part = 0; part < std::max(1, rows - 1); ++part) {
        sqlite3_bind_int64(update, 1, task);
        sqlite3_bind_text(update, 2, id.c_str(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
        sqlite3_bind_int(update, 3, part);
        step(update);
      }
    }
    step(commit);
  }
  Figures f;
  f.cpu_us = 1e6 * (thread_cpu_seconds() - cpu0) / tasks;
  f.wall_us =
      1e6 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / tasks;
  for (auto* s : {begin, commit, insert, update}) sqlite3_finalize(s);
  sqlite3_close(db);
  return f;
}

} // namespace

int main(int argc, char** argv) {
  int tasks = 20000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--tasks" && i + 1 < argc) {
      tasks = std::stoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: sqlite_floor_bench [--tasks N]\n");
      return 2;
    }
  }
  capstan::testing::TempDir dir;
  std::printf("sqlite floor: %d tasks, WAL, synchronous=NORMAL, each task inserted in one "
              "transaction and updated in a later one\n",
              tasks);
  std::printf("%-34s %14s %14s\n", "", "CPU us/task", "wall us/task");
  for (int rows : {1, 4}) {
    for (int batch : {1, 8, 32}) {
      auto f = run(dir.path(), tasks, batch, rows);
      std::printf("%d row(s)/task, %2d task(s)/transaction %14.1f %14.1f\n", rows, batch, f.cpu_us,
                  f.wall_us);
    }
  }
  return 0;
}
