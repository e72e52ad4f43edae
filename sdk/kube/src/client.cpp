// The Kubernetes client: requests with retries and rate limiting, discovery, verbs.
#include "capstan/kube/client.h"

#include <algorithm>
#include <ctime>
#include <random>
#include <set>
#include <thread>

#include "json_fields.h"
#include "shared.h"

namespace capstan::kube {

using detail::Shared;
using nlohmann::json;

namespace detail {

RateLimiter::RateLimiter(double qps, int burst)
    : qps_(qps), burst_(std::max(1, burst)), tokens_(std::max(1, burst)),
      last_(std::chrono::steady_clock::now()) {}

bool RateLimiter::acquire(const std::function<bool()>& cancelled) {
  if (qps_ <= 0) return false;
  bool waited = false;
  for (;;) {
    std::chrono::milliseconds wait{0};
    {
      std::lock_guard lock(mutex_);
      auto now = std::chrono::steady_clock::now();
      double elapsed = std::chrono::duration<double>(now - last_).count();
      last_ = now;
      tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
      if (tokens_ >= 1) {
        tokens_ -= 1;
        return waited;
      }
      wait = std::chrono::milliseconds(static_cast<long>((1 - tokens_) / qps_ * 1000) + 1);
    }
    waited = true;
    sleep_cancellable(std::min(wait, std::chrono::milliseconds(50)), cancelled);
  }
}

void sleep_cancellable(std::chrono::milliseconds d, const std::function<bool()>& cancelled) {
  auto until = std::chrono::steady_clock::now() + d;
  for (;;) {
    if (cancelled && cancelled()) throw Error(ErrorKind::kCancelled, "cancelled");
    auto now = std::chrono::steady_clock::now();
    if (now >= until) return;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(50)));
  }
}

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

} // namespace detail

namespace {

std::pair<std::string, std::string> split_api_version(std::string_view api_version) {
  auto slash = api_version.find('/');
  if (slash == std::string_view::npos) return {"", std::string(api_version)};
  return {std::string(api_version.substr(0, slash)), std::string(api_version.substr(slash + 1))};
}

std::string gv_path(const std::string& api_version) {
  return api_version.find('/') == std::string::npos ? "/api/" + api_version
                                                    : "/apis/" + api_version;
}

std::chrono::milliseconds backoff(const ClientOptions& o, int attempt) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  auto base = o.retry_base * (1LL << std::min(attempt, 16));
  auto capped = std::min<std::chrono::milliseconds>(base, o.retry_max);
  std::uniform_int_distribution<long> jitter(0, capped.count() / 2);
  return capped / 2 + std::chrono::milliseconds(jitter(rng)); // between half and all of it
}

std::optional<std::chrono::seconds> retry_after(const std::map<std::string, std::string>& h) {
  auto it = h.find("retry-after");
  if (it == h.end()) return std::nullopt;
  try {
    long v = std::stol(it->second);
    if (v >= 0) return std::chrono::seconds(v);
  } catch (...) {
  }
  return std::nullopt;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string propagation_name(Propagation p) {
  switch (p) {
  case Propagation::kBackground:
    return "Background";
  case Propagation::kForeground:
    return "Foreground";
  case Propagation::kOrphan:
    return "Orphan";
  case Propagation::kDefault:
    break;
  }
  return "";
}

} // namespace

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

ObjectRef ObjectRef::of(const json& object) {
  ObjectRef r;
  if (!object.is_object()) return r;
  r.api_version = detail::text(object, "apiVersion");
  r.kind = detail::text(object, "kind");
  if (auto m = object.find("metadata"); m != object.end() && m->is_object()) {
    r.namespace_ = detail::text(*m, "namespace");
    r.name = detail::text(*m, "name");
  }
  return r;
}

std::string ObjectRef::str() const {
  return namespace_.empty() ? kind + "/" + name : kind + "/" + namespace_ + "/" + name;
}

std::string ResourceInfo::api_version() const {
  return group.empty() ? version : group + "/" + version;
}

bool ResourceInfo::supports(std::string_view verb) const {
  return std::find(verbs.begin(), verbs.end(), verb) != verbs.end();
}

Client::Client(ClusterConfig config, ClientOptions options) {
  if (config.server.empty()) {
    throw Error(ErrorKind::kConfiguration, "the cluster configuration has no server URL");
  }
  shared_ = std::make_shared<Shared>(std::move(config), options);
}

Client::Client(std::shared_ptr<detail::Shared> shared, std::function<bool()> cancelled)
    : shared_(std::move(shared)), cancelled_(std::move(cancelled)) {}

Client Client::with_cancel(std::function<bool()> cancelled) const {
  return Client(shared_, std::move(cancelled));
}

const ClusterConfig& Client::config() const {
  return shared_->transport.config();
}
const ClientOptions& Client::options() const {
  return shared_->options;
}

std::string Client::default_namespace() const {
  const auto& ns = config().namespace_;
  return ns.empty() ? "default" : ns;
}

ClientStats Client::stats() const {
  return {shared_->requests.load(), shared_->retries.load(), shared_->throttled.load()};
}

Response Client::send(std::string_view method, std::string_view path, std::string_view body,
                      std::string_view content_type, bool idempotent) const {
  Shared& s = *shared_;
  detail::HttpRequest req;
  req.method = std::string(method);
  req.path = std::string(path);
  req.body = std::string(body);
  req.content_type = std::string(content_type);
  req.timeout = s.options.request_timeout;
  const std::string what = req.method + " " + req.path.substr(0, req.path.find('?'));
  bool reauthenticated = false;
  std::function<bool()> cancel = cancelled_;
  for (int attempt = 0;; ++attempt) {
    if (cancelled()) throw Error(ErrorKind::kCancelled, what + ": cancelled");
    if (s.limiter.acquire(cancel)) ++s.throttled;
    ++s.requests;
    if (attempt > 0) ++s.retries;
    detail::HttpResult r = s.transport.perform(req, cancel);
    bool last = attempt >= s.options.max_retries;
    if (r.code != CURLE_OK) {
      Error e = detail::transport_error(r, config().server, what);
      if (e.is(ErrorKind::kCancelled)) throw e;
      bool safe = idempotent || !r.connected;
      if (e.is(ErrorKind::kConnectivity) && safe && !last) {
        detail::sleep_cancellable(backoff(s.options, attempt), cancel);
        continue;
      }
      throw e;
    }
    if (r.status == 401 && !reauthenticated && s.transport.credentials().invalidate()) {
      reauthenticated = true; // a rotated token or an expired exec credential: fetch anew
      --attempt;
      continue;
    }
    auto after = retry_after(r.headers);
    bool retry = false;
    switch (r.status) {
    case 429:
      retry = true;
      break;
    case 503:
    case 504:
      retry = idempotent || after.has_value();
      break;
    case 500:
    case 502:
      retry = after.has_value() || (idempotent && r.status == 502);
      break;
    default:
      break;
    }
    if (retry && !last) {
      auto wait = backoff(s.options, attempt);
      if (after) {
        wait = std::max<std::chrono::milliseconds>(
            wait, std::min<std::chrono::milliseconds>(*after, s.options.retry_after_max));
      }
      detail::sleep_cancellable(wait, cancel);
      continue;
    }
    return Response{static_cast<int>(r.status), std::move(r.body), std::move(r.headers)};
  }
}

Response Client::raw(std::string_view method, std::string_view path, std::string_view body,
                     std::string_view content_type) const {
  bool idempotent = method == "GET" || method == "PUT" || method == "DELETE" || method == "HEAD";
  return send(method, path, body, content_type, idempotent);
}

json Client::request(std::string_view method, std::string_view path, std::string_view body,
                     std::string_view content_type) const {
  Response r = raw(method, path, body, content_type);
  std::string what = std::string(method) + " " + std::string(path.substr(0, path.find('?')));
  if (r.status >= 400) throw error_from_response(r.status, r.body, what, retry_after(r.headers));
  if (r.body.empty()) return nullptr;
  json out = json::parse(r.body, nullptr, false);
  if (out.is_discarded()) {
    throw Error(ErrorKind::kProtocol, what + ": the server's answer is not JSON");
  }
  return out;
}

json Client::server_version() const {
  return request("GET", "/version");
}

// --- discovery ---

namespace {

std::vector<ResourceInfo> parse_resource_list(const json& list, const std::string& api_version) {
  auto [group, version] = split_api_version(api_version);
  std::vector<ResourceInfo> out;
  std::set<std::string> subresources_status, subresources_scale;
  const json resources = list.value("resources", json::array());
  for (const auto& r : resources) {
    std::string name = detail::text(r, "name");
    auto slash = name.find('/');
    if (slash != std::string::npos) {
      std::string sub = name.substr(slash + 1);
      if (sub == "status") subresources_status.insert(name.substr(0, slash));
      if (sub == "scale") subresources_scale.insert(name.substr(0, slash));
    }
  }
  for (const auto& r : resources) {
    std::string name = detail::text(r, "name");
    if (name.find('/') != std::string::npos) continue;
    ResourceInfo info;
    info.group = detail::text(r, "group").empty() ? group : detail::text(r, "group");
    info.version = detail::text(r, "version").empty() ? version : detail::text(r, "version");
    info.kind = detail::text(r, "kind");
    info.resource = name;
    info.namespaced = r.value("namespaced", false);
    for (const auto& v : r.value("verbs", json::array())) {
      if (v.is_string()) info.verbs.push_back(v.get<std::string>());
    }
    for (const auto& v : r.value("shortNames", json::array())) {
      if (v.is_string()) info.short_names.push_back(v.get<std::string>());
    }
    info.has_status = subresources_status.count(name) > 0;
    info.has_scale = subresources_scale.count(name) > 0;
    out.push_back(std::move(info));
  }
  return out;
}

} // namespace

namespace {

// Fetches one group version's resources (not cached here).
detail::GroupVersion fetch_group_version(const Client& c, const std::string& api_version) {
  detail::GroupVersion gv;
  gv.fetched = std::chrono::steady_clock::now();
  Response r = c.raw("GET", gv_path(api_version));
  if (r.status == 404) return gv;
  if (r.status >= 400) {
    throw error_from_response(r.status, r.body, "discovery of " + api_version);
  }
  json list = json::parse(r.body, nullptr, false);
  if (!list.is_object()) {
    throw Error(ErrorKind::kProtocol, "discovery of " + api_version + ": the answer is not JSON");
  }
  gv.served = true;
  gv.resources = parse_resource_list(list, api_version);
  return gv;
}

std::vector<std::string> fetch_group_versions(const Client& c) {
  std::vector<std::string> out;
  json core = c.request("GET", "/api");
  for (const auto& v : core.value("versions", json::array())) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  json groups = c.request("GET", "/apis");
  for (const auto& g : groups.value("groups", json::array())) {
    for (const auto& v : g.value("versions", json::array())) {
      std::string gv = detail::text(v, "groupVersion");
      if (!gv.empty()) out.push_back(gv);
    }
  }
  return out;
}

} // namespace

std::optional<ResourceInfo> Client::find_resource(std::string_view api_version,
                                                  std::string_view kind) const {
  Shared& s = *shared_;
  std::string gv(api_version);
  for (int pass = 0; pass < 2; ++pass) {
    {
      std::lock_guard lock(s.discovery_mutex);
      auto it = s.discovery.find(gv);
      if (it != s.discovery.end()) {
        for (const auto& r : it->second.resources) {
          if (r.kind == kind) return r;
        }
        // A miss on a fresh entry is final; an older one is fetched again (new CRDs).
        if (pass == 1 ||
            std::chrono::steady_clock::now() - it->second.fetched < std::chrono::seconds(2)) {
          return std::nullopt;
        }
      }
    }
    detail::GroupVersion fresh = fetch_group_version(*this, gv);
    std::lock_guard lock(s.discovery_mutex);
    s.discovery[gv] = std::move(fresh);
  }
  return std::nullopt;
}

ResourceInfo Client::resource(std::string_view api_version, std::string_view kind) const {
  if (auto r = find_resource(api_version, kind)) return *r;
  std::string gv(api_version);
  Shared& s = *shared_;
  bool served = false;
  std::vector<std::string> kinds;
  {
    std::lock_guard lock(s.discovery_mutex);
    const auto& entry = s.discovery[gv];
    served = entry.served;
    for (const auto& r : entry.resources) kinds.push_back(r.kind);
  }
  std::string k(kind);
  // Where else the kind is served helps with an outdated apiVersion (extensions/v1beta1 ...).
  std::vector<std::string> elsewhere;
  for (const auto& r : served_resources()) {
    if (r.kind == k) elsewhere.push_back(r.api_version());
  }
  std::string hint =
      elsewhere.empty() ? "" : "; " + k + " is served as " + join(elsewhere, " and ");
  if (served) {
    std::sort(kinds.begin(), kinds.end());
    kinds.erase(std::unique(kinds.begin(), kinds.end()), kinds.end());
    throw Error(ErrorKind::kUnsupportedKind,
                "the cluster does not serve kind " + k + " in " + gv + " (" + gv + " serves: " +
                    (kinds.empty() ? std::string("nothing") : join(kinds)) + ")" + hint);
  }
  std::vector<std::string> gvs;
  {
    std::lock_guard lock(s.discovery_mutex);
    if (s.served_group_versions) gvs = *s.served_group_versions;
  }
  throw Error(ErrorKind::kUnsupportedKind, "the cluster does not serve apiVersion " + gv +
                                               " (kind " + k + ")" + hint +
                                               " (served API versions: " + join(gvs) + ")");
}

std::vector<ResourceInfo> Client::served_resources() const {
  Shared& s = *shared_;
  std::vector<std::string> gvs;
  {
    std::lock_guard lock(s.discovery_mutex);
    if (s.served_group_versions) gvs = *s.served_group_versions;
  }
  if (gvs.empty()) {
    gvs = fetch_group_versions(*this);
    std::lock_guard lock(s.discovery_mutex);
    s.served_group_versions = gvs;
  }
  std::vector<ResourceInfo> out;
  for (const auto& gv : gvs) {
    bool have = false;
    {
      std::lock_guard lock(s.discovery_mutex);
      auto it = s.discovery.find(gv);
      if (it != s.discovery.end() && it->second.served) {
        have = true;
        out.insert(out.end(), it->second.resources.begin(), it->second.resources.end());
      }
    }
    if (have) continue;
    detail::GroupVersion fresh = fetch_group_version(*this, gv);
    out.insert(out.end(), fresh.resources.begin(), fresh.resources.end());
    std::lock_guard lock(s.discovery_mutex);
    s.discovery[gv] = std::move(fresh);
  }
  return out;
}

void Client::invalidate_discovery() const {
  std::lock_guard lock(shared_->discovery_mutex);
  shared_->discovery.clear();
  shared_->served_group_versions.reset();
}

bool Client::is_namespaced(std::string_view api_version, std::string_view kind) const {
  auto r = find_resource(api_version, kind);
  return r && r->namespaced;
}

std::string Client::path(const ResourceInfo& info, std::string_view ns, std::string_view name,
                         std::string_view subresource) {
  std::string p = gv_path(info.api_version());
  if (info.namespaced && !ns.empty()) p += "/namespaces/" + detail::url_encode(ns);
  p += "/" + info.resource;
  if (!name.empty()) p += "/" + detail::url_encode(name);
  if (!subresource.empty()) p += "/" + std::string(subresource);
  return p;
}

// --- verbs ---

namespace {

void check_ref(const ObjectRef& ref) {
  if (ref.api_version.empty() || ref.kind.empty()) {
    throw Error(ErrorKind::kBadRequest, "an object needs apiVersion and kind (got '" +
                                            ref.api_version + "', '" + ref.kind + "')");
  }
}

std::string object_path(const Client& c, const ObjectRef& ref, std::string_view sub = {}) {
  check_ref(ref);
  ResourceInfo info = c.resource(ref.api_version, ref.kind);
  if (ref.name.empty()) throw Error(ErrorKind::kBadRequest, ref.kind + " without a name");
  std::string ns = ref.namespace_;
  if (info.namespaced && ns.empty()) ns = c.default_namespace();
  return Client::path(info, ns, ref.name, sub);
}

void add_query(std::string& path, const std::string& key, const std::string& value) {
  if (value.empty()) return;
  path += (path.find('?') == std::string::npos ? "?" : "&") + key + "=" + detail::url_encode(value);
}

} // namespace

json Client::get(const ObjectRef& ref) const {
  return request("GET", object_path(*this, ref));
}

std::optional<json> Client::try_get(const ObjectRef& ref) const {
  std::string p = object_path(*this, ref);
  Response r = raw("GET", p);
  if (r.status == 404) return std::nullopt;
  if (r.status >= 400) throw error_from_response(r.status, r.body, "GET " + p);
  json out = json::parse(r.body, nullptr, false);
  if (!out.is_object()) throw Error(ErrorKind::kProtocol, "GET " + p + ": the answer is not JSON");
  return out;
}

ObjectList Client::list(std::string_view api_version, std::string_view kind, std::string_view ns,
                        const ListOptions& options) const {
  ResourceInfo info = resource(api_version, kind);
  ObjectList out;
  std::string cont;
  for (;;) {
    std::string p = path(info, ns);
    add_query(p, "labelSelector", options.label_selector);
    add_query(p, "fieldSelector", options.field_selector);
    if (options.limit > 0) add_query(p, "limit", std::to_string(options.limit));
    add_query(p, "continue", cont);
    if (cont.empty()) add_query(p, "resourceVersion", options.resource_version);
    json page = request("GET", p);
    for (auto& item : page.value("items", json::array())) {
      if (!item.is_object()) continue;
      item["apiVersion"] = info.api_version();
      item["kind"] = info.kind;
      out.items.push_back(std::move(item));
    }
    const json meta = page.value("metadata", json::object());
    out.resource_version = detail::text(meta, "resourceVersion");
    cont = detail::text(meta, "continue");
    if (cont.empty()) break;
  }
  return out;
}

json Client::apply(const json& object, const ApplyOptions& options) const {
  ObjectRef ref = ObjectRef::of(object);
  check_ref(ref);
  ResourceInfo info = resource(ref.api_version, ref.kind);
  json body = object;
  std::string ns = ref.namespace_;
  if (info.namespaced) {
    if (ns.empty()) {
      ns = default_namespace();
      body["metadata"]["namespace"] = ns;
    }
  } else if (!ns.empty()) {
    body["metadata"].erase("namespace"); // a cluster-scoped object has none
    ns.clear();
  }
  if (ref.name.empty()) throw Error(ErrorKind::kBadRequest, ref.kind + " without metadata.name");
  std::string p = path(info, ns, ref.name);
  add_query(p, "fieldManager", options.field_manager);
  if (options.force) add_query(p, "force", "true");
  if (options.dry_run) add_query(p, "dryRun", "All");
  add_query(p, "fieldValidation", options.field_validation);
  // JSON is YAML: the apply body goes as JSON under the apply media type.
  Response r = send("PATCH", p, body.dump(), "application/apply-patch+yaml", true);
  if (r.status >= 400) {
    throw error_from_response(r.status, r.body, "apply " + ref.str(), retry_after(r.headers));
  }
  return json::parse(r.body, nullptr, false);
}

json Client::create(const json& object, const WriteOptions& options) const {
  ObjectRef ref = ObjectRef::of(object);
  check_ref(ref);
  ResourceInfo info = resource(ref.api_version, ref.kind);
  std::string ns = ref.namespace_;
  if (info.namespaced && ns.empty()) ns = default_namespace();
  std::string p = path(info, ns);
  add_query(p, "fieldManager", options.field_manager);
  if (options.dry_run) add_query(p, "dryRun", "All");
  return request("POST", p, object.dump(), "application/json");
}

json Client::update(const json& object, const WriteOptions& options) const {
  std::string p = object_path(*this, ObjectRef::of(object));
  add_query(p, "fieldManager", options.field_manager);
  if (options.dry_run) add_query(p, "dryRun", "All");
  return request("PUT", p, object.dump(), "application/json");
}

json Client::patch(const ObjectRef& ref, PatchType type, std::string_view body,
                   const WriteOptions& options, std::string_view subresource) const {
  std::string p = object_path(*this, ref, subresource);
  add_query(p, "fieldManager", options.field_manager);
  if (options.dry_run) add_query(p, "dryRun", "All");
  const char* ct = type == PatchType::kMerge  ? "application/merge-patch+json"
                   : type == PatchType::kJson ? "application/json-patch+json"
                                              : "application/strategic-merge-patch+json";
  // A JSON patch with "test" ops or list appends is not safe to repeat; merge patches are.
  Response r = send("PATCH", p, body, ct, type != PatchType::kJson);
  if (r.status >= 400) {
    throw error_from_response(r.status, r.body, "patch " + ref.str(), retry_after(r.headers));
  }
  return json::parse(r.body, nullptr, false);
}

bool Client::remove(const ObjectRef& ref, const DeleteOptions& options) const {
  std::string p = object_path(*this, ref);
  json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (auto prop = propagation_name(options.propagation); !prop.empty()) {
    body["propagationPolicy"] = prop;
  }
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (options.dry_run) body["dryRun"] = json::array({"All"});
  if (!options.precondition_uid.empty())
    body["preconditions"] = {{"uid", options.precondition_uid}};
  Response r = send("DELETE", p, body.dump(), "application/json", true);
  if (r.status == 404) return false;
  if (r.status >= 400) {
    throw error_from_response(r.status, r.body, "delete " + ref.str(), retry_after(r.headers));
  }
  return true;
}

json Client::get_scale(const ObjectRef& ref) const {
  check_ref(ref);
  ResourceInfo info = resource(ref.api_version, ref.kind);
  if (!info.has_scale) {
    throw Error(ErrorKind::kBadRequest, ref.kind + " has no scale subresource; only kinds "
                                                   "such as Deployment, StatefulSet and "
                                                   "ReplicaSet can be scaled");
  }
  return request("GET", object_path(*this, ref, "scale"));
}

json Client::scale(const ObjectRef& ref, std::int64_t replicas, bool dry_run) const {
  get_scale(ref); // checks the kind can be scaled and the object exists
  json body = {{"spec", {{"replicas", replicas}}}};
  WriteOptions o;
  o.dry_run = dry_run;
  return patch(ref, PatchType::kMerge, body.dump(), o, "scale");
}

std::vector<json> Client::events_for(const json& object) const {
  ObjectRef ref = ObjectRef::of(object);
  std::string uid;
  if (auto m = object.find("metadata"); m != object.end() && m->is_object())
    uid = detail::text(*m, "uid");
  ListOptions o;
  o.field_selector = uid.empty()
                         ? "involvedObject.kind=" + ref.kind + ",involvedObject.name=" + ref.name
                         : "involvedObject.uid=" + uid;
  auto events = list("v1", "Event", ref.namespace_, o).items;
  auto when = [](const json& e) {
    for (const char* k : {"lastTimestamp", "eventTime", "firstTimestamp"}) {
      std::string t = detail::text(e, k);
      if (!t.empty()) return t;
    }
    return detail::text(e.value("metadata", json::object()), "creationTimestamp");
  };
  std::stable_sort(events.begin(), events.end(),
                   [&](const json& a, const json& b) { return when(a) < when(b); });
  return events;
}

} // namespace capstan::kube
