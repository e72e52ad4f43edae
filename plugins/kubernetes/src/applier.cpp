// Applying and deleting objects.
#include "applier.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "errors.h"

namespace capstan::plugins::kubernetes {

using manifest::Resource;
using nlohmann::json;

namespace {

struct CrdKind {
  std::string group;
  std::string kind;
  std::set<std::string> versions;
};

std::vector<CrdKind> crd_kinds(const std::vector<Resource>& resources) {
  std::vector<CrdKind> out;
  for (const auto& r : resources) {
    if (r.kind() != "CustomResourceDefinition") continue;
    const json spec = r.object.value("spec", json::object());
    CrdKind k;
    k.group = spec.value("group", "");
    k.kind = spec.contains("names") ? spec["names"].value("kind", "") : "";
    for (const auto& v : spec.value("versions", json::array())) {
      if (v.is_object()) k.versions.insert(v.value("name", ""));
    }
    out.push_back(std::move(k));
  }
  return out;
}

const CrdKind* defined_by(const std::vector<CrdKind>& crds, const Resource& r) {
  std::string av = r.api_version();
  auto slash = av.find('/');
  std::string group = slash == std::string::npos ? "" : av.substr(0, slash);
  std::string version = slash == std::string::npos ? av : av.substr(slash + 1);
  for (const auto& c : crds) {
    if (c.group == group && c.kind == r.kind() && c.versions.count(version) > 0) return &c;
  }
  return nullptr;
}

} // namespace

std::string where(const Resource& r) {
  std::string w = r.where();
  return w.empty() ? std::string() : w + ": ";
}

Applier::Applier(const kube::Client& client, const sdk::StepContext& ctx, int concurrency)
    : client_(client), ctx_(ctx), concurrency_(std::max(1, concurrency)) {}

void Applier::check_kinds(std::vector<Resource>& resources) {
  auto crds = crd_kinds(resources);
  for (auto& r : resources) {
    if (defined_by(crds, r) != nullptr) continue;
    std::optional<kube::ResourceInfo> info;
    try {
      info = client_.resource(r.api_version(), r.kind());
    } catch (const kube::Error& e) {
      if (e.is(kube::ErrorKind::kUnsupportedKind)) {
        throw invalid(where(r) + r.kind() + "/" + r.name() + ": " + e.what());
      }
      fail(e, where(r));
    }
    if (!info->namespaced && r.object.contains("metadata") &&
        r.object["metadata"].contains("namespace")) {
      r.object["metadata"].erase("namespace");
    }
  }
}

std::string Applier::api_version_of(const std::string& kind) {
  // The usual homes first, so no full discovery is needed for them.
  static const std::map<std::string, std::string> common = {
      {"Deployment", "apps/v1"},
      {"StatefulSet", "apps/v1"},
      {"DaemonSet", "apps/v1"},
      {"ReplicaSet", "apps/v1"},
      {"ConfigMap", "v1"},
      {"Secret", "v1"},
      {"Service", "v1"},
      {"Pod", "v1"},
      {"Namespace", "v1"},
      {"ServiceAccount", "v1"},
      {"Job", "batch/v1"},
      {"CronJob", "batch/v1"},
      {"PersistentVolumeClaim", "v1"},
      {"Ingress", "networking.k8s.io/v1"},
      {"HorizontalPodAutoscaler", "autoscaling/v2"}};
  if (auto it = common.find(kind); it != common.end()) {
    if (client_.find_resource(it->second, kind)) return it->second;
  }
  std::vector<std::string> kinds;
  for (const auto& r : client_.served_resources()) {
    if (r.kind == kind) return r.api_version();
    kinds.push_back(r.kind);
  }
  // Case-insensitive, as kubectl accepts "deployment/web".
  for (const auto& r : client_.served_resources()) {
    std::string a = r.kind, b = kind;
    std::transform(a.begin(), a.end(), a.begin(), ::tolower);
    std::transform(b.begin(), b.end(), b.begin(), ::tolower);
    if (a == b) return r.api_version();
  }
  std::sort(kinds.begin(), kinds.end());
  kinds.erase(std::unique(kinds.begin(), kinds.end()), kinds.end());
  std::string list;
  for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
  throw invalid("the cluster does not serve kind " + kind + " (it serves: " + list + ")");
}

namespace {

// A failure the server reported about one object (it refused or could not take that object):
// the other objects of the batch still go, and every such failure is reported. Anything else
// (the cluster unreachable, credentials refused, cancellation) stops the step at once.
bool about_the_object(const kube::Error& e) {
  using K = kube::ErrorKind;
  switch (e.kind()) {
  case K::kBadRequest:
  case K::kNotFound:
  case K::kConflict:
  case K::kAlreadyExists:
  case K::kInvalid:
  case K::kRequestEntityTooLarge:
  case K::kUnsupportedMediaType:
  case K::kMethodNotAllowed:
  case K::kInternalError:
  case K::kServerError:
    return true;
  default:
    return false;
  }
}

// The step error for one object: "file:line: Kind/name (dry run): why", naming the namespace
// when it is what is missing.
sdk::StepError object_failure(const Resource& r, const kube::Error& e, bool dry) {
  std::string what = where(r) + r.kind() + "/" + r.name() + (dry ? " (dry run)" : "") + ": ";
  if (e.is(kube::ErrorKind::kNotFound) && !r.namespace_().empty() &&
      std::string(e.what()).find("namespaces \"" + r.namespace_() + "\" not found") !=
          std::string::npos) {
    return invalid(what + "namespace " + r.namespace_() +
                   " does not exist (create it, or add a Namespace manifest)");
  }
  try {
    fail(e, what);
  } catch (const sdk::StepError& step_error) {
    return step_error;
  }
}

} // namespace

void Applier::run_batches(const std::vector<Resource>& resources, bool dry,
                          std::vector<json>* out) {
  // Indexes in apply order; batches of equal kind order run in parallel.
  std::vector<std::size_t> order(resources.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return manifest::kind_order(resources[a].kind()) < manifest::kind_order(resources[b].kind());
  });
  if (out != nullptr) out->assign(resources.size(), json());
  auto crds = crd_kinds(resources);
  std::set<std::string> created_namespaces;
  for (const auto& r : resources) {
    if (r.kind() == "Namespace") created_namespaces.insert(r.name());
  }
  std::set<std::string> missing_namespaces; // for dry runs: namespaces that do not exist yet
  if (dry) {
    for (const auto& ns : created_namespaces) {
      if (!client_.try_get({"v1", "Namespace", "", ns})) missing_namespaces.insert(ns);
    }
  }
  kube::ApplyOptions options;
  options.field_manager = kFieldManager;
  options.force = true;
  options.dry_run = dry;

  std::size_t start = 0;
  bool crds_applied = false;
  while (start < order.size()) {
    int ko = manifest::kind_order(resources[order[start]].kind());
    std::size_t end = start;
    while (end < order.size() && manifest::kind_order(resources[order[end]].kind()) == ko) ++end;
    // Custom resources of CRDs applied just now: wait until the server serves their kind.
    if (!dry && !crds.empty() && !crds_applied &&
        ko > manifest::kind_order("CustomResourceDefinition")) {
      crds_applied = true;
      client_.invalidate_discovery();
      for (std::size_t i = start; i < order.size(); ++i) {
        const Resource& r = resources[order[i]];
        if (defined_by(crds, r) == nullptr) continue;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!client_.find_resource(r.api_version(), r.kind())) {
          ctx_.throw_if_cancelled();
          if (std::chrono::steady_clock::now() > deadline) {
            throw invalid(where(r) + "the cluster did not start serving " + r.api_version() + " " +
                          r.kind() + " within 60s of its CustomResourceDefinition");
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
          client_.invalidate_discovery();
        }
      }
    }
    std::vector<std::size_t> batch(order.begin() + static_cast<long>(start),
                                   order.begin() + static_cast<long>(end));
    // A bounded pool over the client's shared keep-alive connections: each worker takes the
    // next object of the batch. Failures about one object are kept (the rest of the batch is
    // still applied, as kubectl does); anything else stops every worker.
    std::atomic<std::size_t> next{0};
    std::atomic<bool> stop{false};
    std::mutex m; // guards failures and fatal
    std::vector<std::pair<std::size_t, kube::Error>> failures;
    std::exception_ptr fatal;
    std::size_t fatal_index = 0; // the object whose request failed fatally
    auto worker = [&] {
      while (!stop.load()) {
        std::size_t k = next++;
        if (k >= batch.size()) return;
        const Resource& r = resources[batch[k]];
        if (dry) {
          std::string ns = r.namespace_();
          if ((!ns.empty() && missing_namespaces.count(ns) > 0) || defined_by(crds, r) != nullptr) {
            continue;
          }
        }
        try {
          json live = client_.apply(r.object, options);
          if (out != nullptr) (*out)[batch[k]] = std::move(live);
        } catch (const kube::Error& e) {
          std::lock_guard lock(m);
          if (about_the_object(e)) {
            failures.emplace_back(batch[k], e);
          } else {
            if (!fatal) {
              fatal = std::current_exception();
              fatal_index = batch[k];
            }
            stop = true;
          }
        } catch (...) {
          std::lock_guard lock(m);
          if (!fatal) fatal = std::current_exception();
          stop = true;
        }
      }
    };
    int threads = static_cast<int>(
        std::min<std::size_t>(batch.size(), static_cast<std::size_t>(concurrency_)));
    if (threads <= 1) {
      worker();
    } else {
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
      for (auto& t : pool) t.join();
    }
    if (fatal) {
      try {
        std::rethrow_exception(fatal);
      } catch (const kube::Error& e) {
        const Resource& r = resources[fatal_index];
        fail(e, where(r) + r.kind() + "/" + r.name() + (dry ? " (dry run)" : "") + ": ");
      }
    }
    if (!failures.empty()) {
      // In the order the objects were given (files, then documents), whatever order the
      // workers finished in; the type of the step error is the first one's.
      std::sort(failures.begin(), failures.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      std::vector<sdk::StepError> errors;
      for (const auto& [index, e] : failures) {
        errors.push_back(object_failure(resources[index], e, dry));
      }
      if (errors.size() == 1) throw errors.front();
      std::string message = std::to_string(errors.size()) + " objects" +
                            (dry ? " failed the dry run" : " could not be applied") + ":";
      for (const auto& e : errors) {
        ctx_.error(e.what());
        message += "\n  " + std::string(e.what());
      }
      throw sdk::StepError(errors.front().type(), message);
    }
    start = end;
  }
}

void Applier::dry_run(const std::vector<Resource>& resources) {
  run_batches(resources, true, nullptr);
}

std::vector<json> Applier::apply(const std::vector<Resource>& resources) {
  std::vector<json> out;
  run_batches(resources, false, &out);
  return out;
}

std::vector<std::string> Applier::remove(const std::vector<manifest::ResourceId>& ids,
                                         kube::Propagation propagation) {
  std::vector<manifest::ResourceId> sorted = ids;
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return manifest::kind_order(a.kind) > manifest::kind_order(b.kind);
  });
  std::vector<std::string> deleted;
  for (const auto& id : sorted) {
    ctx_.throw_if_cancelled();
    std::string av;
    try {
      av = api_version_of(id.kind);
    } catch (const sdk::StepError& e) {
      ctx_.warn(std::string("skipping ") + id.key() + ": " + e.what());
      continue;
    }
    kube::DeleteOptions o;
    o.propagation = propagation;
    bool gone = guarded([&] { return client_.remove({av, id.kind, id.namespace_, id.name}, o); });
    if (gone) {
      deleted.push_back(id.key());
      ctx_.info("Deleted " + id.key());
    } else {
      ctx_.info(id.key() + " was not found; nothing to delete");
    }
  }
  return deleted;
}

} // namespace capstan::plugins::kubernetes
