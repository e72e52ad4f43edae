// The gitops_apps table.
#include <functional>

#include "store/store.h"

namespace capstan::store {

namespace {

constexpr const char* kAppColumns =
    "name, epoch, instance_id, delegate, plugin, assigned_at, status, "
    "status_epoch, status_at, message";

// The columns kAppColumns names, from column `at` on.
AppStateRecord read_app(sqlite::Statement& s, int at = 0) {
  AppStateRecord r;
  r.name = s.text(at);
  r.epoch = static_cast<std::uint64_t>(s.int64(at + 1));
  r.instance_id = s.text(at + 2);
  r.delegate = s.text(at + 3);
  r.plugin = s.text(at + 4);
  r.assigned_at = s.int64(at + 5);
  // A status that does not parse (damaged on disk) reads as none on purpose: the delegate that
  // renders the application reports it again, and the application keeps being listed and served.
  r.status = nlohmann::json::parse(s.text(at + 6), nullptr, false);
  if (r.status.is_discarded()) r.status = nlohmann::json::object();
  r.status_epoch = static_cast<std::uint64_t>(s.int64(at + 7));
  r.status_at = s.int64(at + 8);
  r.message = s.text(at + 9);
  return r;
}

std::vector<AppStateRecord> all(sqlite::Database& db) {
  auto& q = db.prepare(std::string("SELECT ") + kAppColumns + " FROM gitops_apps ORDER BY name");
  std::vector<AppStateRecord> out;
  while (q.step()) out.push_back(read_app(q));
  q.reset();
  return out;
}

} // namespace

std::string Store::reported_cluster_server(const std::string& connector) {
  auto& q = writer_->prepare("SELECT value FROM meta WHERE key = ?");
  q.bind(1, "clusterServer/" + connector);
  std::string out = q.step() ? q.text(0) : "";
  q.reset();
  return out;
}

void Store::put_reported_cluster_server(const std::string& connector, const std::string& server) {
  auto& q = writer_->prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
  q.bind(1, "clusterServer/" + connector).bind(2, server);
  q.step();
  q.reset();
}

void Store::put_app_state(const AppStateRecord& r) {
  auto& q = writer_->prepare(std::string("INSERT OR REPLACE INTO gitops_apps (") + kAppColumns +
                             ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  q.bind(1, r.name)
      .bind(2, static_cast<std::int64_t>(r.epoch))
      .bind(3, r.instance_id)
      .bind(4, r.delegate)
      .bind(5, r.plugin)
      .bind(6, r.assigned_at)
      .bind(7, r.status.dump())
      .bind(8, static_cast<std::int64_t>(r.status_epoch))
      .bind(9, r.status_at)
      .bind(10, r.message);
  q.step();
  q.reset();
}

void Store::delete_app_state(const std::string& name) {
  auto& q = writer_->prepare("DELETE FROM gitops_apps WHERE name = ?");
  q.bind(1, name);
  q.step();
  q.reset();
}

std::vector<AppStateRecord> Store::app_states_written() {
  return all(*writer_);
}

std::vector<AppStateRecord> Store::app_states() {
  return read([&](sqlite::Database& db) { return all(db); });
}

std::optional<AppStateRecord> Store::app_state(const std::string& name) {
  return read([&](sqlite::Database& db) -> std::optional<AppStateRecord> {
    auto& q = db.prepare(std::string("SELECT ") + kAppColumns + " FROM gitops_apps WHERE name = ?");
    q.bind(1, name);
    std::optional<AppStateRecord> out;
    if (q.step()) out = read_app(q);
    q.reset();
    return out;
  });
}

namespace {

// The application columns list_items reads. `guarded` reads a model that does not parse as
// null (and says so in column 16) where the plain query fails as a whole: the list is read so only
// after that failure, leaving the common read as it was.
std::string list_sql(const std::string& where, bool guarded) {
  const auto model = [&](const char* expression) {
    return guarded
               ? std::string("CASE WHEN json_valid(o.model) THEN o.model ") + expression + " END"
               : std::string("o.model ") + expression;
  };
  return "SELECT o.identifier, " + model("->> '$.project'") + ", " +
         model("-> '$.document.metadata'") + ", " + model("-> '$.document.spec'") +
         ", s.status, s.name, s.epoch, s.instance_id, s.delegate, s.plugin, s.assigned_at, '{}', "
         "s.status_epoch, s.status_at, s.message, json_valid(s.status), " +
         (guarded ? "json_valid(o.model)" : "1") +
         ", o.version FROM objects o LEFT JOIN gitops_apps s ON s.name = o.identifier "
         "WHERE o.kind = 'application' AND o.deleted = 0 AND " +
         where +
         " AND o.version = (SELECT MAX(version) FROM objects i WHERE i.kind = o.kind AND "
         "i.identifier = o.identifier) ORDER BY o.identifier LIMIT ?2";
}

// The applications `where` selects (?1, ?2 bound by the caller), in name order. One whose stored
// model or status does not parse (damaged on disk) is listed with what could be read and why.
std::vector<AppListItem> list_items(sqlite::Database& db, const std::string& where,
                                    const std::function<void(sqlite::Statement&)>& bind,
                                    bool guarded = false) {
  auto& q = db.prepare(list_sql(where, guarded));
  bind(q);
  std::vector<AppListItem> out;
  auto object_text = [&](int column) {
    std::string t = q.text(column);
    return t.empty() || t.front() != '{' ? std::string("{}") : t;
  };
  try {
    while (q.step()) {
      AppListItem item;
      item.name = q.text(0);
      item.project = q.text(1);
      item.metadata_json = object_text(2);
      item.spec_json = object_text(3);
      // Stored text passed on as it is: only once it is known to parse.
      item.status_json = q.is_null(15) || q.int64(15) != 0 ? object_text(4) : "{}";
      // The state's columns as read_app() takes them, with its status passed on as text.
      if (!q.is_null(5)) item.state = read_app(q, 5);
      if (q.int64(16) == 0) {
        item.metadata_json = nlohmann::json{{"name", item.name}}.dump();
        item.unreadable = "objects.model of application/" + item.name + " version " +
                          std::to_string(q.int64(17)) + " does not parse as JSON";
      } else if (!q.is_null(15) && q.int64(15) == 0) {
        item.unreadable = "gitops_apps.status of " + item.name + " does not parse as JSON";
      }
      out.push_back(std::move(item));
    }
  } catch (const sqlite::Error&) {
    q.reset();
    if (guarded) throw;
    return list_items(db, where, bind, true); // a model that does not parse: see list_sql
  }
  q.reset();
  return out;
}

} // namespace

std::vector<AppListItem> Store::application_page(const std::string& after, int limit) {
  return read([&](sqlite::Database& db) {
    return list_items(db, "o.identifier > ?1",
                      [&](sqlite::Statement& q) { q.bind(1, after).bind(2, limit); });
  });
}

std::optional<AppListItem> Store::application_item(const std::string& name) {
  return read([&](sqlite::Database& db) -> std::optional<AppListItem> {
    auto items = list_items(db, "o.identifier = ?1",
                            [&](sqlite::Statement& q) { q.bind(1, name).bind(2, 1); });
    if (items.empty()) return std::nullopt;
    return std::move(items.front());
  });
}

} // namespace capstan::store
