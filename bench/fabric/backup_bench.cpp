// Backup benchmark: how long Store::backup takes on a database of N executions, and what it does
// to the commits of a writer running beside it, against the same writer with no backup running.
//
//   backup_bench [--executions N] [--logs L]   (defaults 10000 and 20 log lines per execution)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "capstan/testing/testing.h"
#include "sqlite/database.h"
#include "store/store.h"

namespace {

using namespace capstan;
using Clock = std::chrono::steady_clock;

store::ExecutionRecord execution(int n) {
  store::ExecutionRecord e;
  char id[32];
  std::snprintf(id, sizeof id, "bk%010d", n);
  e.id = id;
  e.pipeline = "p";
  e.pipeline_version = 1;
  e.sequence = n;
  e.status = store::status::kSucceeded;
  e.plan_text = R"({"identifier":"p","stages":[{"identifier":"build"},{"identifier":"deploy"}]})";
  e.created_at = e.started_at = 1000 + n;
  for (const char* s : {"build", "deploy"}) {
    store::StageRecord stage;
    stage.index = static_cast<int>(e.stages.size());
    stage.identifier = s;
    stage.name = s;
    stage.type = "Custom";
    e.stages.push_back(stage);
  }
  for (int i = 0; i < 3; ++i) {
    store::StepRecord step;
    step.stage_index = i / 2;
    step.step_index = i < 2 ? i : 0;
    step.stage_identifier = i < 2 ? "build" : "deploy";
    step.identifier = "step" + std::to_string(i);
    step.name = step.identifier;
    step.type = "ShellScript";
    step.status = store::status::kSucceeded;
    e.steps.push_back(step);
  }
  return e;
}

void commit_execution(store::Store& s, int n, int logs) {
  sqlite::Transaction tx(s.writer());
  auto e = execution(n);
  s.insert_execution(e);
  std::vector<store::LogRecord> lines;
  for (int i = 0; i < logs; ++i) {
    store::LogRecord l;
    l.seq = i + 1;
    l.step = "build.step0";
    l.time = 1000 + i;
    l.line = "line " + std::to_string(i) + " of a step's output, as long as a log line tends to be";
    lines.push_back(std::move(l));
  }
  if (!lines.empty()) s.append_logs(e.id, lines);
  tx.commit();
}

struct Commits {
  std::vector<double> ms; // each commit's wall time
  double percentile(double p) {
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    return ms[std::min(ms.size() - 1,
                       static_cast<std::size_t>(p * static_cast<double>(ms.size())))];
  }
};

// A writer committing one execution at a time until `stop`, each commit timed.
Commits write_until(store::Store& s, int& next, int logs, const std::atomic<bool>& stop) {
  Commits c;
  while (!stop) {
    auto t0 = Clock::now();
    commit_execution(s, next++, logs);
    c.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return c;
}

} // namespace

int main(int argc, char** argv) {
  int executions = 10000, logs = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--executions" && i + 1 < argc) {
      executions = std::stoi(argv[++i]);
    } else if (a == "--logs" && i + 1 < argc) {
      logs = std::stoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: backup_bench [--executions N] [--logs L]\n");
      return 2;
    }
  }
  testing::TempDir dir("capstan-backup-bench");
  store::Store s(dir.path());
  for (int n = 1; n <= executions; ++n) commit_execution(s, n, logs);
  int next = executions + 1;

  // The writer alone, for as long as a backup takes (measured first, without the writer).
  auto t0 = Clock::now();
  { auto warm = s.backup(); }
  double alone_backup_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();

  std::atomic<bool> stop{false};
  Commits baseline;
  std::thread w([&] { baseline = write_until(s, next, logs, stop); });
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(alone_backup_ms * 2 + 200));
  stop = true;
  w.join();

  // The same writer while backups run, one after another.
  stop = false;
  Commits during;
  std::thread w2([&] { during = write_until(s, next, logs, stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::vector<double> backup_ms;
  std::int64_t bytes = 0;
  for (int i = 0; i < 3; ++i) {
    auto b0 = Clock::now();
    auto copy = s.backup();
    backup_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - b0).count());
    bytes = copy.bytes;
  }
  stop = true;
  w2.join();

  std::printf("backup: %d executions (+%d log lines each), database %.1f MiB\n", executions, logs,
              static_cast<double>(bytes) / (1024.0 * 1024.0));
  std::printf("  backup alone: %.0f ms; beside a writer: %.0f, %.0f, %.0f ms\n", alone_backup_ms,
              backup_ms[0], backup_ms[1], backup_ms[2]);
  auto show = [](const char* what, Commits& c) {
    std::printf("  %s: %zu commits, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", what, c.ms.size(),
                c.percentile(0.5), c.percentile(0.99), c.percentile(1.0));
  };
  show("writer alone", baseline);
  show("writer beside the backups", during);
  return 0;
}
