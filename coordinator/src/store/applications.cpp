// The gitops_apps table.
#include "store/store.h"

namespace capstan::store {

namespace {

constexpr const char* kColumns = "name, epoch, instance_id, delegate, plugin, assigned_at, status, "
                                 "status_epoch, status_at, message";

AppStateRecord read_app(sqlite::Statement& s) {
  AppStateRecord r;
  r.name = s.text(0);
  r.epoch = static_cast<std::uint64_t>(s.int64(1));
  r.instance_id = s.text(2);
  r.delegate = s.text(3);
  r.plugin = s.text(4);
  r.assigned_at = s.int64(5);
  r.status = nlohmann::json::parse(s.text(6), nullptr, false);
  if (r.status.is_discarded()) r.status = nlohmann::json::object();
  r.status_epoch = static_cast<std::uint64_t>(s.int64(7));
  r.status_at = s.int64(8);
  r.message = s.text(9);
  return r;
}

std::vector<AppStateRecord> all(sqlite::Database& db) {
  auto& q = db.prepare(std::string("SELECT ") + kColumns + " FROM gitops_apps ORDER BY name");
  std::vector<AppStateRecord> out;
  while (q.step()) out.push_back(read_app(q));
  q.reset();
  return out;
}

} // namespace

void Store::put_app_state(const AppStateRecord& r) {
  auto& q = writer_->prepare(std::string("INSERT OR REPLACE INTO gitops_apps (") + kColumns +
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
    auto& q = db.prepare(std::string("SELECT ") + kColumns + " FROM gitops_apps WHERE name = ?");
    q.bind(1, name);
    std::optional<AppStateRecord> out;
    if (q.step()) out = read_app(q);
    q.reset();
    return out;
  });
}

} // namespace capstan::store
