// Small executions' stages and steps kept in their execution's row: read back as written, grown
// into rows of their own, and beside executions stored by the schema before.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "capstan/testing/testing.h"
#include "sqlite/database.h"
#include "store/children.h"
#include "store/store.h"
#include "store_testing.h"

namespace capstan::store {
namespace {

ExecutionRecord two_stages(const std::string& id) {
  ExecutionRecord e;
  e.id = id;
  e.pipeline = "p";
  e.pipeline_version = 1;
  e.sequence = 1;
  e.status = status::kRunning;
  e.plan = {{"identifier", "p"}};
  e.created_at = e.started_at = 1000;
  for (int i = 0; i < 2; ++i) {
    StageRecord s;
    s.index = i;
    s.identifier = "s" + std::to_string(i);
    s.name = "Stage " + std::to_string(i);
    s.type = i == 0 ? "Custom" : "Deployment";
    s.status = i == 0 ? status::kRunning : status::kNotStarted;
    s.started_at = i == 0 ? 1001 : 0;
    s.parallel_group = i;
    s.lock_key = i == 1 ? "infra/web" : "";
    s.context = i == 1 ? nlohmann::json{{"service", "web"}} : nlohmann::json::object();
    e.stages.push_back(s);
  }
  for (int i = 0; i < 3; ++i) {
    StepRecord t;
    t.stage_index = i == 2 ? 1 : 0;
    t.step_index = i == 2 ? 0 : i;
    t.stage_identifier = "s" + std::to_string(t.stage_index);
    t.identifier = "t" + std::to_string(i);
    t.name = std::string("odd \0 text \xff\xfe", 16); // a NUL and bytes that are not UTF-8
    t.type = "ShellScript";
    t.status = i == 0 ? status::kDispatched : status::kNotStarted;
    t.attempt = i == 0 ? 1 : 0;
    t.task_id = i == 0 ? id + ".0.0.1" : "";
    t.delegate = i == 0 ? "d1" : "";
    t.queued_at = -5; // negative numbers too
    t.timeout_ms = 600000;
    t.kind = i == 1 ? "StepGroup" : "Step";
    t.parent = i == 1 ? -1 : 1;
    t.section = i == 2 ? "rollback" : "steps";
    t.wake_at = 1LL << 40;
    t.state = i == 0 ? nlohmann::json{{"answers", nlohmann::json::array({1, "two"})}}
                     : nlohmann::json::object();
    e.steps.push_back(t);
  }
  return e;
}

void expect_same_children(const ExecutionRecord& a, const ExecutionRecord& b) {
  ASSERT_EQ(a.stages.size(), b.stages.size());
  for (std::size_t i = 0; i < a.stages.size(); ++i) {
    const auto &x = a.stages[i], &y = b.stages[i];
    EXPECT_EQ(std::tie(x.index, x.identifier, x.name, x.type, x.status, x.started_at, x.ended_at,
                       x.parallel_group, x.error_type, x.message, x.lock_key, x.queued_at),
              std::tie(y.index, y.identifier, y.name, y.type, y.status, y.started_at, y.ended_at,
                       y.parallel_group, y.error_type, y.message, y.lock_key, y.queued_at))
        << "stage " << i;
    EXPECT_EQ(x.context, y.context);
    EXPECT_EQ(x.state, y.state);
  }
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (std::size_t i = 0; i < a.steps.size(); ++i) {
    const auto &x = a.steps[i], &y = b.steps[i];
    EXPECT_EQ(std::tie(x.stage_index, x.step_index, x.stage_identifier, x.identifier, x.name,
                       x.type, x.status, x.attempt, x.task_id, x.delegate, x.delegate_instance,
                       x.queued_at, x.started_at, x.ended_at, x.timeout_ms, x.error_type, x.message,
                       x.log_cursor, x.kind, x.parent, x.section, x.retries, x.wake_at),
              std::tie(y.stage_index, y.step_index, y.stage_identifier, y.identifier, y.name,
                       y.type, y.status, y.attempt, y.task_id, y.delegate, y.delegate_instance,
                       y.queued_at, y.started_at, y.ended_at, y.timeout_ms, y.error_type, y.message,
                       y.log_cursor, y.kind, y.parent, y.section, y.retries, y.wake_at))
        << "step " << i;
    EXPECT_EQ(x.outputs, y.outputs);
    EXPECT_EQ(x.state, y.state);
  }
}

TEST(StoreChildren, ASmallExecutionIsOneRowAndReadsBackAsWritten) {
  capstan::testing::TempDir dir;
  auto e = two_stages("small0000001");
  {
    Store s(dir.path());
    s.insert_execution(e);
    EXPECT_EQ(count(s, "SELECT COUNT(*) FROM stage_executions"), 0);
    EXPECT_EQ(count(s, "SELECT COUNT(*) FROM step_executions"), 0);
    expect_same_children(*s.execution(e.id), e);
    // A result: the step, its stage and the execution change in one batch.
    {
      sqlite::Transaction tx(s.writer());
      e.steps[0].status = status::kSucceeded;
      e.steps[0].ended_at = 1500;
      e.steps[0].outputs = {{"version", "1.0.1"}};
      e.steps[0].log_cursor = 3;
      e.stages[0].status = status::kSucceeded;
      e.stages[0].ended_at = 1500;
      e.revision = 5;
      s.update_execution(e, true, {0}, {0});
      tx.commit();
    }
    // A change rolled back leaves the stored state as it was.
    {
      sqlite::Transaction tx(s.writer());
      auto changed = e;
      changed.steps[1].status = status::kFailed;
      s.update_execution(changed, false, {}, {1});
    }
    // Only a step, through the call for one step.
    e.steps[2].status = status::kSkipped;
    s.update_step(e.id, e.steps[2]);
    e.stages[1].message = "skipped";
    s.update_stage(e.id, e.stages[1]);
  }
  Store s(dir.path());
  auto stored = s.execution(e.id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->revision, 5);
  expect_same_children(*stored, e);
  auto active = s.active_executions();
  ASSERT_EQ(active.size(), 1U);
  expect_same_children(active[0], e);
  EXPECT_EQ(count(s, "SELECT COUNT(*) FROM step_executions"), 0);
}

TEST(StoreChildren, StagesAndStepsThatOutgrowTheRowGetRowsOfTheirOwn) {
  capstan::testing::TempDir dir;
  Store s(dir.path());
  auto e = two_stages("grows0000001");
  s.insert_execution(e);
  e.steps[0].status = status::kFailed;
  e.steps[0].message = std::string(2 * kFoldedChildrenBytes, 'x');
  e.revision = 2;
  s.update_execution(e, true, {}, {0});
  EXPECT_EQ(count(s, "SELECT COUNT(*) FROM step_executions"), 3);
  EXPECT_EQ(count(s, "SELECT COUNT(*) FROM stage_executions"), 2);
  EXPECT_EQ(count(s, "SELECT COUNT(*) FROM executions WHERE length(children) > 0"), 0);
  expect_same_children(*s.execution(e.id), e);
  // Later changes go to those rows.
  e.steps[1].status = status::kRunning;
  e.stages[1].status = status::kRunning;
  s.update_execution(e, false, {1}, {1});
  expect_same_children(*s.execution(e.id), e);
  // A large execution gets its rows from the start.
  auto big = two_stages("large0000001");
  big.sequence = 2;
  big.steps[2].outputs = {{"manifest", std::string(2 * kFoldedChildrenBytes, 'y')}};
  s.insert_execution(big);
  EXPECT_EQ(count(s, "SELECT COUNT(*) FROM step_executions WHERE execution_id = 'large0000001'"),
            3);
  expect_same_children(*s.execution(big.id), big);
}

TEST(StoreChildren, AnExecutionStoredByTheSchemaBeforeKeepsItsRows) {
  capstan::testing::TempDir dir;
  const auto file = dir.path() / "capstan.db";
  migrate_to(file, schema_version() - 1);
  {
    sqlite::Database db(file);
    db.exec("INSERT INTO plans (id, hash, plan) VALUES (1, 0, '{\"identifier\":\"p\"}')");
    db.exec("INSERT INTO executions (id, pipeline, pipeline_version, sequence, status, plan_id, "
            "created_at, started_at, ended_at, error_type, message, revision, triggered_by, "
            "variables, inputs, pending_inputs, state) VALUES ('old000000001', 'p', 1, 1, "
            "'Running', 1, 1000, 1000, 0, '', '', 3, 'alice', '{}', '{}', '[]', '{}')");
    db.exec("INSERT INTO stage_executions (execution_id, stage_index, identifier, name, type, "
            "status, started_at, ended_at, lock_key) VALUES ('old000000001', 0, 's', 'S', "
            "'Deployment', 'Running', 1000, 0, 'infra/web')");
    db.exec("INSERT INTO step_executions (execution_id, stage_index, step_index, "
            "stage_identifier, identifier, name, type, status, attempt, task_id, delegate, "
            "delegate_instance, queued_at, started_at, ended_at, timeout_ms, error_type, message, "
            "outputs) VALUES ('old000000001', 0, 0, 's', 'a', 'A', 'ShellScript', 'Dispatched', "
            "1, 'task-1', 'd1', 'i1', 1000, 1000, 0, 60000, '', '', '{}')");
  }
  Store s(dir.path());
  EXPECT_EQ(count(s, "PRAGMA user_version"), schema_version());
  EXPECT_EQ(count(s, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'stages_by_lock'"), 0);
  auto active = s.active_executions();
  ASSERT_EQ(active.size(), 1U);
  auto old = active[0];
  ASSERT_EQ(old.steps.size(), 1U);
  EXPECT_EQ(old.stages[0].lock_key, "infra/web");
  EXPECT_EQ(old.steps[0].task_id, "task-1");
  // Its changes go to its rows; a new execution beside it is one row.
  old.steps[0].status = status::kSucceeded;
  old.stages[0].status = status::kSucceeded;
  old.status = status::kSucceeded;
  old.revision = 4;
  s.update_execution(old, true, {0}, {0});
  auto fresh = two_stages("new000000002");
  fresh.sequence = 2;
  s.insert_execution(fresh);
  EXPECT_EQ(count(s, "SELECT COUNT(*) FROM step_executions"), 1);
  auto stored = s.execution("old000000001");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, status::kSucceeded);
  EXPECT_EQ(stored->triggered_by, "alice");
  expect_same_children(*stored, old);
  expect_same_children(*s.execution(fresh.id), fresh);
}

TEST(StoreChildren, AnEncodingOfAnySizeReadsBackIntoTheSameBufferReused) {
  // The encoder writes into a buffer it grows only when a field would not fit: an encoding
  // far larger than the last one, then a small one again, in the same string.
  std::string data;
  for (std::size_t size : {0UL, 1000UL, 70000UL, 3UL}) {
    auto e = two_stages("sized0000001");
    e.steps[0].message = std::string(size, 'm');
    e.steps[1].outputs = {{"big", std::string(size, 'o')}};
    e.stages[1].state = nlohmann::json::array();
    encode_children(e, data);
    ExecutionRecord back;
    back.id = e.id;
    decode_children(data, back);
    expect_same_children(back, e);
    EXPECT_EQ(back.steps[0].message.size(), size);
  }
}

// Executions whose rows cannot be read back whole are named apart, the others read; one
// ended as Failed keeps what it held.
TEST(StoreChildren, ActiveExecutionsThatCannotBeReadAreNamedApart) {
  capstan::testing::TempDir dir;
  {
    Store s(dir.path());
    int sequence = 0;
    for (const auto* id : {"bad000000001", "good00000001", "json00000001"}) {
      auto e = two_stages(id);
      e.sequence = ++sequence;
      s.insert_execution(e);
    }
  }
  {
    sqlite::Database db(dir.path() / "capstan.db");
    db.exec("UPDATE executions SET children = x'07' WHERE id = 'bad000000001'");
    db.exec("UPDATE executions SET state = '{\"token\": \"hunter2' WHERE id = 'json00000001'");
  }
  Store s(dir.path());
  EXPECT_ANY_THROW(s.active_executions()) << "without a list for them, the read fails";
  std::vector<Store::Unreadable> unreadable;
  auto active = s.active_executions(&unreadable);
  ASSERT_EQ(active.size(), 1U);
  EXPECT_EQ(active[0].id, "good00000001");
  expect_same_children(active[0], two_stages("good00000001"));
  ASSERT_EQ(unreadable.size(), 2U);
  std::map<std::string, std::string> why;
  for (const auto& u : unreadable) why[u.id] = u.error;
  EXPECT_NE(why["bad000000001"].find("bad000000001"), std::string::npos) << why["bad000000001"];
  EXPECT_NE(why["json00000001"].find("does not parse"), std::string::npos) << why["json00000001"];
  EXPECT_EQ(why["json00000001"].find("hunter2"), std::string::npos) << "the stored text is quoted";
  for (const auto& u : unreadable) s.fail_as_stored(u.id, "could not resume", 2000);
  unreadable.clear();
  active = s.active_executions(&unreadable);
  EXPECT_EQ(active.size(), 1U);
  EXPECT_TRUE(unreadable.empty());
  EXPECT_EQ(count(s, "SELECT COUNT(*) FROM executions WHERE status = 'Failed' AND ended_at = 2000 "
                     "AND message = 'could not resume'"),
            2);
  EXPECT_EQ(count(s, "SELECT length(children) FROM executions WHERE id = 'bad000000001'"), 1)
      << "the damaged value is kept as it was";
}

TEST(StoreChildren, AnUnreadableValueIsAnErrorNamingTheExecution) {
  ExecutionRecord e;
  e.id = "broken000001";
  std::string data;
  encode_children(two_stages(e.id), data);
  data.resize(data.size() / 2);
  try {
    decode_children(data, e);
    FAIL() << "a truncated value was read";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("broken000001"), std::string::npos) << error.what();
  }
  EXPECT_THROW(decode_children(std::string("\x07", 1), e), std::runtime_error)
      << "an unknown format";
}

} // namespace
} // namespace capstan::store
