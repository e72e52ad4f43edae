// StatefulSet (ordered pods, rolling update by ordinal), DaemonSet (one pod per node) and Job
// (completions, parallelism, backoffLimit) controllers.
#include "capstan/sandbox/api_error.h"
#include "capstan/sandbox/rollout.h"
#include "capstan/sandbox/util.h"
#include "controllers.h"
#include "reconcilers.h"

#include <algorithm>

namespace capstan::sandbox {

using nlohmann::json;

namespace {

constexpr const char* kManager = "kube-controller-manager";

int get_int(const json& o, const char* ptr, int def = 0) {
  json::json_pointer p(ptr);
  if (!o.contains(p) || !o[p].is_number()) return def;
  return o[p].get<int>();
}

bool ready(const json& p) {
  for (const auto& c : p.value("/status/conditions"_json_pointer, json::array()))
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  return false;
}

bool terminating(const json& p) {
  return p["metadata"].contains("deletionTimestamp");
}

std::string revision_hash(const json& tmpl) {
  json t = tmpl;
  t.erase("status");
  return safe_hash(t.dump()).substr(0, 10);
}

json set_cond(json conditions, json c) {
  json out = json::array();
  bool placed = false;
  for (const auto& x : conditions) {
    if (x.value("type", "") == c.value("type", "")) {
      if (x.value("status", "") == c.value("status", ""))
        c["lastTransitionTime"] = x.value("lastTransitionTime", c.value("lastTransitionTime", ""));
      out.push_back(c);
      placed = true;
    } else {
      out.push_back(x);
    }
  }
  if (!placed) out.push_back(c);
  return out;
}

} // namespace

void Reconcilers::stateful_set(const std::string& ns, const std::string& name) {
  auto current = cluster_.store().get({statefulsets_.storage_key(), ns, name});
  if (!current) return;
  json s = *current;
  s["apiVersion"] = "apps/v1";
  s["kind"] = "StatefulSet";
  if (terminating(s)) return;
  const std::string uid = s["metadata"].value("uid", "");
  const int desired = get_int(s, "/spec/replicas", 1);
  const bool parallel =
      s.value("/spec/podManagementPolicy"_json_pointer, std::string("OrderedReady")) == "Parallel";
  const bool on_delete =
      s.value("/spec/updateStrategy/type"_json_pointer, std::string("RollingUpdate")) == "OnDelete";
  const int partition = get_int(s, "/spec/updateStrategy/rollingUpdate/partition", 0);
  const json tmpl = s.value("/spec/template"_json_pointer, json::object());
  const std::string update_rev = name + "-" + revision_hash(tmpl);
  std::string current_rev = s.value("/status/currentRevision"_json_pointer, update_rev);

  std::map<int, json> by_ordinal;
  for (const auto& p : owned(pods_.storage_key(), ns, uid)) {
    std::string pn = p["metadata"].value("name", "");
    auto dash = pn.rfind('-');
    if (dash == std::string::npos) continue;
    try {
      by_ordinal[std::stoi(pn.substr(dash + 1))] = p;
    } catch (const std::exception&) {
    }
  }
  auto make = [&](int ordinal) {
    std::string pn = name + "-" + std::to_string(ordinal);
    json pod = new_pod(s, tmpl, pn, "");
    pod["metadata"]["labels"]["controller-revision-hash"] = update_rev;
    pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] = pn;
    pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] = std::to_string(ordinal);
    pod["spec"]["hostname"] = pn;
    if (s.contains("/spec/serviceName"_json_pointer))
      pod["spec"]["subdomain"] = s["spec"]["serviceName"];
    WriteOptions o;
    o.manager = kManager;
    o.validation = FieldValidation::kIgnore;
    try {
      cluster_.create(pods_, ns, pod, o);
      cluster_.record_event(s, "Normal", "SuccessfulCreate",
                            "create Pod " + pn + " in StatefulSet " + name + " successful",
                            "statefulset-controller");
    } catch (const ApiError& e) {
      if (e.code() != 409) throw;
    }
  };
  bool blocked = false;
  // Create missing ordinals (in order unless Parallel), replace failed pods.
  for (int i = 0; i < desired && !blocked; ++i) {
    auto it = by_ordinal.find(i);
    if (it == by_ordinal.end()) {
      make(i);
      if (!parallel) blocked = true;
      continue;
    }
    const json& p = it->second;
    if (terminating(p)) {
      if (!parallel) blocked = true;
      continue;
    }
    if (p.value("/status/phase"_json_pointer, std::string()) == "Failed") {
      delete_object(pods_, p);
      blocked = !parallel;
      continue;
    }
    if (!parallel && !ready(p)) blocked = true;
  }
  // Scale down from the highest ordinal, one at a time when ordered.
  if (!blocked) {
    for (auto it = by_ordinal.rbegin(); it != by_ordinal.rend(); ++it) {
      if (it->first < desired) break;
      if (terminating(it->second)) {
        if (!parallel) break;
        continue;
      }
      delete_object(pods_, it->second);
      cluster_.record_event(s, "Normal", "SuccessfulDelete",
                            "delete Pod " + it->second["metadata"].value("name", "") +
                                " in StatefulSet " + name + " successful",
                            "statefulset-controller");
      if (!parallel) break;
    }
  }
  // Rolling update: highest ordinal first, each waiting for the previous one to be Ready.
  if (!blocked && !on_delete) {
    bool all_ready = true;
    for (int i = 0; i < desired; ++i) {
      auto it = by_ordinal.find(i);
      if (it == by_ordinal.end() || !ready(it->second) || terminating(it->second))
        all_ready = false;
    }
    if (all_ready) {
      for (int i = desired - 1; i >= partition; --i) {
        const json& p = by_ordinal[i];
        if (p.value("/metadata/labels/controller-revision-hash"_json_pointer, std::string()) !=
            update_rev) {
          delete_object(pods_, p);
          break;
        }
      }
    }
  }
  int replicas = 0, ready_n = 0, updated = 0, current_n = 0;
  for (const auto& [ord, p] : by_ordinal) {
    if (terminating(p)) continue;
    ++replicas;
    if (ready(p)) ++ready_n;
    std::string rev =
        p.value("/metadata/labels/controller-revision-hash"_json_pointer, std::string());
    if (rev == update_rev) ++updated;
    if (rev == current_rev) ++current_n;
  }
  if (updated == desired && ready_n == desired && replicas == desired) {
    current_rev = update_rev;
    current_n = updated;
  }
  cluster_.modify(
      statefulsets_, ns, name,
      [&](json& x) {
        json& st = x["status"];
        st["observedGeneration"] = x["metadata"].value("generation", 1);
        st["replicas"] = replicas;
        st["readyReplicas"] = ready_n;
        st["currentReplicas"] = current_n;
        st["updatedReplicas"] = updated;
        st["availableReplicas"] = ready_n;
        st["currentRevision"] = current_rev;
        st["updateRevision"] = update_rev;
        st["collisionCount"] = 0;
        for (const char* k : {"readyReplicas", "currentReplicas", "updatedReplicas"})
          if (st[k] == 0) st.erase(k);
        return true;
      },
      kManager, "status");
}

void Reconcilers::daemon_set(const std::string& ns, const std::string& name) {
  auto current = cluster_.store().get({daemonsets_.storage_key(), ns, name});
  if (!current) return;
  json ds = *current;
  ds["apiVersion"] = "apps/v1";
  ds["kind"] = "DaemonSet";
  if (terminating(ds)) return;
  const std::string uid = ds["metadata"].value("uid", "");
  const json tmpl = ds.value("/spec/template"_json_pointer, json::object());
  const std::string hash = revision_hash(tmpl);
  const long long generation = ds["metadata"].value("generation", 1LL);
  json node_selector = tmpl.value("/spec/nodeSelector"_json_pointer, json::object());
  std::vector<std::string> nodes;
  for (const auto& n : cluster_.store().list(nodes_.storage_key(), "")) {
    bool fits = true;
    json labels = (*n).value("/metadata/labels"_json_pointer, json::object());
    for (auto it = node_selector.begin(); it != node_selector.end(); ++it)
      fits = fits && labels.contains(it.key()) && labels[it.key()] == it.value();
    if (fits) nodes.push_back((*n)["metadata"].value("name", ""));
  }
  std::map<std::string, std::vector<json>> by_node;
  for (const auto& p : owned(pods_.storage_key(), ns, uid)) {
    std::string node = p.value("/spec/nodeName"_json_pointer, std::string());
    if (node.empty()) {
      json terms = p.value(
          "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms"_json_pointer,
          json::array());
      for (const auto& t : terms)
        for (const auto& f : t.value("matchFields", json::array()))
          if (f.contains("values") && !f["values"].empty()) node = f["values"][0];
    }
    by_node[node].push_back(p);
  }
  int max_unavailable = 1;
  try {
    max_unavailable = std::max(
        1, rollout::resolve(
               ds.value("/spec/updateStrategy/rollingUpdate/maxUnavailable"_json_pointer, json(1)),
               static_cast<int>(nodes.size()), true));
  } catch (const std::exception&) {
  }
  bool on_delete = ds.value("/spec/updateStrategy/type"_json_pointer,
                            std::string("RollingUpdate")) == "OnDelete";
  int unavailable = 0;
  for (const auto& n : nodes) {
    auto& pods = by_node[n];
    bool ok = false;
    for (const auto& p : pods) ok = ok || (!terminating(p) && ready(p));
    if (!ok) ++unavailable;
  }
  for (const auto& n : nodes) {
    auto& pods = by_node[n];
    bool has = false;
    for (const auto& p : pods) has = has || !terminating(p);
    if (!has) {
      json pod = new_pod(ds, tmpl, "", name + "-");
      pod["metadata"]["labels"]["controller-revision-hash"] = hash;
      pod["metadata"]["labels"]["pod-template-generation"] = std::to_string(generation);
      pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
          {"nodeSelectorTerms",
           {{{"matchFields", {{{"key", "metadata.name"}, {"operator", "In"}, {"values", {n}}}}}}}}};
      create_pod(ds, pod, "daemonset-controller");
    }
  }
  // Pods on nodes that no longer fit, and (rolling) pods of an old template.
  for (auto& [n, pods] : by_node) {
    bool wanted = std::find(nodes.begin(), nodes.end(), n) != nodes.end();
    for (const auto& p : pods) {
      if (terminating(p)) continue;
      if (!wanted) {
        delete_object(pods_, p);
        continue;
      }
      bool old =
          p.value("/metadata/labels/controller-revision-hash"_json_pointer, std::string()) != hash;
      if (old && !on_delete && unavailable < max_unavailable) {
        delete_object(pods_, p);
        ++unavailable;
      }
    }
  }
  int scheduled = 0, ready_n = 0, updated = 0;
  for (const auto& n : nodes) {
    bool sched = false, rdy = false, upd = false;
    for (const auto& p : by_node[n]) {
      if (terminating(p)) continue;
      sched = true;
      rdy = rdy || ready(p);
      upd = upd || p.value("/metadata/labels/controller-revision-hash"_json_pointer,
                           std::string()) == hash;
    }
    scheduled += sched;
    ready_n += rdy;
    updated += upd;
  }
  int desired = static_cast<int>(nodes.size());
  cluster_.modify(
      daemonsets_, ns, name,
      [&](json& x) {
        json& st = x["status"];
        st["observedGeneration"] = generation;
        st["desiredNumberScheduled"] = desired;
        st["currentNumberScheduled"] = scheduled;
        st["numberMisscheduled"] = 0;
        st["numberReady"] = ready_n;
        st["numberAvailable"] = ready_n;
        st["updatedNumberScheduled"] = updated;
        st["numberUnavailable"] = desired - ready_n;
        if (ready_n == 0) st.erase("numberAvailable");
        if (desired - ready_n == 0) st.erase("numberUnavailable");
        return true;
      },
      kManager, "status");
}

void Reconcilers::job(const std::string& ns, const std::string& name) {
  auto current = cluster_.store().get({jobs_.storage_key(), ns, name});
  if (!current) return;
  json j = *current;
  j["apiVersion"] = "batch/v1";
  j["kind"] = "Job";
  if (terminating(j)) return;
  const std::string uid = j["metadata"].value("uid", "");
  const int completions = get_int(j, "/spec/completions", 1);
  const int parallelism = get_int(j, "/spec/parallelism", 1);
  const int backoff_limit = get_int(j, "/spec/backoffLimit", 6);
  const bool suspended = j.value("/spec/suspend"_json_pointer, false);
  json status = j.value("status", json::object());
  for (const auto& c : status.value("conditions", json::array()))
    if ((c.value("type", "") == "Complete" || c.value("type", "") == "Failed") &&
        c.value("status", "") == "True")
      return; // finished jobs stay as they are
  int active = 0, succeeded = 0, failed = 0, ready_n = 0, term = 0;
  std::vector<json> running;
  for (const auto& p : owned(pods_.storage_key(), ns, uid)) {
    std::string phase = p.value("/status/phase"_json_pointer, std::string());
    if (terminating(p)) {
      ++term;
      continue;
    }
    if (phase == "Succeeded")
      ++succeeded;
    else if (phase == "Failed")
      ++failed;
    else {
      ++active;
      running.push_back(p);
      if (ready(p)) ++ready_n;
    }
  }
  std::string now = now_rfc3339();
  json conditions = status.value("conditions", json::array());
  bool finished = false;
  if (failed > backoff_limit) {
    for (const auto& p : running) delete_object(pods_, p);
    active = 0;
    conditions = set_cond(conditions, {{"type", "FailureTarget"},
                                       {"status", "True"},
                                       {"reason", "BackoffLimitExceeded"},
                                       {"message", "Job has reached the specified backoff limit"},
                                       {"lastProbeTime", now},
                                       {"lastTransitionTime", now}});
    conditions = set_cond(conditions, {{"type", "Failed"},
                                       {"status", "True"},
                                       {"reason", "BackoffLimitExceeded"},
                                       {"message", "Job has reached the specified backoff limit"},
                                       {"lastProbeTime", now},
                                       {"lastTransitionTime", now}});
    cluster_.record_event(j, "Warning", "BackoffLimitExceeded",
                          "Job has reached the specified backoff limit", "job-controller");
    finished = true;
  } else if (succeeded >= completions) {
    conditions = set_cond(conditions, {{"type", "SuccessCriteriaMet"},
                                       {"status", "True"},
                                       {"reason", "CompletionsReached"},
                                       {"message", "Reached expected number of succeeded pods"},
                                       {"lastProbeTime", now},
                                       {"lastTransitionTime", now}});
    conditions = set_cond(conditions, {{"type", "Complete"},
                                       {"status", "True"},
                                       {"reason", "CompletionsReached"},
                                       {"message", "Reached expected number of succeeded pods"},
                                       {"lastProbeTime", now},
                                       {"lastTransitionTime", now}});
    cluster_.record_event(j, "Normal", "Completed", "Job completed", "job-controller");
    finished = true;
  } else if (!suspended) {
    int want = std::min(parallelism, completions - succeeded) - active;
    json tmpl = j.value("/spec/template"_json_pointer, json::object());
    for (int i = 0; i < want; ++i) {
      json pod = new_pod(j, tmpl, "", name + "-");
      create_pod(j, pod, "job-controller");
      ++active;
    }
  }
  cluster_.modify(
      jobs_, ns, name,
      [&](json& x) {
        json& st = x["status"];
        if (!st.contains("startTime") && !suspended) st["startTime"] = now;
        st["active"] = finished ? 0 : active;
        st["ready"] = finished ? 0 : ready_n;
        st["terminating"] = term;
        st["succeeded"] = succeeded;
        st["failed"] = failed;
        st["uncountedTerminatedPods"] = json::object();
        if (!conditions.empty()) st["conditions"] = conditions;
        if (finished && succeeded >= completions) st["completionTime"] = now;
        for (const char* k : {"active", "succeeded", "failed"})
          if (st[k] == 0) st.erase(k);
        return true;
      },
      kManager, "status");
}

} // namespace capstan::sandbox
