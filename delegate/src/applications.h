// The delegate's reconciler host: the GitOps applications the coordinator assigned to this
// delegate, each hosted by the reconciler of a plugin, fenced by the assignment's epoch.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capstan/delegate/plugin_host.h"
#include "capstan/wire/v1/wire.pb.h"

namespace capstan::delegate {

class Applications {
public:
  using Send = std::function<void(wire::v1::Envelope)>;

  // Starts the plugins' reconcilers and a worker thread that applies assignments in order.
  Applications(PluginHost& host, Send send);
  ~Applications(); // stop()

  // From the wire client's thread; none of them blocks (the work is queued).
  void assign(const wire::v1::AppAssign& assign);
  void unassign(const wire::v1::AppUnassign& unassign);
  void operation(const wire::v1::AppOperation& operation);
  // The session is lost: from now on nothing of this delegate counts as reconciling any
  // application; every one is removed from its reconciler (the coordinator gives them to
  // another delegate after its own liveness window). Reports for them are dropped at once.
  void drop_all(const std::string& reason);
  // What this instance holds now, for the Hello.
  std::vector<wire::v1::AppLease> leases() const;
  std::size_t size() const;

  // Removes every application and stops the reconcilers; waits for running operations.
  void stop();

private:
  struct Held {
    std::uint64_t epoch = 0;
    std::string plugin;
    std::vector<std::string> mask;
  };
  struct Job {
    enum class Kind { kUpsert, kRemove } kind = Kind::kUpsert;
    std::string app;
    std::uint64_t epoch = 0;
    std::string plugin;
    std::string application_json;
    std::string cluster_json;
    bool delete_resources = false; // kRemove: Argo CD's cascading deletion
    bool report_deleted = false;   // kRemove of an application assigned to be deleted
  };
  void worker();
  void run(const Job& job);
  void on_status(const std::string& plugin, std::string_view status_json);
  void on_log(capstan_log_level level, std::string_view app, std::string_view line);
  void report_failure(const std::string& app, std::uint64_t epoch, const std::string& message);
  // After the kRemove of an application assigned to be deleted: AppDeleted, and it is let go.
  void report_deleted(const Job& job, bool ok, const std::string& error, std::uint64_t deleted);
  std::vector<std::string> masks_locked() const;

  PluginHost& host_;
  Send send_;
  mutable std::mutex mutex_; // guards held_, jobs_, applying_, stopping_, operations_
  std::condition_variable cv_;
  std::map<std::string, Held> held_;
  std::map<std::string, std::string> hosted_; // app -> plugin, as the worker last left it
  std::deque<Job> jobs_;
  // Jobs queued or running per application: an operation waits until its application's spec
  // (assigned just before it) has reached the reconciler.
  std::map<std::string, int> applying_;
  std::vector<std::future<void>> operations_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace capstan::delegate
