// Stored values damaged on disk (a bad restore, a hand edit, a disk fault): a read names the
// table.column and the row and never quotes the stored text; a list keeps every row and marks
// the damaged one.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "capstan/testing/testing.h"
#include "sqlite/database.h"
#include "store/children.h"
#include "store/store.h"
#include "store_testing.h"

namespace capstan::store {
namespace {

// Recognisable damaged text: if it shows up in a message, the message quotes stored content.
constexpr const char* kDamaged = R"({"secret-ish": "hunter2")";
constexpr const char* kSecret = "hunter2";

ExecutionRecord run(const std::string& id, int sequence, std::size_t message_bytes = 0) {
  ExecutionRecord e;
  e.id = id;
  e.pipeline = "p";
  e.pipeline_version = 1;
  e.sequence = sequence;
  e.status = status::kSucceeded;
  e.plan = {{"identifier", "p"}};
  e.created_at = e.started_at = 1000 + sequence;
  e.ended_at = 2000 + sequence;
  StageRecord stage;
  stage.identifier = "s";
  stage.name = "S";
  stage.type = "Custom";
  e.stages.push_back(stage);
  for (int i = 0; i < 2; ++i) {
    StepRecord step;
    step.stage_identifier = "s";
    step.step_index = i;
    step.identifier = "t" + std::to_string(i);
    step.name = "T";
    step.type = "ShellScript";
    step.message = std::string(message_bytes, 'm'); // large enough: rows of their own
    step.outputs = {{"out", std::string(kSecret)}, {"step", i}};
    e.steps.push_back(step);
  }
  return e;
}

// Runs `sql` on the file as a hand edit would, beside no open store.
void damage(const capstan::testing::TempDir& dir, const std::string& sql) {
  sqlite::Database db(dir.path() / "capstan.db");
  db.exec(sql);
}

std::string sql_text(const std::string& text) {
  return "'" + text + "'"; // kDamaged holds no quote
}

// The message of the StoredValueDamaged that `read` throws ("" when it throws none).
template <typename Read> std::string damaged_message(Read&& read) {
  try {
    read();
  } catch (const StoredValueDamaged& e) {
    return e.what();
  }
  ADD_FAILURE() << "the read did not throw StoredValueDamaged";
  return "";
}

void expect_named(const std::string& message, const std::string& column, const std::string& key) {
  EXPECT_NE(message.find(column), std::string::npos) << message;
  EXPECT_NE(message.find(key), std::string::npos) << message;
  EXPECT_NE(message.find("does not parse as JSON"), std::string::npos) << message;
  EXPECT_EQ(message.find(kSecret), std::string::npos) << "the stored text is quoted: " << message;
}

TEST(StoreDamaged, AnExecutionsColumnIsNamedAndTheListKeepsEveryRow) {
  capstan::testing::TempDir dir;
  {
    Store s(dir.path());
    for (int i = 1; i <= 3; ++i) s.insert_execution(run("exec0000000" + std::to_string(i), i));
  }
  damage(dir, std::string("UPDATE executions SET state = ") + sql_text(kDamaged) +
                  " WHERE id = 'exec00000002'");
  Store s(dir.path());
  const auto message = damaged_message([&] { s.execution("exec00000002"); });
  expect_named(message, "executions.state", "exec00000002");
  EXPECT_EQ(unreadable_because(StoredValueDamaged(message)), message);
  EXPECT_TRUE(s.execution("exec00000001").has_value()) << "the others read as before";

  const auto list = s.executions({});
  ASSERT_EQ(list.size(), 3U) << "one damaged row does not take the list down";
  std::map<std::string, const ExecutionRecord*> by_id;
  for (const auto& e : list) by_id[e.id] = &e;
  const auto& bad = *by_id.at("exec00000002");
  EXPECT_EQ(bad.unreadable, message);
  EXPECT_EQ(std::tie(bad.pipeline, bad.sequence, bad.status, bad.started_at, bad.ended_at),
            std::make_tuple(std::string("p"), std::int64_t{2}, std::string(status::kSucceeded),
                            std::int64_t{1002}, std::int64_t{2002}))
      << "the plain columns are listed";
  EXPECT_TRUE(by_id.at("exec00000001")->unreadable.empty());
  EXPECT_TRUE(by_id.at("exec00000003")->unreadable.empty());
}

TEST(StoreDamaged, AStepsOutputsInTheFoldedValueAreNamed) {
  capstan::testing::TempDir dir;
  {
    Store s(dir.path());
    s.insert_execution(run("fold00000001", 1));
    ASSERT_GT(count(s, "SELECT length(children) FROM executions"), 0) << "kept in the row";
  }
  // The same number of bytes as the outputs stored, with the object's closing brace gone.
  std::string children;
  {
    sqlite::Database db(dir.path() / "capstan.db");
    auto& q = db.prepare("SELECT children FROM executions WHERE id = 'fold00000001'");
    ASSERT_TRUE(q.step());
    children = q.blob(0);
    q.reset();
    const std::string outputs = run("x", 1).steps[1].outputs.dump();
    const auto at = children.find(outputs);
    ASSERT_NE(at, std::string::npos);
    children[at + outputs.size() - 1] = ' ';
    db.prepare("UPDATE executions SET children = ? WHERE id = 'fold00000001'")
        .bind_blob(1, children)
        .run();
  }
  Store s(dir.path());
  const auto message = damaged_message([&] { s.execution("fold00000001"); });
  expect_named(message, "executions.children", "fold00000001");
  EXPECT_NE(message.find("step 0.1 outputs"), std::string::npos) << message;
  std::vector<Store::Unreadable> unreadable;
  damage(dir, "UPDATE executions SET status = 'Running'");
  EXPECT_TRUE(s.active_executions(&unreadable).empty());
  ASSERT_EQ(unreadable.size(), 1U);
  EXPECT_EQ(unreadable[0].error, message) << "the restart names it the same way";
  ASSERT_EQ(s.executions({}).size(), 1U);
}

TEST(StoreDamaged, AStepsOutputsInARowOfTheirOwnAreNamed) {
  capstan::testing::TempDir dir;
  {
    Store s(dir.path());
    s.insert_execution(run("rows00000001", 1, kFoldedChildrenBytes));
    ASSERT_EQ(count(s, "SELECT COUNT(*) FROM step_executions"), 2) << "rows of their own";
  }
  damage(dir, std::string("UPDATE step_executions SET outputs = ") + sql_text(kDamaged) +
                  " WHERE step_index = 1");
  Store s(dir.path());
  const auto message = damaged_message([&] { s.execution("rows00000001"); });
  expect_named(message, "step_executions.outputs", "rows00000001 step 0.1");
}

TEST(StoreDamaged, AnAuditEntryIsListedMarked) {
  capstan::testing::TempDir dir;
  {
    Store s(dir.path());
    for (int i = 1; i <= 3; ++i) {
      AuditRecord a;
      a.time = i;
      a.user = "ann";
      a.action = "apply";
      a.kind = "pipeline";
      a.target = "p" + std::to_string(i);
      a.details = {{"n", i}};
      s.append_audit(a);
    }
  }
  damage(dir, std::string("UPDATE audit SET details = ") + sql_text(kDamaged) + " WHERE seq = 2");
  Store s(dir.path());
  const auto entries = s.audit({});
  ASSERT_EQ(entries.size(), 3U);
  for (const auto& a : entries) {
    if (a.seq != 2) {
      EXPECT_TRUE(a.unreadable.empty()) << a.unreadable;
      EXPECT_EQ(a.details, nlohmann::json({{"n", a.seq}}));
      continue;
    }
    expect_named(a.unreadable, "audit.details", "entry 2");
    EXPECT_EQ(a.target, "p2");
    EXPECT_EQ(a.details, nlohmann::json::object());
  }
}

TEST(StoreDamaged, AnObjectIsNamedListedMarkedWhenAskedAndMendedByApplyingIt) {
  capstan::testing::TempDir dir;
  ObjectRecord o;
  o.kind = "pipeline";
  o.yaml = "pipeline: {}";
  o.source = "p.yaml:1";
  {
    Store s(dir.path());
    for (const auto* id : {"a", "b"}) {
      o.identifier = o.name = id;
      o.document = {{"pipeline", {{"identifier", id}}}};
      o.model = {{"identifier", id}};
      s.put_object(o);
    }
  }
  damage(dir, std::string("UPDATE objects SET model = ") + sql_text(kDamaged) +
                  " WHERE identifier = 'b'");
  Store s(dir.path());
  const auto message = damaged_message([&] { s.object("pipeline", "b"); });
  expect_named(message, "objects.model", "pipeline/b version 1");
  EXPECT_EQ(damaged_message([&] { s.objects("pipeline"); }), message)
      << "a list the engine reads fails whole, named";
  const auto listed = s.objects("pipeline", true);
  ASSERT_EQ(listed.size(), 2U);
  EXPECT_TRUE(listed[0].unreadable.empty());
  EXPECT_EQ(listed[1].unreadable, message);
  EXPECT_EQ(listed[1].name, "b");

  // Written beside the open store after reads of it failed: those left no old snapshot behind.
  damage(dir, std::string("UPDATE objects SET refs = ") + sql_text(kDamaged) +
                  " WHERE identifier = 'a'");
  expect_named(damaged_message([&] { s.referrers("service", "web"); }), "objects.refs",
               "pipeline/a version 1");

  // Applying it again stores a readable version over the damaged one.
  EXPECT_EQ(s.put_object(o), std::make_pair(std::int64_t{2}, true));
  EXPECT_EQ(s.object("pipeline", "b")->model, o.model);
}

TEST(StoreDamaged, DelegatesAndPullRequestsAreListedMarked) {
  capstan::testing::TempDir dir;
  {
    Store s(dir.path());
    for (const auto* name : {"d1", "d2"}) {
      DelegateRecord d;
      d.name = name;
      d.tags = {"linux"};
      s.put_delegate(d);
    }
    PullRequestRecord pr;
    pr.repository = "git://a/release.git";
    pr.number = 1;
    pr.title = "bump";
    pr.comments = {"looks good"};
    s.put_pull_request(pr);
  }
  damage(dir,
         std::string("UPDATE delegates SET tags = ") + sql_text(kDamaged) + " WHERE name = 'd2'");
  damage(dir, std::string("UPDATE pull_requests SET comments = ") + sql_text(kDamaged));
  Store s(dir.path());
  const auto delegates = s.delegates();
  ASSERT_EQ(delegates.size(), 2U);
  EXPECT_TRUE(delegates[0].unreadable.empty());
  expect_named(delegates[1].unreadable, "delegates.tags", "d2");
  const auto prs = s.pull_requests({});
  ASSERT_EQ(prs.size(), 1U);
  expect_named(prs[0].unreadable, "pull_requests.comments", "git://a/release.git #1");
  EXPECT_EQ(prs[0].title, "bump");
  EXPECT_EQ(to_json(prs[0]).dump().find(kSecret), std::string::npos);
}

TEST(StoreDamaged, ApplicationsAreListedMarked) {
  capstan::testing::TempDir dir;
  {
    Store s(dir.path());
    for (const auto* name : {"a", "b", "c"}) {
      ObjectRecord o;
      o.kind = "application";
      o.identifier = o.name = name;
      o.yaml = "kind: Application";
      o.document = {{"metadata", {{"name", name}}}, {"spec", {{"project", "default"}}}};
      o.model = {{"name", name}, {"project", "default"}, {"document", o.document}};
      o.source = "apps.yaml:1";
      s.put_object(o);
      AppStateRecord state;
      state.name = name;
      state.status = {{"sync", {{"status", "Synced"}}}};
      s.put_app_state(state);
    }
  }
  damage(dir, std::string("UPDATE objects SET model = ") + sql_text(kDamaged) +
                  " WHERE identifier = 'b'");
  damage(dir, std::string("UPDATE gitops_apps SET status = ") + sql_text(kDamaged) +
                  " WHERE name = 'c'");
  Store s(dir.path());
  const auto page = s.application_page("", 10);
  ASSERT_EQ(page.size(), 3U) << "one damaged value does not take the list down";
  std::string all;
  for (const auto& a : page) {
    all += a.metadata_json + a.spec_json + a.status_json + a.unreadable;
    EXPECT_TRUE(nlohmann::json::accept(a.metadata_json)) << a.metadata_json;
    EXPECT_TRUE(nlohmann::json::accept(a.status_json)) << a.status_json;
  }
  EXPECT_TRUE(page[0].unreadable.empty()) << page[0].unreadable;
  EXPECT_EQ(page[0].status_json, R"({"sync":{"status":"Synced"}})");
  expect_named(page[1].unreadable, "objects.model", "application/b version 1");
  EXPECT_EQ(page[1].metadata_json, R"({"name":"b"})");
  expect_named(page[2].unreadable, "gitops_apps.status", "c");
  EXPECT_EQ(page[2].status_json, "{}");
  EXPECT_EQ(all.find(kSecret), std::string::npos) << all;
  EXPECT_EQ(s.application_item("b")->unreadable, page[1].unreadable);
  // What the engine reads of every application at a start: the damaged one named.
  EXPECT_EQ(damaged_message([&] { s.object_fields("application", {"$.project"}); }),
            page[1].unreadable + " (24 bytes stored)");
}

} // namespace
} // namespace capstan::store
