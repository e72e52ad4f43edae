// Pieces every workload controller uses: owned objects, pod creation, deletion, bootstrap.
#include "capstan/sandbox/api_error.h"
#include "capstan/sandbox/util.h"
#include "controllers.h"
#include "reconcilers.h"

namespace capstan::sandbox {

using nlohmann::json;

Reconcilers::Reconcilers(Cluster& cluster, Controllers& queue)
    : cluster_(cluster), queue_(queue), pods_(cluster.type_of("", "Pod")),
      replicasets_(cluster.type_of("apps", "ReplicaSet")),
      deployments_(cluster.type_of("apps", "Deployment")),
      statefulsets_(cluster.type_of("apps", "StatefulSet")),
      daemonsets_(cluster.type_of("apps", "DaemonSet")), jobs_(cluster.type_of("batch", "Job")),
      nodes_(cluster.type_of("", "Node")), namespaces_(cluster.type_of("", "Namespace")),
      serviceaccounts_(cluster.type_of("", "ServiceAccount")), rng_(std::random_device{}()) {}

std::vector<json> Reconcilers::owned(const std::string& resource, const std::string& ns,
                                     const std::string& owner_uid) const {
  std::vector<json> out;
  // Runs for every reconcile of every workload over all objects of a kind in the namespace:
  // reads the owner references in place and copies only the matches.
  for (const auto& o : cluster_.store().list(resource, ns)) {
    auto meta = o->find("metadata");
    if (meta == o->end() || !meta->is_object()) continue;
    auto refs = meta->find("ownerReferences");
    if (refs == meta->end() || !refs->is_array()) continue;
    for (const auto& r : *refs) {
      if (!r.is_object()) continue;
      auto uid = r.find("uid");
      auto controller = r.find("controller");
      if (uid != r.end() && uid->is_string() && uid->get_ref<const std::string&>() == owner_uid &&
          controller != r.end() && controller->is_boolean() && controller->get<bool>()) {
        out.push_back(*o);
        break;
      }
    }
  }
  return out;
}

json Reconcilers::new_pod(const json& owner, const json& tmpl, const std::string& name,
                          const std::string& generate_name) const {
  json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}};
  json meta = tmpl.value("metadata", json::object());
  meta.erase("creationTimestamp");
  if (!name.empty())
    meta["name"] = name;
  else
    meta["generateName"] = generate_name;
  meta["namespace"] = owner["metadata"].value("namespace", "");
  meta["ownerReferences"] = json::array({{{"apiVersion", owner.value("apiVersion", "")},
                                          {"kind", owner.value("kind", "")},
                                          {"name", owner["metadata"].value("name", "")},
                                          {"uid", owner["metadata"].value("uid", "")},
                                          {"controller", true},
                                          {"blockOwnerDeletion", true}}});
  pod["metadata"] = meta;
  pod["spec"] = tmpl.value("spec", json::object());
  return pod;
}

void Reconcilers::create_pod(const json& owner, json pod, const std::string& component) {
  WriteOptions o;
  o.manager = "kube-controller-manager";
  o.validation = FieldValidation::kIgnore;
  json created =
      cluster_.create(pods_, owner["metadata"].value("namespace", ""), std::move(pod), o);
  cluster_.record_event(owner, "Normal", "SuccessfulCreate",
                        "Created pod: " + created["metadata"].value("name", ""), component);
}

void Reconcilers::delete_object(const ResourceType& t, const json& object,
                                const std::string& propagation) {
  DeleteOptions d;
  d.propagation = propagation;
  try {
    cluster_.remove(t, object["metadata"].value("namespace", ""),
                    object["metadata"].value("name", ""), d);
  } catch (const ApiError& e) {
    if (e.code() != 404) throw;
  }
}

std::chrono::milliseconds Reconcilers::ready_delay() {
  auto base = cluster_.config().pod_ready_delay.count();
  auto jitter = cluster_.config().pod_ready_jitter.count();
  long long j = jitter > 0 ? std::uniform_int_distribution<long long>(0, jitter)(rng_) : 0;
  return std::chrono::milliseconds(base + j);
}

void Reconcilers::bootstrap() {
  int n = cluster_.config().nodes;
  for (int i = 1; i <= n; ++i) {
    std::string name = "sandbox-node-" + std::to_string(i);
    if (cluster_.store().get({nodes_.storage_key(), "", name})) continue;
    json labels = {{"kubernetes.io/hostname", name},
                   {"kubernetes.io/os", "linux"},
                   {"kubernetes.io/arch", "amd64"},
                   {"beta.kubernetes.io/os", "linux"},
                   {"beta.kubernetes.io/arch", "amd64"}};
    if (i == 1) labels["node-role.kubernetes.io/control-plane"] = "";
    std::string now = now_rfc3339();
    auto cond = [&](const char* type, const char* status, const char* reason, const char* msg) {
      return json{{"type", type},   {"status", status},         {"reason", reason},
                  {"message", msg}, {"lastHeartbeatTime", now}, {"lastTransitionTime", now}};
    };
    json capacity = {{"cpu", "4"},
                     {"memory", "8148452Ki"},
                     {"pods", "110"},
                     {"ephemeral-storage", "61202244Ki"}};
    json node = {{"metadata", {{"name", name}, {"labels", labels}}},
                 {"spec", {{"podCIDR", "10.244." + std::to_string(i - 1) + ".0/24"}}},
                 {"status",
                  {{"capacity", capacity},
                   {"allocatable", capacity},
                   {"conditions",
                    {cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                          "kubelet has sufficient memory available"),
                     cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                          "kubelet has no disk pressure"),
                     cond("PIDPressure", "False", "KubeletHasSufficientPID",
                          "kubelet has sufficient PID available"),
                     cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")}},
                   {"addresses",
                    {{{"type", "InternalIP"}, {"address", "10.0.0." + std::to_string(i + 1)}},
                     {{"type", "Hostname"}, {"address", name}}}},
                   {"nodeInfo",
                    {{"machineID", safe_hash(name)},
                     {"systemUUID", new_uid()},
                     {"bootID", new_uid()},
                     {"kernelVersion", "6.1.0-sandbox"},
                     {"osImage", "Capstan Sandbox"},
                     {"containerRuntimeVersion", "sandbox://1.0.0"},
                     {"kubeletVersion", "v1.32.0"},
                     {"kubeProxyVersion", "v1.32.0"},
                     {"operatingSystem", "linux"},
                     {"architecture", "amd64"}}}}}};
    WriteOptions o;
    o.manager = "kubelet";
    auto created = cluster_.create(nodes_, "", node, o);
    // Status is the node's own report; keep it as written.
    cluster_.modify(
        nodes_, "", name,
        [&](json& obj) {
          obj["status"] = node["status"];
          return true;
        },
        "");
  }
  // Resume every controller after a restart: each object is looked at once.
  for (const auto& ns : cluster_.store().list(namespaces_.storage_key(), ""))
    queue_.enqueue("Namespace\x1f\x1f" + (*ns)["metadata"].value("name", ""));
  for (const auto& [t, kind] :
       std::vector<std::pair<ResourceType*, const char*>>{{&deployments_, "Deployment"},
                                                          {&replicasets_, "ReplicaSet"},
                                                          {&statefulsets_, "StatefulSet"},
                                                          {&daemonsets_, "DaemonSet"},
                                                          {&jobs_, "Job"},
                                                          {&pods_, "Pod"}})
    for (const auto& o : cluster_.store().list(t->storage_key(), ""))
      queue_.enqueue(std::string(kind) + "\x1f" + (*o)["metadata"].value("namespace", "") + "\x1f" +
                     (*o)["metadata"].value("name", ""));
}

void Reconcilers::namespace_(const std::string& name) {
  auto ns = cluster_.store().get({namespaces_.storage_key(), "", name});
  if (!ns) return;
  if (!(*ns)["metadata"].contains("deletionTimestamp")) {
    if (!cluster_.store().get({serviceaccounts_.storage_key(), name, "default"})) {
      WriteOptions o;
      o.manager = "kube-controller-manager";
      try {
        cluster_.create(serviceaccounts_, name, {{"metadata", {{"name", "default"}}}}, o);
      } catch (const ApiError& e) {
        if (e.code() != 409) throw;
      }
    }
    return;
  }
  // Terminating: delete everything in it, then the namespace itself.
  std::size_t remaining = 0;
  for (const auto& t : cluster_.registry().all()) {
    if (!t.namespaced || !t.storage) continue;
    for (const auto& o : cluster_.store().list(t.storage_key(), name)) {
      ++remaining;
      if ((*o)["metadata"].contains("deletionTimestamp") && t.kind != "Pod") {
        // Finalizers nobody will remove in the sandbox are dropped, as the namespace goes.
        cluster_.modify(
            t, name, (*o)["metadata"].value("name", ""),
            [](json& x) {
              x["metadata"].erase("finalizers");
              return true;
            },
            "");
        continue;
      }
      DeleteOptions d;
      d.propagation = "Background";
      d.grace_period_seconds = 0;
      try {
        cluster_.remove(t, name, (*o)["metadata"].value("name", ""), d);
      } catch (const ApiError& e) {
        if (e.code() != 404) throw;
      }
    }
  }
  if (remaining > 0) {
    queue_.enqueue_after("Namespace\x1f\x1f" + name, std::chrono::milliseconds(100));
    return;
  }
  cluster_.store().mutate({namespaces_.storage_key(), "", name},
                          [](const ObjectPtr&) { return std::optional<json>(); });
}

void Reconcilers::collect_garbage(const std::string& owner_uid) {
  if (owner_uid.empty()) return;
  for (const auto& t : cluster_.registry().all()) {
    if (!t.storage) continue;
    for (const auto& o : cluster_.store().list(t.storage_key(), "")) {
      const json refs = o->value("/metadata/ownerReferences"_json_pointer, json::array());
      bool mine = false;
      for (const auto& r : refs) mine = mine || r.value("uid", "") == owner_uid;
      if (!mine) continue;
      if (refs.size() > 1) {
        cluster_.modify(
            t, (*o)["metadata"].value("namespace", ""), (*o)["metadata"].value("name", ""),
            [&](json& x) {
              json kept = json::array();
              for (const auto& r : x["metadata"]["ownerReferences"])
                if (r.value("uid", "") != owner_uid) kept.push_back(r);
              x["metadata"]["ownerReferences"] = kept;
              return true;
            },
            "");
      } else {
        delete_object(t, *o, "Background");
      }
    }
  }
}

void Reconcilers::finalize(const std::string& resource, const std::string& ns,
                           const std::string& name) {
  auto obj = cluster_.store().get({resource, ns, name});
  if (!obj || !(*obj)["metadata"].contains("deletionTimestamp")) return;
  const json fins = (*obj)["metadata"].value("finalizers", json::array());
  bool foreground = std::find(fins.begin(), fins.end(), "foregroundDeletion") != fins.end();
  bool orphan = std::find(fins.begin(), fins.end(), "orphan") != fins.end();
  if (!foreground && !orphan) return;
  std::string uid = (*obj)["metadata"].value("uid", "");
  const ResourceType* owner_type = nullptr;
  auto all = cluster_.registry().all();
  for (const auto& t : all)
    if (t.storage_key() == resource && t.storage) owner_type = &t;
  if (!owner_type) return;
  std::size_t dependents = 0;
  for (const auto& t : all) {
    if (!t.storage) continue;
    for (const auto& o : cluster_.store().list(t.storage_key(), "")) {
      const json refs = o->value("/metadata/ownerReferences"_json_pointer, json::array());
      bool mine = false;
      for (const auto& r : refs) mine = mine || r.value("uid", "") == uid;
      if (!mine) continue;
      if (orphan) {
        cluster_.modify(
            t, (*o)["metadata"].value("namespace", ""), (*o)["metadata"].value("name", ""),
            [&](json& x) {
              json kept = json::array();
              for (const auto& r : x["metadata"]["ownerReferences"])
                if (r.value("uid", "") != uid) kept.push_back(r);
              if (kept.empty())
                x["metadata"].erase("ownerReferences");
              else
                x["metadata"]["ownerReferences"] = kept;
              return true;
            },
            "");
      } else {
        ++dependents;
        if (!(*o)["metadata"].contains("deletionTimestamp")) delete_object(t, *o, "Foreground");
      }
    }
  }
  if (dependents > 0) {
    queue_.enqueue_after("Finalize\x1f" + resource + "\x1f" + ns + "\x1f" + name,
                         std::chrono::milliseconds(100));
    return;
  }
  cluster_.modify(
      *owner_type, ns, name,
      [&](json& x) {
        json kept = json::array();
        for (const auto& f : x["metadata"]["finalizers"])
          if (f != "foregroundDeletion" && f != "orphan") kept.push_back(f);
        if (kept.empty())
          x["metadata"].erase("finalizers");
        else
          x["metadata"]["finalizers"] = kept;
        return true;
      },
      "");
}

} // namespace capstan::sandbox
