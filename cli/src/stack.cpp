// `capstan up` and `capstan down`: the local coordinator and delegate as background processes.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "args.h"
#include "capstan/process/subprocess.h"
#include "commands.h"
#include "output.h"

namespace capstan::cli {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kStopTimeout = std::chrono::seconds(15);

struct Layout {
  fs::path home, coordinator_data, delegate_data, logs, run;
  explicit Layout(const fs::path& h)
      : home(fs::absolute(h)), coordinator_data(home / "coordinator"),
        delegate_data(home / "delegate"), logs(home / "logs"), run(home / "run") {}
};

long read_pid(const fs::path& file) {
  std::ifstream in(file);
  long pid = 0;
  in >> pid;
  return in ? pid : 0;
}

// Alive, not a zombie, and the program we think it is (pids get reused).
bool is_running(long pid, const std::string& program) {
  if (pid <= 0) return false;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::string first;
  std::getline(cmd, first, '\0');
  return !first.empty() && fs::path(first).filename() == program;
}

std::string tail(const fs::path& file, int lines) {
  std::ifstream in(file);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  std::string out;
  for (std::size_t i = all.size() > static_cast<std::size_t>(lines) ? all.size() - lines : 0;
       i < all.size(); ++i) {
    out += "  " + all[i] + "\n";
  }
  return out;
}

json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return nullptr;
  try {
    return json::parse(in);
  } catch (const json::exception&) {
    return nullptr;
  }
}

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::trunc);
  out << text;
}

fs::path bin_dir() {
  return fs::canonical("/proc/self/exe").parent_path();
}

process::Child start_daemon(const std::vector<std::string>& argv, const fs::path& log) {
  if (!fs::exists(argv[0])) {
    throw CommandError("cannot find " + argv[0] + " (it is installed next to capstan)", 1);
  }
  {
    std::ofstream mark(log, std::ios::app);
    mark << "---- started by capstan up\n";
  }
  process::Options o;
  o.argv = argv;
  o.stdout_path = log.string();
  o.stderr_path = log.string();
  o.new_session = true;
  try {
    return process::Child::spawn(o);
  } catch (const process::SpawnError& e) {
    throw CommandError(e.what(), 1);
  }
}

[[noreturn]] void start_failed(const std::string& what, process::Child& child, const fs::path& log,
                               const std::string& why) {
  if (child.running()) child.terminate(std::chrono::milliseconds(2000));
  throw CommandError(what + " " + why + "; the end of " + log.string() + ":\n" + tail(log, 15), 1);
}

bool stop(const std::string& what, const fs::path& pid_file, const std::string& program) {
  long pid = read_pid(pid_file);
  if (!is_running(pid, program)) {
    fs::remove(pid_file);
    return false;
  }
  ::kill(static_cast<pid_t>(pid), SIGTERM);
  auto deadline = Clock::now() + kStopTimeout;
  while (is_running(pid, program) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  bool killed = false;
  if (is_running(pid, program)) {
    ::kill(static_cast<pid_t>(pid), SIGKILL);
    killed = true;
  }
  fs::remove(pid_file);
  std::cout << what << " stopped (pid " << pid << (killed ? ", killed after 15 s" : "") << ")\n";
  return true;
}

std::string types_of(const json& delegate) {
  std::vector<std::string> types;
  for (const auto& t : delegate.value("stepTypes", json::array())) {
    types.push_back(t.value("type", ""));
  }
  return types.empty() ? "none" : join(types, ", ");
}

// The embedded Kubernetes-compatible cluster, the default deployment target: data (and its
// kubeconfig) in HOME/sandbox, where later steps and users find it.
void up_sandbox(const Layout& l, const fs::path& bins, const std::string& port) {
  auto pid_file = l.run / "sandbox.pid";
  auto data = l.home / "sandbox";
  auto kubeconfig = data / "kubeconfig";
  long pid = read_pid(pid_file);
  if (is_running(pid, "capstan-sandbox")) {
    std::cout << "sandbox is already running (pid " << pid << "): kubeconfig "
              << kubeconfig.string() << "\n";
    return;
  }
  fs::create_directories(data);
  auto port_file = data / "port";
  fs::remove(port_file); // written again once the new process listens
  auto log = l.logs / "sandbox.log";
  auto child = start_daemon(
      {(bins / "capstan-sandbox").string(), "--data-dir", data.string(), "--port", port}, log);
  write_text(pid_file, std::to_string(child.pid()) + "\n");
  auto deadline = Clock::now() + kStartTimeout;
  while (!fs::exists(port_file)) {
    if (!child.running()) start_failed("the sandbox", child, log, "exited during start");
    if (Clock::now() > deadline) start_failed("the sandbox", child, log, "did not start in 30 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string listening;
  std::getline(std::ifstream(port_file) >> std::ws, listening);
  pid = child.release();
  std::cout << "sandbox started (pid " << pid << "): https://127.0.0.1:" << listening
            << ", kubeconfig " << kubeconfig.string() << "\n";
}

// The objects that make the sandbox a deployment target without writing any: a K8sCluster
// connector reading its kubeconfig, and an environment with a KubernetesDirect infrastructure
// on its default namespace, all named `sandbox`. Applied through the API like any user's
// objects; one the user has changed (or defined before) under the same identifier is left as it
// is, and said so.
void register_sandbox_target(ApiClient& api, const Layout& l) {
  const std::string kubeconfig = (l.home / "sandbox" / "kubeconfig").string();
  const std::vector<std::pair<std::string, std::string>> docs = {
      {"connector/sandbox", "connector:\n"
                            "  identifier: sandbox\n"
                            "  name: capstan-sandbox\n"
                            "  description: The cluster capstan up starts (capstan-sandbox)\n"
                            "  type: K8sCluster\n"
                            "  spec:\n"
                            "    credential:\n"
                            "      type: Kubeconfig\n"
                            "      spec:\n"
                            "        path: " +
                                json(kubeconfig).dump() + "\n"},
      {"environment/sandbox", "environment:\n"
                              "  identifier: sandbox\n"
                              "  name: sandbox\n"
                              "  description: The cluster capstan up starts (capstan-sandbox)\n"
                              "  type: PreProduction\n"},
      {"infrastructureDefinition/sandbox", "infrastructureDefinition:\n"
                                           "  identifier: sandbox\n"
                                           "  name: capstan-sandbox default namespace\n"
                                           "  environmentRef: sandbox\n"
                                           "  deploymentType: Kubernetes\n"
                                           "  type: KubernetesDirect\n"
                                           "  spec:\n"
                                           "    connectorRef: sandbox\n"
                                           "    namespace: default\n"
                                           "    releaseName: release-<+INFRA_KEY>\n"}};
  auto file = [&](const std::string& key, const std::string& text) {
    return json{{"name", "capstan up (" + key + ")"}, {"content", text}, {"dir", l.home.string()}};
  };
  json all = json::array();
  for (const auto& [key, text] : docs) all.push_back(file(key, text));
  json planned = api.post("/api/v1/apply", {{"files", all}, {"dryRun", true}});
  json wanted = json::array();
  std::vector<std::string> kept, created, unchanged;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    auto action = planned["results"][i].value("action", "");
    if (action == "configured") {
      kept.push_back(docs[i].first);
    } else {
      wanted.push_back(all[i]);
      (action == "unchanged" ? unchanged : created).push_back(docs[i].first);
    }
  }
  if (!wanted.empty()) api.post("/api/v1/apply", {{"files", wanted}, {"dryRun", false}});
  std::cout << "deployment target: environment sandbox, infrastructure sandbox (connector "
               "sandbox, kubeconfig "
            << kubeconfig << ")" << (created.empty() ? "" : "; registered " + join(created, ", "))
            << "\n";
  for (const auto& k : kept) {
    std::cout << "  " << k
              << " already exists and differs from the sandbox's own; left as it is (delete it "
                 "to let capstan up register it again)\n";
  }
}

} // namespace

int cmd_up(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--api-port", "", true, false},
                {"--bind", "", true, false},
                {"--plugin-dir", "", true, true},
                {"--slots", "", true, false},
                {"--name", "", true, false},
                {"--sandbox-port", "", true, false},
                {"--no-sandbox", "", false, false}});
  if (!a.positional().empty()) throw UsageError("up takes no arguments");
  Layout l(g.home);
  for (const auto& d : {l.coordinator_data, l.delegate_data, l.logs, l.run}) {
    fs::create_directories(d);
  }
  auto bins = bin_dir();
  auto info_file = l.coordinator_data / "coordinator.json";
  if (!a.has("--no-sandbox")) up_sandbox(l, bins, a.value_or("--sandbox-port", "0"));

  // The coordinator.
  auto coordinator_pid_file = l.run / "coordinator.pid";
  long pid = read_pid(coordinator_pid_file);
  json info;
  if (is_running(pid, "capstan-coordinator")) {
    auto deadline = Clock::now() + kStartTimeout;
    while ((info = read_json(info_file)).is_null() || info.value("pid", 0L) != pid) {
      if (Clock::now() > deadline) {
        throw CommandError("the coordinator (pid " + std::to_string(pid) +
                               ") runs but has not written " + info_file.string() + "; see " +
                               (l.logs / "coordinator.log").string(),
                           1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::cout << "coordinator is already running (pid " << pid << "): API "
              << info["api"].get<std::string>() << ", wire " << info["wire"].get<std::string>()
              << "\n";
  } else {
    auto log = l.logs / "coordinator.log";
    std::vector<std::string> cmd = {(bins / "capstan-coordinator").string(),
                                    "--data-dir",
                                    l.coordinator_data.string(),
                                    "--api-port",
                                    a.value_or("--api-port", "7780"),
                                    "--bind",
                                    a.value_or("--bind", "tcp://127.0.0.1:7700")};
    auto child = start_daemon(cmd, log);
    write_text(coordinator_pid_file, std::to_string(child.pid()) + "\n");
    auto deadline = Clock::now() + kStartTimeout;
    while (true) {
      info = read_json(info_file);
      if (!info.is_null() && info.value("pid", 0L) == child.pid()) break;
      if (!child.running()) start_failed("the coordinator", child, log, "exited during start");
      if (Clock::now() > deadline)
        start_failed("the coordinator", child, log, "did not start in 30 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    pid = child.release();
    std::cout << "coordinator started (pid " << pid << "): API " << info["api"].get<std::string>()
              << ", wire " << info["wire"].get<std::string>() << "\n";
  }
  std::string wire = info["wire"].get<std::string>();

  // The delegate, connected to that coordinator.
  std::string name = a.value_or("--name", "local");
  auto delegate_pid_file = l.run / "delegate.pid";
  auto delegate_state_file = l.run / "delegate.json";
  long dpid = read_pid(delegate_pid_file);
  bool running = is_running(dpid, "capstan-delegate");
  json state = read_json(delegate_state_file);
  if (running && (state.is_null() || state.value("coordinator", "") != wire)) {
    // It serves a coordinator endpoint that no longer exists.
    stop("delegate " + name, delegate_pid_file, "capstan-delegate");
    running = false;
  }
  Globals local = g;
  local.server.clear();
  local.token.clear();
  ApiClient api(local);
  auto connected = [&]() -> json {
    json all = api.get("/api/v1/delegates");
    for (const auto& d : all["items"]) {
      if (d.value("name", "") == name && d.value("connected", false)) return d;
    }
    return nullptr;
  };
  if (running) {
    json d;
    auto deadline = Clock::now() + kStartTimeout;
    while ((d = connected()).is_null() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::cout << "delegate " << name << " is already running (pid " << dpid << ")"
              << (d.is_null() ? ", but not connected; see " + (l.logs / "delegate.log").string()
                              : ": " + std::to_string(d.value("slots", 0)) +
                                    " slots, step types: " + types_of(d))
              << "\n";
  } else {
    auto log = l.logs / "delegate.log";
    std::vector<std::string> cmd = {(bins / "capstan-delegate").string(),
                                    "--coordinator",
                                    wire,
                                    "--name",
                                    name,
                                    "--data-dir",
                                    l.delegate_data.string(),
                                    "--token-file",
                                    info.value("delegateTokenFile", ""),
                                    "--coordinator-key-file",
                                    info.value("wirePublicKeyFile", ""),
                                    "--drain-grace",
                                    "10s"};
    auto dirs = a.values("--plugin-dir");
    if (dirs.empty()) dirs.push_back((bins.parent_path() / "lib" / "capstan" / "plugins").string());
    for (const auto& d : dirs) {
      cmd.push_back("--plugin-dir");
      cmd.push_back(fs::absolute(d).string());
    }
    if (auto slots = a.value("--slots")) {
      cmd.push_back("--slots");
      cmd.push_back(*slots);
    }
    auto child = start_daemon(cmd, log);
    write_text(delegate_pid_file, std::to_string(child.pid()) + "\n");
    write_text(delegate_state_file,
               json{{"pid", child.pid()}, {"coordinator", wire}, {"name", name}}.dump() + "\n");
    json d;
    auto deadline = Clock::now() + kStartTimeout;
    while ((d = connected()).is_null()) {
      if (!child.running()) start_failed("the delegate", child, log, "exited during start");
      if (Clock::now() > deadline) {
        start_failed("the delegate", child, log, "did not connect to " + wire + " in 30 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    dpid = child.release();
    std::cout << "delegate " << name << " started (pid " << dpid << "): " << d.value("slots", 0)
              << " slots, step types: " << types_of(d) << "\n";
  }
  if (!a.has("--no-sandbox")) {
    try {
      register_sandbox_target(api, l);
    } catch (const CommandError& e) {
      // The stack runs; only the default target is missing. Say why, and do not fail `up`.
      std::cout << "deployment target not registered: " << e.what() << "\n";
      for (const auto& d : e.details()) std::cout << "  " << d << "\n";
    }
  }
  std::cout << "home " << l.home.string() << " (logs in " << l.logs.string() << ")\n";
  return 0;
}

int cmd_down(const Globals& g, const Argv& argv) {
  Args a(argv, {});
  if (!a.positional().empty()) throw UsageError("down takes no arguments");
  Layout l(g.home);
  bool any = stop("delegate", l.run / "delegate.pid", "capstan-delegate");
  any = stop("coordinator", l.run / "coordinator.pid", "capstan-coordinator") || any;
  any = stop("sandbox", l.run / "sandbox.pid", "capstan-sandbox") || any;
  fs::remove(l.run / "delegate.json");
  if (!any) std::cout << "nothing is running under " << l.home.string() << "\n";
  return 0;
}

} // namespace capstan::cli
