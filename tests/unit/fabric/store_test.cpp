// The coordinator's SQLite store on real files: migrations, object versions, executions, logs.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "capstan/testing/testing.h"
#include "sqlite/database.h"
#include "store/store.h"
#include "store_testing.h"

namespace capstan::store {
namespace {

ObjectRecord pipeline(const std::string& id, int marker) {
  ObjectRecord o;
  o.kind = "pipeline";
  o.identifier = id;
  o.name = id;
  o.yaml = "pipeline: {}";
  o.document = {{"pipeline", {{"identifier", id}, {"marker", marker}}}};
  o.model = {{"identifier", id}};
  o.source = "p.yaml:1";
  return o;
}

ExecutionRecord execution(const std::string& id) {
  ExecutionRecord e;
  e.id = id;
  e.pipeline = "p";
  e.pipeline_version = 1;
  e.sequence = 1;
  e.status = status::kRunning;
  e.plan = {{"identifier", "p"}};
  e.created_at = e.started_at = 1000;
  StageRecord stage;
  stage.identifier = "s";
  stage.name = "S";
  stage.type = "Custom";
  e.stages.push_back(stage);
  StepRecord step;
  step.stage_identifier = "s";
  step.identifier = "a";
  step.name = "A";
  step.type = "ShellScript";
  e.steps.push_back(step);
  return e;
}

TEST(Store, FreshDatabaseIsMigratedToTheCurrentSchema) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  auto& q = s.writer().prepare("PRAGMA user_version");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.int64(0), schema_version());
  q.reset();
  auto& wal = s.writer().prepare("PRAGMA journal_mode");
  ASSERT_TRUE(wal.step());
  EXPECT_EQ(wal.text(0), "wal");
  wal.reset();
}

TEST(Store, NewerSchemaIsRefusedWithAClearMessage) {
  capstan::testing::TempDir dir;
  {
    sqlite::Database db(dir.path() / "capstan.db");
    db.exec("PRAGMA user_version = 999");
  }
  try {
    Store s(dir.path());
    FAIL() << "opened a database from the future";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this coordinator"), std::string::npos);
  }
}

TEST(Store, ObjectsGetAVersionPerChangeAndNoneForTheSameContent) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  EXPECT_EQ(s.put_object(pipeline("p", 1)), std::make_pair(std::int64_t{1}, true));
  EXPECT_EQ(s.put_object(pipeline("p", 1)), std::make_pair(std::int64_t{1}, false));
  EXPECT_EQ(s.put_object(pipeline("p", 2)), std::make_pair(std::int64_t{2}, true));
  auto latest = s.object("pipeline", "p");
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->version, 2);
  EXPECT_EQ(latest->document["pipeline"]["marker"], 2);
  EXPECT_EQ(s.objects("pipeline").size(), 1u);
  EXPECT_FALSE(s.object("pipeline", "nope"));
}

ObjectRecord application(const std::string& name, const std::string& project) {
  ObjectRecord o;
  o.kind = "application";
  o.identifier = o.name = name;
  o.yaml = "kind: Application";
  o.document = {{"metadata", {{"name", name}}}, {"spec", {{"project", project}}}};
  o.model = {{"name", name},
             {"project", project},
             {"repoURL", "https://git.example/" + name},
             {"document", o.document}};
  o.source = "apps.yaml:1";
  return o;
}

TEST(Store, WrittenObjectsAreHandedOutOnce) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  s.put_object(application("a", "default"));
  s.put_object(application("a", "default")); // unchanged: not written
  s.put_object(pipeline("p", 1));
  s.delete_object("pipeline", "p", "alice", 1);
  s.delete_object("pipeline", "missing", "alice", 1);
  using Key = std::pair<std::string, std::string>;
  EXPECT_EQ(s.take_written_objects(), (std::set<Key>{{"application", "a"}, {"pipeline", "p"}}));
  EXPECT_TRUE(s.take_written_objects().empty());
}

TEST(Store, ObjectFieldsAndApplicationPagesReadOnlyTheLatestLiveVersions) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  for (const char* n : {"c", "a", "d", "b"}) s.put_object(application(n, "default"));
  s.put_object(application("b", "team")); // version 2
  s.delete_object("application", "d", "alice", 1);
  AppStateRecord st;
  st.name = "b";
  st.delegate = "east";
  st.epoch = 3;
  st.status = {{"sync", {{"status", "Synced"}}}};
  s.put_app_state(st);

  auto fields = s.object_fields("application", {"$.project", "$.missing", "$.document.spec"});
  ASSERT_EQ(fields.size(), 3U);
  EXPECT_EQ(fields[1].identifier, "b");
  EXPECT_EQ(fields[1].version, 2);
  EXPECT_EQ(fields[1].values[0], "team");
  EXPECT_TRUE(fields[1].values[1].is_null());
  EXPECT_EQ(fields[1].values[2], (nlohmann::json{{"project", "team"}}));

  auto first = s.application_page("", 2);
  ASSERT_EQ(first.size(), 2U);
  EXPECT_EQ(first[0].name, "a");
  EXPECT_FALSE(first[0].state.has_value());
  EXPECT_EQ(first[1].name, "b");
  EXPECT_EQ(first[1].project, "team");
  EXPECT_EQ(first[1].spec_json, R"({"project":"team"})");
  EXPECT_EQ(first[1].metadata_json, R"({"name":"b"})");
  EXPECT_EQ(first[0].status_json, "{}");
  ASSERT_TRUE(first[1].state.has_value());
  EXPECT_EQ(first[1].state->delegate, "east");
  EXPECT_EQ(first[1].state->epoch, 3U);
  EXPECT_EQ(first[1].status_json, R"({"sync":{"status":"Synced"}})");
  auto rest = s.application_page("b", 2);
  ASSERT_EQ(rest.size(), 1U); // d was deleted
  EXPECT_EQ(rest[0].name, "c");
  EXPECT_TRUE(s.application_page("c", 2).empty());
  ASSERT_TRUE(s.application_item("b").has_value());
  EXPECT_EQ(s.application_item("b")->state->delegate, "east");
  EXPECT_FALSE(s.application_item("d").has_value());
}

TEST(Store, ReferrersAreTheLatestLiveObjectsNamingTheObject) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  auto refers = [](const std::string& name, const std::string& cluster) {
    auto o = application(name, cluster); // a new version when the cluster changes
    o.references = nlohmann::json::array(
        {{{"kind", "gitopsCluster"}, {"identifier", cluster}, {"location", name + ".yaml:9:11"}},
         {{"kind", "gitopsCluster"}, {"identifier", cluster}, {"location", "second"}}});
    return o;
  };
  s.put_object(refers("b", "east"));
  s.put_object(refers("a", "east"));
  s.put_object(refers("c", "east"));
  s.put_object(refers("c", "west")); // its latest version names another cluster
  s.put_object(refers("d", "east"));
  s.delete_object("application", "d", "alice", 1);
  auto found = s.referrers("gitopsCluster", "east");
  ASSERT_EQ(found.size(), 2U);
  EXPECT_EQ(found[0].first.identifier, "a");
  EXPECT_EQ(found[0].second["location"], "a.yaml:9:11");
  EXPECT_EQ(found[1].first.identifier, "b");
  EXPECT_TRUE(s.referrers("gitopsCluster", "north").empty());
}

// One commit at a time, as the engine makes them under light load: the log is copied back and
// starts over, so it stays a few megabytes however much is written through it.
TEST(Store, TheWriteAheadLogStaysBoundedUnderSmallCommits) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  const std::filesystem::path wal = s.file().string() + "-wal";
  // Each commit writes several pages of 4 KiB (the execution's row with its 3,000-byte variables,
  // and its indexes' pages, the ids being scattered): over 100 MB in all, which a log that never
  // started over would hold.
  std::uintmax_t largest = 0;
  for (int i = 0; i < 4000; ++i) {
    sqlite::Transaction tx(s.writer());
    auto e = execution(std::to_string(100000000 + (i * 7919) % 1000003)); // scattered ids
    e.sequence = i + 1;
    e.variables = {{"payload", std::string(3000, static_cast<char>('a' + i % 26))}};
    s.insert_execution(e);
    tx.commit();
    largest = std::max(largest, std::filesystem::file_size(wal));
  }
  // The log started over (its header counts the times), and it never held much more than the
  // 16 MB after which the writer copies it back itself. How far past that it goes depends on
  // how long the checkpointer's copy and sync take meanwhile: 46 MB was seen with another
  // process filling the disk, hence the margin.
  std::ifstream header(wal, std::ios::binary);
  unsigned char h[16] = {};
  ASSERT_TRUE(header.read(reinterpret_cast<char*>(h), sizeof h));
  const auto restarts = (std::uint32_t{h[12]} << 24) | (std::uint32_t{h[13]} << 16) |
                        (std::uint32_t{h[14]} << 8) | std::uint32_t{h[15]};
  EXPECT_GE(restarts, 1u) << "the log never started over";
  EXPECT_LT(largest, std::uintmax_t{80} << 20) << "the log grew to " << largest << " bytes";
  std::printf("the log started over %u times, at most %ju bytes\n", restarts, largest);
  auto& q = s.writer().prepare("SELECT count(*) FROM executions");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.int64(0), 4000);
  q.reset();
}

TEST(Store, ExecutionsStepsAndLogsSurviveReopening) {
  capstan::testing::TempDir dir;
  {
    Store s(dir.path());
    sqlite::Transaction tx(s.writer());
    auto e = execution("abcdef123456");
    s.insert_execution(e);
    e.steps[0].status = status::kSucceeded;
    e.steps[0].outputs = {{"version", "1.0.1"}};
    e.steps[0].attempt = 1;
    s.update_step(e.id, e.steps[0]);
    e.status = status::kSucceeded;
    e.ended_at = 2000;
    e.revision = 7;
    s.update_execution(e);
    std::vector<LogRecord> lines;
    for (int i = 1; i <= 3; ++i) {
      LogRecord l;
      l.seq = i;
      l.step = "s.a";
      l.line = "line " + std::to_string(i);
      lines.push_back(l);
    }
    s.append_logs(e.id, lines);
    tx.commit();
  }
  Store s(dir.path());
  auto e = s.execution("abcdef123456");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, status::kSucceeded);
  EXPECT_EQ(e->revision, 7);
  ASSERT_EQ(e->steps.size(), 1u);
  EXPECT_EQ(e->steps[0].outputs["version"], "1.0.1");
  EXPECT_TRUE(s.execution("abcd")) << "a unique prefix finds it";
  EXPECT_FALSE(s.execution("abc")) << "prefixes shorter than 4 characters do not";
  auto logs = s.logs(e->id, 1, 10);
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0].line, "line 2");
  EXPECT_EQ(s.logs(e->id, 0, 10, "a").size(), 3u) << "a step id without its stage matches";
  EXPECT_EQ(s.logs(e->id, 0, 10, "s.a").size(), 3u);
  EXPECT_TRUE(s.logs(e->id, 0, 10, "b").empty());
  EXPECT_TRUE(s.active_executions().empty());
}

TEST(Store, AnExecutionIsFoundByAUniquePrefixOfItsId) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  {
    sqlite::Transaction tx(s.writer());
    int sequence = 0;
    for (const char* id : {"mk2a00001abc", "mk2a00001abd", "mk2b0000zzzz", "mk2c_0000001"}) {
      auto e = execution(id);
      e.sequence = ++sequence;
      s.insert_execution(e);
    }
    tx.commit();
  }
  EXPECT_EQ(s.execution("mk2b")->id, "mk2b0000zzzz");
  EXPECT_EQ(s.execution("MK2B")->id, "mk2b0000zzzz") << "ids are lower case; so is the lookup";
  EXPECT_EQ(s.execution("mk2a00001abd")->id, "mk2a00001abd") << "a whole id is exact";
  EXPECT_EQ(s.execution("mk2a00001abc")->steps.size(), 1U);
  EXPECT_FALSE(s.execution("mk2a")) << "two ids start with it";
  EXPECT_FALSE(s.execution("mk2a00001abe"));
  EXPECT_FALSE(s.execution("mk2d"));
  EXPECT_EQ(s.execution("mk2c_")->id, "mk2c_0000001");
  EXPECT_FALSE(s.execution("mk2_")) << "'_' is a character, not a wildcard";
  EXPECT_FALSE(s.execution("mk2%")) << "'%' is a character, not a wildcard";
}

TEST(Store, ExecutionListsAreFilteredByPipelineAndStatusNewestFirst) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  struct Row {
    const char* id;
    const char* pipeline;
    const char* status;
  };
  int n = 0;
  for (const Row& r :
       {Row{"list00000001", "p", status::kSucceeded}, Row{"list00000002", "q", status::kRunning},
        Row{"list00000003", "p", status::kRunning}, Row{"list00000004", "p", status::kQueued},
        Row{"list00000005", "q", status::kFailed}}) {
    auto e = execution(r.id);
    e.pipeline = r.pipeline;
    e.sequence = ++n;
    e.status = r.status;
    e.created_at = 1000 + n;
    s.insert_execution(e);
  }
  auto ids = [&](const std::string& pipeline, const std::string& status, int limit = 50) {
    ExecutionFilter f;
    f.pipeline = pipeline;
    f.status = status;
    f.limit = limit;
    std::vector<std::string> out;
    for (const auto& e : s.executions(f)) out.push_back(e.id);
    return out;
  };
  using Ids = std::vector<std::string>;
  EXPECT_EQ(ids("", ""),
            (Ids{"list00000005", "list00000004", "list00000003", "list00000002", "list00000001"}));
  EXPECT_EQ(ids("", "", 2), (Ids{"list00000005", "list00000004"}));
  EXPECT_EQ(ids("p", ""), (Ids{"list00000004", "list00000003", "list00000001"}));
  EXPECT_EQ(ids("", status::kRunning), (Ids{"list00000003", "list00000002"}));
  EXPECT_EQ(ids("q", status::kRunning), (Ids{"list00000002"}));
  EXPECT_EQ(ids("p", status::kQueued), (Ids{"list00000004"}));
  EXPECT_EQ(ids("", status::kFailed), (Ids{"list00000005"}));
  EXPECT_TRUE(ids("r", "").empty());
}

TEST(Store, TheAuditTrailIsFilteredByTheFiltersGivenNewestFirst) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  struct Entry {
    const char* user;
    const char* action;
    const char* kind;
    const char* target;
    const char* execution_id;
  };
  for (const Entry& e :
       {Entry{"alice", "apply", "pipeline", "p", ""}, Entry{"bob", "run", "execution", "x1", "x1"},
        Entry{"alice", "approve", "execution", "x1", "x1"},
        Entry{"alice", "run", "execution", "x2", "x2"},
        Entry{"bob", "apply", "service", "web", "x1"}}) {
    AuditRecord a;
    a.user = e.user;
    a.action = e.action;
    a.kind = e.kind;
    a.target = e.target;
    a.execution_id = e.execution_id;
    s.append_audit(a);
  }
  auto seqs = [&](const AuditFilter& f) {
    std::vector<std::int64_t> out;
    for (const auto& a : s.audit(f)) out.push_back(a.seq);
    return out;
  };
  using Seqs = std::vector<std::int64_t>;
  EXPECT_EQ(seqs(AuditFilter{}), (Seqs{5, 4, 3, 2, 1}));
  AuditFilter f;
  f.user = "alice";
  EXPECT_EQ(seqs(f), (Seqs{4, 3, 1}));
  f.action = "run";
  EXPECT_EQ(seqs(f), (Seqs{4}));
  f = AuditFilter{};
  f.kind = "execution";
  f.before = 4;
  EXPECT_EQ(seqs(f), (Seqs{3, 2}));
  f = AuditFilter{};
  f.target = "x1";
  EXPECT_EQ(seqs(f), (Seqs{5, 3, 2})) << "the target or the execution it concerns";
  f.limit = 2;
  EXPECT_EQ(seqs(f), (Seqs{5, 3}));
  f.before = 3;
  EXPECT_EQ(seqs(f), (Seqs{2}));
  f = AuditFilter{};
  f.user = "carol";
  EXPECT_TRUE(seqs(f).empty());
}

TEST(Store, AuditEntriesOfATransactionAreNumberedInOrderWithItOrDroppedWithIt) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  auto entry = [](const std::string& target, std::int64_t time) {
    AuditRecord a;
    a.user = "alice";
    a.action = "run";
    a.kind = "execution";
    a.target = a.execution_id = target;
    a.time = time;
    a.details = {{"n", target}};
    return a;
  };
  auto targets = [&] {
    AuditFilter all;
    all.limit = 1000;
    std::vector<std::string> out;
    for (const auto& a : s.audit(all)) out.push_back(std::to_string(a.seq) + ":" + a.target);
    return out;
  };
  s.append_audit(entry("a", 1)); // outside a transaction: at once
  EXPECT_EQ(targets(), std::vector<std::string>{"1:a"});
  {
    sqlite::Transaction tx(s.writer());
    s.append_audit(entry("dropped", 2));
  }
  // Entries of one transaction, and an entry after it.
  {
    sqlite::Transaction tx(s.writer());
    for (std::size_t i = 0; i < 11U; ++i) {
      s.append_audit(entry("t" + std::to_string(i), 10 + static_cast<std::int64_t>(i)));
    }
    EXPECT_EQ(targets().size(), 1U) << "nothing is seen before the commit";
    tx.commit();
  }
  s.append_audit(entry("z", 99));
  std::vector<std::string> expected{"13:z"};
  for (std::size_t i = 11U; i-- > 0;) {
    expected.push_back(std::to_string(i + 2) + ":t" + std::to_string(i));
  }
  expected.emplace_back("1:a");
  EXPECT_EQ(targets(), expected);
  AuditFilter f;
  f.target = "t4";
  auto one = s.audit(f);
  ASSERT_EQ(one.size(), 1U);
  EXPECT_EQ(one[0].time, 14);
  EXPECT_EQ(one[0].user, "alice");
  EXPECT_EQ(one[0].action, "run");
  EXPECT_EQ(one[0].kind, "execution");
  EXPECT_EQ(one[0].execution_id, "t4");
  EXPECT_EQ(one[0].details["n"], "t4");
}

TEST(Store, UncommittedChangesAreRolledBack) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  {
    sqlite::Transaction tx(s.writer());
    s.insert_execution(execution("rolledback01"));
  }
  EXPECT_FALSE(s.execution("rolledback01"));
}

TEST(Store, ActiveExecutionsComeBackWithTheirSteps) {
  capstan::testing::TempDir dir;
  {
    Store s(dir.path());
    s.insert_execution(execution("running00001"));
  }
  Store s(dir.path());
  auto active = s.active_executions();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].steps.size(), 1u);
  EXPECT_EQ(active[0].plan["identifier"], "p");
  EXPECT_EQ(s.next_sequence("p"), 2);
}

TEST(Store, ADatabaseOfTheLastSchemaOpensWithItsExecutionsPlansAndAuditTrail) {
  capstan::testing::TempDir dir;
  const auto file = dir.path() / "capstan.db";
  migrate_to(file, 7); // the schema before plans had a table of their own
  const std::string plan_a = R"({"identifier":"p","stages":[{"identifier":"s"}]})";
  const std::string plan_b = R"({"identifier":"p","stages":[{"identifier":"t"}]})";
  {
    sqlite::Database db(file);
    // As that schema's release wrote them: the plan inline in every execution's row.
    auto& ins = db.prepare(
        "INSERT INTO executions (id, pipeline, pipeline_version, sequence, status, variables, "
        "plan, created_at, started_at, ended_at, error_type, message, revision) VALUES "
        "(?, 'p', 1, ?, ?, '{\"v\":1}', ?, ?, ?, 0, '', '', 3)");
    struct Row {
      const char* id;
      int sequence;
      const char* status;
      const std::string* plan;
    };
    for (const Row& r :
         {Row{"old000000001", 1, "Succeeded", &plan_a}, Row{"old000000002", 2, "Running", &plan_a},
          Row{"old000000003", 3, "Queued", &plan_b}}) {
      ins.reset()
          .bind(1, r.id)
          .bind(2, r.sequence)
          .bind(3, r.status)
          .bind(4, *r.plan)
          .bind(5, 1000 + r.sequence)
          .bind(6, 1000 + r.sequence)
          .run();
    }
    db.exec("INSERT INTO stage_executions (execution_id, stage_index, identifier, name, type, "
            "status, started_at, ended_at) VALUES ('old000000002', 0, 's', 'S', 'Custom', "
            "'Running', 1002, 0)");
    db.exec("INSERT INTO step_executions (execution_id, stage_index, step_index, "
            "stage_identifier, identifier, name, type, status, attempt, task_id, delegate, "
            "delegate_instance, queued_at, started_at, ended_at, timeout_ms, error_type, message, "
            "outputs) VALUES ('old000000002', 0, 0, 's', 'a', 'A', 'ShellScript', 'Dispatched', "
            "2, 'task-1', 'd1', 'i1', 1002, 1002, 0, 60000, '', '', '{}')");
    for (int i = 0; i < 3; ++i) {
      db.exec("INSERT INTO audit (time, user, action, kind, target, execution_id, details) "
              "VALUES (1, 'alice', 'run', 'execution', 'old', 'old', '{}')");
    }
  }

  Store s(dir.path());
  EXPECT_EQ(count(s, "PRAGMA user_version"), schema_version());
  EXPECT_EQ(count(s, "SELECT COUNT(*) FROM plans"), 2) << "each distinct plan once";
  auto done = s.execution("old000000001");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->plan, nlohmann::json::parse(plan_a));
  EXPECT_EQ(done->status, status::kSucceeded);
  EXPECT_EQ(done->variables["v"], 1);
  EXPECT_EQ(s.execution("old000000003")->plan, nlohmann::json::parse(plan_b));

  auto active = s.active_executions();
  ASSERT_EQ(active.size(), 2U);
  EXPECT_EQ(active[0].id, "old000000002");
  EXPECT_EQ(active[0].plan, nlohmann::json::parse(plan_a));
  ASSERT_EQ(active[0].steps.size(), 1U);
  EXPECT_EQ(active[0].steps[0].attempt, 2U);
  EXPECT_EQ(active[0].steps[0].task_id, "task-1");
  EXPECT_EQ(active[1].id, "old000000003");
  EXPECT_EQ(s.next_sequence("p"), 4);
  ExecutionFilter running;
  running.status = status::kRunning;
  ASSERT_EQ(s.executions(running).size(), 1U);
  EXPECT_TRUE(s.executions(running)[0].plan.is_null()) << "lists carry no plan";

  // The resumed execution keeps being written; a new run of the same plan shares its row.
  {
    sqlite::Transaction tx(s.writer());
    auto e = active[0];
    e.status = status::kSucceeded;
    e.revision = 4;
    s.update_execution(e);
    auto fresh = execution("new000000004");
    fresh.sequence = 4;
    fresh.plan = nlohmann::json::parse(plan_a);
    s.insert_execution(fresh);
    AuditRecord a;
    a.user = "bob";
    a.action = "run";
    a.kind = "execution";
    a.target = "new000000004";
    s.append_audit(a);
    tx.commit();
  }
  EXPECT_EQ(count(s, "SELECT COUNT(*) FROM plans"), 2);
  EXPECT_EQ(s.execution("old000000002")->status, status::kSucceeded);
  EXPECT_EQ(s.execution("new000000004")->plan, nlohmann::json::parse(plan_a));
  EXPECT_EQ(s.active_executions().size(), 2U); // old000000003 and the new one

  auto trail = s.audit(AuditFilter{});
  ASSERT_EQ(trail.size(), 4U);
  EXPECT_EQ(trail[0].user, "bob");
  EXPECT_GT(trail[0].seq, trail[1].seq);
  EXPECT_EQ(trail[1].seq, 3);
  AuditFilter before;
  before.before = trail[0].seq;
  EXPECT_EQ(s.audit(before).size(), 3U);
}

TEST(Store, PlansAreStoredOnceAndARolledBackOneIsStoredAgain) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  {
    sqlite::Transaction tx(s.writer());
    s.insert_execution(execution("rolledback01"));
  } // rolled back, with the plan it inserted
  {
    sqlite::Transaction tx(s.writer());
    auto a = execution("kept00000001");
    a.plan_text = a.plan.dump();
    s.insert_execution(a);
    auto b = execution("kept00000002");
    b.sequence = 2;
    s.insert_execution(b);
    auto c = execution("kept00000003");
    c.sequence = 3;
    c.plan = {{"identifier", "other"}};
    s.insert_execution(c);
    tx.commit();
  }
  EXPECT_EQ(count(s, "SELECT COUNT(*) FROM plans"), 2);
  EXPECT_EQ(s.execution("kept00000001")->plan["identifier"], "p");
  EXPECT_EQ(s.execution("kept00000002")->plan["identifier"], "p");
  EXPECT_EQ(s.execution("kept00000003")->plan["identifier"], "other");
}

TEST(Store, ExecutionUpdatesKeepEveryColumnAcrossRollbacks) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  auto e = execution("updates00001");
  s.insert_execution(e);
  // Only scalar columns change.
  e.revision = 2;
  e.message = "first step done";
  s.update_execution(e);
  EXPECT_EQ(s.execution(e.id)->message, "first step done");
  // A JSON column changes in a transaction that is rolled back...
  {
    sqlite::Transaction tx(s.writer());
    e.variables = {{"answer", 42}};
    e.revision = 3;
    s.update_execution(e);
  }
  EXPECT_TRUE(s.execution(e.id)->variables.empty());
  // ...and is written when the same change is made again.
  e.revision = 4;
  s.update_execution(e);
  auto stored = s.execution(e.id);
  EXPECT_EQ(stored->variables["answer"], 42);
  EXPECT_EQ(stored->revision, 4);
  // The status (indexed: the active executions) changes.
  e.status = status::kSucceeded;
  e.ended_at = 3000;
  e.revision = 5;
  s.update_execution(e);
  EXPECT_TRUE(s.active_executions().empty());
  stored = s.execution(e.id);
  EXPECT_EQ(stored->status, status::kSucceeded);
  EXPECT_EQ(stored->ended_at, 3000);
  EXPECT_EQ(stored->variables["answer"], 42);
}

TEST(Store, AStatusChangeAloneKeepsTheJsonColumnsAndTheActiveIndexAcrossRollbacks) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  auto e = execution("status000001");
  e.variables = {{"answer", 42}};
  e.state = {{"waiting", true}};
  s.insert_execution(e);
  // A change of status alone, rolled back: the next one is written as if it had not been.
  {
    sqlite::Transaction tx(s.writer());
    e.status = status::kQueued;
    e.revision = 2;
    s.update_execution(e, true, {0}, {0});
  }
  EXPECT_EQ(s.execution(e.id)->status, status::kRunning);
  e.status = status::kQueued;
  e.revision = 3;
  e.steps[0].status = status::kQueued;
  s.update_execution(e, true, {0}, {0});
  auto stored = s.execution(e.id);
  EXPECT_EQ(stored->status, status::kQueued);
  EXPECT_EQ(stored->revision, 3);
  EXPECT_EQ(stored->steps[0].status, status::kQueued);
  EXPECT_EQ(stored->variables["answer"], 42);
  EXPECT_EQ(stored->state["waiting"], true);
  ASSERT_EQ(s.active_executions().size(), 1U);
  ExecutionFilter queued;
  queued.status = status::kQueued;
  EXPECT_EQ(s.executions(queued).size(), 1U);
  // Back to running, then ended: the row leaves the active ones.
  e.status = status::kRunning;
  e.revision = 4;
  s.update_execution(e);
  EXPECT_EQ(s.execution(e.id)->status, status::kRunning);
  e.status = status::kSucceeded;
  e.steps[0].status = status::kSucceeded;
  e.ended_at = 5000;
  e.revision = 5;
  s.update_execution(e, true, {0}, {0});
  EXPECT_TRUE(s.active_executions().empty());
  stored = s.execution(e.id);
  EXPECT_EQ(stored->status, status::kSucceeded);
  EXPECT_EQ(stored->ended_at, 5000);
  EXPECT_EQ(stored->steps[0].status, status::kSucceeded);
  EXPECT_EQ(stored->variables["answer"], 42);
  EXPECT_EQ(stored->state["waiting"], true);
}

TEST(Store, RunNumbersFollowTheStoredRunsAcrossRollbacksAndReopening) {
  capstan::testing::TempDir dir;
  {
    Store s(dir.path());
    EXPECT_EQ(s.next_sequence("p"), 1);
    EXPECT_EQ(s.next_sequence("p"), 1) << "nothing stored yet";
    s.insert_execution(execution("seq000000001"));
    EXPECT_EQ(s.next_sequence("p"), 2);
    {
      sqlite::Transaction tx(s.writer());
      auto e = execution("seq000000002");
      e.sequence = s.next_sequence("p");
      s.insert_execution(e);
      EXPECT_EQ(s.next_sequence("p"), 3);
    }
    EXPECT_EQ(s.next_sequence("p"), 2) << "the rolled-back run's number is free again";
    auto e = execution("seq000000003");
    e.sequence = 2;
    s.insert_execution(e);
    EXPECT_EQ(s.next_sequence("p"), 3);
    // A number already taken is refused by the unique index, and changes nothing.
    auto taken = execution("seq000000004");
    taken.sequence = 2;
    EXPECT_THROW(s.insert_execution(taken), sqlite::Error);
    EXPECT_EQ(s.next_sequence("p"), 3);
    auto other = execution("seq000000005");
    other.pipeline = "q";
    other.sequence = s.next_sequence("q");
    EXPECT_EQ(other.sequence, 1);
    s.insert_execution(other);
    EXPECT_EQ(s.next_sequence("q"), 2);
  }
  Store s(dir.path());
  EXPECT_EQ(s.next_sequence("p"), 3);
  EXPECT_EQ(s.next_sequence("q"), 2);
}

TEST(Store, AStatementRunsAParameterNotBoundSinceItsLastUseAsNull) {
  capstan::testing::TempDir dir;
  sqlite::Database db(dir.path() / "t.db");
  db.exec("CREATE TABLE t (a TEXT, b INTEGER)");
  const char* insert = "INSERT INTO t (a, b) VALUES (?, ?)";
  db.prepare(insert).bind(1, "first").bind(2, 1).run();
  db.prepare(insert).bind(1, "second").run(); // b left unbound: NULL, not the 1 of last time
  db.prepare(insert).bind(2, 3).run();
  auto& q = db.prepare("SELECT COALESCE(a, '-'), COALESCE(b, -1) FROM t ORDER BY rowid");
  std::vector<std::pair<std::string, std::int64_t>> rows;
  while (q.step()) rows.emplace_back(q.text(0), q.int64(1));
  EXPECT_EQ(rows, (std::vector<std::pair<std::string, std::int64_t>>{
                      {"first", 1}, {"second", -1}, {"-", 3}}));
}

TEST(Store, AStatementKeepsTheTextsBoundToItUntilTheyAreBoundAgain) {
  capstan::testing::TempDir dir;
  sqlite::Database db(dir.path() / "t.db");
  db.exec("CREATE TABLE t (a TEXT, b TEXT)");
  const char* insert = "INSERT INTO t (a, b) VALUES (?, ?)";
  const std::string long_text(20000, 'x'); // longer than a statement keeps
  for (const std::string& a :
       {std::string("short"), std::string(300, 'm'), long_text, std::string("s")}) {
    auto& q = db.prepare(insert);
    {
      std::string gone = a + "!";
      q.bind(1, gone).bind(2, std::string("b:") + a);
    } // both texts are destroyed before the statement runs
    q.run();
  }
  auto& q = db.prepare("SELECT a, b FROM t ORDER BY rowid");
  std::vector<std::pair<std::string, std::string>> rows;
  while (q.step()) rows.emplace_back(q.text(0), q.text(1));
  ASSERT_EQ(rows.size(), 4U);
  EXPECT_EQ(rows[0], std::make_pair(std::string("short!"), std::string("b:short")));
  EXPECT_EQ(rows[1].first, std::string(300, 'm') + "!");
  EXPECT_EQ(rows[2].first, long_text + "!");
  EXPECT_EQ(rows[2].second, "b:" + long_text);
  EXPECT_EQ(rows[3], std::make_pair(std::string("s!"), std::string("b:s")));
}

TEST(Store, AStatementBoundToTheSameTextAgainRunsWithItWhateverWasBoundBetween) {
  capstan::testing::TempDir dir;
  sqlite::Database db(dir.path() / "t.db");
  db.exec("CREATE TABLE t (a)");
  const char* insert = "INSERT INTO t (a) VALUES (?)";
  db.prepare(insert).bind(1, "same").run();
  db.prepare(insert).bind(1, "same").run(); // not bound again: still bound to it
  db.prepare(insert).bind(1, 7).run();
  db.prepare(insert).bind(1, "same").run(); // bound again: the 7 replaced it
  db.prepare(insert).bind_null(1).run();
  db.prepare(insert).bind(1, "same").run();
  db.prepare(insert).run(); // unbound: NULL
  db.prepare(insert).bind(1, "same").run();
  auto& q = db.prepare("SELECT COALESCE(a, '-') FROM t ORDER BY rowid");
  std::vector<std::string> rows;
  while (q.step()) rows.push_back(q.text(0));
  EXPECT_EQ(rows,
            (std::vector<std::string>{"same", "same", "7", "same", "-", "same", "-", "same"}));
}

TEST(Store, StatementsBuiltAtTheSameAddressWithOtherTextsAreTheirOwn) {
  capstan::testing::TempDir dir;
  sqlite::Database db(dir.path() / "t.db");
  db.exec("CREATE TABLE t (a INTEGER)");
  db.exec("INSERT INTO t (a) VALUES (1), (2), (4)");
  // One buffer rewritten in place: the same address each time, another statement each time.
  std::string sql(64, ' ');
  const std::vector<std::pair<const char*, std::int64_t>> cases = {{"SELECT min(a) FROM t", 1},
                                                                   {"SELECT max(a) FROM t", 4},
                                                                   {"SELECT count(a) FROM t", 3},
                                                                   {"SELECT min(a) FROM t", 1}};
  for (const auto& [text, expected] : cases) {
    sql.assign(text);
    auto& q = db.prepare(sql);
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.int64(0), expected) << text;
    q.reset();
  }
}

// The copy's bytes, read from the descriptor the backup hands over, written to `file`.
void save(const Store::Backup& copy, const std::filesystem::path& file) {
  std::string bytes(static_cast<std::size_t>(copy.bytes), '\0');
  ASSERT_EQ(::pread(copy.fd, bytes.data(), bytes.size(), 0), copy.bytes);
  capstan::testing::write_file(file, bytes);
}

TEST(Store, ABackupTakenWhileTheWriterCommitsIsWholeAndLeavesNothingBehind) {
  capstan::testing::TempDir dir;
  Store s(dir.path() / "data");
  auto numbered = [](const std::string& prefix, int i) {
    auto e = execution(prefix + std::to_string(100000 + i));
    e.sequence = i;
    return e;
  };
  for (int i = 1; i <= 300; ++i) s.insert_execution(numbered("before", i));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    // As the engine writes: an execution with its stages and steps in one transaction.
    for (int i = 1000; !stop; ++i) {
      sqlite::Transaction tx(s.writer());
      s.insert_execution(numbered("during", i));
      tx.commit();
    }
  });
  auto copy = s.backup();
  stop = true;
  writer.join();
  struct stat st {};
  ASSERT_EQ(::fstat(copy.fd, &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(st.st_nlink, 0u) << "the file is unlinked once made";
  EXPECT_EQ(st.st_size, copy.bytes);
  EXPECT_EQ(copy.bytes, copy.pages * 4096);
  for (const auto& f : std::filesystem::directory_iterator(dir.path() / "data")) {
    EXPECT_EQ(f.path().filename().string().rfind(Store::kBackupPrefix, 0), std::string::npos)
        << f.path();
  }
  save(copy, dir.path() / "copy.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((dir.path() / "copy.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  auto text = [&](const char* sql) {
    sqlite3_stmt* q = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &q, nullptr), SQLITE_OK) << sql;
    std::string out = sqlite3_step(q) == SQLITE_ROW
                          ? reinterpret_cast<const char*>(sqlite3_column_text(q, 0))
                          : "";
    sqlite3_finalize(q);
    return out;
  };
  EXPECT_EQ(text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(text("PRAGMA journal_mode"), "delete");
  EXPECT_EQ(text("SELECT count(*) FROM executions WHERE id LIKE 'before%'"), "300");
  // One moment of the writer's: the executions it committed one by one are there up to one of
  // them, without a gap.
  EXPECT_EQ(text("SELECT count(*) = coalesce(max(sequence) - 999, 0) FROM executions WHERE id "
                 "LIKE 'during%'"),
            "1");
  sqlite3_close(db);
}

TEST(Store, ABackupFileLeftByAnInterruptedBackupIsRemovedWhenTheStoreOpens) {
  capstan::testing::TempDir dir;
  auto left = dir.path() / (std::string(Store::kBackupPrefix) + "a1b2c3");
  capstan::testing::write_file(left, "half a copy");
  Store s(dir.path());
  EXPECT_FALSE(std::filesystem::exists(left));
}

} // namespace
} // namespace capstan::store
