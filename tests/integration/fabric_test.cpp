// A real coordinator and two delegates on loopback run pipelines through the bundled shell
// plugin; the coordinator is killed (SIGKILL) and restarted and nothing is lost.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stack.h"

namespace capstan::testing {
namespace {

using nlohmann::json;

std::filesystem::path example() {
  return source_dir() / "examples" / "shell-pipeline.yaml";
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

TEST(Fabric, ThreeStepPipelineRunsAndHistorySurvivesACoordinatorKill) {
  TempDir dir("capstan-fabric");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("alpha");
  stack.start_delegate("beta");
  ASSERT_TRUE(stack.wait_for_delegates(2));

  auto applied = stack.apply_file(example());
  ASSERT_EQ(stack.last_status(), 200) << applied.dump();
  EXPECT_EQ(applied["results"][0]["action"], "created");

  auto run =
      stack.post("/api/v1/pipelines/shell_demo/executions", {{"variables", {{"greeting", "Hi"}}}});
  ASSERT_EQ(stack.last_status(), 201) << run.dump();
  std::string first = run["id"];
  auto e = stack.wait_for_end(first);
  ASSERT_EQ(e["status"], "Succeeded") << e.dump(2);
  ASSERT_EQ(e["stages"].size(), 2u);
  for (const auto& stage : e["stages"]) {
    EXPECT_EQ(stage["status"], "Succeeded");
    for (const auto& step : stage["steps"]) {
      EXPECT_EQ(step["status"], "Succeeded");
      EXPECT_EQ(step["attempt"], 1);
      EXPECT_TRUE(step["delegate"] == "alpha" || step["delegate"] == "beta");
    }
  }
  EXPECT_EQ(e["stages"][0]["steps"][0]["outputs"]["version"], "1.0.1");
  std::string logs = stack.logs(first);
  EXPECT_NE(logs.find("build.package | packaging release 1.0.1"), std::string::npos) << logs;
  EXPECT_NE(logs.find("announce.say | Hi from Shell demo #1"), std::string::npos) << logs;

  // kill -9: nothing gets to flush or say goodbye.
  stack.kill_coordinator();
  stack.start_coordinator();
  ASSERT_TRUE(stack.wait_for_delegates(2)) << "delegates did not re-attach";

  auto history = stack.get("/api/v1/executions/" + first);
  EXPECT_EQ(history["status"], "Succeeded");
  EXPECT_EQ(stack.logs(first), logs);

  auto again = stack.post("/api/v1/pipelines/shell_demo/executions", json::object());
  ASSERT_EQ(stack.last_status(), 201) << again.dump();
  auto second = stack.wait_for_end(again["id"]);
  EXPECT_EQ(second["status"], "Succeeded") << second.dump(2);
  EXPECT_EQ(second["sequence"], 2);
  EXPECT_NE(stack.logs(again["id"]).find("Hello from Shell demo #2"), std::string::npos);
  EXPECT_EQ(stack.get("/api/v1/executions?pipeline=shell_demo")["items"].size(), 2u);
}

const char* kSleeper = R"(pipeline:
  identifier: sleeper
  name: Sleeper
  stages:
    - stage:
        identifier: s
        name: S
        type: Custom
        spec:
          execution:
            steps:
              - step:
                  type: ShellScript
                  identifier: nap
                  name: Nap
                  timeout: 1m
                  spec:
                    shell: Bash
                    source:
                      type: Inline
                      spec:
                        script: |
                          echo "nap begins"
                          sleep 3
                          echo "nap ends"
              - step:
                  type: ShellScript
                  identifier: after
                  name: After
                  timeout: 1m
                  spec:
                    shell: Bash
                    source:
                      type: Inline
                      spec:
                        script: echo "after the nap"
)";

// One slot, so every step runs in the same worker's directory: whatever a step leaves there
// (files, folders, at once or after a while) is gone when the next step starts.
std::string leftovers_pipeline() {
  const std::string empty = R"(test -z \"$(ls -A)\" || { echo \"left: $(ls -A)\"; exit 1; }; )";
  const std::vector<std::pair<std::string, std::string>> steps = {
      {"litter", "touch a; mkdir -p b/c; echo x > b/c/d"},
      {"late", empty + "sleep 0.05; touch late"},
      {"quiet", empty},
      {"check", empty}};
  std::string yaml = R"(pipeline:
  identifier: leftovers
  name: Leftovers
  stages:
    - stage:
        identifier: s
        name: S
        type: Custom
        spec:
          execution:
            steps:
)";
  for (const auto& [id, script] : steps) {
    yaml += "              - step: {type: ShellScript, identifier: " + id + ", name: " + id +
            ", spec: {shell: Bash, source: {type: Inline, spec: {script: \"" + script + "\"}}}}\n";
  }
  return yaml;
}

TEST(Fabric, EveryStepStartsInAnEmptyWorkDirectoryWhateverTheOneBeforeLeft) {
  TempDir dir("capstan-fabric");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("alpha");
  ASSERT_TRUE(stack.wait_for_delegates(1));
  stack.apply_text("leftovers.yaml", leftovers_pipeline());
  ASSERT_EQ(stack.last_status(), 200);
  for (int run = 0; run < 3; ++run) {
    std::string id = stack.post("/api/v1/pipelines/leftovers/executions", json::object())["id"];
    auto e = stack.wait_for_end(id);
    EXPECT_EQ(e["status"], "Succeeded") << e.dump(2) << stack.logs(id);
  }
}

TEST(Fabric, ExecutionResumesWhenTheCoordinatorIsKilledMidStep) {
  TempDir dir("capstan-fabric");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("alpha");
  ASSERT_TRUE(stack.wait_for_delegates(1));
  write_file(dir / "sleeper.yaml", kSleeper);
  stack.apply_file(dir / "sleeper.yaml");
  ASSERT_EQ(stack.last_status(), 200);
  std::string id = stack.post("/api/v1/pipelines/sleeper/executions", json::object())["id"];
  ASSERT_TRUE(wait_until([&] { return stack.logs(id).find("nap begins") != std::string::npos; }));

  stack.kill_coordinator();
  stack.start_coordinator();
  auto e = stack.wait_for_end(id);
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);
  const auto& nap = e["stages"][0]["steps"][0];
  EXPECT_EQ(nap["attempt"], 1) << "the step must not run twice";
  EXPECT_EQ(nap["delegate"], "alpha");
  std::string logs = stack.logs(id);
  EXPECT_EQ(count(logs, "nap begins"), 1u) << logs;
  EXPECT_NE(logs.find("after the nap"), std::string::npos) << logs;
}

TEST(Fabric, RunIsRefusedWhenNoConnectedDelegateProvidesAStepType) {
  TempDir dir("capstan-fabric");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto& d = stack.start_delegate("alpha");
  ASSERT_TRUE(stack.wait_for_delegates(1));
  stack.apply_file(example());
  ASSERT_EQ(stack.last_status(), 200);
  d.child().signal(SIGTERM);
  ASSERT_TRUE(stack.wait_for_delegates(0));
  // A delegate without the shell plugin.
  stack.start_delegate("empty", {dir / "no-plugins"});
  ASSERT_TRUE(stack.wait_for_delegates(1));
  auto r = stack.post("/api/v1/pipelines/shell_demo/executions", json::object());
  EXPECT_EQ(stack.last_status(), 409);
  std::string message = r["error"]["message"];
  EXPECT_NE(message.find("'ShellScript'"), std::string::npos) << message;
  EXPECT_NE(message.find("empty (no step types)"), std::string::npos) << message;
}

TEST(Fabric, APluginThatThrowsFailsTheStepAndTheDelegateCarriesOn) {
  TempDir dir("capstan-fabric");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto& d = stack.start_delegate("alpha", {plugin_dir(), CAPSTAN_FAULTY_PLUGIN_DIR}, 2);
  ASSERT_TRUE(stack.wait_for_delegates(1));
  for (const std::string type : {"Throws", "Garbage"}) {
    write_file(dir / "faulty.yaml", "pipeline:\n  identifier: faulty\n  name: Faulty\n"
                                    "  stages:\n    - stage:\n        identifier: s\n"
                                    "        name: S\n        type: Custom\n        spec:\n"
                                    "          execution:\n            steps:\n"
                                    "              - step:\n                  type: " +
                                        type +
                                        "\n                  identifier: x\n"
                                        "                  name: X\n                  spec: {}\n");
    auto applied = stack.apply_file(dir / "faulty.yaml");
    ASSERT_EQ(stack.last_status(), 200) << applied.dump();
    std::string id = stack.post("/api/v1/pipelines/faulty/executions", json::object())["id"];
    auto e = stack.wait_for_end(id);
    EXPECT_EQ(e["status"], "Failed");
    std::string message = e["stages"][0]["steps"][0]["message"];
    EXPECT_FALSE(message.empty());
    EXPECT_NE(e["message"].get<std::string>().find("stage s failed: step x failed"),
              std::string::npos)
        << e.dump(2);
  }
  EXPECT_TRUE(d.child().running()) << d.log();
  stack.apply_file(example());
  std::string ok = stack.post("/api/v1/pipelines/shell_demo/executions", json::object())["id"];
  EXPECT_EQ(stack.wait_for_end(ok)["status"], "Succeeded");
}

std::string prompt_pipeline() {
  std::string yaml = "pipeline:\n  identifier: prompt\n  name: Prompt\n  stages:\n"
                     "    - stage:\n        identifier: s\n        name: S\n        type: Custom\n"
                     "        spec:\n          execution:\n            steps:\n";
  for (const auto& [id, type] : std::vector<std::pair<std::string, std::string>>{
           {"p1", "Prompt"}, {"l1", "PromptLiar"}, {"l2", "PromptLiar"}, {"p2", "Prompt"}}) {
    yaml += "              - step: {type: " + type + ", identifier: " + id + ", name: " + id +
            ", spec: {}}\n";
  }
  return yaml;
}

TEST(Fabric, PromptStepsRunOnTheReceivingThreadUntilOneOverrunsItsBudget) {
  TempDir dir("capstan-fabric");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto& d = stack.start_delegate("alpha", {CAPSTAN_FAULTY_PLUGIN_DIR}, 2);
  ASSERT_TRUE(stack.wait_for_delegates(1));
  stack.apply_text("prompt.yaml", prompt_pipeline());
  ASSERT_EQ(stack.last_status(), 200);
  const std::string receiver = "ran on thread capstan-client";
  const std::string worker = "ran on thread capstan-worker";
  for (int run = 0; run < 2; ++run) {
    std::string id = stack.post("/api/v1/pipelines/prompt/executions", json::object())["id"];
    auto e = stack.wait_for_end(id);
    ASSERT_EQ(e["status"], "Succeeded") << e.dump(2) << d.log();
    for (const auto& step : e["stages"][0]["steps"]) {
      EXPECT_EQ(step["attempt"], 1) << step.dump();
    }
    std::string logs = stack.logs(id);
    // Each step ran exactly once.
    for (const std::string step : {"p1", "l1", "l2", "p2"}) {
      EXPECT_EQ(count(logs, step + " | ran on thread"), 1u) << logs;
    }
    // A step that keeps its promise stays on the receiving thread, the liar's type is demoted
    // after its first call, and one type's demotion leaves the other alone.
    EXPECT_NE(logs.find("p1 | " + receiver), std::string::npos) << logs;
    EXPECT_NE(logs.find("p2 | " + receiver), std::string::npos) << logs;
    EXPECT_NE(logs.find("l1 | " + (run == 0 ? receiver : worker)), std::string::npos) << logs;
    EXPECT_NE(logs.find("l2 | " + worker), std::string::npos) << logs;
  }
  EXPECT_EQ(count(d.log(), "step type PromptLiar is declared prompt"), 1u) << d.log();
  EXPECT_EQ(count(d.log(), "step type Prompt is declared"), 0u) << d.log();
}

TEST(Fabric, ApiRefusesRequestsWithoutTheToken) {
  TempDir dir("capstan-fabric");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto info = json::parse(read_file(dir / "coordinator" / "coordinator.json"));
  httplib::Client c(info["api"].get<std::string>());
  auto res = c.Get("/api/v1/executions");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  c.set_bearer_token_auth("wrong");
  EXPECT_EQ(c.Get("/api/v1/executions")->status, 401);
  EXPECT_EQ(c.Get("/healthz")->status, 200);
  auto perms = std::filesystem::status(dir / "coordinator" / "api-token").permissions();
  EXPECT_EQ(perms & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

// Sends `request` as raw bytes to host:port and returns everything the server answers until it
// closes the connection (or 10 s pass).
std::string raw_http(const std::string& api, const std::string& request) {
  auto colon = api.rfind(':');
  int port = std::stoi(api.substr(colon + 1));
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

TEST(Fabric, ApiAnswersMalformedRequestsWithAJsonError) {
  TempDir dir("capstan-fabric");
  Stack stack(dir.path());
  stack.start_coordinator();
  const std::string auth = "Authorization: Bearer " + stack.api_token() + "\r\n";
  // A POST without a body length: refused before the server waits for a body, with a reason.
  auto answer = raw_http(stack.api(), "POST /api/v1/apply HTTP/1.1\r\nHost: x\r\n" + auth +
                                          "Connection: close\r\n\r\n");
  EXPECT_NE(answer.find("HTTP/1.1 411"), std::string::npos) << answer;
  auto body = json::parse(answer.substr(answer.find("\r\n\r\n") + 4), nullptr, false);
  ASSERT_TRUE(body.is_object()) << answer;
  EXPECT_EQ(body["error"]["code"], "LengthRequired");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("Content-Length"), std::string::npos);
  // Broken chunked framing.
  answer = raw_http(stack.api(), "POST /api/v1/apply HTTP/1.1\r\nHost: x\r\n" + auth +
                                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                     "ZZZ\r\nnot a chunk\r\n\r\n");
  EXPECT_NE(answer.find("HTTP/1.1 400"), std::string::npos) << answer;
  body = json::parse(answer.substr(answer.find("\r\n\r\n") + 4), nullptr, false);
  ASSERT_TRUE(body.is_object()) << answer;
  EXPECT_EQ(body["error"]["code"], "BadRequest");
  // The API still serves everyone else.
  stack.get("/api/v1/executions");
  EXPECT_EQ(stack.last_status(), 200);
}

} // namespace
} // namespace capstan::testing
