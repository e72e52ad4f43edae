// Dispatch of queue keys to the controllers, and what each change wakes.
#include "capstan/sandbox/api_error.h"
#include "controllers.h"
#include "reconcilers.h"

#include <cstdio>

namespace capstan::sandbox {

using nlohmann::json;

namespace {
constexpr char kKeySep = '\x1f';

std::string key(const std::string& kind, const std::string& ns, const std::string& name) {
  return kind + kKeySep + ns + kKeySep + name;
}
} // namespace

std::vector<std::string> keys_for_change(const Change& c) {
  std::vector<std::string> out;
  const json& o = *c.object;
  const json& meta = o["metadata"];
  std::string ns = meta.value("namespace", "");
  std::string name = meta.value("name", "");
  if (c.resource == "/events") return out;
  if (c.resource == "apps/deployments")
    out.push_back(key("Deployment", ns, name));
  else if (c.resource == "apps/replicasets")
    out.push_back(key("ReplicaSet", ns, name));
  else if (c.resource == "apps/statefulsets")
    out.push_back(key("StatefulSet", ns, name));
  else if (c.resource == "apps/daemonsets")
    out.push_back(key("DaemonSet", ns, name));
  else if (c.resource == "batch/jobs")
    out.push_back(key("Job", ns, name));
  else if (c.resource == "/pods")
    out.push_back(key("Pod", ns, name));
  else if (c.resource == "/namespaces")
    out.push_back(key("Namespace", "", name));
  else if (c.resource == "/nodes")
    out.push_back(key("AllDaemonSets", "", ""));
  if (meta.contains("ownerReferences") && meta["ownerReferences"].is_array()) {
    for (const auto& ref : meta["ownerReferences"]) {
      if (!ref.value("controller", false)) continue;
      std::string kind = ref.value("kind", "");
      if (kind == "Deployment" || kind == "ReplicaSet" || kind == "StatefulSet" ||
          kind == "DaemonSet" || kind == "Job")
        out.push_back(key(kind, ns, ref.value("name", "")));
    }
  }
  if (c.type == "DELETED") out.push_back("gc" + std::string(1, kKeySep) + meta.value("uid", ""));
  if (c.type == "MODIFIED" && meta.contains("deletionTimestamp") && meta.contains("finalizers"))
    out.push_back("Finalize" + std::string(1, kKeySep) + c.resource + kKeySep + ns + kKeySep +
                  name);
  return out;
}

void Reconcilers::reconcile(const std::string& k) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    auto pos = k.find(kKeySep, start);
    parts.push_back(k.substr(start, pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  try {
    const std::string& kind = parts[0];
    if (kind == "Bootstrap")
      bootstrap();
    else if (kind == "gc" && parts.size() == 2)
      collect_garbage(parts[1]);
    else if (kind == "Finalize" && parts.size() == 4)
      finalize(parts[1], parts[2], parts[3]);
    else if (parts.size() == 3) {
      const std::string& ns = parts[1];
      const std::string& name = parts[2];
      if (kind == "Deployment")
        deployment(ns, name);
      else if (kind == "ReplicaSet")
        replica_set(ns, name);
      else if (kind == "StatefulSet")
        stateful_set(ns, name);
      else if (kind == "DaemonSet")
        daemon_set(ns, name);
      else if (kind == "Job")
        job(ns, name);
      else if (kind == "Pod")
        pod(ns, name);
      else if (kind == "Namespace")
        namespace_(name);
      else if (kind == "AllDaemonSets")
        for (const auto& ds : cluster_.store().list(daemonsets_.storage_key(), ""))
          daemon_set((*ds)["metadata"].value("namespace", ""), (*ds)["metadata"].value("name", ""));
    }
  } catch (const ApiError& e) {
    // Conflicts and races with API clients are retried shortly, as controllers requeue.
    if (e.code() != 404 && e.code() != 409)
      std::fprintf(stderr, "capstan-sandbox: controller %s: %s\n", parts[0].c_str(), e.what());
    queue_.enqueue_after(k, std::chrono::milliseconds(200));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "capstan-sandbox: controller %s: %s\n", parts[0].c_str(), e.what());
    queue_.enqueue_after(k, std::chrono::milliseconds(1000));
  }
}

} // namespace capstan::sandbox
