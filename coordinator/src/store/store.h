// The coordinator's SQLite store: one file, schema migrations, one writer and pooled readers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "sqlite/database.h"
#include "store/applications.h"
#include "store/pull_requests.h"
#include "store/records.h"
#include "store/stored_json.h"

namespace capstan::store {

// The schema version this build writes (PRAGMA user_version).
int schema_version();
// Creates or migrates the database file only as far as schema `version`, as the release that
// wrote that version left it: for tests of the migrations after it. Store opens and migrates
// such a file the rest of the way.
void migrate_to(const std::filesystem::path& file, int version);

// Write methods use the writer connection and belong to one thread (the engine's) at a time;
// read methods borrow a pooled reader and may be called from any thread. WAL lets readers run
// beside the writer.
// Why a stored value cannot be read, without the stored text itself: a StoredValueDamaged's
// message (store/stored_json.h), and for any other JSON error none of its own (a JSON parser's
// message quotes what it last read).
std::string unreadable_because(const std::exception& error);

class Store {
public:
  // Opens or creates <data_dir>/capstan.db and migrates it. Throws sqlite::Error, or
  // std::runtime_error for a database written by a newer release.
  explicit Store(const std::filesystem::path& data_dir);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& file() const { return file_; }
  sqlite::Database& writer() { return *writer_; }

  // --- writes (writer thread) ---
  // Stores a new version when the document or model changed (or the object was deleted);
  // returns the version and whether it is new.
  std::pair<std::int64_t, bool> put_object(const ObjectRecord& object);
  // Stores a tombstone version; false when there is nothing to delete.
  bool delete_object(const std::string& kind, const std::string& identifier,
                     const std::string& user, std::int64_t at);
  // The objects (kind, identifier) given a new version or deleted through this store since the
  // last call, whatever wrote them: the engine looks at them once their batch has committed.
  std::set<std::pair<std::string, std::string>> take_written_objects();
  // A secret's value, sealed by the coordinator's key, for one version of the secret.
  void put_secret_value(const std::string& identifier, std::int64_t version,
                        const std::string& sealed);
  void append_audit(const AuditRecord& record);
  void insert_execution(const ExecutionRecord& execution); // with its stages and steps
  void update_execution(const ExecutionRecord& execution); // the execution row only
  // What changed of a stored execution: its row when `row`, and the stages and steps at these
  // indexes of execution.stages and .steps. A small execution's stages and steps are kept in its
  // row, and are then all written with it, in one statement.
  void update_execution(const ExecutionRecord& execution, bool row,
                        const std::set<std::size_t>& stages, const std::set<std::size_t>& steps);
  void update_stage(const std::string& execution_id, const StageRecord& stage);
  void update_step(const std::string& execution_id, const StepRecord& step);
  void append_logs(const std::string& execution_id, const std::vector<LogRecord>& lines);
  void put_delegate(const DelegateRecord& delegate);
  void mark_delegate_disconnected(const std::string& name, const std::string& instance_id,
                                  std::int64_t at, const std::string& reason);
  void mark_all_delegates_disconnected(const std::string& reason);
  void put_step_type(const StepTypeRecord& type);
  void put_token(const TokenRecord& token);
  void revoke_token(const std::string& name, std::int64_t at);
  void touch_token(const std::string& name, std::int64_t at);
  std::int64_t next_sequence(const std::string& pipeline);
  // Queued or Running, oldest first. An execution whose stored row, stages or steps cannot be
  // read (a damaged value) is left out and named in `unreadable` when it is given; without it,
  // the read fails.
  struct Unreadable {
    std::string id;
    std::string error;
  };
  std::vector<ExecutionRecord> active_executions(std::vector<Unreadable>* unreadable = nullptr);
  // Ends an execution as Failed with `message`, its other columns left as stored: for one that
  // cannot be read back whole, so that it neither blocks a start nor loses what it held.
  void fail_as_stored(const std::string& id, const std::string& message, std::int64_t ended_at);
  std::int64_t last_log_seq(const std::string& execution_id);
  // Pull requests (store/pull_requests.cpp). Reserves the repository's next `local` number.
  std::int64_t reserve_pull_request_number(const std::string& repository);
  // Inserts or updates by (repository, number); keeps created_at, execution_id and step of the
  // first report. Returns the record as stored.
  PullRequestRecord put_pull_request(const PullRequestRecord& record);
  // pull_requests() through the writer: sees what this thread wrote in its open transaction.
  std::vector<PullRequestRecord> pull_requests_written(const PullRequestFilter& filter);
  // GitOps applications' assignments and statuses (store/applications.cpp).
  void put_app_state(const AppStateRecord& record);
  void delete_app_state(const std::string& name);
  std::vector<AppStateRecord> app_states_written(); // through the writer, at start-up
  // The API server a delegate read in a K8sCluster connector's kubeconfig ("" when none
  // reported one), through the writer; and recording one.
  std::string reported_cluster_server(const std::string& connector);
  void put_reported_cluster_server(const std::string& connector, const std::string& server);

  // --- reads (any thread) ---
  // The latest version, unless it is a tombstone; or exactly `version` (tombstones included).
  std::optional<ObjectRecord> object(const std::string& kind, const std::string& identifier,
                                     std::int64_t version = 0);
  // The latest live version of every object of the kind ("" for every kind). An object whose
  // stored JSON cannot be read (a damaged value) throws StoredValueDamaged, or is kept with what
  // could be read and why (ObjectRecord::unreadable) when `keep_unreadable`.
  std::vector<ObjectRecord> objects(const std::string& kind, bool keep_unreadable = false);
  // Only some values of the latest live version of every object of the kind, in identifier
  // order: its identifier, version and the values at `paths` (JSON paths into its model such as
  // "$.repoURL", null where absent). No document is parsed: cheap at thousands of objects. A
  // model that does not parse (damaged on disk) throws StoredValueDamaged naming the object.
  std::vector<ObjectFields> object_fields(const std::string& kind,
                                          const std::vector<std::string>& paths);
  // The latest live objects whose references name (kind, identifier), in kind and identifier
  // order, each with the first such reference ({kind, identifier, location, role, ...}).
  std::vector<std::pair<ObjectRecord, nlohmann::json>> referrers(const std::string& kind,
                                                                 const std::string& identifier);
  // Every version of an object, newest first, without content.
  std::vector<ObjectRecord> object_history(const std::string& kind, const std::string& identifier);
  // The sealed value of a secret's latest version; nullopt when none is stored.
  std::optional<std::string> secret_value(const std::string& identifier);
  // identifier -> sealed value, for the latest version of every live secret.
  std::vector<std::pair<std::string, std::string>> secret_values();
  // Entries whose details cannot be read are listed with empty details and why (unreadable);
  // so are delegates and pull requests below.
  std::vector<AuditRecord> audit(const AuditFilter& filter);
  // By id, or by a unique id prefix of at least 4 characters.
  // Throws StoredValueDamaged when one of its stored values cannot be read.
  std::optional<ExecutionRecord> execution(const std::string& id_or_prefix);
  // Without plans, stages and steps. A row whose JSON cannot be read (a damaged value) is listed
  // with its plain columns and why (ExecutionRecord::unreadable).
  std::vector<ExecutionRecord> executions(const ExecutionFilter& filter);
  // Lines with seq > after, in order; `step` filters by "stage.step" or by step identifier.
  std::vector<LogRecord> logs(const std::string& execution_id, std::int64_t after, int limit,
                              const std::string& step = "");
  std::vector<DelegateRecord> delegates();
  std::vector<StepTypeRecord> step_types();
  std::vector<TokenRecord> tokens();
  std::vector<PullRequestRecord> pull_requests(const PullRequestFilter& filter); // newest first
  std::optional<PullRequestRecord> pull_request(const std::string& repository, std::int64_t number);
  std::vector<AppStateRecord> app_states();
  std::optional<AppStateRecord> app_state(const std::string& name);
  // Applications in name order after `after` (exclusive), at most `limit`, with their states,
  // in one read that parses none of their JSON here (SQLite checks that a status parses before
  // it is passed on). One whose stored model or status does not is listed marked (unreadable).
  std::vector<AppListItem> application_page(const std::string& after, int limit);
  std::optional<AppListItem> application_item(const std::string& name);

  // --- online backup (any thread) ---
  // A consistent copy of the database as it was at one moment, made while the engine keeps
  // committing (store/backup.cpp): a file created mode 0600 in the data dir, filled through
  // SQLite's online backup on a read connection of its own, then unlinked, so that only the
  // open descriptor holds it and nothing is left behind whatever happens to the reader of it.
  // Throws BackupError naming what failed, with the file removed.
  class BackupError : public sqlite::Error {
  public:
    BackupError(const std::string& message, bool disk_full)
        : sqlite::Error(message), disk_full_(disk_full) {}
    bool disk_full() const { return disk_full_; }

  private:
    bool disk_full_;
  };
  struct Backup {
    int fd = -1; // read from offset 0; closed by the destructor
    std::int64_t bytes = 0;
    std::int64_t pages = 0;
    Backup() = default;
    Backup(Backup&& other) noexcept;
    Backup& operator=(Backup&&) = delete;
    Backup(const Backup&) = delete;
    ~Backup();
  };
  Backup backup();
  // The prefix of a backup's temporary file in the data dir: one left by a coordinator that
  // died mid-copy is removed when the store opens.
  static constexpr const char* kBackupPrefix = ".capstan.db.backup-";

private:
  template <typename F> auto read(F&& f) {
    auto conn = borrow();
    // A read that throws (a stored value that cannot be read) may leave a statement of the
    // connection mid-step, holding its snapshot of the database: such a connection is closed
    // instead of going back to the pool, where later reads would see that old snapshot.
    struct Return {
      Store* store;
      std::unique_ptr<sqlite::Database>& conn;
      int exceptions = std::uncaught_exceptions();
      ~Return() {
        if (std::uncaught_exceptions() > exceptions) conn.reset();
        store->give_back(std::move(conn));
      }
    } guard{this, conn};
    return f(*conn);
  }
  std::unique_ptr<sqlite::Database> borrow();
  void give_back(std::unique_ptr<sqlite::Database> conn);
  void migrate();

  // Copies the write-ahead log back into the database file on its own thread and connection,
  // so the writer's commits rarely wait for a checkpoint (or its fsync).
  void checkpoint_loop();
  static int on_commit(void* store, sqlite3* db, const char* name, int frames);
  static void on_rollback(void* store);

  // The id of the plans row holding this plan text, inserted when there is none.
  std::int64_t plan_id(const std::string& text);
  // Notes what the writer wrote of an execution's row (forgotten once it ended).
  void remember_written(const ExecutionRecord& e, bool folded);
  // Whether the execution's stages and steps are kept in its row (children) or in their tables.
  bool folded(const std::string& id);
  void insert_children(const ExecutionRecord& e); // rows in stage_ and step_executions
  // The execution's row; with its stages and steps encoded when `children` is given.
  void write_row(const ExecutionRecord& e, const std::string* children);
  // A folded execution's stages and steps, and its row when `row`; rows of their own once they
  // outgrow it.
  void write_folded(const ExecutionRecord& e, bool row);
  ExecutionRecord folded_children(const std::string& id);
  void update_stage_row(const std::string& execution_id, const StageRecord& stage);
  void update_step_row(const std::string& execution_id, const StepRecord& step);

  std::filesystem::path file_;
  std::unique_ptr<sqlite::Database> writer_;
  std::mutex checkpoint_mutex_; // guards the three below: set by the writer, read by checkpointer
  std::condition_variable checkpoint_cv_;
  bool checkpoint_due_ = false;
  bool stopping_ = false;
  // Frames of the log the last checkpoint had copied (0 again once the log starts over).
  std::atomic<int> backfilled_{0};
  std::thread checkpointer_;
  // Log frames after which the checkpointer copies, and the writer (see on_commit): set once
  // from the page size before the hooks are installed.
  int checkpoint_frames_ = 1000;
  int restart_frames_ = 4000;
  std::mutex pool_mutex_; // guards pool_: readers are borrowed by HTTP threads
  std::vector<std::unique_ptr<sqlite::Database>> pool_;
  std::set<std::pair<std::string, std::string>> written_; // by the writer, see take_written_objects
  // Writer thread only; all three are cleared when a transaction is rolled back (on_rollback), so
  // they never describe a write the database does not hold.
  std::unordered_map<std::string, std::int64_t> plan_ids_; // plan text -> plans.id
  struct WrittenExecution {
    bool folded = false; // its stages and steps are in its row
    std::string status;
    nlohmann::json variables, inputs, pending_inputs, state;
  };
  std::unordered_map<std::string, WrittenExecution> written_executions_; // by id, not yet ended
  // pipeline -> the largest run number stored, read once (next_sequence) and kept by
  // insert_execution.
  std::unordered_map<std::string, std::int64_t> sequences_;
  std::string children_; // writer thread: the encoding being written, its buffer kept
};

} // namespace capstan::store
