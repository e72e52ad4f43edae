// Footprint and scale-out benchmarks with real processes on loopback.
//
//   fleet_bench footprint   RSS of an idle delegate with the bundled plugins, then with 100
//                           concurrent sleeping tasks (shell `sleep`, and the bench plugin's
//                           in-process Sleep).
//   fleet_bench scaleout [--delegates N] [--tasks T]
//                           N delegates on one coordinator, T no-op tasks (executions of 20
//                           steps); checks from the store that every task ran exactly once and
//                           reports throughput and the coordinator's peak RSS.
//   fleet_bench backlog [--tasks N]
//                           N one-step no-op executions whose step selects delegate `a` (4
//                           slots), queued behind 4 long steps on `a`, drained once those are
//                           aborted, with an idle delegate `b` (8 slots nothing queued can use)
//                           and, as the baseline in the same run, without it: drain rate, the
//                           engine thread's CPU per task while draining, wall time.
#include <sqlite3.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>

#include "../../tests/integration/stack.h"

using namespace capstan::testing;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// VmRSS or VmHWM of a process, in KiB.
long status_kib(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

double mib(long kib) {
  return static_cast<double>(kib) / 1024.0;
}

std::string sleepers(const std::string& id, const std::string& type) {
  std::string step = type == "Shell" ? "                  type: ShellScript\n"
                                       "                  spec:\n"
                                       "                    shell: Bash\n"
                                       "                    source:\n"
                                       "                      type: Inline\n"
                                       "                      spec:\n"
                                       "                        script: sleep 6\n"
                                     : "                  type: Sleep\n"
                                       "                  spec: {seconds: 6}\n";
  return "pipeline:\n  identifier: " + id + "\n  name: " + id +
         "\n  stages:\n    - stage:\n        identifier: s\n        name: s\n        type: Custom\n"
         "        spec:\n          execution:\n            steps:\n"
         "              - step:\n                  identifier: nap\n                  name: nap\n" +
         step;
}

int footprint() {
  TempDir dir("capstan-footprint");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto& d = stack.start_delegate("foot", {plugin_dir(), CAPSTAN_BENCH_PLUGIN_DIR}, 100);
  if (!stack.wait_for_delegates(1)) throw std::runtime_error("no delegate:\n" + d.log());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  int pid = d.child().pid();
  long idle = status_kib(pid, "VmRSS");
  std::printf("footprint: delegate with the bundled plugins + bench plugin, 100 slots\n");
  std::printf("%-46s %8.1f MiB\n", "idle (connected, plugins loaded)", mib(idle));
  for (const std::string type : {"Shell", "Sleep"}) {
    write_file(dir / (type + ".yaml"), sleepers("nap" + type, type));
    stack.apply_file(dir / (type + ".yaml"));
    if (stack.last_status() != 200) throw std::runtime_error("apply failed");
    std::vector<std::string> ids;
    for (int i = 0; i < 100; ++i) {
      ids.push_back(
          stack.post("/api/v1/pipelines/nap" + type + "/executions", json::object())["id"]);
    }
    long peak = 0;
    int most = 0;
    auto until = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < until) {
      int running = 0;
      auto all = stack.get("/api/v1/delegates");
      for (const auto& x : all["items"]) {
        if (x["name"] == "foot") running = x["running"];
      }
      most = std::max(most, running);
      peak = std::max(peak, status_kib(pid, "VmRSS"));
      if (most == 100 && running == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (const auto& id : ids) stack.wait_for_end(id);
    std::printf("%-46s %8.1f MiB  (%d tasks at once)\n",
                ("100 concurrent sleeping tasks, " +
                 std::string(type == "Shell" ? "ShellScript (bash child)" : "in-process Sleep"))
                    .c_str(),
                mib(peak), most);
  }
  std::printf("%-46s %8.1f MiB\n", "peak over the run (VmHWM)", mib(status_kib(pid, "VmHWM")));
  std::printf("%-46s %8.1f MiB\n", "after the tasks", mib(status_kib(pid, "VmRSS")));
  return 0;
}

int scaleout(int delegates, int tasks) {
  TempDir dir("capstan-scaleout");
  Stack stack(dir.path());
  stack.start_coordinator();
  for (int i = 0; i < delegates; ++i) {
    stack.start_delegate("d" + std::to_string(i), {CAPSTAN_BENCH_PLUGIN_DIR}, 4,
                         {"--log-level", "warn"});
  }
  if (!stack.wait_for_delegates(delegates)) throw std::runtime_error("delegates did not connect");
  const int per_execution = 20;
  std::string steps;
  for (int i = 0; i < per_execution; ++i) {
    steps +=
        "              - step:\n                  type: Noop\n                  identifier: n" +
        std::to_string(i) + "\n                  name: n" + std::to_string(i) +
        "\n                  spec: {log: true}\n";
  }
  write_file(dir / "fleet.yaml",
             "pipeline:\n  identifier: fleet\n  name: fleet\n  stages:\n    - stage:\n"
             "        identifier: s\n        name: s\n        type: Custom\n        spec:\n"
             "          execution:\n            steps:\n" +
                 steps);
  stack.apply_file(dir / "fleet.yaml");
  if (stack.last_status() != 200) throw std::runtime_error("apply failed");
  int executions = tasks / per_execution;
  auto begin = Clock::now();
  std::vector<std::string> ids;
  for (int i = 0; i < executions; ++i) {
    ids.push_back(stack.post("/api/v1/pipelines/fleet/executions", json::object())["id"]);
  }
  int succeeded = 0;
  for (const auto& id : ids) succeeded += stack.wait_for_end(id)["status"] == "Succeeded";
  double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  int pid = stack.coordinator().child().pid();
  long hwm = status_kib(pid, "VmHWM"), rss = status_kib(pid, "VmRSS");

  // The steps through the API: a small execution keeps its steps in its own row.
  long steps_total = 0, first_attempt = 0;
  std::set<std::string> used;
  for (const auto& id : ids) {
    for (const auto& stage : stack.get("/api/v1/executions/" + id)["stages"]) {
      for (const auto& step : stage["steps"]) {
        ++steps_total;
        first_attempt += step["status"] == "Succeeded" && step["attempt"] == 1;
        used.insert(step["delegate"].get<std::string>());
      }
    }
  }
  const auto on_delegates = static_cast<long>(used.size());
  // Exactly once, from the store: each step logged once. Read once the coordinator has stopped:
  // while it runs, no other process can open its database.
  stack.coordinator().child().signal(SIGTERM);
  stack.coordinator().child().wait_for(std::chrono::seconds(30));
  sqlite3* db = nullptr;
  sqlite3_open_v2((dir / "coordinator" / "capstan.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  auto scalar = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
    sqlite3_step(st);
    long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
  };
  long ran_lines = scalar("SELECT COUNT(*) FROM logs WHERE line LIKE 'ran %'");
  long distinct_ran = scalar("SELECT COUNT(DISTINCT line) FROM logs WHERE line LIKE 'ran %'");
  sqlite3_close(db);

  std::printf("scale-out: %d delegates x 4 slots, %d executions x %d no-op steps\n", delegates,
              executions, per_execution);
  std::printf("  tasks: %ld, succeeded on attempt 1: %ld, ran (log lines): %ld, distinct: %ld, "
              "delegates used: %ld\n",
              steps_total, first_attempt, ran_lines, distinct_ran, on_delegates);
  std::printf("  executions succeeded: %d of %d\n", succeeded, executions);
  std::printf("  throughput: %.0f tasks/s (%.1f s end to end, HTTP submission included)\n",
              steps_total / seconds, seconds);
  std::printf("  coordinator RSS: %.1f MiB now, %.1f MiB peak\n", mib(rss), mib(hwm));
  bool exact =
      steps_total == tasks && first_attempt == tasks && ran_lines == tasks && distinct_ran == tasks;
  std::printf("  every task done exactly once: %s\n", exact ? "yes" : "NO");
  return exact ? 0 : 1;
}

// CPU seconds (user + system) of one named thread of a process.
double thread_cpu(int pid, const std::string& name) {
  long ticks = sysconf(_SC_CLK_TCK);
  for (const auto& t :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::string comm = read_file(t.path() / "comm");
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    if (comm != name) continue;
    std::string stat = read_file(t.path() / "stat");
    std::istringstream in(stat.substr(stat.rfind(')') + 2));
    std::string field;
    double cpu = 0;
    for (int i = 3; in >> field && i <= 15; ++i) {
      if (i == 14 || i == 15) cpu += std::stod(field) / static_cast<double>(ticks);
    }
    return cpu;
  }
  return 0;
}

struct Drain {
  double seconds = 0;        // from the slots of `a` freeing to the last execution's end
  double submit_seconds = 0; // the submissions, while every slot of `a` is taken
  double engine_cpu_us = 0;  // the engine thread's CPU per task while the backlog drains
  int succeeded = 0;
};

std::string one_step(const std::string& id, const std::string& step) {
  return "pipeline:\n  identifier: " + id + "\n  name: " + id +
         "\n  stages:\n    - stage:\n        identifier: s\n        name: s\n"
         "        type: Custom\n        spec:\n          execution:\n            steps:\n"
         "              - step:\n                  identifier: n\n                  name: n\n"
         "                  delegateSelectors: [a]\n" +
         step;
}

// A backlog of N executions of one Noop step that selects `a`, queued while the 4 slots of `a`
// are taken by long Sleep steps, then drained once those are aborted; with `idle_b`, a delegate
// `b` whose free slots no queued task can use.
Drain drain(int tasks, bool idle_b) {
  TempDir dir("capstan-backlog");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("a", {CAPSTAN_BENCH_PLUGIN_DIR}, 4, {"--tags", "a", "--log-level", "warn"});
  if (idle_b) {
    stack.start_delegate("b", {CAPSTAN_BENCH_PLUGIN_DIR}, 8,
                         {"--tags", "b", "--log-level", "warn"});
  }
  if (!stack.wait_for_delegates(idle_b ? 2 : 1)) {
    throw std::runtime_error("delegates did not connect");
  }
  stack.apply_text("hold.yaml", one_step("hold", "                  type: Sleep\n"
                                                 "                  spec: {seconds: 3600}\n"));
  stack.apply_text("backlog.yaml", one_step("backlog", "                  type: Noop\n"
                                                       "                  spec: {}\n"));
  if (stack.last_status() != 200) throw std::runtime_error("apply failed");
  std::vector<std::string> holds;
  for (int i = 0; i < 4; ++i) {
    holds.push_back(stack.post("/api/v1/pipelines/hold/executions", json::object())["id"]);
  }
  auto running = [&] {
    for (const auto& id : holds) {
      auto e = stack.get("/api/v1/executions/" + id);
      if (e["stages"][0]["steps"][0]["status"] != "Running") return false;
    }
    return true;
  };
  if (!wait_until(running, std::chrono::seconds(20))) {
    throw std::runtime_error("the holding steps did not start");
  }
  Drain out;
  auto begin = Clock::now();
  std::vector<std::string> ids;
  for (int i = 0; i < tasks; ++i) {
    ids.push_back(stack.post("/api/v1/pipelines/backlog/executions", json::object())["id"]);
  }
  out.submit_seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  const int pid = stack.coordinator().child().pid();
  const double cpu_before = thread_cpu(pid, "capstan-engine");
  begin = Clock::now();
  for (const auto& id : holds) stack.post("/api/v1/executions/" + id + "/abort", json::object());
  // Oldest first: the last one submitted ends last (give or take the slots in flight).
  auto deadline = Clock::now() + std::chrono::minutes(20);
  std::int64_t revision = 0;
  for (;;) {
    auto w = stack.get("/api/v1/executions/" + ids.back() +
                       "/watch?wait=5&after=999999999&revision=" + std::to_string(revision));
    revision = w["execution"]["revision"];
    std::string status = w["execution"]["status"];
    if (status == "Succeeded" || status == "Failed" || status == "Aborted") break;
    if (Clock::now() > deadline) throw std::runtime_error("the backlog did not drain in 20 min");
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  out.engine_cpu_us = 1e6 * (thread_cpu(pid, "capstan-engine") - cpu_before) / tasks;
  for (const auto& id : ids) out.succeeded += stack.wait_for_end(id)["status"] == "Succeeded";
  return out;
}

int backlog(int tasks) {
  std::printf("backlog: %d one-step no-op executions selecting delegate a (4 slots), queued "
              "behind 4 long steps on a, drained once those are aborted\n",
              tasks);
  std::printf("  %-34s %10s %9s %10s %16s %10s\n", "", "tasks/s", "wall s", "submit s",
              "engine us/task", "succeeded");
  Drain base = drain(tasks, false), idle = drain(tasks, true);
  for (const auto& [name, d] :
       {std::pair{"baseline: a only (all slots busy)", base}, {"a busy, b idle (8 slots)", idle}}) {
    std::printf("  %-34s %10.0f %9.1f %10.1f %16.0f %10d\n", name, tasks / d.seconds, d.seconds,
                d.submit_seconds, d.engine_cpu_us, d.succeeded);
  }
  std::printf("  idle b / baseline: drain rate x%.2f, engine CPU per task x%.2f\n",
              base.seconds / idle.seconds, idle.engine_cpu_us / base.engine_cpu_us);
  return base.succeeded == tasks && idle.succeeded == tasks ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  std::string what = argc > 1 ? argv[1] : "";
  try {
    if (what == "footprint") return footprint();
    if (what == "scaleout") {
      int delegates = 50, tasks = 10000;
      for (int i = 2; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--delegates") delegates = std::stoi(argv[i + 1]);
        if (a == "--tasks") tasks = std::stoi(argv[i + 1]);
      }
      return scaleout(delegates, tasks);
    }
    if (what == "backlog") {
      int tasks = 5000;
      for (int i = 2; i + 1 < argc; i += 2) {
        if (std::string(argv[i]) == "--tasks") tasks = std::stoi(argv[i + 1]);
      }
      return backlog(tasks);
    }
  } catch (const std::exception& e) {
    std::cerr << "fleet_bench: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "usage: fleet_bench footprint | scaleout [--delegates N] [--tasks T] | backlog "
               "[--tasks N]\n";
  return 2;
}
