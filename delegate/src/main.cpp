// capstan-delegate: connects out to the coordinator, announces the step types of its plugins and
// runs the tasks it is given.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "applications.h"
#include "capstan/delegate/plugin_host.h"
#include "capstan/wire/client.h"
#include "capstan/wire/metrics.h"
#include "capstan/yaml/yaml.h"
#include "task_runner.h"

namespace fs = std::filesystem;
using namespace capstan;
using nlohmann::json;

namespace {

constexpr const char* kVersion = "0.1.0";

const char* kUsage = R"(Usage: capstan-delegate [options]

A Capstan delegate: connects to a coordinator, loads the plugins in its plugin folders, announces
the step types they provide and runs the steps it is assigned.

Options:
  --coordinator ENDPOINT    the coordinator's wire endpoint (default tcp://127.0.0.1:7700)
  --coordinator-key KEY     the coordinator's CurveZMQ public key (40 characters; the
                            coordinator writes it to <its data dir>/wire.pub)
  --coordinator-key-file F  read that key from a file
  --insecure-wire           connect without CurveZMQ (only to a coordinator started with
                            --insecure-wire)
  --token TOKEN             the delegate token to present (create one with
                            'capstan tokens create NAME'); also $CAPSTAN_DELEGATE_TOKEN
  --token-file FILE         read the token from a file
  --name NAME               the delegate's name (default: the host name)
  --tag TAG                 a tag for delegate selectors (repeatable; TAG may be a,b,c)
  --plugin-dir DIR          a plugin folder (repeatable; default: the bundled plugins,
                            ../lib/capstan/plugins next to this program)
  --slots N                 tasks run at once (default: the number of CPUs)
  --data-dir DIR            work and plugin state directories (default:
                            $CAPSTAN_HOME/delegate, or ~/.capstan/delegate)
  --config FILE             a YAML file with any of: coordinator, coordinatorKey,
                            coordinatorKeyFile, token, tokenFile, name, tags, pluginDirs, slots,
                            dataDir, logBuffer, and plugins (per-plugin settings:
                            {shell: {...}});
                            flags given on the command line win
  --drain-grace DUR         on SIGTERM, how long running steps may take to finish before they
                            are cancelled (default 5m)
  --cancel-grace DUR        how long a cancelled or timed-out step's plugin may take to stop
                            before the delegate abandons it and frees its slot (default 10s)
  --log-buffer SIZE         step log kept, for all running steps together, until the
                            coordinator acknowledges it (while it is unreachable, lines wait
                            here and are sent on reconnect); when full, a step's oldest lines
                            are dropped and its log says how many (default 32MiB; e.g. 512KiB)
  --metrics-port PORT       serve Prometheus metrics at http://ADDRESS:PORT/metrics (0 picks
                            a free port; default: off)
  --metrics-address ADDR    the address for --metrics-port (default 127.0.0.1)
  --heartbeat-interval DUR  heartbeat period (default 1s)
  --heartbeat-misses N      the coordinator is lost after N silent intervals (default 3)
                            (once connected, the delegate beats at least as often as the
                            coordinator's --heartbeat-interval asks, and waits at least as long
                            as the coordinator's own heartbeats take to be missed)
  --log-level LEVEL         trace, debug, info, warn or error (default info)
  --version                 print the version and exit
  -h, --help                show this help

SIGTERM or SIGINT drains the delegate: it takes no new step ('capstan delegates' shows it
Draining), lets running steps finish within --drain-grace, cancels what is left, reports every
result and leaves. A second signal cancels running steps at once.
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "capstan-delegate: " << message << "\nRun 'capstan-delegate --help' for usage.\n";
  std::exit(2);
}

std::chrono::milliseconds parse_ms(const std::string& flag, const std::string& v) {
  // "1s", "500ms", "2m", or a bare number of milliseconds.
  try {
    std::size_t used = 0;
    long long n = std::stoll(v, &used);
    std::string unit = v.substr(used);
    if (n > 0) {
      if (unit.empty() || unit == "ms") return std::chrono::milliseconds(n);
      if (unit == "s") return std::chrono::seconds(n);
      if (unit == "m") return std::chrono::minutes(n);
    }
  } catch (const std::exception&) { // NOLINT(bugprone-empty-catch): reported below
  }
  usage_error(flag + " expects a duration such as 1s or 500ms, not '" + v + "'");
}

// "32MiB", "512KiB", "1GiB", "64k", or a bare number of bytes; 4 KiB to 64 GiB.
std::size_t parse_size(const std::string& what, const std::string& v) {
  try {
    std::size_t used = 0;
    long long n = std::stoll(v, &used);
    std::string unit = v.substr(used);
    for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!unit.empty() && unit.back() == 'b') unit.pop_back();
    if (!unit.empty() && unit.back() == 'i') unit.pop_back();
    long long scale = unit.empty()  ? 1
                      : unit == "k" ? 1LL << 10
                      : unit == "m" ? 1LL << 20
                      : unit == "g" ? 1LL << 30
                                    : 0;
    if (scale > 0 && n > 0 && n <= (64LL << 30) / scale && n * scale >= 4096) {
      return static_cast<std::size_t>(n * scale);
    }
  } catch (const std::exception&) { // NOLINT(bugprone-empty-catch): reported below
  }
  usage_error(what + " expects a size from 4KiB to 64GiB such as 32MiB or 512KiB, not '" + v + "'");
}

int parse_int(const std::string& flag, const std::string& v, int lo, int hi) {
  try {
    std::size_t used = 0;
    int n = std::stoi(v, &used);
    if (used == v.size() && n >= lo && n <= hi) return n;
  } catch (const std::exception&) { // NOLINT(bugprone-empty-catch): reported below
  }
  usage_error(flag + " expects a number from " + std::to_string(lo) + " to " + std::to_string(hi) +
              ", not '" + v + "'");
}

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::trunc);
  out << text;
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "delegate";
  return buf;
}

std::string instance_id() {
  std::random_device rd;
  std::mt19937_64 rng(rd());
  std::ostringstream out;
  out << std::hex << rng() << rng();
  return out.str();
}

struct Config {
  std::string coordinator = "tcp://127.0.0.1:7700";
  std::string coordinator_key;
  std::string token;
  bool insecure_wire = false;
  std::chrono::milliseconds drain_grace{std::chrono::minutes(5)};
  std::chrono::milliseconds cancel_grace{std::chrono::seconds(10)};
  std::size_t log_buffer = delegate::RunnerOptions{}.max_retained_bytes;
  int metrics_port = -1;
  std::string metrics_address = "127.0.0.1";
  std::string name;
  std::vector<std::string> tags;
  std::vector<fs::path> plugin_dirs;
  int slots = 0;
  fs::path data_dir;
  json plugins = json::object();
  wire::Liveness liveness;
  std::string log_level = "info";
};

void split_tags(const std::string& v, std::vector<std::string>& out) {
  std::stringstream ss(v);
  std::string t;
  while (std::getline(ss, t, ',')) {
    if (!t.empty()) out.push_back(t);
  }
}

// The first line of a small file holding a key or a token.
std::string read_secret_file(const std::string& what, const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) usage_error(what + ": cannot read " + file.string());
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (line.empty()) usage_error(what + ": " + file.string() + " is empty");
  return line;
}

// Settings from --config: the file's problems name file:line:column.
void load_config_file(const fs::path& file, Config& c) {
  std::ifstream in(file);
  if (!in) usage_error("cannot read config file " + file.string());
  std::stringstream ss;
  ss << in.rdbuf();
  yaml::Document doc;
  try {
    doc = yaml::load(ss.str(), file.string());
  } catch (const yaml::Error& e) {
    usage_error(e.what());
  }
  if (doc.value.is_null()) return;
  auto bad = [&](const std::string& key, const std::string& want) {
    usage_error(doc.where.locate("/" + key) + ": '" + key + "' must be " + want);
  };
  if (!doc.value.is_object()) usage_error(file.string() + ": the config must be a mapping");
  for (const auto& [key, v] : doc.value.items()) {
    if (key == "coordinator" || key == "name" || key == "dataDir" || key == "token" ||
        key == "tokenFile" || key == "coordinatorKey" || key == "coordinatorKeyFile") {
      if (!v.is_string()) bad(key, "a string");
      if (key == "coordinator") c.coordinator = v.get<std::string>();
      if (key == "token") c.token = v.get<std::string>();
      if (key == "tokenFile") c.token = read_secret_file("tokenFile", v.get<std::string>());
      if (key == "coordinatorKey") c.coordinator_key = v.get<std::string>();
      if (key == "coordinatorKeyFile") {
        c.coordinator_key = read_secret_file("coordinatorKeyFile", v.get<std::string>());
      }
      if (key == "name") c.name = v.get<std::string>();
      if (key == "dataDir") c.data_dir = v.get<std::string>();
    } else if (key == "tags" || key == "pluginDirs") {
      if (!v.is_array()) bad(key, "a list of strings");
      for (const auto& item : v) {
        if (!item.is_string()) bad(key, "a list of strings");
        if (key == "tags") c.tags.push_back(item.get<std::string>());
        if (key == "pluginDirs") c.plugin_dirs.emplace_back(item.get<std::string>());
      }
    } else if (key == "logBuffer") {
      if (!v.is_string() && !v.is_number_integer()) bad(key, "a size such as 32MiB");
      c.log_buffer =
          parse_size(doc.where.locate("/" + key) + ": 'logBuffer'",
                     v.is_string() ? v.get<std::string>() : std::to_string(v.get<long long>()));
    } else if (key == "slots") {
      if (!v.is_number_integer() || v.get<int>() < 1) bad(key, "a positive number");
      c.slots = v.get<int>();
    } else if (key == "plugins") {
      if (!v.is_object()) bad(key, "a mapping of plugin name to settings");
      c.plugins = v;
    } else {
      usage_error(doc.where.locate("/" + yaml::pointer_escape(key)) + ": unknown setting '" + key +
                  "' (expected coordinator, coordinatorKey, coordinatorKeyFile, token, tokenFile, "
                  "name, tags, pluginDirs, slots, dataDir, logBuffer, plugins)");
    }
  }
}

Config parse_args(int argc, char** argv) {
  Config c;
  std::vector<std::string> args(argv + 1, argv + argc);
  // The config file first, so flags override it.
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) load_config_file(args[i + 1], c);
    if (args[i].rfind("--config=", 0) == 0) load_config_file(args[i].substr(9), c);
  }
  std::vector<fs::path> dirs;
  std::vector<std::string> tags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], value;
    bool inline_value = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      inline_value = true;
    }
    auto next = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= args.size()) usage_error(a + " needs a value");
      return args[++i];
    };
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (a == "--version") {
      std::cout << "capstan-delegate " << kVersion << "\n";
      std::exit(0);
    } else if (a == "--config") {
      next();
    } else if (a == "--coordinator") {
      c.coordinator = next();
    } else if (a == "--coordinator-key") {
      c.coordinator_key = next();
    } else if (a == "--coordinator-key-file") {
      c.coordinator_key = read_secret_file(a, next());
    } else if (a == "--insecure-wire") {
      c.insecure_wire = true;
    } else if (a == "--token") {
      c.token = next();
    } else if (a == "--token-file") {
      c.token = read_secret_file(a, next());
    } else if (a == "--drain-grace") {
      c.drain_grace = parse_ms(a, next());
    } else if (a == "--cancel-grace") {
      c.cancel_grace = parse_ms(a, next());
    } else if (a == "--log-buffer") {
      c.log_buffer = parse_size(a, next());
    } else if (a == "--metrics-port") {
      c.metrics_port = parse_int(a, next(), 0, 65535);
    } else if (a == "--metrics-address") {
      c.metrics_address = next();
    } else if (a == "--name") {
      c.name = next();
    } else if (a == "--tag" || a == "--tags") {
      split_tags(next(), tags);
    } else if (a == "--plugin-dir") {
      dirs.emplace_back(next());
    } else if (a == "--slots") {
      c.slots = parse_int(a, next(), 1, 4096);
    } else if (a == "--data-dir") {
      c.data_dir = next();
    } else if (a == "--heartbeat-interval") {
      c.liveness.interval = parse_ms(a, next());
    } else if (a == "--heartbeat-misses") {
      c.liveness.misses = static_cast<std::uint32_t>(parse_int(a, next(), 2, 100));
    } else if (a == "--log-level") {
      c.log_level = next();
    } else {
      usage_error("unknown option '" + a + "'");
    }
  }
  if (!dirs.empty()) c.plugin_dirs = dirs;
  if (c.token.empty()) {
    if (const char* t = std::getenv("CAPSTAN_DELEGATE_TOKEN"); t && *t) c.token = t;
  }
  if (c.token.empty()) {
    usage_error("no delegate token: pass --token, --token-file or $CAPSTAN_DELEGATE_TOKEN (the "
                "coordinator writes a first one to <its data dir>/delegate-token; create more "
                "with 'capstan tokens create NAME')");
  }
  if (c.insecure_wire) {
    c.coordinator_key.clear();
  } else if (c.coordinator_key.empty()) {
    usage_error("no coordinator key: pass --coordinator-key or --coordinator-key-file (the "
                "coordinator writes its public key to <its data dir>/wire.pub)");
  } else if (!wire::valid_curve_key(c.coordinator_key)) {
    usage_error("the coordinator key must be a CurveZMQ public key of 40 Z85 characters (the "
                "content of the coordinator's wire.pub)");
  }
  if (!tags.empty()) c.tags = tags;
  if (c.name.empty()) c.name = hostname();
  if (c.slots <= 0) c.slots = std::max(1u, std::thread::hardware_concurrency());
  if (c.data_dir.empty()) {
    const char* home = std::getenv("CAPSTAN_HOME");
    const char* user = std::getenv("HOME");
    c.data_dir = home && *home ? fs::path(home) / "delegate"
                               : fs::path(user && *user ? user : ".") / ".capstan" / "delegate";
  }
  if (c.plugin_dirs.empty()) {
    // The bundled plugins, installed beside the binaries: bin/../lib/capstan/plugins.
    c.plugin_dirs.push_back(fs::canonical("/proc/self/exe").parent_path().parent_path() / "lib" /
                            "capstan" / "plugins");
  }
  return c;
}

// The delegate's side of the session: what Hello says and what arrives.
class Session : public wire::ClientHandler {
public:
  Session(const Config& config, const delegate::PluginHost& host, delegate::TaskRunner& runner,
          delegate::Applications& apps)
      : config_(config), host_(host), runner_(runner), apps_(apps), instance_(instance_id()) {}

  wire::v1::Hello hello() override {
    wire::v1::Hello h;
    h.set_instance_id(instance_);
    h.set_name(config_.name);
    for (const auto& t : config_.tags) h.add_tags(t);
    for (const auto& t : host_.step_types()) {
      auto* ad = h.add_step_types();
      ad->set_type(t.type);
      ad->set_plugin(t.plugin);
      ad->set_plugin_version(t.plugin_version);
      ad->set_retry_safe(t.retry_safe);
      ad->set_description(t.description);
      if (!t.spec_schema.is_null()) ad->set_spec_schema(t.spec_schema.dump());
    }
    h.set_slots(static_cast<std::uint32_t>(config_.slots));
    h.set_token(config_.token);
    h.set_draining(runner_.draining());
    h.set_version(kVersion);
    h.set_hostname(hostname());
    for (auto& r : runner_.running()) *h.add_running() = std::move(r);
    for (auto& r : runner_.finished()) *h.add_finished() = std::move(r);
    if (!runner_.draining()) {
      for (const auto& r : host_.reconcilers()) h.add_reconcilers(r);
    }
    for (auto& l : apps_.leases()) *h.add_apps() = std::move(l);
    return h;
  }
  void on_welcome(const wire::v1::Welcome& w) override {
    spdlog::info("connected to coordinator {} at {}", w.coordinator_id(), config_.coordinator);
    runner_.resend_unacknowledged();
  }
  void on_message(wire::v1::Envelope&& env) override {
    switch (env.body_case()) {
    case wire::v1::Envelope::kAssign:
      runner_.assign(std::move(*env.mutable_assign()));
      break;
    case wire::v1::Envelope::kCancel:
      runner_.cancel(env.cancel());
      break;
    case wire::v1::Envelope::kResultAck:
      runner_.acknowledge(env.result_ack());
      break;
    case wire::v1::Envelope::kLogAck:
      runner_.acknowledge(env.log_ack());
      break;
    case wire::v1::Envelope::kAppAssign:
      apps_.assign(env.app_assign());
      break;
    case wire::v1::Envelope::kAppUnassign:
      apps_.unassign(env.app_unassign());
      break;
    case wire::v1::Envelope::kAppOperation:
      apps_.operation(env.app_operation());
      break;
    default:
      break;
    }
  }
  void on_refused(const wire::v1::Refuse& r) override {
    spdlog::error("the coordinator refused this delegate: {}", r.message());
    apps_.drop_all("the coordinator refused this delegate");
  }
  void on_session_lost(const std::string& reason) override {
    spdlog::warn("session with the coordinator lost: {}", reason);
    // The fence: without a session the coordinator may give these applications to another
    // delegate once its liveness window passes, so they stop here now.
    apps_.drop_all("session with the coordinator lost");
  }

private:
  const Config& config_;
  const delegate::PluginHost& host_;
  delegate::TaskRunner& runner_;
  delegate::Applications& apps_;
  std::string instance_;
};

} // namespace

int main(int argc, char** argv) {
  // Worker threads would each get a malloc arena of their own (64 MiB reserved, touched pages
  // kept); a delegate's threads mostly wait, so two arenas serve them without contention.
  mallopt(M_ARENA_MAX, 2);
  Config config = parse_args(argc, argv);
  auto level = spdlog::level::from_str(config.log_level);
  if (level == spdlog::level::off && config.log_level != "off") {
    usage_error("unknown log level '" + config.log_level + "'");
  }
  spdlog::set_level(level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  try {
    fs::create_directories(config.data_dir);
    auto lock_path = config.data_dir / "delegate.lock";
    int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      std::cerr << "capstan-delegate: another delegate is running with data dir "
                << config.data_dir.string() << "\n";
      return 1;
    }
    // Work directories a previous run left behind (killed mid-task) are stale.
    std::error_code ec;
    fs::remove_all(config.data_dir / "work", ec);

    delegate::PluginHost host(config.plugins, config.data_dir / "plugins", config.name);
    host.load(config.plugin_dirs);
    for (const auto& t : host.step_types()) {
      spdlog::info("step type {} from plugin {} {}", t.type, t.plugin, t.plugin_version);
    }
    for (const auto& r : host.rejections()) {
      spdlog::warn("plugin {} not loaded: {}", r.path.string(), r.reason);
    }
    if (host.step_types().empty()) {
      spdlog::warn("no plugin provides any step type; this delegate can run nothing (plugin "
                   "folders: {})",
                   config.plugin_dirs.empty() ? "none" : config.plugin_dirs.front().string());
    }

    zmq::context_t context(1);
    std::unique_ptr<wire::Client> client;
    delegate::RunnerOptions runner_options;
    runner_options.slots = config.slots;
    runner_options.work_root = config.data_dir / "work";
    runner_options.cancel_grace = config.cancel_grace;
    runner_options.max_retained_bytes = config.log_buffer;
    delegate::TaskRunner runner(
        host, runner_options,
        [&client](wire::v1::Envelope env) {
          if (client) client->send(std::move(env));
        },
        [&client](wire::v1::Envelope env) {
          if (client) client->send_later(std::move(env));
        },
        [&client] {
          if (client) client->flush();
        });
    delegate::Applications apps(host, [&client](wire::v1::Envelope env) {
      if (client) client->send(std::move(env));
    });
    Session session(config, host, runner, apps);
    wire::ClientOptions options;
    options.endpoint = config.coordinator;
    options.liveness = config.liveness;
    options.curve_server_key = config.coordinator_key;
    client = std::make_unique<wire::Client>(context, options, session);
    spdlog::info("capstan-delegate {} '{}' ({} slots) connecting to {}{}", kVersion, config.name,
                 config.slots, config.coordinator,
                 config.insecure_wire ? " WITHOUT encryption (--insecure-wire)" : "");

    std::unique_ptr<wire::MetricsServer> metrics;
    if (config.metrics_port >= 0) {
      metrics = std::make_unique<wire::MetricsServer>(
          config.metrics_address, config.metrics_port, [&runner, &client, &config] {
            auto& m = runner.metrics();
            auto w = client->stats();
            wire::MetricsText t;
            t.gauge("capstan_delegate_tasks_running", "Tasks running on this delegate.",
                    m.running.value());
            t.gauge("capstan_delegate_slots", "Tasks this delegate runs at once.", config.slots);
            t.counter("capstan_delegate_tasks_succeeded_total", "Tasks that succeeded.",
                      m.succeeded.value());
            t.counter("capstan_delegate_tasks_failed_total",
                      "Tasks that failed, were cancelled or abandoned.", m.failed.value());
            t.counter("capstan_delegate_tasks_refused_total",
                      "Assignments refused (draining, no free slot).", m.refused.value());
            t.counter("capstan_delegate_tasks_abandoned_total",
                      "Plugin calls abandoned because they did not stop when cancelled.",
                      m.abandoned.value());
            t.counter("capstan_delegate_tasks_timed_out_total",
                      "Tasks whose timeout passed on this delegate (the plugin was told to stop).",
                      m.timed_out.value());
            t.counter("capstan_delegate_tasks_inline_total",
                      "Prompt steps run on the receiving thread instead of a worker.",
                      m.ran_inline.value());
            t.counter("capstan_delegate_prompt_types_demoted_total",
                      "Step types declared prompt whose call overran its budget (they run on "
                      "workers since).",
                      m.demoted.value());
            t.gauge("capstan_delegate_log_buffer_bytes",
                    "Step log bytes kept until the coordinator acknowledges them.",
                    m.retained_bytes.value());
            t.counter("capstan_delegate_log_lines_dropped_total",
                      "Step log lines dropped because the log buffer was full.",
                      m.lines_dropped.value());
            t.histogram("capstan_delegate_task_duration_seconds", "How long tasks ran.",
                        m.duration);
            t.gauge("capstan_delegate_connected", "1 while a session with the coordinator is open.",
                    client->attached() ? 1 : 0);
            t.gauge("capstan_delegate_draining", "1 while the delegate drains.",
                    runner.draining() ? 1 : 0);
            t.counter("capstan_delegate_reconnects_total", "Sessions opened after the first one.",
                      w.sessions ? w.sessions - 1 : 0);
            t.counter("capstan_delegate_heartbeat_misses_total",
                      "Sessions ended because the coordinator missed its heartbeats.",
                      w.heartbeat_misses);
            return t.str();
          });
      spdlog::info("metrics at http://{}:{}/metrics", config.metrics_address, metrics->port());
      write_text(config.data_dir / "metrics-port", std::to_string(metrics->port()) + "\n");
    }

    int sig = 0;
    sigwait(&signals, &sig);
    // Drain: no new task; running ones get the grace period; a second signal cuts it short.
    spdlog::info("received signal {}: draining (running steps: {}, grace {} s)", sig, runner.busy(),
                 config.drain_grace.count() / 1000);
    runner.drain();
    // Applications go first: another delegate takes them over while steps finish here.
    apps.drop_all("delegate draining");
    {
      wire::v1::Envelope hello;
      *hello.mutable_hello() = session.hello();
      client->send(std::move(hello));
    }
    auto drain_until = std::chrono::steady_clock::now() + config.drain_grace;
    bool forced = false;
    while (runner.busy() > 0 && std::chrono::steady_clock::now() < drain_until) {
      timespec tick{0, 200 * 1000 * 1000};
      if (sigtimedwait(&signals, nullptr, &tick) > 0) {
        forced = true;
        break;
      }
      runner.wait_idle(std::chrono::milliseconds(0));
    }
    if (runner.busy() > 0) {
      spdlog::warn("{}: cancelling {} running step(s)",
                   forced ? "second signal" : "drain grace period over", runner.busy());
    }
    runner.shutdown(config.cancel_grace + std::chrono::seconds(1));
    // The last results go out and are acknowledged before the goodbye.
    if (client->attached()) runner.wait_acknowledged(std::chrono::seconds(5));
    apps.stop();
    client->close("delegate shutting down");
    spdlog::info("stopped");
    if (runner.metrics().abandoned.value() > 0) {
      // Abandoned plugin calls may still run on their threads: leave without running static
      // destructors under them.
      spdlog::shutdown();
      std::_Exit(0);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "capstan-delegate: " << e.what() << "\n";
    return 1;
  }
}
