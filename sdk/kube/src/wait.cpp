// Steady-state waits driven by watches, with the workloads' events and pod problems logged.
#include "capstan/kube/wait.h"

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "capstan/kube/watch.h"
#include "json_fields.h"
#include <algorithm>

namespace capstan::kube {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::size_t count_dashes(std::string_view s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '-'));
}

// Whether an event's object is the workload itself or one of the ReplicaSets and pods it owns,
// judged by the names controllers give them (<deploy>-<hash>, <deploy>-<hash>-<id>,
// <sts>-<ordinal>, <ds|job>-<id>), so "web" does not pick up "web-api"'s or "web-canary"'s pods.
bool belongs(const ObjectRef& w, const json& involved) {
  std::string kind = detail::text(involved, "kind");
  std::string name = detail::text(involved, "name");
  if (kind == w.kind && name == w.name) return true;
  if (name.size() <= w.name.size() + 1 || name.compare(0, w.name.size() + 1, w.name + "-") != 0) {
    return false;
  }
  std::string_view rest(name);
  rest.remove_prefix(w.name.size() + 1);
  if (w.kind == "Deployment") {
    if (kind == "ReplicaSet") return count_dashes(rest) == 0;
    if (kind == "Pod") return count_dashes(rest) == 1;
  } else if (w.kind == "StatefulSet") {
    return kind == "Pod" && all_digits(rest);
  } else if (w.kind == "DaemonSet" || w.kind == "Job") {
    return kind == "Pod" && count_dashes(rest) == 0;
  }
  return false;
}

std::string event_time(const json& e) {
  for (const char* k :
       {"/lastTimestamp", "/eventTime", "/firstTimestamp", "/metadata/creationTimestamp"}) {
    std::string t = detail::text_at(e, k);
    if (!t.empty()) return t;
  }
  return {};
}

struct Tracked {
  ObjectRef ref;
  std::optional<json> object;
  RolloutStatus status;
  std::string last_logged;
  std::set<std::string> problems_logged;
  std::vector<std::string> problems;
  bool gone = false;
};

// Serialises log lines from the waiting thread and the watch threads.
class Logger {
public:
  explicit Logger(std::function<void(LogLevel, const std::string&)> sink)
      : sink_(std::move(sink)) {}
  void operator()(LogLevel level, const std::string& line) {
    if (!sink_) return;
    std::lock_guard lock(mutex_);
    sink_(level, line);
  }

private:
  std::function<void(LogLevel, const std::string&)> sink_;
  std::mutex mutex_;
};

} // namespace

EventBaseline EventBaseline::take(const Client& client, const std::set<std::string>& namespaces) {
  EventBaseline b;
  b.extend(client, namespaces);
  return b;
}

void EventBaseline::extend(const Client& client, const std::set<std::string>& namespaces) {
  for (const auto& ns : namespaces) {
    if (covers(ns)) continue;
    std::map<std::string, std::string> events;
    for (const auto& e : client.list("v1", "Event", ns).items) {
      events[detail::text_at(e, "/metadata/uid")] = detail::text_at(e, "/metadata/resourceVersion");
    }
    seen_[ns] = std::move(events);
  }
}

bool EventBaseline::had(const json& event) const {
  auto ns = seen_.find(detail::text_at(event, "/metadata/namespace"));
  if (ns == seen_.end()) return false;
  auto it = ns->second.find(detail::text_at(event, "/metadata/uid"));
  return it != ns->second.end() &&
         it->second == detail::text_at(event, "/metadata/resourceVersion");
}

std::string label_selector(const json& selector) {
  if (!selector.is_object()) return {};
  std::vector<std::string> parts;
  if (auto ml = selector.find("matchLabels"); ml != selector.end() && ml->is_object()) {
    for (const auto& [k, v] : ml->items()) {
      parts.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
    }
  } else if (!selector.contains("matchExpressions")) {
    // A plain map (a Service's or ReplicationController's selector).
    for (const auto& [k, v] : selector.items()) {
      if (v.is_string()) parts.push_back(k + "=" + v.get<std::string>());
    }
  }
  if (auto me = selector.find("matchExpressions"); me != selector.end() && me->is_array()) {
    for (const auto& e : *me) {
      std::string key = e.value("key", "");
      std::string op = e.value("operator", "");
      std::string values;
      for (const auto& v : e.value("values", json::array())) {
        if (v.is_string()) values += (values.empty() ? "" : ",") + v.get<std::string>();
      }
      if (op == "In") parts.push_back(key + " in (" + values + ")");
      if (op == "NotIn") parts.push_back(key + " notin (" + values + ")");
      if (op == "Exists") parts.push_back(key);
      if (op == "DoesNotExist") parts.push_back("!" + key);
    }
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

std::vector<std::string> pod_problems(const Client& client, const json& workload) {
  std::vector<std::string> out;
  const json selector = workload.contains("/spec/selector"_json_pointer)
                            ? workload.at("/spec/selector"_json_pointer)
                            : json();
  std::string sel = label_selector(selector);
  if (sel.empty()) return out;
  ListOptions o;
  o.label_selector = sel;
  auto pods = client.list("v1", "Pod", detail::text_at(workload, "/metadata/namespace"), o).items;
  for (const auto& pod : pods) {
    std::string name = "pod " + detail::text_at(pod, "/metadata/name");
    if (pod.contains("/metadata/deletionTimestamp"_json_pointer)) continue; // on its way out
    const json status = pod.value("status", json::object());
    std::string phase = status.value("phase", "");
    if (phase == "Succeeded") continue;
    bool reported = false;
    for (const auto& c : status.value("conditions", json::array())) {
      if (c.value("type", "") == "PodScheduled" && c.value("status", "") == "False") {
        out.push_back(name + ": not scheduled: " + c.value("reason", "") +
                      (c.value("message", "").empty() ? "" : ": " + c.value("message", "")));
        reported = true;
      }
    }
    for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
      for (const auto& cs : status.value(list, json::array())) {
        std::string cname = name + ": container " + cs.value("name", "");
        int restarts = cs.value("restartCount", 0);
        std::string restarts_text =
            restarts > 0 ? " (restarted " + std::to_string(restarts) + " times)" : "";
        const json state = cs.value("state", json::object());
        if (state.contains("waiting")) {
          std::string reason = state["waiting"].value("reason", "");
          if (reason == "ContainerCreating" || reason == "PodInitializing" || reason.empty()) {
            continue;
          }
          std::string message = state["waiting"].value("message", "");
          out.push_back(cname + ": " + reason + (message.empty() ? "" : ": " + message) +
                        restarts_text);
          reported = true;
        } else if (state.contains("terminated")) {
          int code = state["terminated"].value("exitCode", 0);
          if (code == 0) continue;
          out.push_back(cname + ": terminated: " + state["terminated"].value("reason", "Error") +
                        " (exit code " + std::to_string(code) + ")" + restarts_text);
          reported = true;
        } else if (state.contains("running") && !cs.value("ready", false) &&
                   std::string(list) == "containerStatuses") {
          out.push_back(cname + ": running but not ready (readiness probe failing)" +
                        restarts_text);
          reported = true;
        }
      }
    }
    if (!reported && phase == "Failed") {
      out.push_back(name + ": failed: " + status.value("reason", "") + " " +
                    status.value("message", ""));
    }
  }
  return out;
}

WaitResult wait_for_steady_state(const Client& base, const std::vector<ObjectRef>& refs,
                                 const WaitOptions& options) {
  WaitResult result;
  std::mutex mutex;
  std::condition_variable changed;
  std::atomic<bool> stop{false};
  auto cancelled = [&] { return stop.load() || (options.cancelled && options.cancelled()); };
  Client client = base.with_cancel(cancelled);
  Logger log(options.log);

  std::vector<std::shared_ptr<Tracked>> tracked;
  for (const auto& r : refs) {
    if (!is_rollout_kind(r.kind)) continue;
    auto t = std::make_shared<Tracked>();
    t->ref = r;
    if (t->ref.namespace_.empty() && client.is_namespaced(r.api_version, r.kind)) {
      t->ref.namespace_ = client.default_namespace();
    }
    tracked.push_back(t);
  }
  if (tracked.empty()) return result;

  // One watch per kind and namespace (a field selector when there is only one object), and one
  // on the events of each namespace.
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<std::shared_ptr<Tracked>>>
      groups;
  for (auto& t : tracked) groups[{t->ref.api_version, t->ref.kind, t->ref.namespace_}].push_back(t);
  std::set<std::string> namespaces;
  for (auto& t : tracked) namespaces.insert(t->ref.namespace_);

  std::string since = options.events_since == std::chrono::system_clock::time_point{}
                          ? std::string()
                          : format_rfc3339(options.events_since);
  std::mutex seen_mutex;
  std::map<std::string, int> seen_events; // uid → count logged
  auto on_k8s_event = [&](const json& e) {
    const json involved = e.value("involvedObject", json::object());
    bool mine = false;
    for (const auto& t : tracked) {
      if (detail::text(involved, "namespace") == t->ref.namespace_ && belongs(t->ref, involved)) {
        mine = true;
        break;
      }
    }
    if (!mine) return;
    std::string ns = detail::text_at(e, "/metadata/namespace");
    if (options.events_before && options.events_before->covers(ns)) {
      if (options.events_before->had(e)) return;
    } else {
      std::string when = event_time(e);
      if (!since.empty() && !when.empty() && when < since) return;
    }
    std::string uid = detail::text_at(e, "/metadata/uid");
    int count = e.value("count", 1);
    {
      std::lock_guard lock(seen_mutex);
      auto it = seen_events.find(uid);
      if (it != seen_events.end() && it->second >= count) return;
      seen_events[uid] = count;
    }
    std::string type = e.value("type", "Normal");
    std::string line = "Event " + detail::text(involved, "kind") + "/" +
                       detail::text(involved, "name") + ": " + type + " " + e.value("reason", "") +
                       ": " + e.value("message", "");
    if (count > 1) line += " (x" + std::to_string(count) + ")";
    log(type == "Warning" ? LogLevel::kWarn : LogLevel::kInfo, line);
  };

  std::vector<std::unique_ptr<Watch>> watches;
  auto store = [&](const std::vector<std::shared_ptr<Tracked>>& group, const json& object,
                   bool deleted) {
    std::string name = detail::text_at(object, "/metadata/name");
    std::lock_guard lock(mutex);
    for (auto& t : group) {
      if (t->ref.name != name) continue;
      if (deleted) {
        t->object.reset();
        t->gone = true;
      } else {
        t->object = object;
        t->gone = false;
      }
    }
    changed.notify_all();
  };
  try {
    for (auto& [key, group] : groups) {
      WatchOptions wo;
      wo.namespace_ = std::get<2>(key);
      if (group.size() == 1) wo.field_selector = "metadata.name=" + group.front()->ref.name;
      wo.server_timeout = std::chrono::seconds(60);
      WatchHandlers h;
      auto g = group;
      h.on_sync = [&, g](const std::vector<json>& items, const std::string&) {
        for (const auto& item : items) store(g, item, false);
        std::lock_guard lock(mutex);
        changed.notify_all();
      };
      h.on_event = [&, g](const WatchEvent& ev) {
        if (ev.type == WatchEventType::kBookmark) return;
        store(g, ev.object, ev.type == WatchEventType::kDeleted);
      };
      watches.push_back(std::make_unique<Watch>(client, std::get<0>(key), std::get<1>(key), wo, h));
    }
    for (const auto& ns : namespaces) {
      WatchOptions wo;
      wo.namespace_ = ns;
      wo.server_timeout = std::chrono::seconds(60);
      WatchHandlers h;
      h.on_sync = [&](const std::vector<json>& items, const std::string&) {
        std::vector<json> sorted = items;
        std::stable_sort(sorted.begin(), sorted.end(), [](const json& a, const json& b) {
          return event_time(a) < event_time(b);
        });
        for (const auto& e : sorted) on_k8s_event(e);
      };
      h.on_event = [&](const WatchEvent& ev) {
        if (ev.type == WatchEventType::kAdded || ev.type == WatchEventType::kModified) {
          on_k8s_event(ev.object);
        }
      };
      watches.push_back(std::make_unique<Watch>(client, "v1", "Event", wo, h));
    }
  } catch (const Error& e) {
    stop = true;
    watches.clear();
    if (e.is(ErrorKind::kCancelled)) {
      result.outcome = WaitResult::Outcome::kCancelled;
      result.message = "cancelled while waiting for steady state";
      return result;
    }
    throw;
  }

  // The event watches may not have delivered the last events when the wait ends (a fast
  // rollout finishes before they arrive): one list per namespace catches up, events already
  // shown are skipped.
  auto catch_up_events = [&] {
    if (!options.log) return;
    for (const auto& ns : namespaces) {
      try {
        auto items = base.list("v1", "Event", ns).items;
        std::stable_sort(items.begin(), items.end(), [](const json& a, const json& b) {
          return event_time(a) < event_time(b);
        });
        for (const auto& e : items) on_k8s_event(e);
      } catch (const Error&) {
        return; // events are a courtesy; the outcome stands
      }
    }
  };
  auto next_pod_check = Clock::now() + options.pod_check_every;
  auto finish = [&](WaitResult::Outcome outcome, std::string message) {
    stop = true;
    watches.clear();
    if (outcome != WaitResult::Outcome::kCancelled) catch_up_events();
    result.outcome = outcome;
    result.message = std::move(message);
    for (auto& t : tracked) result.workloads.push_back({t->ref, t->status, t->problems});
    return result;
  };
  auto check_pods = [&](bool final_check) {
    for (auto& t : tracked) {
      std::optional<json> object;
      {
        std::lock_guard lock(mutex);
        if (t->status.done() || !t->object) continue;
        object = t->object;
      }
      std::vector<std::string> problems;
      try {
        problems = pod_problems(final_check ? base : client, *object);
      } catch (const Error&) {
        continue; // pod problems are a courtesy; the wait itself goes on
      }
      std::lock_guard lock(mutex);
      t->problems = problems;
      for (const auto& p : problems) {
        if (t->problems_logged.insert(p).second) log(LogLevel::kWarn, p);
      }
    }
  };

  for (;;) {
    std::string failed;
    bool all_done = true;
    {
      std::unique_lock lock(mutex);
      for (auto& t : tracked) {
        if (!t->object) {
          all_done = false;
          std::string msg = t->gone ? t->ref.str() + " was deleted while waiting for it"
                                    : "Waiting for " + t->ref.str() + " to exist...";
          t->status = RolloutStatus{RolloutStatus::State::kInProgress, msg, {}};
        } else {
          t->status = rollout_status(*t->object);
        }
        if (t->status.message != t->last_logged) {
          t->last_logged = t->status.message;
          log(t->status.failed() ? LogLevel::kError : LogLevel::kInfo, t->status.message);
        }
        if (t->status.failed() && failed.empty()) {
          failed = t->ref.str() + ": " + t->status.message;
          result.failure = t->status;
        }
        if (!t->status.done()) all_done = false;
      }
    }
    if (!failed.empty()) {
      check_pods(true);
      return finish(WaitResult::Outcome::kFailed, failed);
    }
    if (all_done) return finish(WaitResult::Outcome::kReady, "all workloads reached steady state");
    if (options.cancelled && options.cancelled()) {
      return finish(WaitResult::Outcome::kCancelled, "cancelled while waiting for steady state");
    }
    auto now = Clock::now();
    if (options.deadline && now >= *options.deadline) {
      stop = true; // the watches end; pods are looked at one last time with the base client
      check_pods(true);
      std::string pending;
      for (auto& t : tracked) {
        if (!t->status.done()) pending += (pending.empty() ? "" : "; ") + t->status.message;
      }
      return finish(WaitResult::Outcome::kTimedOut,
                    "timed out waiting for steady state: " + pending);
    }
    if (now >= next_pod_check) {
      check_pods(false);
      next_pod_check = Clock::now() + options.pod_check_every;
    }
    std::unique_lock lock(mutex);
    auto wake = std::min(now + std::chrono::milliseconds(200), next_pod_check);
    if (options.deadline) wake = std::min(wake, *options.deadline);
    changed.wait_until(lock, wake);
  }
}

} // namespace capstan::kube
