// Footprint and scale-out benchmarks with real processes on loopback.
//
//   fleet_bench footprint   RSS of an idle delegate with the bundled plugins, then with 100
//                           concurrent sleeping tasks (shell `sleep`, and the bench plugin's
//                           in-process Sleep).
//   fleet_bench scaleout [--delegates N] [--tasks T]
//                           N delegates on one coordinator, T no-op tasks (executions of 20
//                           steps); checks from the store that every task ran exactly once and
//                           reports throughput and the coordinator's peak RSS.
#include <sqlite3.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
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
  } catch (const std::exception& e) {
    std::cerr << "fleet_bench: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "usage: fleet_bench footprint | scaleout [--delegates N] [--tasks T]\n";
  return 2;
}
