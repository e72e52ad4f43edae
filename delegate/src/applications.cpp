// Hosting assigned GitOps applications in the plugins' reconcilers.
#include "applications.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "task_runner.h"

namespace capstan::delegate {

using nlohmann::json;
namespace wv1 = ::capstan::wire::v1;

Applications::Applications(PluginHost& host, Send send) : host_(host), send_(std::move(send)) {
  ReconcilerCallbacks callbacks;
  callbacks.status = [this](const std::string& plugin, std::string_view status_json) {
    on_status(plugin, status_json);
  };
  callbacks.log = [this](const std::string&, capstan_log_level level, std::string_view app,
                         std::string_view line) { on_log(level, app, line); };
  host_.start_reconcilers(std::move(callbacks));
  thread_ = std::thread([this] { worker(); });
}

Applications::~Applications() {
  stop();
}

void Applications::stop() {
  std::vector<std::future<void>> running;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    running.swap(operations_);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& f : running) f.wait();
  host_.stop_reconcilers();
}

std::vector<std::string> Applications::masks_locked() const {
  std::vector<std::string> out;
  for (const auto& [app, h] : held_) out.insert(out.end(), h.mask.begin(), h.mask.end());
  return out;
}

void Applications::assign(const wv1::AppAssign& assign) {
  {
    std::lock_guard lock(mutex_);
    auto it = held_.find(assign.app());
    if (it != held_.end() && it->second.epoch > assign.epoch()) return; // older than what we hold
    Held& h = held_[assign.app()];
    h.epoch = assign.epoch();
    h.plugin = assign.plugin();
    h.mask.assign(assign.mask().begin(), assign.mask().end());
    Job job;
    job.kind = Job::Kind::kUpsert;
    job.app = assign.app();
    job.epoch = assign.epoch();
    job.plugin = assign.plugin();
    job.application_json = assign.application_json();
    job.cluster_json = assign.cluster_json();
    ++applying_[job.app];
    jobs_.push_back(std::move(job));
    if (assign.deleting()) {
      // Hosted (never synced: it carries its deletionTimestamp) so that its resources are
      // known, then removed with them; held until then.
      Job remove;
      remove.kind = Job::Kind::kRemove;
      remove.app = assign.app();
      remove.epoch = assign.epoch();
      remove.delete_resources = true;
      remove.report_deleted = true;
      ++applying_[remove.app];
      jobs_.push_back(std::move(remove));
    }
  }
  if (assign.deleting()) {
    spdlog::info("application {}: deleting its resources (epoch {})", assign.app(), assign.epoch());
  }
  cv_.notify_all();
}

void Applications::unassign(const wv1::AppUnassign& unassign) {
  {
    std::lock_guard lock(mutex_);
    auto it = held_.find(unassign.app());
    // An unassign names the epoch it ends; a newer assignment already replaced it.
    if (it != held_.end() && unassign.epoch() != 0 && it->second.epoch > unassign.epoch()) return;
    if (it != held_.end()) held_.erase(it);
    Job job;
    job.kind = Job::Kind::kRemove;
    job.app = unassign.app();
    job.delete_resources = unassign.delete_resources();
    ++applying_[job.app];
    jobs_.push_back(std::move(job));
  }
  spdlog::info("application {}: no longer reconciled here ({}{})", unassign.app(),
               unassign.reason(), unassign.delete_resources() ? "; deleting its resources" : "");
  cv_.notify_all();
}

void Applications::drop_all(const std::string& reason) {
  std::size_t n = 0;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [app, h] : held_) {
      Job job;
      job.kind = Job::Kind::kRemove;
      job.app = app;
      ++applying_[job.app];
      jobs_.push_back(std::move(job));
    }
    n = held_.size();
    held_.clear();
  }
  if (n > 0) spdlog::warn("stopped reconciling {} application(s): {}", n, reason);
  cv_.notify_all();
}

std::vector<wv1::AppLease> Applications::leases() const {
  std::lock_guard lock(mutex_);
  std::vector<wv1::AppLease> out;
  for (const auto& [app, h] : held_) {
    wv1::AppLease l;
    l.set_app(app);
    l.set_epoch(h.epoch);
    out.push_back(std::move(l));
  }
  return out;
}

std::size_t Applications::size() const {
  std::lock_guard lock(mutex_);
  return held_.size();
}

void Applications::operation(const wv1::AppOperation& op) {
  std::string plugin;
  wv1::Envelope answer;
  auto* r = answer.mutable_app_operation_result();
  r->set_id(op.id());
  r->set_app(op.app());
  r->set_epoch(op.epoch());
  plugin::v1::ReconcilerCall call;
  call.set_application(op.app());
  call.set_params_json(op.params_json());
  if (op.op() == "sync") {
    call.set_op(plugin::v1::ReconcilerCall::OP_SYNC);
  } else if (op.op() == "refresh") {
    call.set_op(plugin::v1::ReconcilerCall::OP_REFRESH);
  } else if (op.op() == "rollback") {
    call.set_op(plugin::v1::ReconcilerCall::OP_ROLLBACK);
  } else if (op.op() == "terminate") {
    call.set_op(plugin::v1::ReconcilerCall::OP_TERMINATE);
  } else {
    r->set_error("unknown operation '" + op.op() + "' (sync, refresh, rollback or terminate)");
    send_(std::move(answer));
    return;
  }
  std::lock_guard lock(mutex_);
  auto it = held_.find(op.app());
  if (stopping_ || it == held_.end() || it->second.epoch != op.epoch()) {
    r->set_error("application '" + op.app() + "' is not reconciled by this delegate (any more)");
    send_(std::move(answer));
    return;
  }
  plugin = it->second.plugin;
  // Finished operations are forgotten; the running ones are waited for at stop().
  std::erase_if(operations_, [](std::future<void>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  });
  operations_.push_back(std::async(std::launch::async, [this, plugin, call, answer]() mutable {
    if (call.op() != plugin::v1::ReconcilerCall::OP_TERMINATE) {
      // A spec assigned just before the operation is reconciled first (a terminate is for the
      // sync running now: it does not wait).
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !applying_.count(call.application()); });
    }
    auto reply = host_.reconcile(plugin, call);
    auto* res = answer.mutable_app_operation_result();
    std::vector<std::string> masks;
    {
      std::lock_guard l(mutex_);
      masks = masks_locked();
    }
    res->set_ok(reply.ok());
    res->set_error(mask_secrets(reply.error(), masks));
    res->set_result_json(mask_secrets(reply.result_json(), masks));
    send_(std::move(answer));
  }));
}

void Applications::worker() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) break;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    run(job);
    {
      std::lock_guard lock(mutex_);
      if (auto it = applying_.find(job.app); it != applying_.end() && --it->second <= 0) {
        applying_.erase(it);
      }
    }
    cv_.notify_all();
  }
  // Stopping: every application leaves its reconciler before the reconcilers stop.
  for (const auto& [app, plugin] : hosted_) {
    plugin::v1::ReconcilerCall call;
    call.set_op(plugin::v1::ReconcilerCall::OP_REMOVE);
    call.set_application(app);
    host_.reconcile(plugin, call);
  }
  hosted_.clear();
}

void Applications::run(const Job& job) {
  auto remove_from = [&](const std::string& plugin) {
    plugin::v1::ReconcilerCall call;
    call.set_op(plugin::v1::ReconcilerCall::OP_REMOVE);
    call.set_application(job.app);
    if (job.delete_resources) call.set_params_json(R"({"deleteResources":true})");
    auto reply = host_.reconcile(plugin, call);
    if (!reply.ok()) spdlog::warn("application {}: removing it failed: {}", job.app, reply.error());
    return reply;
  };
  auto hosted = hosted_.find(job.app);
  if (job.kind == Job::Kind::kRemove) {
    if (job.report_deleted) {
      {
        // Superseded while queued (unassigned, dropped or assigned again): not ours to delete.
        std::lock_guard lock(mutex_);
        auto it = held_.find(job.app);
        if (it == held_.end() || it->second.epoch != job.epoch) return;
      }
      if (hosted == hosted_.end()) {
        // Its assignment could not be hosted (reported as its status): nothing was deleted.
        report_deleted(job, false, "the application could not be hosted to delete its resources",
                       0);
        return;
      }
      auto reply = remove_from(hosted->second);
      hosted_.erase(hosted);
      std::uint64_t deleted = 0;
      if (reply.ok()) {
        json r = json::parse(reply.result_json(), nullptr, false);
        if (r.is_object()) deleted = r.value("deletedResources", std::uint64_t{0});
      }
      report_deleted(job, reply.ok(), reply.error(), deleted);
      return;
    }
    if (hosted != hosted_.end()) {
      remove_from(hosted->second);
      hosted_.erase(hosted);
    }
    return;
  }
  {
    // Superseded while queued (unassigned, dropped or assigned again): skip this one.
    std::lock_guard lock(mutex_);
    auto it = held_.find(job.app);
    if (it == held_.end() || it->second.epoch != job.epoch) return;
  }
  if (hosted != hosted_.end() && hosted->second != job.plugin) {
    remove_from(hosted->second);
    hosted_.erase(hosted);
  }
  plugin::v1::ReconcilerCall call;
  call.set_op(plugin::v1::ReconcilerCall::OP_UPSERT);
  call.set_application(job.app);
  call.set_application_json(job.application_json);
  call.set_cluster_json(job.cluster_json);
  auto reply = host_.reconcile(job.plugin, call);
  if (!reply.ok()) {
    std::vector<std::string> masks;
    {
      std::lock_guard lock(mutex_);
      masks = masks_locked();
    }
    const std::string message = mask_secrets(reply.error(), masks);
    spdlog::warn("application {}: cannot reconcile it: {}", job.app, message);
    report_failure(job.app, job.epoch, message);
    return;
  }
  hosted_[job.app] = job.plugin;
  spdlog::info("application {}: reconciled here (epoch {})", job.app, job.epoch);
}

void Applications::report_failure(const std::string& app, std::uint64_t epoch,
                                  const std::string& message) {
  json status = {
      {"name", app},
      {"sync", {{"status", "Unknown"}, {"revision", ""}}},
      {"health", {{"status", "Unknown"}}},
      {"conditions", json::array({{{"type", "InvalidSpecError"}, {"message", message}}})}};
  wv1::Envelope env;
  auto* s = env.mutable_app_status();
  s->set_app(app);
  s->set_epoch(epoch);
  s->set_status_json(status.dump());
  send_(std::move(env));
}

void Applications::report_deleted(const Job& job, bool ok, const std::string& error,
                                  std::uint64_t deleted) {
  wv1::Envelope env;
  auto* d = env.mutable_app_deleted();
  d->set_app(job.app);
  d->set_epoch(job.epoch);
  d->set_ok(ok);
  d->set_deleted_resources(deleted);
  {
    std::lock_guard lock(mutex_);
    d->set_error(mask_secrets(error, masks_locked()));
    auto it = held_.find(job.app);
    if (it != held_.end() && it->second.epoch == job.epoch) held_.erase(it);
  }
  if (ok) {
    spdlog::info("application {}: deleted {} resource(s) with it", job.app, deleted);
  } else {
    spdlog::warn("application {}: deleting its resources failed: {}", job.app, d->error());
  }
  send_(std::move(env));
}

void Applications::on_status(const std::string& plugin, std::string_view status_json) {
  std::string app;
  try {
    auto j = json::parse(status_json);
    app = j.value("name", "");
  } catch (const json::exception&) {
    spdlog::warn("plugin {} reported a status that is not JSON; dropped", plugin);
    return;
  }
  wv1::Envelope env;
  auto* s = env.mutable_app_status();
  {
    std::lock_guard lock(mutex_);
    auto it = held_.find(app);
    // Fenced: only what this delegate holds now is reported.
    if (it == held_.end() || it->second.plugin != plugin) return;
    s->set_epoch(it->second.epoch);
    s->set_status_json(mask_secrets(std::string(status_json), masks_locked()));
  }
  s->set_app(app);
  send_(std::move(env));
}

void Applications::on_log(capstan_log_level level, std::string_view app, std::string_view line) {
  std::vector<std::string> masks;
  {
    std::lock_guard lock(mutex_);
    masks = masks_locked();
  }
  auto text = mask_secrets(std::string(line), masks);
  switch (level) {
  case CAPSTAN_LOG_ERROR:
    spdlog::error("application {}: {}", app, text);
    break;
  case CAPSTAN_LOG_WARN:
    spdlog::warn("application {}: {}", app, text);
    break;
  case CAPSTAN_LOG_DEBUG:
    spdlog::debug("application {}: {}", app, text);
    break;
  default:
    spdlog::info("application {}: {}", app, text);
    break;
  }
}

} // namespace capstan::delegate
