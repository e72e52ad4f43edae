// Helpers for tests that start real processes.
#include "capstan/testing/testing.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace capstan::testing {

namespace fs = std::filesystem;

fs::path bin_dir() {
  return CAPSTAN_BIN_DIR;
}
fs::path plugin_dir() {
  return CAPSTAN_PLUGIN_DIR;
}
fs::path source_dir() {
  return CAPSTAN_SOURCE_DIR;
}
fs::path binary(const std::string& name) {
  return bin_dir() / name;
}

TempDir::TempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed for " + templ);
  }
  path_ = templ;
}

TempDir::~TempDir() {
  if (std::getenv("CAPSTAN_KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& path, const std::string& content) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

namespace {
process::Options daemon_options(std::vector<std::string> argv, const fs::path& log,
                                std::map<std::string, std::string> env) {
  process::Options o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  o.stdout_path = log.string();
  o.stderr_path = log.string();
  return o;
}
} // namespace

Daemon::Daemon(std::vector<std::string> argv, const fs::path& log_file,
               std::map<std::string, std::string> env)
    : log_(log_file),
      child_(process::Child::spawn(daemon_options(std::move(argv), log_file, std::move(env)))) {}

bool Daemon::wait_for_log(const std::string& needle, std::chrono::milliseconds timeout) const {
  return wait_until([&] { return log().find(needle) != std::string::npos; }, timeout);
}

process::RunResult run(std::vector<std::string> argv, std::map<std::string, std::string> env,
                       std::chrono::milliseconds timeout, const std::string& working_dir,
                       std::optional<std::string> stdin_data) {
  process::Options o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  o.working_dir = working_dir;
  o.stdin_data = std::move(stdin_data);
  process::RunControl control;
  control.timeout = timeout;
  return process::run(std::move(o), control);
}

bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  // "pid (comm) S ...": the state follows the last ')', as comm may hold anything.
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

} // namespace capstan::testing
