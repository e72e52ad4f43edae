// Helpers for tests that start real processes: temp dirs, deadlines, built-binary paths.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "capstan/process/subprocess.h"

namespace capstan::testing {

// Paths of the build tree and the source tree (set by CMake).
std::filesystem::path bin_dir();    // executables: capstan, capstan-coordinator, ...
std::filesystem::path plugin_dir(); // the bundled plugins
std::filesystem::path source_dir(); // the repository root
std::filesystem::path binary(const std::string& name); // bin_dir() / name

// A fresh directory under $TMPDIR, removed with everything in it when the object dies
// (unless CAPSTAN_KEEP_TEST_DIRS is set, to look at what a failed test left).
class TempDir {
public:
  explicit TempDir(const std::string& prefix = "capstan-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

private:
  std::filesystem::path path_;
};

std::string read_file(const std::filesystem::path& path);                       // "" when missing
void write_file(const std::filesystem::path& path, const std::string& content); // makes parents

// Polls pred every `every` until it holds or the timeout passes; returns whether it held.
bool wait_until(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(20),
                std::chrono::milliseconds every = std::chrono::milliseconds(20));

// A background process whose stdout+stderr go to a log file; killed (SIGKILL) on destruction.
class Daemon {
public:
  Daemon(std::vector<std::string> argv, const std::filesystem::path& log_file,
         std::map<std::string, std::string> env = {});
  process::Child& child() { return child_; }
  std::string log() const { return read_file(log_); }
  const std::filesystem::path& log_path() const { return log_; }
  // Waits for a line containing `needle` in the log.
  bool wait_for_log(const std::string& needle,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

private:
  std::filesystem::path log_;
  process::Child child_;
};

// Whether the process exists and has not ended (a zombie counts as ended).
bool process_alive(pid_t pid);

// Runs a command to completion (default 60 s deadline) and returns its result.
process::RunResult run(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(60),
                       const std::string& working_dir = "",
                       std::optional<std::string> stdin_data = std::nullopt);

} // namespace capstan::testing
