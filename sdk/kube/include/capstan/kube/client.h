// A Kubernetes API client: REST over keep-alive HTTPS, discovery, typed errors, retries with
// backoff, a client-side rate limit, and the verbs deployment tools use (server-side apply,
// get/list with selectors and pagination, patch, delete with propagation, scale, events).
// Watches are in watch.h, steady-state waits in wait.h.
//
// A Client is cheap to copy: copies share connections, discovery, credentials and the rate
// limit. All methods are thread-safe. Every call honours the cancel hook set with
// with_cancel(), and throws capstan::kube::Error.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capstan/kube/config.h"
#include "capstan/kube/error.h"

namespace capstan::kube {

struct ClientOptions {
  std::string user_agent = "capstan";
  // Client-side rate limit (a token bucket): requests per second and the burst above it, as
  // client-go's QPS/Burst; qps <= 0 (the default) turns it off. Watches are not counted.
  // Off by default as controller-runtime now has it: API servers since Kubernetes 1.20 protect
  // themselves with API Priority and Fairness, answering 429 with Retry-After, which the
  // retries honour; a fixed client-side rate only slows large applies down (client-go's 5/s
  // would take 100 s for 500 objects). Callers bound their own concurrency instead.
  double qps = 0;
  int burst = 200;
  // Retries of a request that failed with 429, 503, 504, a 500/502 marked retryable, or a
  // broken connection (only for requests that are safe to repeat, unless the connection never
  // opened). Backoff doubles from retry_base up to retry_max, with jitter; a Retry-After from
  // the server is honoured up to retry_after_max.
  int max_retries = 5;
  std::chrono::milliseconds retry_base{100};
  std::chrono::milliseconds retry_max{5000};
  std::chrono::milliseconds retry_after_max{30000};
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{60000}; // one request (not a watch)
  std::size_t max_idle_connections = 32;            // keep-alive connections kept open
};

// Identity of an object in the API.
struct ObjectRef {
  std::string api_version; // "apps/v1", "v1"
  std::string kind;
  std::string namespace_; // "" for cluster-scoped objects
  std::string name;

  // The reference of an object (apiVersion, kind, metadata.namespace, metadata.name).
  static ObjectRef of(const nlohmann::json& object);
  // "Deployment/namespace/name", or "Kind/name" for a cluster-scoped object.
  std::string str() const;
};

// One resource type as discovery describes it.
struct ResourceInfo {
  std::string group; // "" for the core group
  std::string version;
  std::string kind;
  std::string resource; // plural: "deployments"
  bool namespaced = true;
  std::vector<std::string> verbs;
  std::vector<std::string> short_names;
  bool has_status = false;
  bool has_scale = false;

  std::string api_version() const; // "apps/v1" or "v1"
  bool supports(std::string_view verb) const;
};

enum class PatchType { kMerge, kJson, kStrategicMerge };

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::int64_t limit = 500;     // page size; pages are followed to the end
  std::string resource_version; // "" (most recent) or "0" (any, from cache)
};

struct ObjectList {
  std::vector<nlohmann::json> items; // with apiVersion and kind filled in
  std::string resource_version;      // of the list: where a watch continues
};

struct ApplyOptions {
  std::string field_manager = "capstan";
  bool force = false;   // take over fields other managers own
  bool dry_run = false; // dryRun=All
  // fieldValidation: Strict (unknown or duplicate fields are errors, kubectl's default), Warn
  // or Ignore.
  std::string field_validation = "Strict";
};

struct WriteOptions {
  std::string field_manager; // "" leaves it to the server
  bool dry_run = false;
};

enum class Propagation { kDefault, kBackground, kForeground, kOrphan };

struct DeleteOptions {
  Propagation propagation = Propagation::kBackground;
  std::optional<std::int64_t> grace_period_seconds;
  bool dry_run = false;
  std::string precondition_uid; // delete only this incarnation
};

// What the client has done so far (all copies of a client together).
struct ClientStats {
  std::uint64_t requests = 0;  // HTTP requests sent, retries included
  std::uint64_t retries = 0;   // of them, repeats
  std::uint64_t throttled = 0; // requests that waited for the rate limit
};

// A raw HTTP answer.
struct Response {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers; // lower-case names
};

namespace detail {
struct Shared;
}

class Client {
public:
  // Throws Error(kConfiguration) for a config it cannot use (no server).
  explicit Client(ClusterConfig config, ClientOptions options = {});

  // A view of the same client whose calls give up with Error(kCancelled) once `cancelled`
  // returns true (it is polled while waiting: for the network, a retry, the rate limit).
  Client with_cancel(std::function<bool()> cancelled) const;

  const ClusterConfig& config() const;
  const ClientOptions& options() const;
  // The context's namespace, else "default".
  std::string default_namespace() const;

  // --- Raw requests (path and query after the server URL; "/api/v1/namespaces") ---
  // Retries, rate limit, credentials and transport errors apply; the status is not checked.
  Response raw(std::string_view method, std::string_view path, std::string_view body = {},
               std::string_view content_type = {}) const;
  // As raw(), but a status >= 400 throws the Error its Status describes; returns the body
  // parsed (null for an empty body).
  nlohmann::json request(std::string_view method, std::string_view path, std::string_view body = {},
                         std::string_view content_type = {}) const;

  // The server's version (GET /version): a cheap check that the cluster is reachable and the
  // credentials are accepted.
  nlohmann::json server_version() const;

  // --- Discovery (cached; refreshed once when a kind is missing) ---
  // Throws Error(kUnsupportedKind) naming the kinds the cluster serves in that group, or the
  // groups it serves when the group itself is unknown.
  ResourceInfo resource(std::string_view api_version, std::string_view kind) const;
  std::optional<ResourceInfo> find_resource(std::string_view api_version,
                                            std::string_view kind) const;
  // Every resource type the server serves (main resources, not subresources).
  std::vector<ResourceInfo> served_resources() const;
  // Forgets the cached discovery (after CRDs were added, say).
  void invalidate_discovery() const;
  // Whether objects of this kind are namespaced (discovery; false for unknown kinds).
  bool is_namespaced(std::string_view api_version, std::string_view kind) const;

  // The URL path of a collection or an object: /apis/apps/v1/namespaces/ns/deployments/name/sub.
  static std::string path(const ResourceInfo& info, std::string_view ns, std::string_view name = {},
                          std::string_view subresource = {});

  // --- Verbs ---
  nlohmann::json get(const ObjectRef& ref) const;
  std::optional<nlohmann::json> try_get(const ObjectRef& ref) const; // nullopt when NotFound
  // All pages. `ns` "" lists across namespaces (or a cluster-scoped kind).
  ObjectList list(std::string_view api_version, std::string_view kind, std::string_view ns,
                  const ListOptions& options = {}) const;
  // Server-side apply (PATCH application/apply-patch+yaml). The object's namespace defaults to
  // nothing: set it for namespaced kinds. Returns the object as the server has it.
  nlohmann::json apply(const nlohmann::json& object, const ApplyOptions& options = {}) const;
  nlohmann::json create(const nlohmann::json& object, const WriteOptions& options = {}) const;
  // PUT; the object's resourceVersion makes it conditional (409 Conflict when stale).
  nlohmann::json update(const nlohmann::json& object, const WriteOptions& options = {}) const;
  nlohmann::json patch(const ObjectRef& ref, PatchType type, std::string_view body,
                       const WriteOptions& options = {}, std::string_view subresource = {}) const;
  // false when the object was already gone.
  bool remove(const ObjectRef& ref, const DeleteOptions& options = {}) const;

  // The scale subresource (autoscaling/v1 Scale).
  nlohmann::json get_scale(const ObjectRef& ref) const;
  nlohmann::json scale(const ObjectRef& ref, std::int64_t replicas, bool dry_run = false) const;

  // Events about one object (by its uid, else kind + name), oldest first.
  std::vector<nlohmann::json> events_for(const nlohmann::json& object) const;

  ClientStats stats() const;

private:
  Client(std::shared_ptr<detail::Shared> shared, std::function<bool()> cancelled);
  friend class Watch;

  Response send(std::string_view method, std::string_view path, std::string_view body,
                std::string_view content_type, bool idempotent) const;
  bool cancelled() const { return cancelled_ && cancelled_(); }

  std::shared_ptr<detail::Shared> shared_;
  std::function<bool()> cancelled_;
};

// "2024-05-01T10:00:00Z" from a time point, as the API writes timestamps.
std::string format_rfc3339(std::chrono::system_clock::time_point t);

} // namespace capstan::kube
