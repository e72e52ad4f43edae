// Dispatch benchmark: no-op tasks through the real engine (every state change persisted in
// SQLite), the real wire (CurveZMQ) and K real delegate processes, against a raw cppzmq
// ROUTER/DEALER echo of the same message sizes measured in the same run.
//
//   dispatch_bench [--tasks N] [--delegates K] [--slots S] [--rate R] [--steps M] [--insecure]
//                  [--legs]
//
// Three phases: loaded (K x S executions in flight at all times: the rate the whole path can
// sustain), paced (R executions a second started on a fixed schedule however fast they end, so
// latency at that rate is measured from when each was due, queueing included) and one at a time.
// --legs also splits each execution's latency where the engine sees it: to its task's dispatch
// committed, to its Result read, to its end committed.
// Each execution runs a pipeline of M no-op steps one after the other (default 1): with M > 1 a
// run's own cost (its row, plan, audit entry and end) is shared by M tasks. Rates and CPU are
// per task; latencies are per execution.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <semaphore>
#include <sstream>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <zmq.hpp>

#include "capstan/testing/testing.h"
#include "capstan/wire/codec.h"
#include "capstan/wire/router.h"
#include "engine/engine.h"
#include "model/object.h"
#include "store/store.h"

using namespace capstan;
using Clock = std::chrono::steady_clock;
using std::chrono::duration;

namespace {

struct Options {
  int tasks = 20000;
  int delegates = 4;
  int slots = 8;
  int rate = 5000;
  int steps = 1; // no-op steps per execution, run one after the other
  bool insecure = false;
  bool legs = false;
};

// Percentiles of an execution's latency split in legs (--legs), in ms.
struct Legs {
  double p50[3] = {};
  double p99[3] = {};
};

struct Figures {
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double p90_ms = 0;
  double mean_ms = 0;
  Legs legs;
  double cpu_us = 0; // raw echo: this process's CPU per round trip, both ends together
};

// CPU seconds (user + system) of each thread of this process, by thread name.
std::map<std::string, double> thread_cpu() {
  std::map<std::string, double> out;
  long ticks = sysconf(_SC_CLK_TCK);
  for (const auto& t : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string name = testing::read_file(t.path() / "comm");
    while (!name.empty() && name.back() == '\n') name.pop_back();
    std::string stat = testing::read_file(t.path() / "stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream in(stat.substr(close + 2));
    std::string field;
    double cpu = 0;
    for (int i = 3; in >> field && i <= 15; ++i) {
      if (i == 14 || i == 15) cpu += std::stod(field) / static_cast<double>(ticks);
    }
    out[name] += cpu;
  }
  return out;
}

// CPU seconds of this process so far, threads that ended included.
double self_cpu() {
  rusage r{};
  ::getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of a whole process.
double process_cpu(int pid) {
  std::string stat = testing::read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  double cpu = 0;
  long ticks = sysconf(_SC_CLK_TCK);
  for (int i = 3; in >> field && i <= 15; ++i) {
    if (i == 14 || i == 15) cpu += std::stod(field) / static_cast<double>(ticks);
  }
  return cpu;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// --- the baseline: ROUTER echo, K DEALERs with S messages in flight each ---------------------

Figures raw_echo(const Options& o, std::size_t request_bytes, std::size_t reply_bytes, int total,
                 int window) {
  const double cpu_before = self_cpu();
  zmq::context_t ctx(1);
  auto server_keys = wire::generate_curve_keys();
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  if (!o.insecure) {
    router.set(zmq::sockopt::curve_server, true);
    router.set(zmq::sockopt::curve_secretkey, server_keys.secret_key);
  }
  router.bind("tcp://127.0.0.1:0");
  std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::atomic<bool> stop{false};
  std::string reply(reply_bytes, 'r');
  // The server answers each request with a reply of the Result's size (one thread, as the
  // coordinator's socket has).
  std::thread server([&] {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    while (!stop) {
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      while (true) {
        zmq::message_t id, body;
        if (!router.recv(id, zmq::recv_flags::dontwait)) break;
        (void)router.recv(body, zmq::recv_flags::none);
        router.send(id, zmq::send_flags::sndmore);
        router.send(zmq::buffer(reply), zmq::send_flags::none);
      }
    }
  });
  int per_client = total / o.delegates;
  std::vector<double> latencies;
  std::mutex latency_mutex;
  auto begin = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < o.delegates; ++c) {
    clients.emplace_back([&] {
      zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
      dealer.set(zmq::sockopt::linger, 0);
      if (!o.insecure) {
        auto keys = wire::generate_curve_keys();
        dealer.set(zmq::sockopt::curve_serverkey, server_keys.public_key);
        dealer.set(zmq::sockopt::curve_publickey, keys.public_key);
        dealer.set(zmq::sockopt::curve_secretkey, keys.secret_key);
      }
      dealer.connect(endpoint);
      std::string request(request_bytes, 'a');
      std::vector<double> mine;
      std::deque<Clock::time_point> sent;
      int done = 0;
      while (done < per_client) {
        while (static_cast<int>(sent.size()) < window &&
               done + static_cast<int>(sent.size()) < per_client) {
          sent.push_back(Clock::now());
          dealer.send(zmq::buffer(request), zmq::send_flags::none);
        }
        zmq::message_t m;
        (void)dealer.recv(m, zmq::recv_flags::none);
        mine.push_back(duration<double, std::milli>(Clock::now() - sent.front()).count());
        sent.pop_front();
        ++done;
      }
      std::lock_guard lock(latency_mutex);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : clients) t.join();
  double seconds = duration<double>(Clock::now() - begin).count();
  stop = true;
  server.join();
  Figures out;
  out.cpu_us = 1e6 * (self_cpu() - cpu_before) / (per_client * o.delegates);
  out.per_second = per_client * o.delegates / seconds;
  out.p50_ms = percentile(latencies, 0.5);
  out.p99_ms = percentile(latencies, 0.99);
  return out;
}

// --- Capstan: engine + store + wire + delegate processes ---------------------------------------

class Bench {
public:
  Bench(const Options& o, const std::filesystem::path& root) : options_(o), root_(root) {
    store_ = std::make_unique<store::Store>(root / "coordinator");
    engine::EngineOptions eo;
    eo.coordinator_id = "bench";
    eo.initial_token_file = root / "delegate-token";
    eo.on_finished = [this](const std::string& id, const std::string& status) {
      finished(id, status);
    };
    if (o.legs) {
      eo.on_task = [this](const std::string& id, engine::EngineOptions::TaskMoment moment) {
        auto now = Clock::now();
        std::lock_guard lock(mutex_);
        auto& m = moments_[id];
        auto& at =
            moment == engine::EngineOptions::TaskMoment::kDispatched ? m.dispatched : m.result;
        if (at == Clock::time_point{}) at = now; // the first attempt's
      };
    }
    engine_ = std::make_unique<engine::Engine>(*store_, feed_, eo);
    keys_ = wire::generate_curve_keys();
    wire::RouterOptions ro;
    ro.bind = "tcp://127.0.0.1:0";
    if (!o.insecure) ro.curve_secret_key = keys_.secret_key;
    ro.own_thread = false; // as the coordinator: the engine's thread drives the socket
    router_ = std::make_unique<wire::Router>(
        context_, ro, [this](std::vector<wire::RouterEvent>&& e) { engine_->post(std::move(e)); });
    engine_->start(*router_);
    testing::write_file(root / "wire.pub", keys_.public_key + "\n");
    for (int i = 0; i < o.delegates; ++i) {
      std::vector<std::string> argv = {testing::binary("capstan-delegate").string(),
                                       "--coordinator",
                                       router_->endpoint(),
                                       "--name",
                                       "bench-" + std::to_string(i),
                                       "--slots",
                                       std::to_string(o.slots),
                                       "--data-dir",
                                       (root / ("delegate-" + std::to_string(i))).string(),
                                       "--plugin-dir",
                                       CAPSTAN_BENCH_PLUGIN_DIR,
                                       "--token-file",
                                       (root / "delegate-token").string(),
                                       "--log-level",
                                       "warn"};
      if (o.insecure) {
        argv.push_back("--insecure-wire");
      } else {
        argv.insert(argv.end(), {"--coordinator-key-file", (root / "wire.pub").string()});
      }
      delegates_.push_back(std::make_unique<testing::Daemon>(
          argv, root / ("delegate-" + std::to_string(i) + ".log")));
    }
    if (!testing::wait_until(
            [&] { return static_cast<int>(engine_->delegates().size()) == o.delegates; })) {
      throw std::runtime_error("delegates did not connect:\n" + delegates_[0]->log());
    }
    std::string yaml = R"(pipeline:
  identifier: bench
  name: bench
  stages:
    - stage:
        identifier: s
        name: s
        type: Custom
        spec:
          execution:
            steps:
)";
    for (int i = 0; i < o.steps; ++i) {
      std::string id = i == 0 ? "noop" : "noop" + std::to_string(i + 1);
      yaml += "              - step:\n"
              "                  type: Noop\n"
              "                  identifier: " +
              id +
              "\n"
              "                  name: " +
              id +
              "\n"
              "                  spec: {}\n";
    }
    auto objects = model::parse_objects({{"bench.yaml", yaml}});
    auto applied = engine_->apply(objects, false, "bench").get();
    if (!applied.ok()) throw std::runtime_error("apply failed: " + applied.message);
  }

  ~Bench() {
    delegates_.clear();
    engine_->stop();
    router_.reset();
  }

  // `total` executions of the no-op pipeline, `concurrency` of them in flight at all times, or
  // with `rate` > 0 one every 1/rate seconds however many are in flight; latency is from the run
  // command (or, paced, from when it was due) to the commit of the execution's end. One thread
  // submits without waiting for the run command's answer (an API with many clients); another
  // collects the answers (the new executions' ids) in order.
  Figures run(int total, int concurrency, double rate = 0) {
    {
      std::lock_guard lock(mutex_);
      latencies_.clear();
      latencies_.reserve(static_cast<std::size_t>(total));
      started_.clear();
      early_.clear();
      due_.clear();
      moments_.clear();
      remaining_ = total;
    }
    std::counting_semaphore<> permits(concurrency);
    if (rate <= 0) permits_ = &permits;
    std::mutex pending_mutex;
    std::condition_variable pending_cv;
    std::deque<std::pair<Clock::time_point, std::future<engine::Outcome>>> pending;
    auto begin = Clock::now();
    std::thread submitter([&] {
      const auto period = std::chrono::duration_cast<Clock::duration>(
          duration<double>(rate > 0 ? 1.0 / rate : 0.0));
      for (int n = 0; n < total; ++n) {
        auto t0 = Clock::now();
        if (rate > 0) {
          t0 = begin + period * n;
          std::this_thread::sleep_until(t0);
        } else {
          permits.acquire();
          t0 = Clock::now();
        }
        engine::RunRequest request;
        request.pipeline = "bench";
        request.user = "bench";
        auto answer = engine_->run(std::move(request));
        std::lock_guard lock(pending_mutex);
        pending.emplace_back(t0, std::move(answer));
        pending_cv.notify_one();
      }
    });
    std::thread collector([&] {
      for (int n = 0; n < total; ++n) {
        std::unique_lock wait(pending_mutex);
        pending_cv.wait(wait, [&] { return !pending.empty(); });
        auto [t0, answer] = std::move(pending.front());
        pending.pop_front();
        wait.unlock();
        auto outcome = answer.get();
        if (!outcome.ok()) throw std::runtime_error("run failed: " + outcome.message);
        std::string id = outcome.body["id"];
        std::lock_guard lock(mutex_);
        if (options_.legs) due_[id] = t0;
        if (auto e = early_.find(id); e != early_.end()) {
          latencies_.push_back(duration<double, std::milli>(e->second - t0).count());
          early_.erase(e);
        } else {
          started_[id] = t0;
        }
      }
    });
    submitter.join();
    collector.join();
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return remaining_ == 0; });
    }
    double seconds = duration<double>(Clock::now() - begin).count();
    permits_ = nullptr;
    double sum = 0;
    for (double l : latencies_) sum += l;
    return {total / seconds,
            percentile(latencies_, 0.5),
            percentile(latencies_, 0.99),
            percentile(latencies_, 0.9),
            latencies_.empty() ? 0 : sum / latencies_.size(),
            legs()};
  }

  wire::RouterStats wire_stats() const { return router_->stats(); }

  double delegates_cpu() {
    double total = 0;
    for (auto& d : delegates_) total += process_cpu(d->child().pid());
    return total;
  }

  // Checks the store: every execution succeeded, each step ran once on its first attempt.
  std::pair<int, int> verify() {
    // Through the store's reads: a small execution keeps its steps in its own row.
    std::vector<std::string> ids;
    {
      sqlite::Database db(store_->file(), true);
      auto& q = db.prepare("SELECT id FROM executions");
      while (q.step()) ids.push_back(q.text(0));
    }
    std::pair<int, int> out{0, 0};
    for (const auto& id : ids) {
      auto e = store_->execution(id);
      if (!e) continue;
      for (const auto& s : e->steps) {
        ++out.first;
        out.second += s.status == store::status::kSucceeded && s.attempt == 1 ? 1 : 0;
      }
    }
    return out;
  }

private:
  // The executions' latencies split where the engine saw them (--legs).
  Legs legs() {
    Legs out;
    if (!options_.legs) return out;
    std::lock_guard lock(mutex_);
    std::vector<double> leg[3];
    auto ms = [](Clock::time_point from, Clock::time_point to) {
      return duration<double, std::milli>(to - from).count();
    };
    for (const auto& [id, due] : due_) {
      auto m = moments_.find(id);
      if (m == moments_.end() || m->second.end == Clock::time_point{}) continue;
      leg[0].push_back(ms(due, m->second.dispatched));
      leg[1].push_back(ms(m->second.dispatched, m->second.result));
      leg[2].push_back(ms(m->second.result, m->second.end));
    }
    for (int i = 0; i < 3; ++i) {
      out.p50[i] = percentile(leg[i], 0.5);
      out.p99[i] = percentile(leg[i], 0.99);
    }
    return out;
  }

  void finished(const std::string& id, const std::string& status) {
    if (status != "Succeeded") spdlog::error("execution {} ended {}", id, status);
    auto now = Clock::now();
    bool last = false;
    {
      std::lock_guard lock(mutex_);
      if (options_.legs) moments_[id].end = now;
      if (auto s = started_.find(id); s != started_.end()) {
        latencies_.push_back(duration<double, std::milli>(now - s->second).count());
        started_.erase(s);
      } else {
        early_[id] = now; // ended before its submitter recorded it
      }
      last = --remaining_ == 0;
    }
    if (permits_ != nullptr) permits_->release();
    if (last) cv_.notify_all();
  }

  Options options_;
  std::filesystem::path root_;
  zmq::context_t context_{1};
  wire::CurveKeys keys_;
  std::unique_ptr<store::Store> store_;
  engine::ChangeFeed feed_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<wire::Router> router_;
  std::vector<std::unique_ptr<testing::Daemon>> delegates_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, Clock::time_point> started_, early_;
  // --legs only: when each execution was due, and when the engine saw its task's moments.
  struct Moments {
    Clock::time_point dispatched, result, end;
  };
  std::map<std::string, Clock::time_point> due_;
  std::map<std::string, Moments> moments_;
  std::vector<double> latencies_;
  int remaining_ = 0;
  std::counting_semaphore<>* permits_ = nullptr;
};

} // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&] { return i + 1 < argc ? std::stoi(argv[++i]) : 0; };
    if (a == "--tasks") {
      o.tasks = value();
    } else if (a == "--delegates") {
      o.delegates = value();
    } else if (a == "--slots") {
      o.slots = value();
    } else if (a == "--rate") {
      o.rate = value();
    } else if (a == "--steps") {
      o.steps = value();
    } else if (a == "--insecure") {
      o.insecure = true;
    } else if (a == "--legs") {
      o.legs = true;
    } else {
      std::cerr << "usage: dispatch_bench [--tasks N] [--delegates K] [--slots S] [--rate R] "
                   "[--steps M] [--insecure] [--legs]\n";
      return 2;
    }
  }
  if (o.tasks < 1 || o.delegates < 1 || o.slots < 1 || o.rate < 1 || o.steps < 1 || o.steps > 100 ||
      o.tasks < o.steps) {
    std::cerr << "dispatch_bench: --tasks, --delegates, --slots and --rate must be at least 1, "
                 "--steps from 1 to 100 and at most --tasks\n";
    return 2;
  }
  if (o.legs && o.steps > 1) {
    std::cerr << "dispatch_bench: --legs splits a one-step execution's latency; it cannot be "
                 "combined with --steps\n";
    return 2;
  }
  // Whole executions: the tasks run are a multiple of the steps per execution.
  const int runs = o.tasks / o.steps;
  o.tasks = runs * o.steps;
  const double m = o.steps;
  spdlog::set_level(spdlog::level::warn);
  // The sizes of what crosses the wire for one no-op task (as measured from the engine's
  // Assign and the delegate's Result for this pipeline).
  const std::size_t assign_bytes = 560, result_bytes = 80;
  int concurrency = o.delegates * o.slots;

  testing::TempDir dir("capstan-dispatch-bench");
  Bench bench(o, dir.path());
  bench.run(std::max(1, std::min(500, o.tasks) / o.steps), concurrency); // warm-up
  auto cpu_before = thread_cpu();
  double delegates_before = bench.delegates_cpu();
  auto wire_before = bench.wire_stats();
  auto loaded = bench.run(runs, concurrency);
  auto wire_after = bench.wire_stats();
  auto cpu_after = thread_cpu();
  double delegates_after = bench.delegates_cpu();
  auto paced_cpu_before = thread_cpu();
  double paced_delegates_before = bench.delegates_cpu();
  auto paced = bench.run(runs, concurrency, o.rate / m);
  auto paced_cpu_after = thread_cpu();
  double paced_delegates_after = bench.delegates_cpu();
  auto single = bench.run(std::max(1, std::min(2000, o.tasks) / o.steps), 1);
  auto [steps, once] = bench.verify();
  auto raw_loaded = raw_echo(o, assign_bytes, result_bytes, o.tasks, o.slots);
  auto raw_single = raw_echo(Options{o.tasks, 1, 1, o.rate, 1, o.insecure}, assign_bytes,
                             result_bytes, std::min(2000, o.tasks), 1);

  std::printf("dispatch: %d tasks, %d delegates x %d slots, %s, %d no-op step%s per execution\n",
              o.tasks, o.delegates, o.slots, o.insecure ? "plain TCP" : "CurveZMQ", o.steps,
              o.steps == 1 ? "" : "s");
  // Executions a second to tasks a second (latencies stay per execution).
  for (auto* f : {&loaded, &paced, &single}) f->per_second *= m;
  if (o.steps > 1) {
    std::printf("capstan's p50 and p99 are an execution's, from its run command to its end "
                "(%d tasks one after the other)\n",
                o.steps);
  }
  std::printf("%-44s %12s %10s %10s\n", "", "per second", "p50 ms", "p99 ms");
  std::printf("%-44s %12.0f %10.3f %10.3f\n", "capstan, loaded (all slots busy)", loaded.per_second,
              loaded.p50_ms, loaded.p99_ms);
  std::printf("%-44s %12.0f %10.3f %10.3f\n", "raw cppzmq echo, same window", raw_loaded.per_second,
              raw_loaded.p50_ms, raw_loaded.p99_ms);
  std::printf("%-44s %12.0f %10.3f %10.3f\n",
              ("capstan, paced at " + std::to_string(o.rate) + "/s").c_str(), paced.per_second,
              paced.p50_ms, paced.p99_ms);
  std::printf("%-44s %12.0f %10.3f %10.3f\n", "capstan, one task at a time", single.per_second,
              single.p50_ms, single.p99_ms);
  std::printf("%-44s %12.0f %10.3f %10.3f\n", "raw cppzmq echo, one at a time",
              raw_single.per_second, raw_single.p50_ms, raw_single.p99_ms);
  // Little's law: the executions in flight on average, against the window the submitters keep.
  std::printf("capstan, loaded: p90 %.3f ms, mean %.3f ms, executions in flight on average "
              "%.1f of %d\n",
              loaded.p90_ms, loaded.mean_ms, loaded.per_second / m * loaded.mean_ms / 1000.0,
              concurrency);
  if (o.legs) {
    auto print_legs = [](const char* phase, const Legs& l) {
      std::printf("%s, p50 (p99) ms: to dispatch committed %.3f (%.3f), to Result read %.3f "
                  "(%.3f), to end committed %.3f (%.3f)\n",
                  phase, l.p50[0], l.p99[0], l.p50[1], l.p99[1], l.p50[2], l.p99[2]);
    };
    print_legs("legs, loaded", loaded.legs);
    print_legs("legs, paced", paced.legs);
  }
  std::printf("ratio capstan / raw: loaded %.1f %%, one at a time %.1f %%\n",
              100.0 * loaded.per_second / raw_loaded.per_second,
              100.0 * single.per_second / raw_single.per_second);
  std::printf("store: %d steps, %d succeeded on their first attempt\n", steps, once);
  std::printf("CPU per task in the loaded run (machine shared with other work, so CPU time is "
              "the steadier figure):\n");
  double all = 0;
  for (const auto& [name, after] : cpu_after) {
    double used = after - cpu_before[name];
    if (used < 0.001) continue;
    all += used;
    std::printf("  %-22s %8.1f us\n", name.c_str(), 1e6 * used / o.tasks);
  }
  std::printf("  %-22s %8.1f us\n", "coordinator, total", 1e6 * all / o.tasks);
  std::printf("  %-22s %8.1f us\n", "delegates, total",
              1e6 * (delegates_after - delegates_before) / o.tasks);
  double paced_all = 0;
  for (const auto& [name, after] : paced_cpu_after) paced_all += after - paced_cpu_before[name];
  std::printf(
      "CPU per task in the paced run: engine thread %.1f us, coordinator %.1f us, "
      "delegates %.1f us\n",
      1e6 * (paced_cpu_after["capstan-engine"] - paced_cpu_before["capstan-engine"]) / o.tasks,
      1e6 * paced_all / o.tasks, 1e6 * (paced_delegates_after - paced_delegates_before) / o.tasks);
  // The floor for the wire's part: both ends of the echo (its server thread, its dealers and the
  // one ZeroMQ I/O thread they share) against the coordinator's threads other than the engine's
  // and the delegates, per task of the loaded run.
  std::printf("raw echo CPU per round trip, both ends (this process, idle engine included): "
              "%.1f us loaded, %.1f us one at a time\n",
              raw_loaded.cpu_us, raw_single.cpu_us);
  auto per_task = [&](std::uint64_t after, std::uint64_t before) {
    return static_cast<double>(after - before) / o.tasks;
  };
  std::printf("wire messages per task in the loaded run: %.2f to the delegates (%.2f of them "
              "batches), %.2f from them (%.2f batches)\n",
              per_task(wire_after.sent, wire_before.sent),
              per_task(wire_after.batches_sent, wire_before.batches_sent),
              per_task(wire_after.received, wire_before.received),
              per_task(wire_after.batches_received, wire_before.batches_received));
  return once == steps ? 0 : 1;
}
