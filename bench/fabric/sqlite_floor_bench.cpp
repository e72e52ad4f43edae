// SQLite floor: the CPU time a task's durable record costs at the least, without the engine,
// the wire or any JSON. Each task is inserted in one transaction (its dispatch) and updated in a
// later one (its result), both committed before they would take effect, with the store's
// settings (WAL, synchronous=NORMAL, prepared statements reused) and one transaction per batch
// of tasks, as the engine commits one per batch of events. Then the same through capstan's Store,
// with the rows and calls the engine makes for a run of a one-step pipeline: what the store adds
// to the floor.
//
//   sqlite_floor_bench [--tasks N] [--store-only] [--batch N]
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
#include "sqlite/database.h"
#include "store/store.h"

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

// A run of a one-step pipeline as the engine stores it: the batch that starts it reads the next
// sequence number, writes its audit record and inserts the execution with its stage and step (the
// step dispatched); the batch of its result writes what changed of the step, the stage and the
// execution.
Figures run_store(const std::filesystem::path& dir, int tasks, int batch) {
  namespace st = capstan::store;
  auto data = dir / ("store-" + std::to_string(batch));
  st::Store store(data);
  const std::string plan = R"({"identifier":"bench","stages":[{"identifier":"s","name":"s",)"
                           R"("type":"Custom","steps":[{"identifier":"noop","type":"Noop"}]}]})";
  auto record = [&](int task) {
    st::ExecutionRecord e;
    char id[32];
    std::snprintf(id, sizeof id, "%09dr%08d", 100000000 + task / 4, task);
    e.id = id;
    e.pipeline = "bench";
    e.pipeline_version = 1;
    e.status = st::status::kRunning;
    e.plan_text = plan;
    e.created_at = e.started_at = 1700000000000 + task;
    e.revision = 3;
    e.triggered_by = "bench";
    st::StageRecord stage;
    stage.identifier = stage.name = "s";
    stage.type = "Custom";
    stage.status = st::status::kRunning;
    stage.started_at = e.started_at;
    e.stages.push_back(stage);
    st::StepRecord step;
    step.stage_identifier = "s";
    step.identifier = step.name = "noop";
    step.type = "Noop";
    step.status = st::status::kDispatched;
    step.attempt = 1;
    step.task_id = e.id + ".0.0.1";
    step.delegate = "bench-0";
    step.delegate_instance = "0123456789abcdef";
    step.queued_at = step.started_at = e.started_at;
    step.timeout_ms = 600000;
    e.steps.push_back(step);
    return e;
  };
  std::vector<st::ExecutionRecord> open;
  double cpu0 = thread_cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  for (int first = 0; first < tasks; first += batch) {
    int last = std::min(tasks, first + batch);
    open.clear();
    {
      capstan::sqlite::Transaction tx(store.writer());
      for (int task = first; task < last; ++task) {
        auto e = record(task);
        e.sequence = store.next_sequence(e.pipeline);
        st::AuditRecord a;
        a.user = "bench";
        a.action = "run";
        a.kind = "execution";
        a.target = a.execution_id = e.id;
        a.time = e.created_at;
        a.details_text = R"({"pipeline":"bench","sequence":)" + std::to_string(e.sequence) + "}";
        store.append_audit(a);
        store.insert_execution(e);
        open.push_back(std::move(e));
      }
      tx.commit();
    }
    capstan::sqlite::Transaction tx(store.writer());
    for (auto& e : open) {
      auto& step = e.steps[0];
      step.status = st::status::kSucceeded;
      step.ended_at = e.started_at + 1;
      step.log_cursor = 1;
      auto& stage = e.stages[0];
      stage.status = st::status::kSucceeded;
      stage.ended_at = step.ended_at;
      e.status = st::status::kSucceeded;
      e.ended_at = step.ended_at;
      e.revision += 3;
      store.update_execution(e, true, {0}, {0});
    }
    tx.commit();
  }
  Figures f;
  f.cpu_us = 1e6 * (thread_cpu_seconds() - cpu0) / tasks;
  f.wall_us =
      1e6 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / tasks;
  return f;
}

} // namespace

int main(int argc, char** argv) {
  int tasks = 20000;
  bool store_only = false; // for a profile of the Store's part alone
  int only_batch = 0;      // one batch size only (0: 1, 8 and 32)
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--tasks" && i + 1 < argc) {
      tasks = std::stoi(argv[++i]);
    } else if (a == "--store-only") {
      store_only = true;
    } else if (a == "--batch" && i + 1 < argc) {
      only_batch = std::stoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: sqlite_floor_bench [--tasks N] [--store-only] [--batch N]\n");
      return 2;
    }
  }
  if (only_batch < 0) {
    std::fprintf(stderr, "sqlite_floor_bench: --batch must be at least 1\n");
    return 2;
  }
  const std::vector<int> batches =
      only_batch != 0 ? std::vector<int>{only_batch} : std::vector<int>{1, 8, 32};
  capstan::testing::TempDir dir;
  std::printf("sqlite floor: %d tasks, WAL, synchronous=NORMAL, each task inserted in one "
              "transaction and updated in a later one\n",
              tasks);
  std::printf("%-34s %14s %14s\n", "", "CPU us/task", "wall us/task");
  for (int rows : {1, 4}) {
    if (store_only) break;
    for (int batch : batches) {
      auto f = run(dir.path(), tasks, batch, rows);
      std::printf("%d row(s)/task, %2d task(s)/transaction %14.1f %14.1f\n", rows, batch, f.cpu_us,
                  f.wall_us);
    }
  }
  std::printf("through capstan's Store (schema version %d): the rows and calls of a one-step "
              "run\n",
              capstan::store::schema_version());
  for (int batch : batches) {
    auto f = run_store(dir.path(), tasks, batch);
    std::printf("Store, %2d task(s)/transaction %21.1f %14.1f\n", batch, f.cpu_us, f.wall_us);
  }
  return 0;
}
