// The coordinator's SQLite store.
#include "store/store.h"

#include "store/children.h"
#include "store/stored_json.h"

#include <spdlog/spdlog.h>

#include <pthread.h>

#include <cctype>
#include <stdexcept>
#include <utility>
#include <variant>

namespace capstan::store {

using nlohmann::json;

bool status::terminal(const std::string& s) {
  return s == kSucceeded || s == kFailed || s == kAborted || s == kSkipped || s == kIgnoreFailed ||
         s == kExpired || s == kApprovalRejected;
}

bool status::failed_outcome(const std::string& s) {
  return s == kFailed || s == kAborted || s == kExpired || s == kApprovalRejected;
}

namespace {

// Each entry moves the schema from version i to i+1. Only ever append.
const std::vector<const char*>& migrations() {
  static const std::vector<const char*> list = {
      R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE objects (
  kind TEXT NOT NULL, identifier TEXT NOT NULL, version INTEGER NOT NULL,
  name TEXT NOT NULL, yaml TEXT NOT NULL, document TEXT NOT NULL, model TEXT NOT NULL,
  source TEXT NOT NULL, applied_at INTEGER NOT NULL,
  PRIMARY KEY (kind, identifier, version));
CREATE TABLE step_types (
  type TEXT PRIMARY KEY, plugin TEXT NOT NULL, plugin_version TEXT NOT NULL,
  description TEXT NOT NULL, retry_safe INTEGER NOT NULL, delegate TEXT NOT NULL,
  last_seen INTEGER NOT NULL);
CREATE TABLE delegates (
  name TEXT PRIMARY KEY, instance_id TEXT NOT NULL, hostname TEXT NOT NULL,
  version TEXT NOT NULL, tags TEXT NOT NULL, step_types TEXT NOT NULL, slots INTEGER NOT NULL,
  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, connected INTEGER NOT NULL,
  disconnect_reason TEXT NOT NULL DEFAULT '');
CREATE TABLE executions (
  id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, pipeline_version INTEGER NOT NULL,
  sequence INTEGER NOT NULL, status TEXT NOT NULL, variables TEXT NOT NULL, plan TEXT NOT NULL,
  created_at INTEGER NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL,
  error_type TEXT NOT NULL, message TEXT NOT NULL, revision INTEGER NOT NULL);
CREATE UNIQUE INDEX executions_by_pipeline ON executions (pipeline, sequence);
CREATE INDEX executions_by_created ON executions (created_at);
CREATE INDEX executions_by_status ON executions (status);
CREATE TABLE stage_executions (
  execution_id TEXT NOT NULL REFERENCES executions (id), stage_index INTEGER NOT NULL,
  identifier TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL,
  started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL,
  PRIMARY KEY (execution_id, stage_index)) WITHOUT ROWID;
CREATE TABLE step_executions (
  execution_id TEXT NOT NULL REFERENCES executions (id), stage_index INTEGER NOT NULL,
  step_index INTEGER NOT NULL, stage_identifier TEXT NOT NULL, identifier TEXT NOT NULL,
  name TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, attempt INTEGER NOT NULL,
  task_id TEXT NOT NULL, delegate TEXT NOT NULL, delegate_instance TEXT NOT NULL,
  queued_at INTEGER NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL,
  timeout_ms INTEGER NOT NULL, error_type TEXT NOT NULL, message TEXT NOT NULL,
  outputs TEXT NOT NULL,
  PRIMARY KEY (execution_id, stage_index, step_index)) WITHOUT ROWID;
CREATE TABLE logs (
  execution_id TEXT NOT NULL, seq INTEGER NOT NULL, stage_index INTEGER NOT NULL,
  step_index INTEGER NOT NULL, step TEXT NOT NULL, time INTEGER NOT NULL, level INTEGER NOT NULL,
  line TEXT NOT NULL,
  PRIMARY KEY (execution_id, seq)) WITHOUT ROWID;
)sql",
      // Delegate tokens (only a SHA-256 of each is kept), log lines received per attempt (the
      // delegate numbers them; resent lines are dropped), draining delegates.
      R"sql(
CREATE TABLE delegate_tokens (
  name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,
  revoked_at INTEGER NOT NULL DEFAULT 0, last_used_at INTEGER NOT NULL DEFAULT 0);
ALTER TABLE step_executions ADD COLUMN log_cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE delegates ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
ALTER TABLE delegates ADD COLUMN token TEXT NOT NULL DEFAULT '';
)sql",
      R"sql(
ALTER TABLE objects ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE objects ADD COLUMN refs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE objects ADD COLUMN applied_by TEXT NOT NULL DEFAULT '';
CREATE TABLE secret_values (
  identifier TEXT NOT NULL, version INTEGER NOT NULL, sealed BLOB NOT NULL,
  PRIMARY KEY (identifier, version)) WITHOUT ROWID;
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, user TEXT NOT NULL,
  action TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, execution_id TEXT NOT NULL,
  details TEXT NOT NULL);
CREATE INDEX audit_by_target ON audit (kind, target);
)sql",
      // Pipelines as trees (step groups, parallel blocks, rollback sections), runtime inputs,
      // waits for people and time, the deployment queue, where applied documents came from.
      R"sql(
ALTER TABLE objects ADD COLUMN file TEXT NOT NULL DEFAULT '';
ALTER TABLE objects ADD COLUMN line_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE objects ADD COLUMN base_dir TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN triggered_by TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN inputs TEXT NOT NULL DEFAULT '{}';
ALTER TABLE executions ADD COLUMN pending_inputs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE executions ADD COLUMN state TEXT NOT NULL DEFAULT '{}';
ALTER TABLE stage_executions ADD COLUMN parallel_group INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stage_executions ADD COLUMN error_type TEXT NOT NULL DEFAULT '';
ALTER TABLE stage_executions ADD COLUMN message TEXT NOT NULL DEFAULT '';
ALTER TABLE stage_executions ADD COLUMN lock_key TEXT NOT NULL DEFAULT '';
ALTER TABLE stage_executions ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stage_executions ADD COLUMN context TEXT NOT NULL DEFAULT '{}';
ALTER TABLE stage_executions ADD COLUMN state TEXT NOT NULL DEFAULT '{}';
ALTER TABLE step_executions ADD COLUMN kind TEXT NOT NULL DEFAULT 'Step';
ALTER TABLE step_executions ADD COLUMN parent INTEGER NOT NULL DEFAULT -1;
ALTER TABLE step_executions ADD COLUMN section TEXT NOT NULL DEFAULT 'steps';
ALTER TABLE step_executions ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE step_executions ADD COLUMN wake_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE step_executions ADD COLUMN state TEXT NOT NULL DEFAULT '{}';
CREATE INDEX stages_by_lock ON stage_executions (lock_key) WHERE lock_key != '';
)sql",
      // Pull requests of GitOps steps, and the next number of each repository's `local` ones.
      R"sql(
CREATE TABLE pull_requests (
  repository TEXT NOT NULL, number INTEGER NOT NULL, provider TEXT NOT NULL,
  connector TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL, source TEXT NOT NULL,
  target TEXT NOT NULL, state TEXT NOT NULL, url TEXT NOT NULL, head_sha TEXT NOT NULL,
  merge_commit TEXT NOT NULL, commit_id TEXT NOT NULL, comments TEXT NOT NULL,
  execution_id TEXT NOT NULL, step TEXT NOT NULL, updated_by TEXT NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (repository, number)) WITHOUT ROWID;
CREATE INDEX pull_requests_by_execution ON pull_requests (execution_id);
CREATE INDEX pull_requests_by_created ON pull_requests (created_at);
CREATE TABLE pull_request_numbers (
  repository TEXT PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID;
)sql",
      // The step types' spec schemas, as delegates announce them (checked at apply time).
      R"sql(
ALTER TABLE step_types ADD COLUMN spec_schema TEXT NOT NULL DEFAULT '';
)sql",
      // GitOps applications: which delegate reconciles each (fenced by epoch) and the status
      // it reported last.
      R"sql(
CREATE TABLE gitops_apps (
  name TEXT PRIMARY KEY, epoch INTEGER NOT NULL, instance_id TEXT NOT NULL,
  delegate TEXT NOT NULL, plugin TEXT NOT NULL, assigned_at INTEGER NOT NULL,
  status TEXT NOT NULL, status_epoch INTEGER NOT NULL, status_at INTEGER NOT NULL,
  message TEXT NOT NULL) WITHOUT ROWID;
)sql",
      // Narrower rows for the engine's writes, which rewrite an execution's row at every change:
      // - plans move to a table of their own, each distinct plan stored once (runs of the same
      //   pipeline version share one), so an execution's row no longer carries its plan;
      // - executions are kept by id (WITHOUT ROWID, now that their rows are small): one b-tree
      //   where the id's index and the rows were two;
      // - the index on every execution's status becomes one on the active ones only (the one
      //   query that used it), which stays a page or two;
      // - the audit trail loses AUTOINCREMENT (one more row written per entry; entries are never
      //   deleted, so sequence numbers still only grow) and its index on (kind, target), which
      //   no query could use.
      // Tables are rebuilt as SQLite documents it (foreign keys off, checked before commit).
      R"sql(
CREATE TABLE plans (id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, plan TEXT NOT NULL);
CREATE INDEX plans_by_hash ON plans (hash);
INSERT INTO plans (hash, plan)
  SELECT capstan_plan_hash(plan), plan FROM executions GROUP BY plan ORDER BY MIN(rowid);
CREATE TABLE executions_rebuilt (
  id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, pipeline_version INTEGER NOT NULL,
  sequence INTEGER NOT NULL, status TEXT NOT NULL, plan_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL,
  error_type TEXT NOT NULL, message TEXT NOT NULL, revision INTEGER NOT NULL,
  triggered_by TEXT NOT NULL, variables TEXT NOT NULL, inputs TEXT NOT NULL,
  pending_inputs TEXT NOT NULL, state TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO executions_rebuilt (id, pipeline, pipeline_version, sequence, status, plan_id,
  created_at, started_at, ended_at, error_type, message, revision, triggered_by, variables,
  inputs, pending_inputs, state)
  SELECT e.id, e.pipeline, e.pipeline_version, e.sequence, e.status,
    (SELECT p.id FROM plans p WHERE p.hash = capstan_plan_hash(e.plan) AND p.plan = e.plan),
    e.created_at, e.started_at, e.ended_at, e.error_type, e.message, e.revision,
    e.triggered_by, e.variables, e.inputs, e.pending_inputs, e.state FROM executions e;
DROP TABLE executions;
ALTER TABLE executions_rebuilt RENAME TO executions;
CREATE UNIQUE INDEX executions_by_pipeline ON executions (pipeline, sequence);
CREATE INDEX executions_by_created ON executions (created_at);
CREATE INDEX executions_active ON executions (created_at, id)
  WHERE status IN ('Queued', 'Running');
CREATE TABLE audit_rebuilt (
  seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, user TEXT NOT NULL,
  action TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, execution_id TEXT NOT NULL,
  details TEXT NOT NULL);
INSERT INTO audit_rebuilt (seq, time, user, action, kind, target, execution_id, details)
  SELECT seq, time, user, action, kind, target, execution_id, details FROM audit ORDER BY seq;
DROP TABLE audit;
ALTER TABLE audit_rebuilt RENAME TO audit;
)sql",
      // Fewer rows for small executions: their stages and steps (children) move into the
      // execution's row, encoded (store/children.cpp), so that a change is one statement on one
      // b-tree where it was up to three; an execution whose children are larger, or that was
      // stored before, keeps rows in stage_executions and step_executions (children empty).
      // The index on stages' lock keys goes: no query reads it.
      R"sql(
ALTER TABLE executions ADD COLUMN children BLOB NOT NULL DEFAULT x'';
DROP INDEX stages_by_lock;
)sql",
  };
  return list;
}

// `unreadable`, when given, receives why a JSON column cannot be read, and the object is returned
// with what could be; without it, such a column throws StoredValueDamaged.
ObjectRecord read_object(sqlite::Statement& s, std::string* unreadable = nullptr) {
  ObjectRecord o;
  o.kind = s.text(0);
  o.identifier = s.text(1);
  o.version = s.int64(2);
  o.name = s.text(3);
  o.yaml = s.text(4);
  o.source = s.text(7);
  o.applied_at = s.int64(8);
  o.deleted = s.int64(9) != 0;
  o.applied_by = s.text(11);
  o.file = s.text(12);
  o.line_offset = static_cast<int>(s.int64(13));
  o.base_dir = s.text(14);
  const auto key = [&] {
    return o.kind + "/" + o.identifier + " version " + std::to_string(o.version);
  };
  try {
    o.document = stored_json(s.text(5), "objects.document", key);
    o.model = stored_json(s.text(6), "objects.model", key);
    o.references = stored_json(s.text(10), "objects.refs", key);
  } catch (const StoredValueDamaged& e) {
    if (unreadable == nullptr) throw;
    *unreadable = e.what();
  }
  return o;
}

constexpr const char* kObjectColumns =
    "kind, identifier, version, name, yaml, document, model, source, applied_at, deleted, refs, "
    "applied_by, file, line_offset, base_dir";

// An execution's columns as read_execution takes them, its plan from the plans table, then its
// encoded stages and steps.
constexpr const char* kExecutionColumns =
    "e.id, e.pipeline, e.pipeline_version, e.sequence, e.status, e.variables, p.plan, "
    "e.created_at, e.started_at, e.ended_at, e.error_type, e.message, e.revision, "
    "e.triggered_by, e.inputs, e.pending_inputs, e.state, e.children FROM executions e LEFT "
    "JOIN plans p ON p.id = e.plan_id";
// The same without the plan and the stages and steps.
constexpr const char* kExecutionColumnsWithoutPlan =
    "e.id, e.pipeline, e.pipeline_version, e.sequence, e.status, e.variables, NULL, "
    "e.created_at, e.started_at, e.ended_at, e.error_type, e.message, e.revision, "
    "e.triggered_by, e.inputs, e.pending_inputs, e.state FROM executions e";

// FNV-1a, 64 bits: a plan's hash as the plans table keeps it (a stored value, so it must not
// change between releases as std::hash may).
std::int64_t plan_hash(std::string_view text) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return static_cast<std::int64_t>(h);
}

// capstan_plan_hash(text), for the migration that moves plans to their own table.
void plan_hash_function(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  auto size = static_cast<std::size_t>(sqlite3_value_bytes(argv[0]));
  sqlite3_result_int64(ctx, plan_hash(std::string_view(text ? text : "", text ? size : 0)));
}

void register_functions(sqlite::Database& db) {
  if (sqlite3_create_function_v2(db.handle(), "capstan_plan_hash", 1,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, &plan_hash_function,
                                 nullptr, nullptr, nullptr) != SQLITE_OK) {
    throw sqlite::Error("cannot register capstan_plan_hash: " +
                        std::string(sqlite3_errmsg(db.handle())));
  }
}

// `children`, when given, receives the encoded stages and steps (column 17). When `tolerant`, a
// JSON column that cannot be read leaves the record with what could be, and why in .unreadable;
// otherwise it throws StoredValueDamaged.
ExecutionRecord read_execution(sqlite::Statement& s, bool with_plan,
                               std::string* children = nullptr, bool tolerant = false) {
  ExecutionRecord e;
  if (children != nullptr) *children = s.blob(17);
  e.id = s.text(0);
  e.pipeline = s.text(1);
  e.pipeline_version = s.int64(2);
  e.sequence = s.int64(3);
  e.status = s.text(4);
  e.created_at = s.int64(7);
  e.started_at = s.int64(8);
  e.ended_at = s.int64(9);
  e.error_type = s.text(10);
  e.message = s.text(11);
  e.revision = s.int64(12);
  e.triggered_by = s.text(13);
  try {
    e.variables = stored_json(s.text(5), "executions.variables", e.id);
    if (with_plan && !s.is_null(6))
      e.plan = stored_json(s.text(6), "plans.plan", [&] { return "execution " + e.id; });
    e.inputs = stored_json(s.text(14), "executions.inputs", e.id);
    e.pending_inputs = stored_json(s.text(15), "executions.pending_inputs", e.id);
    e.state = stored_json(s.text(16), "executions.state", e.id);
  } catch (const StoredValueDamaged& d) {
    if (!tolerant) throw;
    e.unreadable = d.what();
  }
  return e;
}

// The stages and steps: from the row's encoding when it has one, else from their tables.
void load_children(sqlite::Database& db, ExecutionRecord& e, std::string_view children) {
  if (!children.empty()) {
    decode_children(children, e);
    return;
  }
  auto& st = db.prepare("SELECT stage_index, identifier, name, type, status, started_at, ended_at, "
                        "parallel_group, error_type, message, lock_key, queued_at, context, state "
                        "FROM stage_executions WHERE execution_id = ? ORDER BY stage_index");
  st.bind(1, e.id);
  while (st.step()) {
    StageRecord r;
    r.index = static_cast<int>(st.int64(0));
    r.identifier = st.text(1);
    r.name = st.text(2);
    r.type = st.text(3);
    r.status = st.text(4);
    r.started_at = st.int64(5);
    r.ended_at = st.int64(6);
    r.parallel_group = static_cast<int>(st.int64(7));
    r.error_type = st.text(8);
    r.message = st.text(9);
    r.lock_key = st.text(10);
    r.queued_at = st.int64(11);
    const auto stage_key = [&] { return e.id + " stage " + std::to_string(r.index); };
    r.context = stored_json(st.text(12), "stage_executions.context", stage_key);
    r.state = stored_json(st.text(13), "stage_executions.state", stage_key);
    e.stages.push_back(std::move(r));
  }
  auto& sp = db.prepare(
      "SELECT stage_index, step_index, stage_identifier, identifier, name, type, status, attempt, "
      "task_id, delegate, delegate_instance, queued_at, started_at, ended_at, timeout_ms, "
      "error_type, message, outputs, log_cursor, kind, parent, section, retries, wake_at, state "
      "FROM step_executions WHERE execution_id = ? ORDER BY stage_index, step_index");
  sp.bind(1, e.id);
  while (sp.step()) {
    StepRecord r;
    r.stage_index = static_cast<int>(sp.int64(0));
    r.step_index = static_cast<int>(sp.int64(1));
    r.stage_identifier = sp.text(2);
    r.identifier = sp.text(3);
    r.name = sp.text(4);
    r.type = sp.text(5);
    r.status = sp.text(6);
    r.attempt = static_cast<std::uint32_t>(sp.int64(7));
    r.task_id = sp.text(8);
    r.delegate = sp.text(9);
    r.delegate_instance = sp.text(10);
    r.queued_at = sp.int64(11);
    r.started_at = sp.int64(12);
    r.ended_at = sp.int64(13);
    r.timeout_ms = sp.int64(14);
    r.error_type = sp.text(15);
    r.message = sp.text(16);
    const auto step_key = [&] {
      return e.id + " step " + std::to_string(r.stage_index) + "." + std::to_string(r.step_index);
    };
    r.outputs = stored_json(sp.text(17), "step_executions.outputs", step_key);
    r.log_cursor = static_cast<std::uint64_t>(sp.int64(18));
    r.kind = sp.text(19);
    r.parent = static_cast<int>(sp.int64(20));
    r.section = sp.text(21);
    r.retries = static_cast<int>(sp.int64(22));
    r.wake_at = sp.int64(23);
    r.state = stored_json(sp.text(24), "step_executions.state", step_key);
    e.steps.push_back(std::move(r));
  }
}

} // namespace

int schema_version() {
  return static_cast<int>(migrations().size());
}

namespace {
// Bytes of pages written to the write-ahead log since the last checkpoint after which the
// checkpointer copies them into the database: SQLite's own default (1,000 pages of 4 KiB),
// counted in bytes so that a database of smaller pages is not checkpointed (and synced) more
// often for the same writes.
constexpr std::int64_t kCheckpointBytes = 1000 * 4096;
// A log this long is copied by the writer itself, between two transactions (see on_commit).
constexpr std::int64_t kRestartBytes = 4 * kCheckpointBytes;

int page_size(sqlite::Database& db) {
  auto& q = db.prepare("PRAGMA page_size");
  const int size = q.step() ? static_cast<int>(q.int64(0)) : 4096;
  q.reset();
  return size > 0 ? size : 4096;
}
} // namespace

Store::Store(const std::filesystem::path& data_dir) : file_(data_dir / "capstan.db") {
  std::filesystem::create_directories(data_dir);
  writer_ = std::make_unique<sqlite::Database>(file_);
  register_functions(*writer_);
  migrate();
  // What a backup interrupted by the end of a coordinator left (see backup()). Only once the
  // database is this process's (migrate() read it): a second coordinator started on the same
  // data dir is refused before it could remove the copy the running one is making.
  for (const auto& entry : std::filesystem::directory_iterator(data_dir)) {
    if (entry.path().filename().string().rfind(kBackupPrefix, 0) == 0) {
      std::error_code ignored;
      std::filesystem::remove(entry.path(), ignored);
    }
  }
  const int page = page_size(*writer_);
  checkpoint_frames_ = static_cast<int>(kCheckpointBytes / page);
  restart_frames_ = static_cast<int>(kRestartBytes / page);
  // Replaces SQLite's automatic checkpoint, which would run inside the writer's COMMIT.
  sqlite3_wal_hook(writer_->handle(), &Store::on_commit, this);
  // What the writer remembers having written is forgotten with the transaction that wrote it.
  sqlite3_rollback_hook(writer_->handle(), &Store::on_rollback, this);
  checkpointer_ = std::thread([this] { checkpoint_loop(); });
}

Store::~Store() {
  {
    std::lock_guard lock(checkpoint_mutex_);
    stopping_ = true;
  }
  checkpoint_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
  sqlite3_wal_hook(writer_->handle(), nullptr, nullptr);
  sqlite3_rollback_hook(writer_->handle(), nullptr, nullptr);
}

void Store::on_rollback(void* store) {
  auto* self = static_cast<Store*>(store);
  self->plan_ids_.clear();
  self->written_executions_.clear();
  self->sequences_.clear();
}

int Store::on_commit(void* store, sqlite3* db, const char* /*name*/, int frames) {
  auto* self = static_cast<Store*>(store);
  int copied = self->backfilled_.load();
  if (frames < copied) {
    copied = 0; // the log started over
    self->backfilled_.store(0);
  }
  if (frames >= self->restart_frames_) {
    // The log starts over only when a write transaction begins with all of it copied, which a
    // checkpoint running beside a busy writer seldom sees: the log would grow without bound
    // under steady load. So the writer, between two transactions, copies what the checkpointer
    // has not yet (PASSIVE: it does not wait if the checkpointer is at it), as SQLite's own
    // automatic checkpoint would; the next transaction then starts the log over.
    int logged = 0;
    if (sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &logged, &copied) ==
        SQLITE_OK) {
      self->backfilled_.store(copied);
    }
    return SQLITE_OK;
  }
  // Checkpoints that copy about 4 MB of new frames each, not a few after every commit.
  if (frames - copied < self->checkpoint_frames_) return SQLITE_OK;
  bool wake = false;
  {
    std::lock_guard lock(self->checkpoint_mutex_);
    wake = !self->checkpoint_due_;
    self->checkpoint_due_ = true;
  }
  if (wake) self->checkpoint_cv_.notify_one();
  return SQLITE_OK;
}

void Store::checkpoint_loop() {
  pthread_setname_np(pthread_self(), "capstan-ckpt");
  std::unique_ptr<sqlite::Database> conn;
  std::unique_lock lock(checkpoint_mutex_);
  while (true) {
    checkpoint_cv_.wait(lock, [&] { return stopping_ || checkpoint_due_; });
    if (stopping_) return;
    checkpoint_due_ = false;
    lock.unlock();
    try {
      if (!conn) conn = std::make_unique<sqlite::Database>(file_);
      // PASSIVE: copies what no reader still needs, never waits for the writer or readers; the
      // writer starts the log over once everything was copied.
      int logged = 0, copied = 0;
      int rc = sqlite3_wal_checkpoint_v2(conn->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                         &logged, &copied);
      if (rc == SQLITE_OK) backfilled_.store(copied);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        spdlog::warn("store: checkpoint of {} failed: {}", file_.string(),
                     sqlite3_errmsg(conn->handle()));
      }
    } catch (const std::exception& e) {
      spdlog::warn("store: checkpoint of {} failed: {}", file_.string(), e.what());
      conn.reset();
    }
    lock.lock();
  }
}

namespace {
void run_migrations(sqlite::Database& db, const std::filesystem::path& file, int target) {
  auto& v = db.prepare("PRAGMA user_version");
  v.step();
  int current = static_cast<int>(v.int64(0));
  v.reset();
  const auto& list = migrations();
  if (current > static_cast<int>(list.size())) {
    throw std::runtime_error(file.string() + " has schema version " + std::to_string(current) +
                             ", newer than this coordinator understands (" +
                             std::to_string(list.size()) +
                             "); run the coordinator release that wrote it");
  }
  if (current >= target) return;
  // A migration may rebuild a table others refer to (create, copy, drop, rename): with foreign
  // keys on, dropping the old one would fail or delete the children. Off for the migrations
  // (outside any transaction, where SQLite takes the pragma), and checked before each commit.
  db.exec("PRAGMA foreign_keys=OFF");
  struct Restore {
    sqlite::Database& db;
    ~Restore() {
      try {
        db.exec("PRAGMA foreign_keys=ON");
      } catch (...) { // NOLINT(bugprone-empty-catch): the connection is unusable anyway
      }
    }
  } restore{db};
  for (int i = current; i < target; ++i) {
    sqlite::Transaction tx(db);
    db.exec(list[static_cast<std::size_t>(i)]);
    auto& check = db.prepare("PRAGMA foreign_key_check");
    if (check.step()) {
      std::string table = check.text(0);
      check.reset();
      throw std::runtime_error(file.string() + ": migration to schema version " +
                               std::to_string(i + 1) + " left rows of " + table +
                               " without the row they refer to; the database is unchanged");
    }
    check.reset();
    db.exec("PRAGMA user_version = " + std::to_string(i + 1));
    tx.commit();
  }
}
} // namespace

void migrate_to(const std::filesystem::path& file, int version) {
  if (version < 0 || version > schema_version()) {
    throw std::invalid_argument("no schema version " + std::to_string(version));
  }
  sqlite::Database db(file);
  register_functions(db);
  run_migrations(db, file, version);
}

void Store::migrate() {
  run_migrations(*writer_, file_, schema_version());
}

std::unique_ptr<sqlite::Database> Store::borrow() {
  {
    std::lock_guard lock(pool_mutex_);
    if (!pool_.empty()) {
      auto conn = std::move(pool_.back());
      pool_.pop_back();
      return conn;
    }
  }
  return std::make_unique<sqlite::Database>(file_, true);
}

void Store::give_back(std::unique_ptr<sqlite::Database> conn) {
  if (!conn) return;
  std::lock_guard lock(pool_mutex_);
  if (pool_.size() < 16) pool_.push_back(std::move(conn));
}

std::pair<std::int64_t, bool> Store::put_object(const ObjectRecord& o) {
  auto& db = *writer_;
  auto& q = db.prepare("SELECT version, document, model, deleted FROM objects WHERE kind = ? AND "
                       "identifier = ? ORDER BY version DESC LIMIT 1");
  q.bind(1, o.kind).bind(2, o.identifier);
  std::int64_t version = 0;
  if (q.step()) {
    version = q.int64(0);
    // A stored version that does not parse (damaged on disk) is never the same: applying the
    // object again stores a readable version over it.
    bool same = q.int64(3) == 0 && json::parse(q.text(1), nullptr, false) == o.document &&
                json::parse(q.text(2), nullptr, false) == o.model;
    q.reset();
    if (same) return {version, false};
  }
  q.reset();
  auto& ins = db.prepare("INSERT INTO objects (kind, identifier, version, name, yaml, document, "
                         "model, source, applied_at, deleted, refs, applied_by, file, "
                         "line_offset, base_dir) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)");
  ins.bind(1, o.kind)
      .bind(2, o.identifier)
      .bind(3, version + 1)
      .bind(4, o.name)
      .bind(5, o.yaml)
      .bind(6, o.document.dump())
      .bind(7, o.model.dump())
      .bind(8, o.source)
      .bind(9, o.applied_at ? o.applied_at : now_ms())
      .bind(10, o.references.dump())
      .bind(11, o.applied_by)
      .bind(12, o.file)
      .bind(13, o.line_offset)
      .bind(14, o.base_dir)
      .run();
  written_.emplace(o.kind, o.identifier);
  return {version + 1, true};
}

bool Store::delete_object(const std::string& kind, const std::string& identifier,
                          const std::string& user, std::int64_t at) {
  auto& db = *writer_;
  auto& q = db.prepare(std::string("SELECT ") + kObjectColumns +
                       " FROM objects WHERE kind = ? AND identifier = ? ORDER BY version DESC "
                       "LIMIT 1");
  q.bind(1, kind).bind(2, identifier);
  if (!q.step()) {
    q.reset();
    return false;
  }
  auto last = read_object(q);
  q.reset();
  if (last.deleted) return false;
  db.prepare("INSERT INTO objects (kind, identifier, version, name, yaml, document, model, "
             "source, applied_at, deleted, refs, applied_by, file, line_offset, base_dir) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, '[]', ?, ?, ?, ?)")
      .bind(1, kind)
      .bind(2, identifier)
      .bind(3, last.version + 1)
      .bind(4, last.name)
      .bind(5, last.yaml)
      .bind(6, last.document.dump())
      .bind(7, last.model.dump())
      .bind(8, last.source)
      .bind(9, at)
      .bind(10, user)
      .bind(11, last.file)
      .bind(12, last.line_offset)
      .bind(13, last.base_dir)
      .run();
  written_.emplace(kind, identifier);
  return true;
}

std::set<std::pair<std::string, std::string>> Store::take_written_objects() {
  return std::exchange(written_, {});
}

void Store::put_secret_value(const std::string& identifier, std::int64_t version,
                             const std::string& sealed) {
  writer_
      ->prepare("INSERT OR REPLACE INTO secret_values (identifier, version, sealed) "
                "VALUES (?, ?, ?)")
      .bind(1, identifier)
      .bind(2, version)
      .bind(3, sealed)
      .run();
}

void Store::append_audit(const AuditRecord& a) {
  writer_
      ->prepare("INSERT INTO audit (time, user, action, kind, target, execution_id, details) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)")
      .bind(1, a.time ? a.time : now_ms())
      .bind(2, a.user)
      .bind(3, a.action)
      .bind(4, a.kind)
      .bind(5, a.target)
      .bind(6, a.execution_id)
      .bind(7, a.details_text.empty() ? a.details.dump() : a.details_text)
      .run();
}

std::int64_t Store::plan_id(const std::string& text) {
  if (auto it = plan_ids_.find(text); it != plan_ids_.end()) return it->second;
  auto& db = *writer_;
  const auto hash = plan_hash(text);
  std::int64_t id = 0;
  auto& q = db.prepare("SELECT id, plan FROM plans WHERE hash = ?");
  q.bind(1, hash);
  while (q.step()) {
    if (q.text(1) == text) {
      id = q.int64(0);
      break;
    }
  }
  q.reset();
  if (id == 0) {
    db.prepare("INSERT INTO plans (hash, plan) VALUES (?, ?)").bind(1, hash).bind(2, text).run();
    id = db.last_insert_rowid();
  }
  // Runs with runtime inputs each have a plan of their own: keep only the recent ones.
  if (plan_ids_.size() >= 64) plan_ids_.clear();
  plan_ids_.emplace(text, id);
  return id;
}

void Store::insert_execution(const ExecutionRecord& e) {
  auto& db = *writer_;
  std::string dumped;
  const auto plan = plan_id(e.plan_text.empty() ? (dumped = e.plan.dump()) : e.plan_text);
  encode_children(e, children_);
  const bool folded = children_.size() <= kFoldedChildrenBytes;
  db.prepare("INSERT INTO executions (id, pipeline, pipeline_version, sequence, status, "
             "variables, plan_id, created_at, started_at, ended_at, error_type, message, "
             "revision, triggered_by, inputs, pending_inputs, state, children) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, e.id)
      .bind(2, e.pipeline)
      .bind(3, e.pipeline_version)
      .bind(4, e.sequence)
      .bind(5, e.status)
      .bind(6, column_text(e.variables))
      .bind(7, plan)
      .bind(8, e.created_at)
      .bind(9, e.started_at)
      .bind(10, e.ended_at)
      .bind(11, e.error_type)
      .bind(12, e.message)
      .bind(13, e.revision)
      .bind(14, e.triggered_by)
      .bind(15, column_text(e.inputs))
      .bind(16, column_text(e.pending_inputs))
      .bind(17, column_text(e.state))
      .bind_blob(18, folded ? std::string_view(children_) : std::string_view())
      .run();
  remember_written(e, folded);
  if (auto it = sequences_.find(e.pipeline); it != sequences_.end() && it->second < e.sequence) {
    it->second = e.sequence;
  }
  if (!folded) insert_children(e);
}

void Store::insert_children(const ExecutionRecord& e) {
  auto& db = *writer_;
  auto& st = db.prepare(
      "INSERT INTO stage_executions (execution_id, stage_index, identifier, name, type, status, "
      "started_at, ended_at, parallel_group, error_type, message, lock_key, queued_at, context, "
      "state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const auto& s : e.stages) {
    st.reset()
        .bind(1, e.id)
        .bind(2, s.index)
        .bind(3, s.identifier)
        .bind(4, s.name)
        .bind(5, s.type)
        .bind(6, s.status)
        .bind(7, s.started_at)
        .bind(8, s.ended_at)
        .bind(9, s.parallel_group)
        .bind(10, s.error_type)
        .bind(11, s.message)
        .bind(12, s.lock_key)
        .bind(13, s.queued_at)
        .bind(14, column_text(s.context))
        .bind(15, column_text(s.state))
        .run();
  }
  auto& sp = db.prepare(
      "INSERT INTO step_executions (execution_id, stage_index, step_index, stage_identifier, "
      "identifier, name, type, status, attempt, task_id, delegate, delegate_instance, queued_at, "
      "started_at, ended_at, timeout_ms, error_type, message, outputs, log_cursor, kind, parent, "
      "section, retries, wake_at, state) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const auto& s : e.steps) {
    sp.reset()
        .bind(1, e.id)
        .bind(2, s.stage_index)
        .bind(3, s.step_index)
        .bind(4, s.stage_identifier)
        .bind(5, s.identifier)
        .bind(6, s.name)
        .bind(7, s.type)
        .bind(8, s.status)
        .bind(9, s.attempt)
        .bind(10, s.task_id)
        .bind(11, s.delegate)
        .bind(12, s.delegate_instance)
        .bind(13, s.queued_at)
        .bind(14, s.started_at)
        .bind(15, s.ended_at)
        .bind(16, s.timeout_ms)
        .bind(17, s.error_type)
        .bind(18, s.message)
        .bind(19, column_text(s.outputs))
        .bind(20, static_cast<std::int64_t>(s.log_cursor))
        .bind(21, s.kind)
        .bind(22, s.parent)
        .bind(23, s.section)
        .bind(24, s.retries)
        .bind(25, s.wake_at)
        .bind(26, column_text(s.state))
        .run();
  }
}

void Store::remember_written(const ExecutionRecord& e, bool folded) {
  if (status::terminal(e.status)) {
    written_executions_.erase(e.id);
    return;
  }
  auto& w = written_executions_[e.id];
  w.folded = folded;
  w.status = e.status;
  if (w.variables != e.variables) w.variables = e.variables;
  if (w.inputs != e.inputs) w.inputs = e.inputs;
  if (w.pending_inputs != e.pending_inputs) w.pending_inputs = e.pending_inputs;
  if (w.state != e.state) w.state = e.state;
}

bool Store::folded(const std::string& id) {
  if (auto it = written_executions_.find(id); it != written_executions_.end()) {
    return it->second.folded;
  }
  auto& q = writer_->prepare("SELECT length(children) > 0 FROM executions WHERE id = ?");
  q.bind(1, id);
  const bool folded = q.step() && q.int64(0) != 0;
  q.reset();
  return folded;
}

void Store::write_row(const ExecutionRecord& e, const std::string* children) {
  // When no JSON column changed since this writer wrote the row, they are left as they are: no
  // JSON serialised; and when the status (indexed) did not change either, it is left too.
  auto it = written_executions_.find(e.id);
  if (it != written_executions_.end() && it->second.variables == e.variables &&
      it->second.inputs == e.inputs && it->second.pending_inputs == e.pending_inputs &&
      it->second.state == e.state) {
    // The scalar columns are ?1-?5 and the id ?6 in all four; the status is ?7, the children ?8.
    const bool status_changed = it->second.status != e.status;
    auto& q = writer_->prepare(
        status_changed
            ? (children ? "UPDATE executions SET started_at = ?1, ended_at = ?2, error_type = ?3, "
                          "message = ?4, revision = ?5, status = ?7, children = ?8 WHERE id = ?6"
                        : "UPDATE executions SET started_at = ?1, ended_at = ?2, error_type = ?3, "
                          "message = ?4, revision = ?5, status = ?7 WHERE id = ?6")
            : (children ? "UPDATE executions SET started_at = ?1, ended_at = ?2, error_type = ?3, "
                          "message = ?4, revision = ?5, children = ?8 WHERE id = ?6"
                        : "UPDATE executions SET started_at = ?1, ended_at = ?2, error_type = ?3, "
                          "message = ?4, revision = ?5 WHERE id = ?6"));
    q.bind(1, e.started_at)
        .bind(2, e.ended_at)
        .bind(3, e.error_type)
        .bind(4, e.message)
        .bind(5, e.revision)
        .bind(6, e.id);
    if (status_changed) q.bind(7, e.status);
    if (children) q.bind_blob(8, *children);
    q.run();
    if (!status_changed) return;
    if (status::terminal(e.status)) {
      written_executions_.erase(it);
    } else {
      it->second.status = e.status;
    }
    return;
  }
  auto& q = children ? writer_->prepare("UPDATE executions SET status = ?, started_at = ?, "
                                        "ended_at = ?, error_type = ?, message = ?, revision = ?, "
                                        "variables = ?, inputs = ?, pending_inputs = ?, state = ?, "
                                        "children = ?12 WHERE id = ?11")
                     : writer_->prepare("UPDATE executions SET status = ?, started_at = ?, "
                                        "ended_at = ?, error_type = ?, message = ?, revision = ?, "
                                        "variables = ?, inputs = ?, pending_inputs = ?, state = ? "
                                        "WHERE id = ?");
  q.bind(1, e.status)
      .bind(2, e.started_at)
      .bind(3, e.ended_at)
      .bind(4, e.error_type)
      .bind(5, e.message)
      .bind(6, e.revision)
      .bind(7, column_text(e.variables))
      .bind(8, column_text(e.inputs))
      .bind(9, column_text(e.pending_inputs))
      .bind(10, column_text(e.state))
      .bind(11, e.id);
  if (children) q.bind_blob(12, *children);
  q.run();
  if (status::terminal(e.status)) {
    written_executions_.erase(e.id);
  } else {
    remember_written(e, children != nullptr || folded(e.id));
  }
}

void Store::update_execution(const ExecutionRecord& e) {
  write_row(e, nullptr);
}

void Store::update_execution(const ExecutionRecord& e, bool row,
                             const std::set<std::size_t>& stages,
                             const std::set<std::size_t>& steps) {
  if ((stages.empty() && steps.empty()) || !folded(e.id)) {
    for (auto i : steps) update_step_row(e.id, e.steps[i]);
    for (auto i : stages) update_stage_row(e.id, e.stages[i]);
    if (row) write_row(e, nullptr);
    return;
  }
  write_folded(e, row);
}

void Store::write_folded(const ExecutionRecord& e, bool row) {
  encode_children(e, children_);
  if (children_.size() > kFoldedChildrenBytes) {
    // Grown past what a row keeps well: rows of their own from now on.
    insert_children(e);
    writer_->prepare("UPDATE executions SET children = x'' WHERE id = ?").bind(1, e.id).run();
    if (auto it = written_executions_.find(e.id); it != written_executions_.end()) {
      it->second.folded = false;
    }
    if (row) write_row(e, nullptr);
    return;
  }
  if (row) {
    write_row(e, &children_);
    return;
  }
  writer_->prepare("UPDATE executions SET children = ? WHERE id = ?")
      .bind_blob(1, children_)
      .bind(2, e.id)
      .run();
}

// A folded execution's stages and steps as stored, for a change of one of them alone.
ExecutionRecord Store::folded_children(const std::string& id) {
  ExecutionRecord e;
  e.id = id;
  auto& q = writer_->prepare("SELECT children FROM executions WHERE id = ?");
  q.bind(1, id);
  if (q.step()) decode_children(q.blob(0), e);
  q.reset();
  return e;
}

void Store::update_stage(const std::string& execution_id, const StageRecord& s) {
  if (!folded(execution_id)) {
    update_stage_row(execution_id, s);
    return;
  }
  auto e = folded_children(execution_id);
  for (auto& stage : e.stages) {
    if (stage.index == s.index) stage = s;
  }
  write_folded(e, false);
}

void Store::update_step(const std::string& execution_id, const StepRecord& s) {
  if (!folded(execution_id)) {
    update_step_row(execution_id, s);
    return;
  }
  auto e = folded_children(execution_id);
  for (auto& step : e.steps) {
    if (step.stage_index == s.stage_index && step.step_index == s.step_index) step = s;
  }
  write_folded(e, false);
}

void Store::update_stage_row(const std::string& execution_id, const StageRecord& s) {
  writer_
      ->prepare("UPDATE stage_executions SET status = ?, started_at = ?, ended_at = ?, "
                "error_type = ?, message = ?, lock_key = ?, queued_at = ?, context = ?, state = ? "
                "WHERE execution_id = ? AND stage_index = ?")
      .bind(1, s.status)
      .bind(2, s.started_at)
      .bind(3, s.ended_at)
      .bind(4, s.error_type)
      .bind(5, s.message)
      .bind(6, s.lock_key)
      .bind(7, s.queued_at)
      .bind(8, column_text(s.context))
      .bind(9, column_text(s.state))
      .bind(10, execution_id)
      .bind(11, s.index)
      .run();
}

void Store::update_step_row(const std::string& execution_id, const StepRecord& s) {
  writer_
      ->prepare("UPDATE step_executions SET status = ?, attempt = ?, task_id = ?, delegate = ?, "
                "delegate_instance = ?, queued_at = ?, started_at = ?, ended_at = ?, "
                "error_type = ?, message = ?, outputs = ?, log_cursor = ?, retries = ?, "
                "wake_at = ?, state = ? "
                "WHERE execution_id = ? AND stage_index = ? AND step_index = ?")
      .bind(1, s.status)
      .bind(2, s.attempt)
      .bind(3, s.task_id)
      .bind(4, s.delegate)
      .bind(5, s.delegate_instance)
      .bind(6, s.queued_at)
      .bind(7, s.started_at)
      .bind(8, s.ended_at)
      .bind(9, s.error_type)
      .bind(10, s.message)
      .bind(11, column_text(s.outputs))
      .bind(12, static_cast<std::int64_t>(s.log_cursor))
      .bind(13, s.retries)
      .bind(14, s.wake_at)
      .bind(15, column_text(s.state))
      .bind(16, execution_id)
      .bind(17, s.stage_index)
      .bind(18, s.step_index)
      .run();
}

void Store::append_logs(const std::string& execution_id, const std::vector<LogRecord>& lines) {
  auto& ins = writer_->prepare("INSERT INTO logs (execution_id, seq, stage_index, step_index, "
                               "step, time, level, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  for (const auto& l : lines) {
    ins.reset()
        .bind(1, execution_id)
        .bind(2, l.seq)
        .bind(3, l.stage_index)
        .bind(4, l.step_index)
        .bind(5, l.step)
        .bind(6, l.time)
        .bind(7, l.level)
        .bind(8, l.line)
        .run();
  }
}

void Store::put_delegate(const DelegateRecord& d) {
  writer_
      ->prepare("INSERT INTO delegates (name, instance_id, hostname, version, tags, step_types, "
                "slots, first_seen, last_seen, connected, disconnect_reason, draining, token) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "instance_id = excluded.instance_id, hostname = excluded.hostname, "
                "version = excluded.version, tags = excluded.tags, "
                "step_types = excluded.step_types, slots = excluded.slots, "
                "last_seen = excluded.last_seen, connected = excluded.connected, "
                "disconnect_reason = '', draining = excluded.draining, token = excluded.token")
      .bind(1, d.name)
      .bind(2, d.instance_id)
      .bind(3, d.hostname)
      .bind(4, d.version)
      .bind(5, d.tags.dump())
      .bind(6, d.step_types.dump())
      .bind(7, d.slots)
      .bind(8, d.first_seen)
      .bind(9, d.last_seen)
      .bind(10, d.connected ? 1 : 0)
      .bind(11, d.draining ? 1 : 0)
      .bind(12, d.token)
      .run();
}

void Store::put_token(const TokenRecord& t) {
  writer_
      ->prepare("INSERT INTO delegate_tokens (name, hash, created_at, revoked_at, last_used_at) "
                "VALUES (?, ?, ?, ?, ?)")
      .bind(1, t.name)
      .bind(2, t.hash)
      .bind(3, t.created_at)
      .bind(4, t.revoked_at)
      .bind(5, t.last_used_at)
      .run();
}

void Store::revoke_token(const std::string& name, std::int64_t at) {
  writer_->prepare("UPDATE delegate_tokens SET revoked_at = ? WHERE name = ? AND revoked_at = 0")
      .bind(1, at)
      .bind(2, name)
      .run();
}

void Store::touch_token(const std::string& name, std::int64_t at) {
  writer_->prepare("UPDATE delegate_tokens SET last_used_at = ? WHERE name = ?")
      .bind(1, at)
      .bind(2, name)
      .run();
}

std::vector<TokenRecord> Store::tokens() {
  return read([&](sqlite::Database& db) {
    std::vector<TokenRecord> out;
    auto& q = db.prepare("SELECT name, hash, created_at, revoked_at, last_used_at FROM "
                         "delegate_tokens ORDER BY name");
    while (q.step()) {
      TokenRecord t;
      t.name = q.text(0);
      t.hash = q.text(1);
      t.created_at = q.int64(2);
      t.revoked_at = q.int64(3);
      t.last_used_at = q.int64(4);
      out.push_back(std::move(t));
    }
    return out;
  });
}

void Store::mark_delegate_disconnected(const std::string& name, const std::string& instance_id,
                                       std::int64_t at, const std::string& reason) {
  writer_
      ->prepare("UPDATE delegates SET connected = 0, last_seen = ?, disconnect_reason = ? "
                "WHERE name = ? AND instance_id = ?")
      .bind(1, at)
      .bind(2, reason)
      .bind(3, name)
      .bind(4, instance_id)
      .run();
}

void Store::mark_all_delegates_disconnected(const std::string& reason) {
  writer_->prepare("UPDATE delegates SET connected = 0, disconnect_reason = ? WHERE connected = 1")
      .bind(1, reason)
      .run();
}

void Store::put_step_type(const StepTypeRecord& t) {
  writer_
      ->prepare("INSERT INTO step_types (type, plugin, plugin_version, description, retry_safe, "
                "delegate, last_seen, spec_schema) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                "(type) DO UPDATE SET plugin = excluded.plugin, plugin_version = "
                "excluded.plugin_version, description = excluded.description, retry_safe = "
                "excluded.retry_safe, delegate = excluded.delegate, last_seen = "
                "excluded.last_seen, spec_schema = excluded.spec_schema")
      .bind(1, t.type)
      .bind(2, t.plugin)
      .bind(3, t.plugin_version)
      .bind(4, t.description)
      .bind(5, t.retry_safe ? 1 : 0)
      .bind(6, t.delegate)
      .bind(7, t.last_seen)
      .bind(8, t.spec_schema)
      .run();
}

std::int64_t Store::next_sequence(const std::string& pipeline) {
  // The largest number is read once per pipeline; insert_execution keeps it from then on.
  if (auto it = sequences_.find(pipeline); it != sequences_.end()) return it->second + 1;
  auto& q =
      writer_->prepare("SELECT COALESCE(MAX(sequence), 0) FROM executions WHERE pipeline = ?");
  q.bind(1, pipeline);
  q.step();
  auto n = q.int64(0);
  q.reset();
  sequences_.emplace(pipeline, n);
  return n + 1;
}

std::string unreadable_because(const std::exception& e) {
  if (dynamic_cast<const StoredValueDamaged*>(&e) != nullptr) return e.what();
  // A JSON parser's own error from a read not yet through stored_json quotes what it read.
  if (dynamic_cast<const nlohmann::json::exception*>(&e) != nullptr) {
    return "a stored JSON value does not parse";
  }
  return e.what();
}

std::vector<ExecutionRecord> Store::active_executions(std::vector<Unreadable>* unreadable) {
  std::vector<ExecutionRecord> out;
  auto& q = writer_->prepare(std::string("SELECT ") + kExecutionColumns +
                             " WHERE e.status IN ('Queued', 'Running') "
                             "ORDER BY e.created_at, e.id");
  std::vector<std::string> children;
  while (q.step()) {
    children.emplace_back();
    try {
      out.push_back(read_execution(q, true, &children.back()));
    } catch (const std::exception& e) {
      if (unreadable == nullptr) throw;
      unreadable->push_back({q.text(0), unreadable_because(e)});
      children.pop_back();
    }
  }
  std::vector<ExecutionRecord> whole;
  whole.reserve(out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    try {
      load_children(*writer_, out[i], children[i]);
    } catch (const std::exception& e) {
      if (unreadable == nullptr) throw;
      unreadable->push_back({out[i].id, unreadable_because(e)});
      continue;
    }
    whole.push_back(std::move(out[i]));
  }
  return whole;
}

void Store::fail_as_stored(const std::string& id, const std::string& message,
                           std::int64_t ended_at) {
  writer_
      ->prepare("UPDATE executions SET status = 'Failed', error_type = 'Unknown', message = ?, "
                "ended_at = ? WHERE id = ?")
      .bind(1, message)
      .bind(2, ended_at)
      .bind(3, id)
      .run();
  written_executions_.erase(id);
}

std::int64_t Store::last_log_seq(const std::string& execution_id) {
  auto& q = writer_->prepare("SELECT COALESCE(MAX(seq), 0) FROM logs WHERE execution_id = ?");
  q.bind(1, execution_id);
  q.step();
  auto n = q.int64(0);
  q.reset();
  return n;
}

std::optional<ObjectRecord> Store::object(const std::string& kind, const std::string& identifier,
                                          std::int64_t version) {
  return read([&](sqlite::Database& db) -> std::optional<ObjectRecord> {
    auto& q = db.prepare(std::string("SELECT ") + kObjectColumns +
                         " FROM objects WHERE kind = ?1 AND identifier = ?2 AND "
                         "(?3 = 0 OR version = ?3) ORDER BY version DESC LIMIT 1");
    q.bind(1, kind).bind(2, identifier).bind(3, version);
    if (!q.step()) return std::nullopt;
    auto o = read_object(q);
    q.reset();
    if (version == 0 && o.deleted) return std::nullopt;
    return o;
  });
}

std::vector<ObjectRecord> Store::objects(const std::string& kind, bool keep_unreadable) {
  return read([&](sqlite::Database& db) {
    std::vector<ObjectRecord> out;
    auto& q = db.prepare(
        "SELECT o.kind, o.identifier, o.version, o.name, o.yaml, o.document, o.model, o.source, "
        "o.applied_at, o.deleted, o.refs, o.applied_by, o.file, o.line_offset, o.base_dir "
        "FROM objects o WHERE (?1 = '' OR o.kind = "
        "?1) AND o.deleted = 0 AND o.version = (SELECT MAX(version) FROM objects i WHERE i.kind = "
        "o.kind AND i.identifier = o.identifier) ORDER BY o.kind, o.identifier");
    q.bind(1, kind);
    std::string unreadable;
    while (q.step()) {
      out.push_back(read_object(q, keep_unreadable ? &unreadable : nullptr));
      out.back().unreadable = std::move(unreadable);
      unreadable.clear();
    }
    return out;
  });
}

namespace {
// Where SQLite's own JSON functions failed on `column` of the latest live objects of `kind`
// ("" for every kind) with `failed` ("malformed JSON", naming no row): the first such object
// whose column does not parse, named as stored_json names it; `failed` again when none is found.
// Read only after a failure, so the common read does not check every value twice.
[[noreturn]] void throw_damaged_object(sqlite::Database& db, const char* column,
                                       const std::string& kind, const sqlite::Error& failed) {
  auto& q = db.prepare(std::string("SELECT o.kind, o.identifier, o.version, length(o.") + column +
                       ") FROM objects o WHERE (?1 = '' OR o.kind = ?1) AND o.deleted = 0 AND "
                       "NOT json_valid(o." +
                       column +
                       ") AND o.version = (SELECT MAX(version) FROM objects i WHERE i.kind = "
                       "o.kind AND i.identifier = o.identifier) ORDER BY o.kind, o.identifier "
                       "LIMIT 1");
  q.bind(1, kind);
  if (!q.step()) {
    q.reset();
    throw failed;
  }
  const auto key = q.text(0) + "/" + q.text(1) + " version " + std::to_string(q.int64(2));
  const auto bytes = static_cast<std::size_t>(q.int64(3));
  q.reset();
  throw_damaged_json(std::string("objects.") + column, key, bytes);
}
} // namespace

std::vector<ObjectFields> Store::object_fields(const std::string& kind,
                                               const std::vector<std::string>& paths) {
  std::string sql = "SELECT o.identifier, o.version";
  for (std::size_t i = 0; i < paths.size(); ++i) sql += ", o.model -> ?" + std::to_string(i + 2);
  sql += " FROM objects o WHERE o.kind = ?1 AND o.deleted = 0 AND o.version = (SELECT "
         "MAX(version) FROM objects i WHERE i.kind = o.kind AND i.identifier = o.identifier) "
         "ORDER BY o.identifier";
  return read([&](sqlite::Database& db) {
    std::vector<ObjectFields> out;
    auto& q = db.prepare(sql);
    q.bind(1, kind);
    for (std::size_t i = 0; i < paths.size(); ++i) q.bind(static_cast<int>(i + 2), paths[i]);
    try {
      while (q.step()) {
        ObjectFields f;
        f.identifier = q.text(0);
        f.version = q.int64(1);
        f.values.reserve(paths.size());
        for (std::size_t i = 0; i < paths.size(); ++i) {
          const int c = static_cast<int>(i + 2);
          // SQLite wrote this text itself from a model that parsed.
          f.values.push_back(q.is_null(c) ? json() : json::parse(q.text(c), nullptr, false));
        }
        out.push_back(std::move(f));
      }
    } catch (const sqlite::Error& e) {
      q.reset();
      throw_damaged_object(db, "model", kind, e);
    }
    return out;
  });
}

std::vector<std::pair<ObjectRecord, json>> Store::referrers(const std::string& kind,
                                                            const std::string& identifier) {
  return read([&](sqlite::Database& db) {
    // Only the references are parsed (by SQLite): deleting one object does not read them all.
    auto& q = db.prepare(
        "SELECT o.kind, o.identifier, MIN(r.key), r.value FROM objects o, json_each(o.refs) r "
        "WHERE o.deleted = 0 AND r.value ->> '$.kind' = ?1 AND r.value ->> '$.identifier' = ?2 "
        "AND o.version = (SELECT MAX(version) FROM objects i WHERE i.kind = o.kind AND "
        "i.identifier = o.identifier) GROUP BY o.kind, o.identifier ORDER BY o.kind, "
        "o.identifier");
    q.bind(1, kind).bind(2, identifier);
    std::vector<std::pair<ObjectRecord, json>> out;
    try {
      while (q.step()) {
        ObjectRecord o;
        o.kind = q.text(0);
        o.identifier = q.text(1);
        out.emplace_back(std::move(o), json::parse(q.text(3), nullptr, false));
      }
    } catch (const sqlite::Error& e) {
      q.reset();
      throw_damaged_object(db, "refs", "", e);
    }
    return out;
  });
}

std::vector<ObjectRecord> Store::object_history(const std::string& kind,
                                                const std::string& identifier) {
  return read([&](sqlite::Database& db) {
    std::vector<ObjectRecord> out;
    auto& q = db.prepare("SELECT kind, identifier, version, name, '', '{}', '{}', source, "
                         "applied_at, deleted, '[]', applied_by, file, line_offset, base_dir "
                         "FROM objects WHERE kind = ? AND identifier = ? ORDER BY version DESC");
    q.bind(1, kind).bind(2, identifier);
    while (q.step()) out.push_back(read_object(q));
    return out;
  });
}

std::optional<std::string> Store::secret_value(const std::string& identifier) {
  return read([&](sqlite::Database& db) -> std::optional<std::string> {
    auto& q = db.prepare("SELECT sealed FROM secret_values WHERE identifier = ? "
                         "ORDER BY version DESC LIMIT 1");
    q.bind(1, identifier);
    if (!q.step()) return std::nullopt;
    auto v = q.text(0);
    q.reset();
    return v;
  });
}

std::vector<std::pair<std::string, std::string>> Store::secret_values() {
  return read([&](sqlite::Database& db) {
    std::vector<std::pair<std::string, std::string>> out;
    auto& q = db.prepare(
        "SELECT v.identifier, v.sealed FROM secret_values v WHERE v.version = (SELECT "
        "MAX(version) FROM secret_values i WHERE i.identifier = v.identifier) AND NOT EXISTS "
        "(SELECT 1 FROM objects o WHERE o.kind = 'secret' AND o.identifier = v.identifier AND "
        "o.deleted = 1 AND o.version = (SELECT MAX(version) FROM objects m WHERE m.kind = "
        "'secret' AND m.identifier = v.identifier))");
    while (q.step()) out.emplace_back(q.text(0), q.text(1));
    return out;
  });
}

std::vector<AuditRecord> Store::audit(const AuditFilter& f) {
  // Only the filters given are in the WHERE clause, so SQLite can walk the table by seq from
  // `before` instead of testing `? = '' OR ...` on every row from the newest one.
  std::string sql =
      "SELECT seq, time, user, action, kind, target, execution_id, details FROM audit";
  std::vector<std::variant<std::string_view, std::int64_t>> args;
  auto where = [&](const char* condition) {
    sql += args.empty() ? " WHERE " : " AND ";
    sql += condition;
  };
  if (!f.user.empty()) {
    where("user = ?");
    args.emplace_back(f.user);
  }
  if (!f.action.empty()) {
    where("action = ?");
    args.emplace_back(f.action);
  }
  if (!f.kind.empty()) {
    where("kind = ?");
    args.emplace_back(f.kind);
  }
  if (!f.target.empty()) {
    where("(target = ? OR execution_id = ?)");
    args.emplace_back(f.target);
    args.emplace_back(f.target);
  }
  if (f.before != 0) {
    where("seq < ?");
    args.emplace_back(f.before);
  }
  sql += " ORDER BY seq DESC LIMIT ?";
  args.emplace_back(static_cast<std::int64_t>(f.limit));
  return read([&](sqlite::Database& db) {
    std::vector<AuditRecord> out;
    auto& q = db.prepare(sql);
    for (std::size_t i = 0; i < args.size(); ++i) {
      std::visit([&](const auto& v) { q.bind(static_cast<int>(i + 1), v); }, args[i]);
    }
    while (q.step()) {
      AuditRecord a;
      a.seq = q.int64(0);
      a.time = q.int64(1);
      a.user = q.text(2);
      a.action = q.text(3);
      a.kind = q.text(4);
      a.target = q.text(5);
      a.execution_id = q.text(6);
      try {
        a.details = stored_json(q.text(7), "audit.details",
                                [&] { return "entry " + std::to_string(a.seq); });
      } catch (const StoredValueDamaged& e) {
        a.details = json::object();
        a.unreadable = e.what();
      }
      out.push_back(std::move(a));
    }
    return out;
  });
}

namespace {
// The least string greater than every string that starts with `prefix` ("" when there is none):
// `id >= prefix AND id < bound` finds the ids with that prefix through the id's index.
std::string prefix_bound(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last < 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}
} // namespace

std::optional<ExecutionRecord> Store::execution(const std::string& id_or_prefix) {
  return read([&](sqlite::Database& db) -> std::optional<ExecutionRecord> {
    auto& exact = db.prepare(std::string("SELECT ") + kExecutionColumns + " WHERE e.id = ?");
    exact.bind(1, id_or_prefix);
    std::optional<ExecutionRecord> found;
    std::string children;
    if (exact.step()) found = read_execution(exact, true, &children);
    exact.reset();
    // Through the id's index: `id >= prefix AND id < bound`, where LIKE scanned it.
    auto by_prefix = [&](const std::string& prefix) -> std::optional<ExecutionRecord> {
      auto bound = prefix_bound(prefix);
      if (bound.empty()) return std::nullopt;
      auto& pre = db.prepare(std::string("SELECT ") + kExecutionColumns +
                             " WHERE e.id >= ? AND e.id < ? ORDER BY e.id LIMIT 2");
      pre.bind(1, prefix).bind(2, bound);
      std::optional<ExecutionRecord> one;
      if (pre.step()) {
        one = read_execution(pre, true, &children);
        if (pre.step()) one.reset(); // ambiguous
      }
      pre.reset();
      return one;
    };
    if (!found && id_or_prefix.size() >= 4) {
      found = by_prefix(id_or_prefix);
      // Ids are lower case: a prefix typed in upper case finds them too, as the case-blind LIKE
      // did.
      auto lowered = id_or_prefix;
      for (auto& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!found && lowered != id_or_prefix) found = by_prefix(lowered);
    }
    if (found) load_children(db, *found, children);
    return found;
  });
}

std::vector<ExecutionRecord> Store::executions(const ExecutionFilter& f) {
  return read([&](sqlite::Database& db) {
    std::vector<ExecutionRecord> out;
    // Only the filters given, so SQLite can pick an index for them; the active executions'
    // statuses are named as the partial index on them does, so a list of those reads it alone.
    std::string sql = std::string("SELECT ") + kExecutionColumnsWithoutPlan + " WHERE 1";
    if (!f.pipeline.empty()) sql += " AND e.pipeline = ?1";
    if (f.status == status::kQueued || f.status == status::kRunning) {
      sql += " AND e.status IN ('Queued', 'Running')";
    }
    if (!f.status.empty()) sql += " AND e.status = ?2";
    sql += " ORDER BY e.created_at DESC, e.id DESC LIMIT ?3";
    auto& q = db.prepare(sql);
    if (!f.pipeline.empty()) q.bind(1, f.pipeline);
    if (!f.status.empty()) q.bind(2, f.status);
    q.bind(3, f.limit);
    // A row whose JSON cannot be read is listed with its plain columns and why, so that one
    // damaged value does not hide the others.
    while (q.step()) out.push_back(read_execution(q, false, nullptr, true));
    return out;
  });
}

std::vector<LogRecord> Store::logs(const std::string& execution_id, std::int64_t after, int limit,
                                   const std::string& step) {
  return read([&](sqlite::Database& db) {
    std::vector<LogRecord> out;
    auto& q = db.prepare(
        "SELECT l.seq, l.stage_index, l.step_index, l.step, l.time, l.level, l.line FROM logs l "
        "WHERE l.execution_id = ?1 AND l.seq > ?2 AND (?3 = '' OR l.step = ?3 OR "
        "substr(l.step, instr(l.step, '.') + 1) = ?3 OR "
        "substr(l.step, -length(?3) - 1) = '.' || ?3) ORDER BY l.seq LIMIT ?4");
    q.bind(1, execution_id).bind(2, after).bind(3, step).bind(4, limit);
    while (q.step()) {
      LogRecord r;
      r.seq = q.int64(0);
      r.stage_index = static_cast<int>(q.int64(1));
      r.step_index = static_cast<int>(q.int64(2));
      r.step = q.text(3);
      r.time = q.int64(4);
      r.level = static_cast<int>(q.int64(5));
      r.line = q.text(6);
      out.push_back(std::move(r));
    }
    return out;
  });
}

std::vector<DelegateRecord> Store::delegates() {
  return read([&](sqlite::Database& db) {
    std::vector<DelegateRecord> out;
    auto& q = db.prepare("SELECT name, instance_id, hostname, version, tags, step_types, slots, "
                         "first_seen, last_seen, connected, disconnect_reason, draining, token "
                         "FROM delegates "
                         "ORDER BY name");
    while (q.step()) {
      DelegateRecord d;
      d.name = q.text(0);
      d.instance_id = q.text(1);
      d.hostname = q.text(2);
      d.version = q.text(3);
      try {
        d.tags = stored_json(q.text(4), "delegates.tags", d.name);
        d.step_types = stored_json(q.text(5), "delegates.step_types", d.name);
      } catch (const StoredValueDamaged& e) {
        d.unreadable = e.what();
      }
      d.slots = static_cast<int>(q.int64(6));
      d.first_seen = q.int64(7);
      d.last_seen = q.int64(8);
      d.connected = q.int64(9) != 0;
      d.disconnect_reason = q.text(10);
      d.draining = q.int64(11) != 0;
      d.token = q.text(12);
      out.push_back(std::move(d));
    }
    return out;
  });
}

std::vector<StepTypeRecord> Store::step_types() {
  return read([&](sqlite::Database& db) {
    std::vector<StepTypeRecord> out;
    auto& q = db.prepare("SELECT type, plugin, plugin_version, description, retry_safe, "
                         "delegate, last_seen, spec_schema FROM step_types ORDER BY type");
    while (q.step()) {
      StepTypeRecord t;
      t.type = q.text(0);
      t.plugin = q.text(1);
      t.plugin_version = q.text(2);
      t.description = q.text(3);
      t.retry_safe = q.int64(4) != 0;
      t.delegate = q.text(5);
      t.last_seen = q.int64(6);
      t.spec_schema = q.text(7);
      out.push_back(std::move(t));
    }
    return out;
  });
}

} // namespace capstan::store
