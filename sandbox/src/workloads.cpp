// ReplicaSet and Deployment controllers (RollingUpdate, Recreate, paused, progress deadline,
// revisions for rollback) following the upstream controllers' rules.
#include "capstan/sandbox/api_error.h"
#include "capstan/sandbox/rollout.h"
#include "capstan/sandbox/util.h"
#include "controllers.h"
#include "reconcilers.h"

#include <algorithm>

namespace capstan::sandbox {

using nlohmann::json;

namespace {

constexpr const char* kRevision = "deployment.kubernetes.io/revision";
constexpr const char* kDesired = "deployment.kubernetes.io/desired-replicas";
constexpr const char* kMaxReplicas = "deployment.kubernetes.io/max-replicas";
constexpr const char* kHashLabel = "pod-template-hash";
constexpr const char* kManager = "kube-controller-manager";

bool pod_active(const json& p) {
  std::string phase = p.value("/status/phase"_json_pointer, std::string());
  return !p["metadata"].contains("deletionTimestamp") && phase != "Succeeded" && phase != "Failed";
}

bool pod_ready(const json& p) {
  for (const auto& c : p.value("/status/conditions"_json_pointer, json::array()))
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  return false;
}

// Ready for at least minReadySeconds.
bool pod_available(const json& p, int min_ready_seconds, std::chrono::milliseconds* wait) {
  if (!pod_ready(p)) return false;
  if (min_ready_seconds <= 0) return true;
  for (const auto& c : p.value("/status/conditions"_json_pointer, json::array())) {
    if (c.value("type", "") != "Ready") continue;
    auto since = parse_rfc3339(c.value("lastTransitionTime", ""));
    if (!since) return true;
    auto due = *since + std::chrono::seconds(min_ready_seconds);
    auto now = std::chrono::system_clock::now();
    if (now >= due) return true;
    if (wait)
      *wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - now) +
              std::chrono::milliseconds(50);
    return false;
  }
  return false;
}

int get_int(const json& o, const char* ptr, int def = 0) {
  json::json_pointer p(ptr);
  if (!o.contains(p) || !o[p].is_number()) return def;
  return o[p].get<int>();
}

long long revision_of(const json& rs) {
  std::string r =
      rs.value("/metadata/annotations"_json_pointer, json::object()).value(kRevision, "0");
  try {
    return std::stoll(r);
  } catch (const std::exception&) {
    return 0;
  }
}

json template_without_hash(json tmpl) {
  if (tmpl.contains("/metadata/labels"_json_pointer)) tmpl["metadata"]["labels"].erase(kHashLabel);
  if (tmpl.contains("metadata") && tmpl["metadata"].is_object()) {
    if (tmpl["metadata"].contains("labels") && tmpl["metadata"]["labels"].empty())
      tmpl["metadata"].erase("labels");
    tmpl["metadata"].erase("creationTimestamp");
  }
  return tmpl;
}

std::string pod_template_hash(const json& tmpl, int collision_count) {
  std::string h =
      safe_hash(template_without_hash(tmpl).dump() + "#" + std::to_string(collision_count));
  return h.substr(0, 10);
}

json find_condition(const json& status, const std::string& type) {
  for (const auto& c : status.value("conditions", json::array()))
    if (c.value("type", "") == type) return c;
  return json();
}

void set_condition(json& status, json cond) {
  std::string now = now_rfc3339();
  json existing = find_condition(status, cond["type"]);
  cond["lastUpdateTime"] = now;
  cond["lastTransitionTime"] = now;
  if (!existing.is_null() && existing.value("status", "") == cond.value("status", "")) {
    cond["lastTransitionTime"] = existing.value("lastTransitionTime", now);
    if (existing.value("reason", "") == cond.value("reason", "") &&
        existing.value("message", "") == cond.value("message", ""))
      cond["lastUpdateTime"] = existing.value("lastUpdateTime", now);
  }
  json out = json::array();
  bool placed = false;
  for (const auto& c : status.value("conditions", json::array())) {
    if (c.value("type", "") == cond["type"]) {
      out.push_back(cond);
      placed = true;
    } else {
      out.push_back(c);
    }
  }
  if (!placed) out.push_back(cond);
  status["conditions"] = out;
}

} // namespace

void Reconcilers::replica_set(const std::string& ns, const std::string& name) {
  auto current = cluster_.store().get({replicasets_.storage_key(), ns, name});
  if (!current) return;
  json rs = *current;
  rs["apiVersion"] = "apps/v1";
  rs["kind"] = "ReplicaSet";
  std::string uid = rs["metadata"].value("uid", "");
  if (rs["metadata"].contains("deletionTimestamp")) return;
  int desired = get_int(rs, "/spec/replicas", 1);
  int min_ready = get_int(rs, "/spec/minReadySeconds", 0);
  auto pods = owned(pods_.storage_key(), ns, uid);
  std::vector<json> active;
  for (const auto& p : pods) {
    if (pod_active(p)) {
      active.push_back(p);
    } else if (!p["metadata"].contains("deletionTimestamp") &&
               p.value("/status/phase"_json_pointer, std::string()) == "Failed") {
      delete_object(pods_, p); // replaced below
    }
  }
  int diff = static_cast<int>(active.size()) - desired;
  if (diff < 0) {
    json tmpl = rs.value("/spec/template"_json_pointer, json::object());
    for (int i = 0; i < -diff; ++i) {
      json pod = new_pod(rs, tmpl, "", name + "-");
      create_pod(rs, pod, "replicaset-controller");
    }
  } else if (diff > 0) {
    // Upstream's ranking: unscheduled, pending, not ready, fewer... then newest go first.
    std::sort(active.begin(), active.end(), [](const json& a, const json& b) {
      auto rank = [](const json& p) {
        int r = 0;
        if (p.value("/spec/nodeName"_json_pointer, std::string()).empty()) r -= 4;
        if (p.value("/status/phase"_json_pointer, std::string()) == "Pending") r -= 2;
        if (!pod_ready(p)) r -= 1;
        return r;
      };
      int ra = rank(a), rb = rank(b);
      if (ra != rb) return ra < rb;
      return a["metadata"].value("creationTimestamp", "") >
             b["metadata"].value("creationTimestamp", "");
    });
    for (int i = 0; i < diff; ++i) {
      delete_object(pods_, active[static_cast<std::size_t>(i)]);
      cluster_.record_event(rs, "Normal", "SuccessfulDelete",
                            "Deleted pod: " +
                                active[static_cast<std::size_t>(i)]["metadata"].value("name", ""),
                            "replicaset-controller");
    }
    active.erase(active.begin(), active.begin() + diff);
  }
  int ready = 0, available = 0, labelled = 0;
  std::chrono::milliseconds wait{0};
  LabelSelector sel = LabelSelector::from_object(rs.value("/spec/selector"_json_pointer, json()));
  for (const auto& p : active) {
    if (pod_ready(p)) ++ready;
    std::chrono::milliseconds w{0};
    if (pod_available(p, min_ready, &w))
      ++available;
    else if (w.count() > 0)
      wait = wait.count() == 0 ? w : std::min(wait, w);
    if (sel.matches(p.value("/metadata/labels"_json_pointer, json::object()))) ++labelled;
  }
  int replicas = static_cast<int>(active.size());
  cluster_.modify(
      replicasets_, ns, name,
      [&](json& x) {
        json& s = x["status"];
        s["replicas"] = replicas;
        s["fullyLabeledReplicas"] = labelled;
        s["readyReplicas"] = ready;
        s["availableReplicas"] = available;
        s["observedGeneration"] = x["metadata"].value("generation", 1);
        if (ready == 0) s.erase("readyReplicas");
        if (available == 0) s.erase("availableReplicas");
        if (labelled == 0) s.erase("fullyLabeledReplicas");
        return true;
      },
      kManager, "status");
  if (wait.count() > 0) queue_.enqueue_after("ReplicaSet\x1f" + ns + "\x1f" + name, wait);
}

void Reconcilers::deployment(const std::string& ns, const std::string& name) {
  auto current = cluster_.store().get({deployments_.storage_key(), ns, name});
  if (!current) return;
  json d = *current;
  d["apiVersion"] = "apps/v1";
  d["kind"] = "Deployment";
  if (d["metadata"].contains("deletionTimestamp")) return;
  const std::string uid = d["metadata"].value("uid", "");
  const int desired = get_int(d, "/spec/replicas", 1);
  const bool paused = d.value("/spec/paused"_json_pointer, false);
  const std::string strategy =
      d.value("/spec/strategy/type"_json_pointer, std::string("RollingUpdate"));
  const int collision = get_int(d, "/status/collisionCount", 0);
  const json tmpl = d.value("/spec/template"_json_pointer, json::object());
  rollout::Fenceposts f;
  try {
    f = rollout::fenceposts(
        d.value("/spec/strategy/rollingUpdate/maxSurge"_json_pointer, json()),
        d.value("/spec/strategy/rollingUpdate/maxUnavailable"_json_pointer, json()), desired);
  } catch (const std::exception&) {
    f = {0, 1};
  }
  if (strategy == "Recreate") f = {0, desired};

  auto all_rs = owned(replicasets_.storage_key(), ns, uid);
  std::sort(all_rs.begin(), all_rs.end(), [](const json& a, const json& b) {
    std::string ca = a["metadata"].value("creationTimestamp", ""),
                cb = b["metadata"].value("creationTimestamp", "");
    if (ca != cb) return ca < cb;
    return a["metadata"].value("name", "") < b["metadata"].value("name", "");
  });
  json new_rs;
  std::vector<json> old_rs;
  long long max_old_revision = 0;
  json want = template_without_hash(tmpl);
  for (const auto& rs : all_rs) {
    if (new_rs.is_null() &&
        template_without_hash(rs.value("/spec/template"_json_pointer, json::object())) == want)
      new_rs = rs;
    else
      old_rs.push_back(rs);
  }
  for (const auto& rs : old_rs) max_old_revision = std::max(max_old_revision, revision_of(rs));
  std::string progress_reason, progress_message;
  auto scale_rs = [&](const json& rs, int to, const std::string& why_up_down) {
    int from = get_int(rs, "/spec/replicas", 0);
    std::string rs_name = rs["metadata"].value("name", "");
    json annotations = {{kDesired, std::to_string(desired)},
                        {kMaxReplicas, std::to_string(desired + f.max_surge)}};
    cluster_.modify(
        replicasets_, ns, rs_name,
        [&](json& x) {
          x["spec"]["replicas"] = to;
          for (auto it = annotations.begin(); it != annotations.end(); ++it)
            x["metadata"]["annotations"][it.key()] = it.value();
          return true;
        },
        kManager);
    if (from != to)
      cluster_.record_event(d, "Normal", "ScalingReplicaSet",
                            std::string("Scaled ") + (to > from ? "up" : "down") + " replica set " +
                                rs_name + " from " + std::to_string(from) + " to " +
                                std::to_string(to),
                            "deployment-controller");
    (void)why_up_down;
  };

  // The new ReplicaSet: found, re-revisioned after a rollback, or created.
  if (!paused || !new_rs.is_null()) {
    if (new_rs.is_null()) {
      std::string hash = pod_template_hash(tmpl, collision);
      std::string rs_name = name + "-" + hash;
      json rs_tmpl = tmpl;
      rs_tmpl["metadata"]["labels"][kHashLabel] = hash;
      json selector = d.value("/spec/selector"_json_pointer, json::object());
      selector["matchLabels"][kHashLabel] = hash;
      json labels = rs_tmpl["metadata"]["labels"];
      json annotations = json::object();
      const json d_annotations = d.value("/metadata/annotations"_json_pointer, json::object());
      for (const auto& [k, v] : d_annotations.items())
        if (k != "kubectl.kubernetes.io/last-applied-configuration" && k != kRevision &&
            k != "deployment.kubernetes.io/revision-history")
          annotations[k] = v;
      annotations[kRevision] = std::to_string(max_old_revision + 1);
      annotations[kDesired] = std::to_string(desired);
      annotations[kMaxReplicas] = std::to_string(desired + f.max_surge);
      int all_pods = 0;
      for (const auto& rs : old_rs) all_pods += get_int(rs, "/spec/replicas", 0);
      int initial = strategy == "Recreate" ? 0 : rollout::new_rs_replicas(desired, f, all_pods, 0);
      json rs = {{"apiVersion", "apps/v1"},
                 {"kind", "ReplicaSet"},
                 {"metadata",
                  {{"name", rs_name},
                   {"namespace", ns},
                   {"labels", labels},
                   {"annotations", annotations},
                   {"ownerReferences",
                    {{{"apiVersion", "apps/v1"},
                      {"kind", "Deployment"},
                      {"name", name},
                      {"uid", uid},
                      {"controller", true},
                      {"blockOwnerDeletion", true}}}}}},
                 {"spec",
                  {{"replicas", initial},
                   {"minReadySeconds", get_int(d, "/spec/minReadySeconds", 0)},
                   {"selector", selector},
                   {"template", rs_tmpl}}}};
      WriteOptions o;
      o.manager = kManager;
      o.validation = FieldValidation::kIgnore;
      try {
        new_rs = cluster_.create(replicasets_, ns, rs, o);
      } catch (const ApiError& e) {
        if (e.code() != 409) throw;
        // A ReplicaSet of that name with another template: a hash collision.
        cluster_.modify(
            deployments_, ns, name,
            [&](json& x) {
              x["status"]["collisionCount"] = collision + 1;
              return true;
            },
            kManager, "status");
        return;
      }
      if (initial > 0)
        cluster_.record_event(d, "Normal", "ScalingReplicaSet",
                              "Scaled up replica set " + rs_name + " from 0 to " +
                                  std::to_string(initial),
                              "deployment-controller");
      progress_reason = "NewReplicaSetCreated";
      progress_message = "Created new replica set \"" + rs_name + "\"";
    } else if (revision_of(new_rs) <= max_old_revision) {
      std::string rev = std::to_string(max_old_revision + 1);
      auto updated = cluster_.modify(
          replicasets_, ns, new_rs["metadata"].value("name", ""),
          [&](json& x) {
            x["metadata"]["annotations"][kRevision] = rev;
            return true;
          },
          kManager);
      if (updated) new_rs = *updated;
      progress_reason = "FoundNewReplicaSet";
      progress_message = "Found new replica set \"" + new_rs["metadata"].value("name", "") + "\"";
    }
  }
  std::string new_name = new_rs.is_null() ? "" : new_rs["metadata"].value("name", "");

  if (!paused && !new_rs.is_null()) {
    if (strategy == "Recreate") {
      bool old_running = false;
      for (const auto& rs : old_rs) {
        if (get_int(rs, "/spec/replicas", 0) > 0) scale_rs(rs, 0, "down");
        for (const auto& p : owned(pods_.storage_key(), ns, rs["metadata"].value("uid", "")))
          if (pod_active(p) || p["metadata"].contains("deletionTimestamp")) old_running = true;
      }
      if (!old_running && get_int(new_rs, "/spec/replicas", 0) != desired)
        scale_rs(new_rs, desired, "up");
    } else {
      int new_current = get_int(new_rs, "/spec/replicas", 0);
      int all_pods = new_current;
      for (const auto& rs : old_rs) all_pods += get_int(rs, "/spec/replicas", 0);
      int target = new_current > desired
                       ? desired
                       : rollout::new_rs_replicas(desired, f, all_pods, new_current);
      if (target != new_current) {
        scale_rs(new_rs, target, "");
        new_current = target;
      }
      std::vector<rollout::ReplicaSetCounts> olds;
      for (const auto& rs : old_rs)
        olds.push_back(
            {get_int(rs, "/spec/replicas", 0), get_int(rs, "/status/availableReplicas", 0)});
      auto scaled = rollout::scale_down_old(
          desired, f, olds, {new_current, get_int(new_rs, "/status/availableReplicas", 0)});
      for (std::size_t i = 0; i < old_rs.size(); ++i)
        if (scaled[i] != olds[i].replicas) scale_rs(old_rs[i], scaled[i], "down");
    }
  } else if (paused && !new_rs.is_null() && old_rs.empty() &&
             get_int(new_rs, "/spec/replicas", 0) != desired) {
    scale_rs(new_rs, desired, ""); // a paused deployment still scales
  }

  // Re-read what the ReplicaSets report, then compute the status as upstream does.
  all_rs = owned(replicasets_.storage_key(), ns, uid);
  int replicas = 0, updated = 0, ready = 0, available = 0, old_replicas = 0;
  for (const auto& rs : all_rs) {
    replicas += get_int(rs, "/status/replicas", 0);
    ready += get_int(rs, "/status/readyReplicas", 0);
    available += get_int(rs, "/status/availableReplicas", 0);
    if (rs["metadata"].value("name", "") == new_name)
      updated = get_int(rs, "/status/replicas", 0);
    else
      old_replicas += get_int(rs, "/status/replicas", 0);
  }
  // Old ReplicaSets beyond revisionHistoryLimit go once they have no pods.
  int limit = get_int(d, "/spec/revisionHistoryLimit", 10);
  std::vector<json> idle;
  for (const auto& rs : all_rs)
    if (rs["metadata"].value("name", "") != new_name && get_int(rs, "/spec/replicas", 0) == 0 &&
        get_int(rs, "/status/replicas", 0) == 0 && !rs["metadata"].contains("deletionTimestamp"))
      idle.push_back(rs);
  if (static_cast<int>(idle.size()) > limit) {
    std::sort(idle.begin(), idle.end(),
              [](const json& a, const json& b) { return revision_of(a) < revision_of(b); });
    for (std::size_t i = 0; i < idle.size() - static_cast<std::size_t>(limit); ++i)
      delete_object(replicasets_, idle[i]);
  }

  const int deadline = get_int(d, "/spec/progressDeadlineSeconds", 600);
  std::chrono::milliseconds requeue{0};
  auto rev = new_rs.is_null() ? std::string() : std::to_string(revision_of(new_rs));
  cluster_.modify(
      deployments_, ns, name,
      [&](json& x) {
        json& s = x["status"];
        if (!s.is_object()) s = json::object();
        json before = s;
        s["observedGeneration"] = x["metadata"].value("generation", 1);
        s["replicas"] = replicas;
        s["updatedReplicas"] = updated;
        s["readyReplicas"] = ready;
        s["availableReplicas"] = available;
        int unavailable = std::max(0, desired - available);
        s["unavailableReplicas"] = unavailable;
        for (const char* k : {"replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                              "unavailableReplicas"})
          if (s[k] == 0) s.erase(k);
        if (!rev.empty()) x["metadata"]["annotations"][kRevision] = rev;
        if (available >= desired - f.max_unavailable)
          set_condition(s, {{"type", "Available"},
                            {"status", "True"},
                            {"reason", "MinimumReplicasAvailable"},
                            {"message", "Deployment has minimum availability."}});
        else
          set_condition(s, {{"type", "Available"},
                            {"status", "False"},
                            {"reason", "MinimumReplicasUnavailable"},
                            {"message", "Deployment does not have minimum availability."}});
        bool complete =
            updated == desired && available == desired && old_replicas == 0 && replicas == desired;
        json progressing = find_condition(s, "Progressing");
        if (paused) {
          set_condition(s, {{"type", "Progressing"},
                            {"status", "Unknown"},
                            {"reason", "DeploymentPaused"},
                            {"message", "Deployment is paused"}});
        } else if (complete) {
          set_condition(
              s, {{"type", "Progressing"},
                  {"status", "True"},
                  {"reason", "NewReplicaSetAvailable"},
                  {"message", "ReplicaSet \"" + new_name + "\" has successfully progressed."}});
        } else if (!progress_reason.empty()) {
          set_condition(s, {{"type", "Progressing"},
                            {"status", "True"},
                            {"reason", progress_reason},
                            {"message", progress_message}});
        } else {
          bool progressed =
              s.value("updatedReplicas", 0) > before.value("updatedReplicas", 0) ||
              s.value("readyReplicas", 0) > before.value("readyReplicas", 0) ||
              s.value("availableReplicas", 0) > before.value("availableReplicas", 0) ||
              (replicas - updated) <
                  (before.value("replicas", 0) - before.value("updatedReplicas", 0));
          bool was_paused =
              !progressing.is_null() && progressing.value("reason", "") == "DeploymentPaused";
          if (was_paused) {
            set_condition(s, {{"type", "Progressing"},
                              {"status", "Unknown"},
                              {"reason", "DeploymentResumed"},
                              {"message", "Deployment is resumed"}});
          } else if (progressed || progressing.is_null() ||
                     progressing.value("reason", "") == "NewReplicaSetAvailable") {
            set_condition(s, {{"type", "Progressing"},
                              {"status", "True"},
                              {"reason", "ReplicaSetUpdated"},
                              {"message", "ReplicaSet \"" + new_name + "\" is progressing."}});
            json c = find_condition(s, "Progressing");
            // Progress resets the deadline.
            for (auto& cc : s["conditions"])
              if (cc.value("type", "") == "Progressing") cc["lastUpdateTime"] = now_rfc3339();
            (void)c;
          }
          json pc = find_condition(s, "Progressing");
          if (pc.value("reason", "") != "ProgressDeadlineExceeded" &&
              pc.value("status", "") == "True") {
            auto since = parse_rfc3339(pc.value("lastUpdateTime", ""));
            if (since) {
              auto due = *since + std::chrono::seconds(deadline);
              auto now = std::chrono::system_clock::now();
              if (now >= due) {
                set_condition(
                    s, {{"type", "Progressing"},
                        {"status", "False"},
                        {"reason", "ProgressDeadlineExceeded"},
                        {"message", "ReplicaSet \"" + new_name + "\" has timed out progressing."}});
              } else {
                requeue = std::chrono::duration_cast<std::chrono::milliseconds>(due - now) +
                          std::chrono::milliseconds(100);
              }
            }
          }
        }
        // Keep the conditions in upstream's order: Available, then Progressing.
        json ordered = json::array();
        for (const char* type : {"Available", "Progressing"}) {
          json c = find_condition(s, type);
          if (!c.is_null()) ordered.push_back(c);
        }
        s["conditions"] = ordered;
        return true;
      },
      kManager, "status");
  if (requeue.count() > 0) queue_.enqueue_after("Deployment\x1f" + ns + "\x1f" + name, requeue);
}

} // namespace capstan::sandbox
