#include "capstan/process/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "capstan/testing/testing.h"

namespace capstan::process {
namespace {

using namespace std::chrono_literals;

Options bash(const std::string& script) {
  Options o;
  o.argv = {"bash", "-c", script};
  return o;
}

TEST(ProcessRun, CapturesOutputAndExitCode) {
  auto r = run(bash("echo out; echo err >&2; exit 3"), {});
  EXPECT_EQ(r.status.exit_code, 3);
  EXPECT_FALSE(r.status.success());
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.status.describe(), "exit code 3");
}

TEST(ProcessRun, StreamsLinesInOrderPerStream) {
  std::vector<std::string> lines;
  RunControl c;
  c.on_line = [&](Stream s, const std::string& line) {
    if (s == Stream::kStdout) lines.push_back(line);
  };
  auto r = run(bash("for i in 1 2 3; do echo line$i; done; printf tail"), c);
  ASSERT_TRUE(r.status.success());
  EXPECT_EQ(lines, (std::vector<std::string>{"line1", "line2", "line3", "tail"}));
}

TEST(ProcessRun, PassesEnvironmentAndWorkingDir) {
  testing::TempDir dir;
  Options o = bash("echo $CAPSTAN_X; pwd");
  o.env["CAPSTAN_X"] = "hello world";
  o.working_dir = dir.path().string();
  auto r = run(o, {});
  EXPECT_EQ(r.out, "hello world\n" + std::filesystem::canonical(dir.path()).string() + "\n");
}

TEST(ProcessRun, FeedsStdin) {
  Options o;
  o.argv = {"cat"};
  o.stdin_data = std::string(200000, 'x'); // larger than a pipe buffer
  auto r = run(o, {});
  EXPECT_EQ(r.out.size(), 200000u);
}

TEST(ProcessRun, TimeoutKillsTheWholeGroup) {
  testing::TempDir dir;
  auto marker = dir / "survivor";
  RunControl c;
  c.timeout = 300ms;
  c.kill_grace = 200ms;
  // The background child would write the marker after 2 s if it survived the kill.
  auto r = run(bash("(sleep 2; touch " + marker.string() + ") & trap '' TERM; sleep 30"), c);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.status.signal, SIGKILL); // TERM was ignored, so KILL after the grace
  std::this_thread::sleep_for(2500ms);
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(ProcessRun, CancelStopsPromptly) {
  std::atomic<bool> cancel{false};
  RunControl c;
  c.cancelled = [&] { return cancel.load(); };
  std::thread t([&] {
    std::this_thread::sleep_for(200ms);
    cancel = true;
  });
  auto r = run(bash("sleep 30"), c);
  t.join();
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.status.signal, SIGTERM);
}

TEST(ProcessRun, BackgroundJobHoldingPipesDoesNotHang) {
  auto r = run(bash("sleep 30 & echo done"), {});
  EXPECT_TRUE(r.status.success());
  EXPECT_EQ(r.out, "done\n");
}

TEST(ProcessRun, LongLinesAreSplit) {
  std::vector<std::string> lines;
  RunControl c;
  c.max_line_bytes = 1000;
  c.on_line = [&](Stream, const std::string& line) { lines.push_back(line); };
  run(bash("head -c 2500 /dev/zero | tr '\\0' a"), c);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].size(), 1000u);
  EXPECT_EQ(lines[2].size(), 500u);
}

TEST(ProcessSpawn, MissingCommandIsAClearError) {
  Options o;
  o.argv = {"capstan-no-such-command"};
  try {
    Child::spawn(o);
    FAIL() << "expected SpawnError";
  } catch (const SpawnError& e) {
    EXPECT_NE(std::string(e.what()).find("capstan-no-such-command"), std::string::npos);
  }
}

TEST(ProcessSpawn, ChildTerminateAndWait) {
  auto child = Child::spawn(bash("sleep 30"));
  EXPECT_TRUE(child.running());
  EXPECT_FALSE(child.wait_for(50ms).has_value());
  auto s = child.terminate(1000ms);
  EXPECT_EQ(s.signal, SIGTERM);
  EXPECT_FALSE(child.running());
}

TEST(ProcessSpawn, OutputToFile) {
  testing::TempDir dir;
  Options o = bash("echo to-file; echo err-too >&2");
  o.stdout_path = (dir / "log").string();
  o.stderr_path = (dir / "log").string();
  auto child = Child::spawn(o);
  ASSERT_TRUE(child.wait_for(5000ms).has_value());
  auto log = testing::read_file(dir / "log");
  EXPECT_NE(log.find("to-file"), std::string::npos);
  EXPECT_NE(log.find("err-too"), std::string::npos);
}

} // namespace
} // namespace capstan::process
