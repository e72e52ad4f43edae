// capstan-coordinator: the control plane process (store, engine, wire endpoint, HTTP API).
#include <fcntl.h>
#include <malloc.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "api/http_api.h"
#include "capstan/wire/metrics.h"
#include "capstan/wire/router.h"
#include "engine/engine.h"
#include "model/duration.h"
#include "store/store.h"

namespace fs = std::filesystem;
using namespace capstan;

namespace {

constexpr const char* kVersion = "0.1.0";

const char* kUsage = R"(Usage: capstan-coordinator [options]

The Capstan control plane: stores applied objects and executions (SQLite), runs pipelines on
connected delegates (ZeroMQ) and serves the HTTP API the capstan CLI uses.

Options:
  --data-dir DIR            where the database, API token and endpoint file live
                            (default: $CAPSTAN_HOME/coordinator, or ~/.capstan/coordinator)
  --api-port PORT           HTTP API port on 127.0.0.1; 0 picks a free one (default 7780)
  --bind ENDPOINT           ZeroMQ endpoint delegates connect to; port 0 picks a free one
                            (default tcp://127.0.0.1:7700)
  --heartbeat-interval DUR  heartbeat period on the wire (default 1s)
  --heartbeat-misses N      a delegate silent for N intervals is lost (default 3)
  --delegate-wait DUR       how long a step waits when no connected delegate can run it (its
                            step type or delegate selectors match none) before it fails
                            (default 30s)
  --queue-timeout DUR       how long a step waits in the queue for a free slot on an eligible
                            delegate before it fails (default 30m)
  --timeout-grace DUR       how long past a step's timeout the coordinator waits for the
                            delegate's result before it fails the step itself (the delegate
                            stops a step when its timeout passes; this covers a delegate that
                            does not report) (default 30s)
  --webhook-secret-file F   the secret Git hosts' push webhooks (POST /api/v1/webhooks/git)
                            must sign with (GitHub) or send (GitLab); without it, unsigned
                            payloads are taken (they can only make applications refresh)
  --insecure-wire           no CurveZMQ on the wire (plain TCP; for debugging on a trusted
                            network only)
  --log-level LEVEL         trace, debug, info, warn or error (default info)
  --version                 print the version and exit
  -h, --help                show this help

On first start it creates, in <data-dir>, mode 0600: api-token (the HTTP API's bearer token),
wire.key and wire.pub (the CurveZMQ keypair of the wire endpoint; give delegates the public key
with --coordinator-key-file) and delegate-token (a delegate token named "default"; manage tokens
with 'capstan tokens'). On every start it writes <data-dir>/coordinator.json with the actual API
address, wire endpoint, wire public key and the paths of those files.

GET /metrics on the API port serves Prometheus metrics without a token.
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "capstan-coordinator: " << message << "\n"
            << "Run 'capstan-coordinator --help' for usage.\n";
  std::exit(2);
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
    throw std::runtime_error("no randomness available for the API token");
  }
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto b : buf) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

// The API token: read, or generated on first start into a file only the owner can read.
std::string load_or_create_token(const fs::path& file) {
  std::ifstream in(file);
  std::string token;
  if (in && std::getline(in, token) && !token.empty()) {
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::replace);
    return token;
  }
  token = random_hex(32);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + file.string());
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::fchmod(fd, 0600);
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + file.string());
  return token;
}

void write_private(const fs::path& file, const std::string& content) {
  auto tmp = file;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + tmp.string());
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ::fchmod(fd, 0600);
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + tmp.string());
  fs::rename(tmp, file);
}

// The wire's CurveZMQ keypair: read, or generated on first start (both files mode 0600).
wire::CurveKeys load_or_create_wire_keys(const fs::path& dir) {
  auto secret_file = dir / "wire.key";
  auto public_file = dir / "wire.pub";
  auto first_line = [](const fs::path& f) {
    std::ifstream in(f);
    std::string line;
    std::getline(in, line);
    return line;
  };
  if (fs::exists(secret_file)) {
    wire::CurveKeys keys{first_line(public_file), first_line(secret_file)};
    if (!wire::valid_curve_key(keys.secret_key) || !wire::valid_curve_key(keys.public_key)) {
      throw std::runtime_error(secret_file.string() + " or " + public_file.string() +
                               " does not hold a CurveZMQ key (40 Z85 characters); remove both "
                               "to generate a new keypair, then give delegates the new wire.pub");
    }
    fs::permissions(secret_file, fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::replace);
    return keys;
  }
  auto keys = wire::generate_curve_keys();
  write_private(public_file, keys.public_key + "\n");
  write_private(secret_file, keys.secret_key + "\n");
  spdlog::info("generated the wire keypair: {} (give delegates this public key)",
               public_file.string());
  return keys;
}

void write_atomically(const fs::path& file, const std::string& content) {
  auto tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, file);
}

std::chrono::milliseconds duration_flag(const std::string& flag, const std::string& value) {
  auto d = model::parse_duration(value);
  if (!d) usage_error(flag + " expects a duration such as 1s, 500ms or 2m, not '" + value + "'");
  return *d;
}

int int_flag(const std::string& flag, const std::string& value, int lo, int hi) {
  try {
    std::size_t used = 0;
    int v = std::stoi(value, &used);
    if (used == value.size() && v >= lo && v <= hi) return v;
  } catch (const std::exception&) { // NOLINT(bugprone-empty-catch): reported below
  }
  usage_error(flag + " expects a number from " + std::to_string(lo) + " to " + std::to_string(hi) +
              ", not '" + value + "'");
}

fs::path default_data_dir() {
  if (const char* h = std::getenv("CAPSTAN_HOME"); h && *h) return fs::path(h) / "coordinator";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".capstan" / "coordinator";
}

} // namespace

int main(int argc, char** argv) {
  // The HTTP API's 32 threads would each get a malloc arena of their own (up to 8 per core),
  // and every arena keeps the peak of the short-lived JSON it once held. Four arenas keep
  // contention low on the few cores a coordinator gets; MALLOC_ARENA_MAX still overrides.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 4);
  fs::path data_dir = default_data_dir();
  int api_port = 7780;
  std::string webhook_secret_file;
  wire::RouterOptions wire_options;
  engine::EngineOptions engine_options;
  std::string log_level = "info";
  bool insecure_wire = false;

  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string value;
    auto eq = a.find('=');
    bool has_inline = a.rfind("--", 0) == 0 && eq != std::string::npos;
    if (has_inline) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto next = [&]() -> std::string {
      if (has_inline) return value;
      if (i + 1 >= args.size()) usage_error(a + " needs a value");
      return args[++i];
    };
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--version") {
      std::cout << "capstan-coordinator " << kVersion << "\n";
      return 0;
    } else if (a == "--data-dir") {
      data_dir = next();
    } else if (a == "--api-port") {
      api_port = int_flag(a, next(), 0, 65535);
    } else if (a == "--bind") {
      wire_options.bind = next();
    } else if (a == "--heartbeat-interval") {
      wire_options.liveness.interval = duration_flag(a, next());
    } else if (a == "--heartbeat-misses") {
      wire_options.liveness.misses = static_cast<std::uint32_t>(int_flag(a, next(), 2, 100));
    } else if (a == "--delegate-wait") {
      engine_options.delegate_wait = duration_flag(a, next());
    } else if (a == "--queue-timeout") {
      engine_options.queue_timeout = duration_flag(a, next());
    } else if (a == "--timeout-grace") {
      engine_options.timeout_grace = duration_flag(a, next());
    } else if (a == "--webhook-secret-file") {
      webhook_secret_file = next();
    } else if (a == "--insecure-wire") {
      insecure_wire = true;
    } else if (a == "--log-level") {
      log_level = next();
    } else {
      usage_error("unknown option '" + a + "'");
    }
  }
  auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    usage_error("unknown log level '" + log_level + "'");
  }
  spdlog::set_level(level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // Signals are taken by sigwait below, never delivered to a thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  try {
    fs::create_directories(data_dir);
    data_dir = fs::canonical(data_dir);
    fs::permissions(data_dir, fs::perms::owner_all, fs::perm_options::replace);

    // One coordinator per data dir.
    auto lock_path = data_dir / "coordinator.lock";
    int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      std::cerr << "capstan-coordinator: another coordinator is running with data dir "
                << data_dir.string() << "\n";
      return 1;
    }

    auto token_file = data_dir / "api-token";
    std::string token = load_or_create_token(token_file);
    std::string coordinator_id = random_hex(8);
    auto keys = load_or_create_wire_keys(data_dir);
    if (!insecure_wire) wire_options.curve_secret_key = keys.secret_key;
    engine_options.initial_token_file = data_dir / "delegate-token";

    store::Store store(data_dir);
    engine::ChangeFeed feed;
    engine_options.coordinator_id = coordinator_id;
    engine_options.liveness = wire_options.liveness;
    engine_options.reattach_window = std::max(std::chrono::milliseconds(std::chrono::seconds(10)),
                                              wire_options.liveness.dead_after() * 3);
    engine::Engine engine(store, feed, engine_options);

    zmq::context_t context(1);
    std::unique_ptr<wire::Router> router;
    wire_options.own_thread = false; // the engine's thread drives the socket
    try {
      router = std::make_unique<wire::Router>(
          context, wire_options,
          [&](std::vector<wire::RouterEvent>&& e) { engine.post(std::move(e)); });
    } catch (const zmq::error_t& e) {
      std::cerr << "capstan-coordinator: cannot bind " << wire_options.bind << ": " << e.what()
                << " (in use? pick another with --bind)\n";
      return 1;
    }
    engine.start(*router);

    api::ApiOptions api_options;
    api_options.port = api_port;
    api_options.token = token;
    api_options.coordinator_id = coordinator_id;
    if (!webhook_secret_file.empty()) {
      std::ifstream in(webhook_secret_file);
      if (!in) usage_error("cannot read --webhook-secret-file " + webhook_secret_file);
      std::getline(in, api_options.webhook_secret);
      if (api_options.webhook_secret.empty()) {
        usage_error("--webhook-secret-file " + webhook_secret_file + " is empty");
      }
    }
    api_options.version = kVersion;
    api_options.metrics = [&engine, &router] {
      wire::MetricsText m;
      auto& e = engine.metrics();
      m.gauge("capstan_tasks_running", "Tasks dispatched to delegates and not finished.",
              e.tasks_running.value());
      m.gauge("capstan_tasks_queued", "Tasks waiting for a delegate.", e.tasks_queued.value());
      m.counter("capstan_tasks_dispatched_total", "Task attempts sent to delegates.",
                e.tasks_dispatched.value());
      m.counter("capstan_tasks_succeeded_total", "Tasks that succeeded.",
                e.tasks_succeeded.value());
      m.counter("capstan_tasks_failed_total",
                "Tasks that failed, timed out or were lost with their delegate.",
                e.tasks_failed.value());
      m.counter("capstan_tasks_requeued_total",
                "Tasks queued again after their delegate was lost or did not take them.",
                e.tasks_requeued.value());
      m.histogram("capstan_task_duration_seconds", "How long task attempts ran on delegates.",
                  e.task_duration);
      m.gauge("capstan_delegates_connected", "Delegates with an open session.",
              e.delegates_connected.value());
      m.gauge("capstan_delegates_draining", "Connected delegates that are draining.",
              e.delegates_draining.value());
      m.gauge("capstan_delegate_slots", "Task slots offered by connected delegates.",
              e.slots_total.value());
      m.counter("capstan_delegate_reconnects_total",
                "Times a known delegate process attached again on a new connection.",
                e.delegate_reconnects.value());
      m.counter("capstan_delegates_lost_total", "Delegate sessions that ended.",
                e.delegates_lost.value());
      m.counter("capstan_delegate_hellos_refused_total",
                "Session requests refused (bad or revoked token, invalid Hello).",
                e.hellos_refused.value());
      auto w = router->stats();
      m.counter("capstan_heartbeat_misses_total",
                "Delegates dropped because they missed their heartbeats.", w.silent);
      m.counter("capstan_wire_messages_received_total", "Messages received on the wire.",
                w.received);
      m.counter("capstan_wire_messages_sent_total", "Messages sent on the wire.", w.sent);
      m.counter("capstan_wire_garbage_total", "Frames dropped as not a valid envelope.", w.garbage);
      m.counter("capstan_wire_undeliverable_total",
                "Messages to peers that were gone or not reading.", w.undeliverable);
      return m.str();
    };
    api::HttpApi http(store, engine, feed, api_options);
    http.start();

    std::string api_url = "http://127.0.0.1:" + std::to_string(http.port());
    nlohmann::json info = {{"pid", ::getpid()},
                           {"api", api_url},
                           {"wire", router->endpoint()},
                           {"wirePublicKey", insecure_wire ? "" : keys.public_key},
                           {"wirePublicKeyFile", (data_dir / "wire.pub").string()},
                           {"delegateTokenFile", (data_dir / "delegate-token").string()},
                           {"tokenFile", token_file.string()},
                           {"version", kVersion},
                           {"coordinatorId", coordinator_id}};
    write_atomically(data_dir / "coordinator.json", info.dump(2) + "\n");
    spdlog::info("capstan-coordinator {} ready: API {} , wire {}, data {}", kVersion, api_url,
                 router->endpoint(), data_dir.string());

    // Waits for a stop signal. Meanwhile, every few seconds, the heap's free pages go back to
    // the system: a burst of work (a large apply, thousands of application statuses) would
    // otherwise leave the process at its peak size for good.
    int sig = -1;
    const timespec trim_every{5, 0};
    while (sig < 0) {
      sig = sigtimedwait(&signals, nullptr, &trim_every);
      if (sig < 0) malloc_trim(0);
    }
    spdlog::info("received signal {}, shutting down", sig);
    http.stop();
    feed.close();
    engine.stop(); // its thread drives the router's socket
    router.reset();
    fs::remove(data_dir / "coordinator.json");
    spdlog::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "capstan-coordinator: " << e.what() << "\n";
    return 1;
  }
}
