// `capstan backup` against a running coordinator: a copy taken while executions run opens with
// SQLite, passes its integrity check, holds what was committed before it, and starts a
// coordinator of its own; the refusals a user meets; the live database held by its coordinator.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <set>

#include "stack.h"

namespace capstan::testing {
namespace {

using nlohmann::json;

constexpr const char* kSecretValue = "b4ckup-Hunter2-value";

const char* kNapper = R"(pipeline:
  identifier: napper
  name: Napper
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
                          sleep 2
                          echo "nap ends"
)";

// A database file opened with SQLite itself, as a user's tools would.
class Copy {
public:
  explicit Copy(const std::filesystem::path& file) {
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      throw std::runtime_error("cannot open " + file.string());
    }
  }
  ~Copy() { sqlite3_close(db_); }
  Copy(const Copy&) = delete;
  Copy& operator=(const Copy&) = delete;
  std::vector<std::string> column(const std::string& sql) {
    std::vector<std::string> out;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(st, 0);
      out.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    }
    sqlite3_finalize(st);
    return out;
  }

private:
  sqlite3* db_ = nullptr;
};

std::string both(const process::RunResult& r) {
  return r.out + r.err;
}

TEST(Backup, ACopyTakenWhileExecutionsRunIsWholeAndRestores) {
  TempDir dir("capstan-backup");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("alpha", {plugin_dir()}, 4);
  ASSERT_TRUE(stack.wait_for_delegates(1));
  stack.apply_file(source_dir() / "examples" / "shell-pipeline.yaml");
  ASSERT_EQ(stack.last_status(), 200);
  stack.apply_text("napper.yaml", kNapper);
  ASSERT_EQ(stack.last_status(), 200);
  stack.apply_text("secret.yaml",
                   std::string("secret:\n  identifier: db_pass\n  name: db\n  type: SecretText\n"
                               "  spec:\n    secretManagerIdentifier: harnessSecretManager\n"
                               "    valueType: Inline\n    value: ") +
                       kSecretValue + "\n");
  ASSERT_EQ(stack.last_status(), 200);

  std::set<std::string> ended, running;
  for (int i = 0; i < 3; ++i) {
    std::string id = stack.post("/api/v1/pipelines/shell_demo/executions", json::object())["id"];
    ASSERT_EQ(stack.wait_for_end(id)["status"], "Succeeded");
    ended.insert(id);
  }
  for (int i = 0; i < 3; ++i) {
    auto r = stack.post("/api/v1/pipelines/napper/executions", json::object());
    ASSERT_EQ(stack.last_status(), 201) << r.dump();
    running.insert(r["id"].get<std::string>());
  }

  auto file = dir.path() / "copies" / "capstan-backup.db";
  std::filesystem::create_directories(file.parent_path());
  auto backup = stack.cli({"backup", file.string()});
  ASSERT_EQ(backup.status.exit_code, 0) << both(backup);
  EXPECT_NE(backup.out.find("written to " + file.string()), std::string::npos) << backup.out;
  EXPECT_NE(backup.err.find("secrets.key"), std::string::npos) << backup.err;
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  // Nothing left beside it, nor in the coordinator's data dir.
  for (const auto& d : {file.parent_path(), dir.path() / "coordinator"}) {
    for (const auto& f : std::filesystem::directory_iterator(d)) {
      auto name = f.path().filename().string();
      EXPECT_EQ(name.find(".part-"), std::string::npos) << f.path();
      EXPECT_EQ(name.find(".capstan.db.backup-"), std::string::npos) << f.path();
    }
  }

  {
    Copy copy(file);
    EXPECT_EQ(copy.column("PRAGMA integrity_check"), std::vector<std::string>{"ok"});
    EXPECT_EQ(copy.column("PRAGMA journal_mode"), std::vector<std::string>{"delete"});
    for (const auto& id : ended) {
      EXPECT_EQ(copy.column("SELECT status FROM executions WHERE id = '" + id + "'"),
                std::vector<std::string>{"Succeeded"})
          << id;
    }
    for (const auto& id : running) {
      EXPECT_EQ(copy.column("SELECT count(*) FROM executions WHERE id = '" + id + "'"),
                std::vector<std::string>{"1"})
          << id;
    }
    // The secret is there, sealed; the delegate token only as a hash.
    EXPECT_EQ(copy.column("SELECT count(*) FROM secret_values WHERE identifier = 'db_pass'"),
              std::vector<std::string>{"1"});
    auto tokens = copy.column("SELECT hash FROM delegate_tokens");
    ASSERT_FALSE(tokens.empty());
    auto token = read_file(stack.delegate_token_file());
    while (!token.empty() && token.back() == '\n') token.pop_back();
    for (const auto& h : tokens) EXPECT_NE(h, token);
  }
  auto bytes = read_file(file);
  EXPECT_EQ(bytes.find(kSecretValue), std::string::npos);

  // Taken while the executions ran on: they end as they would have.
  for (const auto& id : running) EXPECT_EQ(stack.wait_for_end(id)["status"], "Succeeded");

  // Refusals: an existing FILE without --force, then replaced with it.
  auto again = stack.cli({"backup", file.string()});
  EXPECT_EQ(again.status.exit_code, 1);
  EXPECT_NE(again.err.find("already exists; give --force"), std::string::npos) << both(again);
  EXPECT_EQ(read_file(file), bytes) << "the existing file was touched";
  auto forced = stack.cli({"backup", file.string(), "--force"});
  EXPECT_EQ(forced.status.exit_code, 0) << both(forced);
  {
    Copy copy(file);
    for (const auto& id : running) {
      EXPECT_EQ(copy.column("SELECT status FROM executions WHERE id = '" + id + "'"),
                std::vector<std::string>{"Succeeded"});
    }
  }

  // Restored: a coordinator started on a data dir holding only the copy (and the secrets key)
  // shows the executions.
  TempDir other("capstan-restored");
  std::filesystem::create_directories(other / "coordinator");
  std::filesystem::copy_file(file, other / "coordinator" / "capstan.db");
  std::filesystem::copy_file(dir / "coordinator" / "secrets.key",
                             other / "coordinator" / "secrets.key");
  ::chmod((other / "coordinator" / "secrets.key").c_str(), 0600);
  Stack restored(other.path());
  restored.start_coordinator();
  auto list = restored.get("/api/v1/executions?limit=100");
  ASSERT_EQ(restored.last_status(), 200) << list.dump();
  std::set<std::string> seen;
  for (const auto& e : list["items"]) seen.insert(e["id"].get<std::string>());
  for (const auto& id : ended) EXPECT_TRUE(seen.count(id)) << id << " missing: " << list.dump();
  for (const auto& id : running) EXPECT_TRUE(seen.count(id)) << id << " missing: " << list.dump();
}

TEST(Backup, RefusalsAreClearAndLeaveNoFile) {
  TempDir dir("capstan-backup");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto file = dir.path() / "copy.db";

  // The API: no token, a wrong one.
  httplib::Client c(stack.api());
  auto res = c.Get("/api/v1/backup");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(res->body.find("SQLite format"), std::string::npos);
  c.set_bearer_token_auth("wrong");
  res = c.Get("/api/v1/backup");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);

  // The CLI: a wrong token, a missing directory, no coordinator, no FILE.
  auto run_cli = [&](const std::string& server, const std::string& token,
                     const std::vector<std::string>& args) {
    std::vector<std::string> argv = {binary("capstan").string(), "--server", server, "--token",
                                     token};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  auto wrong = run_cli(stack.api(), "wrong", {"backup", file.string()});
  EXPECT_EQ(wrong.status.exit_code, 1);
  EXPECT_NE(wrong.err.find("token does not match"), std::string::npos) << both(wrong);
  auto missing = run_cli(stack.api(), stack.api_token(),
                         {"backup", (dir.path() / "nowhere" / "copy.db").string()});
  EXPECT_EQ(missing.status.exit_code, 1);
  EXPECT_NE(missing.err.find("does not exist"), std::string::npos) << both(missing);
  auto usage = run_cli(stack.api(), stack.api_token(), {"backup"});
  EXPECT_EQ(usage.status.exit_code, 2);
  EXPECT_NE(usage.err.find("backup takes one FILE"), std::string::npos) << both(usage);
  auto gone = run_cli("http://127.0.0.1:1", "any", {"backup", file.string()});
  EXPECT_EQ(gone.status.exit_code, 1);
  EXPECT_NE(gone.err.find("cannot reach the coordinator"), std::string::npos) << both(gone);
  EXPECT_FALSE(std::filesystem::exists(file));
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(f.path().filename().string().find(".part-"), std::string::npos) << f.path();
  }
}

// The coordinator holds its database for its process: another process cannot open it (a backup
// is the way to a copy), and a second coordinator on the same data dir is refused.
TEST(Backup, TheLiveStoreIsHeldByItsCoordinator) {
  TempDir dir("capstan-backup");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto data = dir.path() / "coordinator";
  try {
    Copy live(data / "capstan.db");
    live.column("SELECT count(*) FROM executions");
    ADD_FAILURE() << "another process read the live database";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("database is locked"), std::string::npos) << e.what();
  }
  auto second = run({binary("capstan-coordinator").string(), "--data-dir", data.string(),
                     "--api-port", "0", "--bind", "tcp://127.0.0.1:0"},
                    {}, std::chrono::seconds(30));
  EXPECT_EQ(second.status.exit_code, 1) << both(second);
  EXPECT_NE(second.err.find("another coordinator is running with data dir " + data.string()),
            std::string::npos)
      << both(second);
  EXPECT_EQ(stack.get("/api/v1/executions")["items"].size(), 0u);
  EXPECT_EQ(stack.last_status(), 200) << "the first coordinator serves on";

  auto file = dir.path() / "copy.db";
  auto backup = stack.cli({"backup", file.string()});
  ASSERT_EQ(backup.status.exit_code, 0) << both(backup);
  Copy copy(file);
  EXPECT_EQ(copy.column("SELECT count(*) FROM executions"), std::vector<std::string>{"0"});
}

} // namespace
} // namespace capstan::testing
