// The simulated scheduler and kubelet: pods are bound to a node, then their containers start,
// become Ready, complete, or fail as the sandbox's failure rules say.
#include "capstan/sandbox/util.h"
#include "controllers.h"
#include "reconcilers.h"

#include <algorithm>

namespace capstan::sandbox {

using nlohmann::json;

namespace {

std::string pod_key(const std::string& ns, const std::string& name) {
  return "Pod\x1f" + ns + "\x1f" + name;
}

std::string owner_kind(const json& pod) {
  for (const auto& r : pod.value("/metadata/ownerReferences"_json_pointer, json::array()))
    if (r.value("controller", false)) return r.value("kind", "");
  return "";
}

std::string full_image(const std::string& image) {
  std::string ref = image;
  auto slash = ref.find('/');
  bool has_registry =
      slash != std::string::npos &&
      (ref.substr(0, slash).find('.') != std::string::npos ||
       ref.substr(0, slash).find(':') != std::string::npos || ref.substr(0, slash) == "localhost");
  if (!has_registry)
    ref = "docker.io/" + std::string(slash == std::string::npos ? "library/" : "") + ref;
  auto last = ref.rfind('/');
  if (ref.find(':', last) == std::string::npos && ref.find('@') == std::string::npos)
    ref += ":latest";
  return ref;
}

json condition(const char* type, bool status, const std::string& now,
               const std::string& reason = "", const std::string& message = "") {
  json c = {{"type", type},
            {"status", status ? "True" : "False"},
            {"lastProbeTime", nullptr},
            {"lastTransitionTime", now}};
  if (!reason.empty()) c["reason"] = reason;
  if (!message.empty()) c["message"] = message;
  return c;
}

// Keeps lastTransitionTime of conditions whose status did not change.
void merge_conditions(json& status, const json& previous) {
  if (!previous.is_array()) return;
  for (auto& c : status["conditions"])
    for (const auto& p : previous)
      if (p.value("type", "") == c.value("type", "") &&
          p.value("status", "") == c.value("status", ""))
        c["lastTransitionTime"] =
            p.value("lastTransitionTime", c["lastTransitionTime"].get<std::string>());
}

} // namespace

void Reconcilers::pod(const std::string& ns, const std::string& name) {
  auto current = cluster_.store().get({pods_.storage_key(), ns, name});
  if (!current) return;
  const json& p = *current;
  std::string uid = p["metadata"].value("uid", "");
  auto now_tp = std::chrono::steady_clock::now();
  std::string now = now_rfc3339();
  const json containers = p.value("/spec/containers"_json_pointer, json::array());

  if (p["metadata"].contains("deletionTimestamp")) {
    auto& sim = sims_[uid];
    if (sim.stage >= 0) {
      sim.stage = -1;
      sim.next = now_tp + cluster_.config().pod_termination_delay;
      if (!p.value("/spec/nodeName"_json_pointer, std::string()).empty())
        for (const auto& c : containers)
          cluster_.record_event(p, "Normal", "Killing", "Stopping container " + c.value("name", ""),
                                "kubelet", "spec.containers{" + c.value("name", "") + "}");
    }
    if (now_tp < sim.next) {
      queue_.enqueue_after(pod_key(ns, name), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  sim.next - now_tp) +
                                                  std::chrono::milliseconds(1));
      return;
    }
    cluster_.store().mutate({pods_.storage_key(), ns, name},
                            [&](const ObjectPtr& cur) -> std::optional<json> {
                              if (cur && (*cur)["metadata"].value("uid", "") != uid) return *cur;
                              return std::nullopt;
                            });
    sims_.erase(uid);
    return;
  }
  std::string phase = p.value("/status/phase"_json_pointer, std::string("Pending"));
  if (phase == "Succeeded" || phase == "Failed") {
    sims_.erase(uid);
    return;
  }

  std::string node = p.value("/spec/nodeName"_json_pointer, std::string());
  if (node.empty()) {
    // Schedule: a DaemonSet pod names its node in its affinity; others spread by uid.
    json terms = p.value(
        "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms"_json_pointer,
        json::array());
    for (const auto& t : terms)
      for (const auto& f : t.value("matchFields", json::array()))
        if (f.value("key", "") == "metadata.name" && f.contains("values") && !f["values"].empty())
          node = f["values"][0];
    auto nodes = cluster_.store().list(nodes_.storage_key(), "");
    if (node.empty()) {
      if (nodes.empty()) {
        queue_.enqueue_after(pod_key(ns, name), std::chrono::milliseconds(200));
        return;
      }
      node = (*nodes[std::hash<std::string>{}(uid) % nodes.size()])["metadata"].value("name", "");
    }
    std::string host_ip = "10.0.0.2";
    for (const auto& n : nodes)
      if ((*n)["metadata"].value("name", "") == node)
        for (const auto& a : (*n).value("/status/addresses"_json_pointer, json::array()))
          if (a.value("type", "") == "InternalIP") host_ip = a.value("address", host_ip);
    json statuses = json::array();
    std::string names;
    for (const auto& c : containers) {
      statuses.push_back({{"name", c.value("name", "")},
                          {"state", {{"waiting", {{"reason", "ContainerCreating"}}}}},
                          {"lastState", json::object()},
                          {"ready", false},
                          {"restartCount", 0},
                          {"image", c.value("image", "")},
                          {"imageID", ""},
                          {"started", false}});
      names += (names.empty() ? "" : " ") + c.value("name", "");
    }
    auto updated = cluster_.modify(
        pods_, ns, name,
        [&](json& x) {
          x["spec"]["nodeName"] = node;
          json& s = x["status"];
          s["phase"] = "Pending";
          s["hostIP"] = host_ip;
          s["hostIPs"] = json::array({{{"ip", host_ip}}});
          s["startTime"] = now;
          s["conditions"] =
              json::array({condition("PodReadyToStartContainers", false, now),
                           condition("Initialized", true, now),
                           condition("Ready", false, now, "ContainersNotReady",
                                     "containers with unready status: [" + names + "]"),
                           condition("ContainersReady", false, now, "ContainersNotReady",
                                     "containers with unready status: [" + names + "]"),
                           condition("PodScheduled", true, now)});
          s["containerStatuses"] = statuses;
          return true;
        },
        "kubelet", "status");
    if (!updated) return;
    cluster_.record_event(*updated, "Normal", "Scheduled",
                          "Successfully assigned " + ns + "/" + name + " to " + node,
                          "default-scheduler");
    for (const auto& c : containers)
      cluster_.record_event(*updated, "Normal", "Pulling",
                            "Pulling image \"" + c.value("image", "") + "\"", "kubelet",
                            "spec.containers{" + c.value("name", "") + "}");
    auto delay = ready_delay();
    sims_[uid] = PodSim{0, now_tp + delay, 0};
    queue_.enqueue_after(pod_key(ns, name), delay);
    return;
  }

  auto it = sims_.find(uid);
  if (it == sims_.end()) {
    // After a restart: carry on from what the status says.
    PodSim sim;
    for (const auto& cs : p.value("/status/containerStatuses"_json_pointer, json::array()))
      sim.restarts = std::max(sim.restarts, cs.value("restartCount", 0));
    bool running = false;
    for (const auto& cs : p.value("/status/containerStatuses"_json_pointer, json::array()))
      running = running || cs.contains("/state/running"_json_pointer) ||
                cs.contains("/state/terminated"_json_pointer) ||
                cs.value("/state/waiting/reason"_json_pointer, std::string()) == "CrashLoopBackOff";
    sim.stage = running ? 1 : 0;
    sim.next = now_tp;
    it = sims_.emplace(uid, sim).first;
  }
  PodSim& sim = it->second;
  if (sim.next == std::chrono::steady_clock::time_point::max()) return; // settled
  if (now_tp < sim.next) {
    queue_.enqueue_after(pod_key(ns, name),
                         std::chrono::duration_cast<std::chrono::milliseconds>(sim.next - now_tp) +
                             std::chrono::milliseconds(1));
    return;
  }

  const SandboxConfig& cfg = cluster_.config();
  bool job_pod = owner_kind(p) == "Job";
  std::string restart_policy = p.value("/spec/restartPolicy"_json_pointer, std::string("Always"));
  const json previous = p.value("/status/containerStatuses"_json_pointer, json::array());
  auto prev_of = [&](const std::string& cname) {
    for (const auto& cs : previous)
      if (cs.value("name", "") == cname) return cs;
    return json::object();
  };
  auto backoff = [&](int n) { return cfg.crash_backoff * (1 << std::min(n, 3)); };
  std::chrono::milliseconds next_delay{0};
  json statuses = json::array();
  bool all_ready = true, any_running = false, all_terminated = true, any_failed = false,
       all_succeeded = true, pulling = false;
  std::string unready;
  struct Ev {
    std::string type, reason, message, container;
  };
  std::vector<Ev> events;
  for (const auto& c : containers) {
    std::string cname = c.value("name", "");
    std::string image = c.value("image", "");
    const FailureRule* rule = cfg.match(image);
    json prev = prev_of(cname);
    std::string started_at = prev.value("/state/running/startedAt"_json_pointer, now);
    std::string cid = "containerd://" + safe_hash(uid + cname + std::to_string(sim.restarts)) +
                      safe_hash(cname + uid);
    json st = {
        {"name", cname},
        {"image", image},
        {"lastState", json::object()},
        {"restartCount", sim.restarts},
        {"imageID", full_image(image) + "@sha256:" + safe_hash(image) + safe_hash(image + "#")}};
    bool ready = false, running = false, terminated = false, succeeded = false, failed = false;
    FailureMode mode = rule ? rule->mode : FailureMode::kCrashLoop;
    if (!rule && !(job_pod && sim.stage >= 1)) {
      st["state"] = {{"running", {{"startedAt", started_at}}}};
      st["containerID"] = cid;
      st["started"] = true;
      ready = running = true;
      if (sim.stage == 0) {
        events.push_back({"Normal", "Pulled",
                          "Successfully pulled image \"" + image +
                              "\" in 112ms (112ms including waiting). Image size: 72195292 bytes.",
                          cname});
        events.push_back({"Normal", "Created", "Created container: " + cname, cname});
        events.push_back({"Normal", "Started", "Started container " + cname, cname});
        if (job_pod) next_delay = std::max(next_delay, cfg.job_duration);
      }
    } else if (!rule) {
      st["state"] = {{"terminated",
                      {{"exitCode", 0},
                       {"reason", "Completed"},
                       {"startedAt", started_at},
                       {"finishedAt", now},
                       {"containerID", cid}}}};
      st["containerID"] = cid;
      st["started"] = false;
      terminated = succeeded = true;
    } else if (mode == FailureMode::kPullFail) {
      bool err = sim.stage % 2 == 0;
      std::string msg = rule->message.empty()
                            ? "failed to pull and unpack image \"" + full_image(image) +
                                  "\": failed to resolve reference \"" + full_image(image) +
                                  "\": " + full_image(image) + ": not found"
                            : rule->message;
      st["state"] = {
          {"waiting",
           {{"reason", err ? "ErrImagePull" : "ImagePullBackOff"},
            {"message", err ? "rpc error: code = NotFound desc = " + msg
                            : "Back-off pulling image \"" + image + "\": ErrImagePull: " + msg}}}};
      st["imageID"] = "";
      st["started"] = false;
      pulling = true;
      if (err) {
        events.push_back(
            {"Warning", "Failed",
             "Failed to pull image \"" + image + "\": rpc error: code = NotFound desc = " + msg,
             cname});
        events.push_back({"Warning", "Failed", "Error: ErrImagePull", cname});
      } else {
        events.push_back({"Normal", "BackOff", "Back-off pulling image \"" + image + "\"", cname});
        events.push_back({"Warning", "Failed", "Error: ImagePullBackOff", cname});
      }
      next_delay = std::max(next_delay, backoff(sim.stage / 2));
    } else if (mode == FailureMode::kUnready) {
      st["state"] = {{"running", {{"startedAt", started_at}}}};
      st["containerID"] = cid;
      st["started"] = true;
      running = true;
      events.push_back({"Warning", "Unhealthy",
                        rule->message.empty()
                            ? "Readiness probe failed: HTTP probe failed with statuscode: 503"
                            : "Readiness probe failed: " + rule->message,
                        cname});
      next_delay = std::max(next_delay, std::chrono::milliseconds(cfg.crash_backoff * 2));
    } else if (mode == FailureMode::kExitError && restart_policy == "Never") {
      st["state"] = {{"terminated",
                      {{"exitCode", rule->exit_code},
                       {"reason", "Error"},
                       {"startedAt", now},
                       {"finishedAt", now},
                       {"containerID", cid}}}};
      if (!rule->message.empty()) st["state"]["terminated"]["message"] = rule->message;
      st["containerID"] = cid;
      st["started"] = false;
      terminated = failed = true;
      if (sim.stage == 0) {
        events.push_back({"Normal", "Pulled",
                          "Container image \"" + image + "\" already present on machine", cname});
        events.push_back({"Normal", "Created", "Created container: " + cname, cname});
        events.push_back({"Normal", "Started", "Started container " + cname, cname});
      }
    } else {
      // Crash loop (and exit errors under a restarting policy): each back-off ends with
      // another start that exits again.
      int restarts = sim.stage == 0 ? 0 : sim.restarts + 1;
      json last = {{"terminated",
                    {{"exitCode", rule->exit_code},
                     {"reason", "Error"},
                     {"startedAt", now},
                     {"finishedAt", now},
                     {"containerID", cid}}}};
      if (!rule->message.empty()) last["terminated"]["message"] = rule->message;
      st["lastState"] = last;
      st["restartCount"] = restarts;
      int secs = static_cast<int>(std::min(300, 10 << std::min(restarts, 5)));
      st["state"] = {
          {"waiting",
           {{"reason", "CrashLoopBackOff"},
            {"message", "back-off " + std::to_string(secs) + "s restarting failed container=" +
                            cname + " pod=" + name + "_" + ns + "(" + uid + ")"}}}};
      st["containerID"] = cid;
      st["started"] = false;
      running = true; // the pod has run its containers; the phase stays Running
      events.push_back({"Normal", "Pulled",
                        "Container image \"" + image + "\" already present on machine", cname});
      events.push_back({"Normal", "Created", "Created container: " + cname, cname});
      events.push_back({"Normal", "Started", "Started container " + cname, cname});
      events.push_back({"Warning", "BackOff",
                        "Back-off restarting failed container " + cname + " in pod " + name + "_" +
                            ns + "(" + uid + ")",
                        cname});
      next_delay = std::max(next_delay, backoff(restarts));
      sim.restarts = restarts;
    }
    st["ready"] = ready;
    statuses.push_back(st);
    all_ready = all_ready && ready;
    any_running = any_running || running;
    all_terminated = all_terminated && terminated;
    any_failed = any_failed || failed;
    all_succeeded = all_succeeded && succeeded;
    if (!ready) unready += (unready.empty() ? "" : " ") + cname;
  }
  std::string new_phase = "Running";
  if (all_terminated && !containers.empty())
    new_phase = any_failed ? "Failed" : (all_succeeded ? "Succeeded" : "Failed");
  else if (pulling && !any_running)
    new_phase = "Pending";
  std::string ip = p.value("/status/podIP"_json_pointer, std::string());
  if (ip.empty()) {
    ++next_pod_ip_;
    ip = "10.244.0." + std::to_string(next_pod_ip_ % 250 + 2);
    if (next_pod_ip_ >= 250)
      ip = "10.244." + std::to_string((next_pod_ip_ / 250) % 250) + "." +
           std::to_string(next_pod_ip_ % 250 + 2);
  }
  bool ready_now = all_ready && new_phase == "Running";
  auto updated = cluster_.modify(
      pods_, ns, name,
      [&](json& x) {
        json& s = x["status"];
        json prev_conditions = s.value("conditions", json::array());
        s["phase"] = new_phase;
        s["podIP"] = ip;
        s["podIPs"] = json::array({{{"ip", ip}}});
        std::string msg = "containers with unready status: [" + unready + "]";
        std::string reason = new_phase == "Succeeded" || new_phase == "Failed"
                                 ? "PodCompleted"
                                 : "ContainersNotReady";
        s["conditions"] =
            json::array({condition("PodReadyToStartContainers",
                                   new_phase != "Succeeded" && new_phase != "Failed", now),
                         condition("Initialized", true, now),
                         ready_now ? condition("Ready", true, now)
                                   : condition("Ready", false, now, reason, msg),
                         ready_now ? condition("ContainersReady", true, now)
                                   : condition("ContainersReady", false, now, reason, msg),
                         condition("PodScheduled", true, now)});
        merge_conditions(s, prev_conditions);
        s["containerStatuses"] = statuses;
        return true;
      },
      "kubelet", "status");
  if (!updated) return;
  for (const auto& e : events)
    cluster_.record_event(*updated, e.type, e.reason, e.message, "kubelet",
                          "spec.containers{" + e.container + "}");
  sim.stage += 1;
  if (next_delay.count() > 0 && new_phase != "Succeeded" && new_phase != "Failed") {
    sim.next = now_tp + next_delay;
    queue_.enqueue_after(pod_key(ns, name), next_delay);
  } else {
    sim.next = std::chrono::steady_clock::time_point::max();
  }
}

} // namespace capstan::sandbox
