// Routing of Kubernetes API paths to the cluster, with Status errors, Tables and watch streams.
#include "api_server.h"

#include "capstan/sandbox/api_error.h"
#include "capstan/sandbox/patch.h"
#include "capstan/sandbox/util.h"
#include "discovery.h"
#include "protobuf_body.h"
#include "tables.h"

#include <openssl/crypto.h>

#include <cstdio>
#include <random>
#include <thread>

namespace capstan::sandbox {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxBody = 3 * 1024 * 1024;

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i >= path.size()) break;
    auto j = path.find('/', i);
    out.push_back(path.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j;
  }
  return out;
}

void send_json(httplib::Response& res, int code, const json& body) {
  res.status = code;
  res.set_content(body.dump(), "application/json");
}

// Compresses responses the way kube-apiserver does: gzip only, and only bodies of at least 128 KiB
// (smaller ones cost more CPU to compress than they save on the wire). Left alone, the HTTP
// library would compress every JSON body, with brotli at its slowest setting when the client
// offers "br" (libcurl does), which cost more than serving the request itself. The library picks
// the encoding from the request's Accept-Encoding after the handler returns, so that header is
// narrowed here; the Request it hands to handlers is its own non-const object.
void limit_compression(const httplib::Request& req, const httplib::Response& res) {
  constexpr std::size_t kGzipThreshold = 128 * 1024;
  auto it = req.headers.find("Accept-Encoding");
  if (it == req.headers.end()) return;
  auto& headers = const_cast<httplib::Headers&>(req.headers);
  const bool gzip =
      res.body.size() >= kGzipThreshold && it->second.find("gzip") != std::string::npos;
  headers.erase("Accept-Encoding");
  if (gzip) headers.emplace("Accept-Encoding", "gzip");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.code(), e.status());
}

std::string param(const httplib::Request& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : "";
}

bool truthy(const std::string& v) {
  return v == "true" || v == "1";
}

struct Target {
  std::string group, version;
  std::string ns;
  std::string plural;
  std::string name;
  std::string subresource;
};

std::string strip_params(const std::string& media) {
  auto semi = media.find(';');
  std::string m = semi == std::string::npos ? media : media.substr(0, semi);
  while (!m.empty() && m.back() == ' ') m.pop_back();
  while (!m.empty() && m.front() == ' ') m.erase(0, 1);
  return m;
}

struct Accept {
  bool table = false;
  std::string include_object = "Metadata";
};

Accept negotiate(const httplib::Request& req) {
  Accept a;
  std::string accept = req.get_header_value("Accept");
  if (accept.find("as=Table") != std::string::npos) a.table = true;
  if (!accept.empty() && accept.find("json") == std::string::npos &&
      accept.find("*/*") == std::string::npos && accept.find("yaml") == std::string::npos &&
      accept.find("application/*") == std::string::npos)
    throw ApiError::not_acceptable("only the following media types are accepted: "
                                   "application/json, application/yaml");
  std::string inc = param(req, "includeObject");
  if (!inc.empty()) a.include_object = inc;
  return a;
}

WriteOptions write_options(const httplib::Request& req, std::vector<std::string>* warnings) {
  WriteOptions o;
  o.warnings = warnings;
  std::string dry = param(req, "dryRun");
  if (!dry.empty() && dry != "All")
    throw ApiError::bad_request("dryRun: Unsupported value: \"" + dry +
                                "\": supported values: \"All\"");
  o.dry_run = dry == "All";
  o.manager = param(req, "fieldManager");
  if (o.manager.size() > 128)
    throw ApiError::invalid(
        "PatchOptions", "meta.k8s.io", "",
        {{"FieldValueTooLong", "Too long: may not be more than 128 bytes", "fieldManager"}});
  if (o.manager.empty()) {
    std::string ua = req.get_header_value("User-Agent");
    o.manager = ua.substr(0, ua.find('/'));
    if (o.manager.size() > 128) o.manager.resize(128);
  }
  std::string fv = param(req, "fieldValidation");
  if (fv.empty() || fv == "Warn")
    o.validation = FieldValidation::kWarn;
  else if (fv == "Strict")
    o.validation = FieldValidation::kStrict;
  else if (fv == "Ignore")
    o.validation = FieldValidation::kIgnore;
  else
    throw ApiError::bad_request("fieldValidation: Unsupported value: \"" + fv +
                                "\": supported values: \"Ignore\", \"Strict\", \"Warn\"");
  std::string force = param(req, "force");
  o.force = truthy(force);
  return o;
}

json with_version(const ResourceType& t, json o) {
  o["apiVersion"] = t.api_version();
  return o;
}

std::string encode_continue(std::int64_t rv, const std::string& after) {
  return base64_encode(json{{"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", after}}.dump());
}

std::optional<std::string> decode_continue(const std::string& token) {
  auto raw = base64_decode(token);
  if (!raw) return std::nullopt;
  json j = json::parse(*raw, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("start") || !j["start"].is_string())
    return std::nullopt;
  return j["start"].get<std::string>();
}

std::string object_key_name(const json& o) {
  const json& m = o["metadata"];
  return m.value("namespace", "") + "/" + m.value("name", "");
}

} // namespace

ApiServer::ApiServer(Cluster& cluster, std::string token, bool log_requests)
    : cluster_(cluster), token_(std::move(token)), log_requests_(log_requests) {}

void ApiServer::install(httplib::Server& server) {
  auto h = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
  server.Get(".*", h);
  server.Post(".*", h);
  server.Put(".*", h);
  server.Patch(".*", h);
  server.Delete(".*", h);
  server.Options(".*", h);
  server.set_payload_max_length(kMaxBody + 1);
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      send_error(res, ApiError::too_large("Request entity too large: limit is " +
                                          std::to_string(kMaxBody)));
    } else if (res.status == 400) {
      send_error(res, ApiError::bad_request("malformed HTTP request"));
    } else {
      send_json(res, res.status,
                ApiError(res.status, "",
                         "the server could not serve the request (HTTP " +
                             std::to_string(res.status) + ")")
                    .status());
    }
  });
}

bool ApiServer::authenticated(const httplib::Request& req) const {
  std::string auth = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (auth.size() <= prefix.size() || auth.compare(0, prefix.size(), prefix) != 0) return false;
  std::string given = auth.substr(prefix.size());
  while (!given.empty() && given.back() == ' ') given.pop_back();
  return given.size() == token_.size() &&
         CRYPTO_memcmp(given.data(), token_.data(), token_.size()) == 0;
}

void ApiServer::handle(const httplib::Request& req, httplib::Response& res) {
  ++requests_;
  if (req.has_param("watch") && truthy(req.get_param_value("watch"))) ++watches_;
  try {
    serve(req, res);
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const json::exception& e) {
    send_error(res, ApiError::bad_request(std::string("malformed object: ") + e.what()));
  } catch (const std::exception& e) {
    send_error(res, ApiError::internal(e.what()));
  }
  limit_compression(req, res);
  if (res.status >= 500) ++errors_;
  if (log_requests_)
    std::fprintf(stderr, "%s %s%s%s %d\n", req.method.c_str(), req.path.c_str(),
                 req.params.empty() ? "" : "?", "", res.status);
}

void ApiServer::serve(const httplib::Request& req, httplib::Response& res) {
  const std::string& path = req.path;
  if (path == "/healthz" || path == "/livez" || path == "/readyz") {
    res.set_content("ok", "text/plain");
    return;
  }
  if (!authenticated(req)) {
    send_json(res, 401,
              {{"kind", "Status"},
               {"apiVersion", "v1"},
               {"metadata", json::object()},
               {"status", "Failure"},
               {"message", "Unauthorized"},
               {"reason", "Unauthorized"},
               {"code", 401}});
    return;
  }
  if (req.body.size() > kMaxBody)
    throw ApiError::too_large("Request entity too large: limit is " + std::to_string(kMaxBody));
  auto seg = split_path(path);
  if (req.method == "GET" && path == "/metrics") {
    std::string m = "# TYPE capstan_sandbox_requests_total counter\n"
                    "capstan_sandbox_requests_total " +
                    std::to_string(requests_.load()) +
                    "\n"
                    "# TYPE capstan_sandbox_watch_requests_total counter\n"
                    "capstan_sandbox_watch_requests_total " +
                    std::to_string(watches_.load()) +
                    "\n"
                    "# TYPE capstan_sandbox_server_errors_total counter\n"
                    "capstan_sandbox_server_errors_total " +
                    std::to_string(errors_.load()) +
                    "\n"
                    "# TYPE capstan_sandbox_resource_version gauge\n"
                    "capstan_sandbox_resource_version " +
                    std::to_string(cluster_.store().resource_version()) + "\n";
    res.set_content(m, "text/plain; version=0.0.4");
    return;
  }
  if (req.method == "GET") {
    if (path == "/version" || path == "/version/") return send_json(res, 200, version_info());
    if (path == "/api" || path == "/api/") return send_json(res, 200, api_versions(address_));
    if (path == "/apis" || path == "/apis/")
      return send_json(res, 200, api_group_list(cluster_.registry()));
    if (path == "/openapi/v2")
      throw ApiError(404, "NotFound", "the server could not find the requested resource");
    if (path == "/openapi/v3" || path == "/openapi/v3/")
      return send_json(res, 200, openapi_index(cluster_.registry()));
    if (seg.size() >= 2 && seg[0] == "openapi" && seg[1] == "v3") {
      std::optional<json> doc;
      if (seg.size() == 4 && seg[2] == "api")
        doc = openapi_document(cluster_.registry(), "", seg[3]);
      if (seg.size() == 5 && seg[2] == "apis")
        doc = openapi_document(cluster_.registry(), seg[3], seg[4]);
      if (!doc) throw ApiError(404, "NotFound", "the server could not find the requested resource");
      res.set_header("Cache-Control", "no-cache, private");
      return send_json(res, 200, *doc);
    }
  }
  // Resource paths: /api/v1/..., /apis/<group>/<version>/...
  Target tg;
  std::size_t i = 0;
  if (seg.size() >= 2 && seg[0] == "api") {
    tg.version = seg[1];
    i = 2;
  } else if (seg.size() >= 2 && seg[0] == "apis") {
    tg.group = seg[1];
    if (seg.size() == 2) {
      if (req.method != "GET") throw ApiError::method_not_allowed("method not allowed");
      auto g = api_group(cluster_.registry(), tg.group);
      if (!g) throw ApiError(404, "NotFound", "the server could not find the requested resource");
      return send_json(res, 200, *g);
    }
    tg.version = seg[2];
    i = 3;
  } else {
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  std::vector<std::string> rest(seg.begin() + static_cast<std::ptrdiff_t>(i), seg.end());
  if (rest.empty()) {
    if (req.method != "GET") throw ApiError::method_not_allowed("method not allowed");
    auto list = api_resource_list(cluster_.registry(), tg.group, tg.version);
    if (!list) throw ApiError(404, "NotFound", "the server could not find the requested resource");
    return send_json(res, 200, *list);
  }
  if (rest[0] == "namespaces" && rest.size() >= 3 &&
      !(rest.size() == 3 && (rest[2] == "status" || rest[2] == "finalize"))) {
    tg.ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  if (rest.size() > 3)
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  tg.plural = rest[0];
  if (rest.size() >= 2) tg.name = rest[1];
  if (rest.size() == 3) tg.subresource = rest[2];
  auto type = cluster_.registry().find(tg.group, tg.version, tg.plural);
  if (!type) throw ApiError(404, "NotFound", "the server could not find the requested resource");
  const ResourceType& t = *type;
  if (t.namespaced && tg.ns.empty() && !tg.name.empty())
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  if (!t.namespaced && !tg.ns.empty())
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  if (!tg.subresource.empty() &&
      !((tg.subresource == "status" && (t.status_subresource || t.kind == "Namespace")) ||
        (tg.subresource == "scale" && t.scale_subresource) ||
        (tg.subresource == "finalize" && t.kind == "Namespace")))
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  if (!tg.name.empty()) {
    if (auto e = check_dns1123_subdomain(tg.name); !e.empty() &&
                                                   tg.name.find(':') == std::string::npos &&
                                                   t.kind != "CustomResourceDefinition") {
      // Names that could never exist are simply not found, as upstream answers.
      if (req.method == "GET" || req.method == "DELETE")
        throw ApiError::not_found(t.group, t.plural, tg.name);
    }
  }

  Accept accept = negotiate(req);
  std::vector<std::string> warnings;
  auto finish = [&](int code, const json& body) {
    for (const auto& w : warnings) {
      std::string escaped;
      for (char c : w) {
        if (c == '"' || c == '\\') escaped += '\\';
        escaped += c;
      }
      res.set_header("Warning", "299 - \"" + escaped + "\"");
    }
    send_json(res, code, body);
  };
  auto body_kind = [&](bool allow_yaml) {
    std::string ct = strip_params(req.get_header_value("Content-Type"));
    if (ct.empty() || ct == "application/json") return false;
    if (allow_yaml && (ct == "application/yaml" || ct == "application/x-yaml" || ct == "text/yaml"))
      return true;
    throw ApiError::unsupported_media_type(ct);
  };

  if (req.method == "GET") {
    if (!tg.name.empty()) {
      json o = cluster_.get(t, tg.ns, tg.name);
      if (tg.subresource == "scale") return finish(200, cluster_.scale_of(t, o));
      if (accept.table && tg.subresource.empty())
        return finish(
            200, make_table(t, {o}, accept.include_object,
                            {{"resourceVersion", o["metadata"].value("resourceVersion", "")}}));
      return finish(200, o);
    }
    LabelSelector labels = LabelSelector::parse(param(req, "labelSelector"));
    FieldSelector fields = FieldSelector::parse(param(req, "fieldSelector"));
    if (truthy(param(req, "watch"))) {
      std::int64_t from = 0;
      std::string rv = param(req, "resourceVersion");
      if (!rv.empty()) {
        try {
          from = std::stoll(rv);
        } catch (const std::exception&) {
          throw ApiError::bad_request("resourceVersion: Invalid value: \"" + rv +
                                      "\": must be an integer");
        }
      }
      bool initial = truthy(param(req, "sendInitialEvents"));
      if (initial) from = 0;
      bool bookmarks = truthy(param(req, "allowWatchBookmarks"));
      long timeout = 1800 + static_cast<long>(std::random_device{}() % 1800);
      if (auto ts = param(req, "timeoutSeconds"); !ts.empty()) {
        try {
          timeout = std::stol(ts);
        } catch (const std::exception&) {
          throw ApiError::bad_request("timeoutSeconds: Invalid value: \"" + ts + "\"");
        }
      }
      std::string ns = tg.ns;
      if (auto fns = fields.required("metadata.namespace"); fns && t.namespaced && ns.empty())
        ns = *fns;
      auto watcher = cluster_.store().watch(
          t.storage_key(), t.namespaced ? ns : "", from, [labels, fields](const Change& c) {
            const json& o = *c.object;
            return labels.matches(o.value("/metadata/labels"_json_pointer, json::object())) &&
                   fields.matches(o);
          });
      auto start_rv = cluster_.store().resource_version();
      res.status = 200;
      auto table = accept.table;
      auto include = accept.include_object;
      auto type_copy = t;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
      auto gone_rv = from;
      auto initial_done = std::make_shared<bool>(!initial);
      Store* store = &cluster_.store();
      const std::atomic<bool>* stopping = &stopping_;
      // Not plain "application/json": that would be gzip-compressed, and the compressor holds
      // events back until the stream ends.
      res.set_chunked_content_provider(
          "application/json;stream=watch",
          [=](std::size_t, httplib::DataSink& sink) mutable {
            if (!watcher) {
              json err = {
                  {"type", "ERROR"},
                  {"object", ApiError(410, "Expired",
                                      "too old resource version: " + std::to_string(gone_rv) +
                                          " (" + std::to_string(start_rv) + ")")
                                 .status()}};
              std::string line = err.dump() + "\n";
              sink.write(line.data(), line.size());
              sink.done();
              return true;
            }
            auto last_write = std::chrono::steady_clock::now();
            std::int64_t last_rv = start_rv;
            while (true) {
              if (stopping->load() || std::chrono::steady_clock::now() >= deadline) break;
              auto changes = watcher->next(std::chrono::milliseconds(500));
              std::string out;
              for (const auto& c : changes) {
                json obj = with_version(type_copy, *c.object);
                if (table)
                  obj = make_table(
                      type_copy, {obj}, include,
                      {{"resourceVersion", obj["metadata"].value("resourceVersion", "")}});
                out += json{{"type", c.type}, {"object", obj}}.dump();
                out += "\n";
                last_rv = std::max(last_rv, c.rv);
              }
              if (!*initial_done) {
                *initial_done = true;
                json bm = {{"type", "BOOKMARK"},
                           {"object",
                            {{"kind", type_copy.kind},
                             {"apiVersion", type_copy.api_version()},
                             {"metadata",
                              {{"resourceVersion", std::to_string(start_rv)},
                               {"annotations", {{"k8s.io/initial-events-end", "true"}}}}}}}};
                out += bm.dump() + "\n";
              }
              auto now = std::chrono::steady_clock::now();
              if (out.empty() && now - last_write > std::chrono::seconds(bookmarks ? 5 : 10)) {
                if (bookmarks) {
                  json bm = {{"type", "BOOKMARK"},
                             {"object",
                              {{"kind", type_copy.kind},
                               {"apiVersion", type_copy.api_version()},
                               {"metadata",
                                {{"resourceVersion", std::to_string(std::max(
                                                         last_rv, store->resource_version()))}}}}}};
                  out = bm.dump() + "\n";
                } else {
                  out = "\n"; // whitespace between objects: finds clients that went away
                }
              }
              if (!out.empty()) {
                if (!sink.write(out.data(), out.size())) return false;
                last_write = now;
              }
              if (watcher->closed()) break;
            }
            sink.done();
            return true;
          },
          [store, watcher](bool) {
            if (watcher) store->unwatch(watcher);
          });
      return;
    }
    std::int64_t rv = 0;
    std::string ns = tg.ns;
    if (auto fns = fields.required("metadata.namespace"); fns && t.namespaced && ns.empty())
      ns = *fns;
    auto objects = cluster_.store().list(t.storage_key(), t.namespaced ? ns : "", &rv);
    std::optional<std::string> after;
    if (auto token = param(req, "continue"); !token.empty()) {
      after = decode_continue(token);
      if (!after) throw ApiError::bad_request("continue key is not valid: illegal base64 data");
    }
    long long limit = 0;
    if (auto l = param(req, "limit"); !l.empty()) {
      try {
        limit = std::stoll(l);
      } catch (const std::exception&) {
        throw ApiError::bad_request("limit: Invalid value: \"" + l + "\"");
      }
    }
    std::vector<json> items;
    std::string next_token;
    long long remaining = 0;
    for (const auto& o : objects) {
      if (!labels.matches(o->value("/metadata/labels"_json_pointer, json::object()))) continue;
      if (!fields.matches(*o)) continue;
      if (after && object_key_name(*o) <= *after) continue;
      if (limit > 0 && static_cast<long long>(items.size()) >= limit) {
        ++remaining;
        continue;
      }
      items.push_back(with_version(t, *o));
    }
    json list_meta = {{"resourceVersion", std::to_string(rv)}};
    if (remaining > 0 && !items.empty()) {
      list_meta["continue"] = encode_continue(rv, object_key_name(items.back()));
      list_meta["remainingItemCount"] = remaining;
    }
    if (accept.table) return finish(200, make_table(t, items, accept.include_object, list_meta));
    return finish(200, {{"kind", t.list_kind},
                        {"apiVersion", t.api_version()},
                        {"metadata", list_meta},
                        {"items", items}});
  }

  if (req.method == "POST") {
    if (!tg.name.empty())
      throw ApiError::method_not_allowed("POST is not supported on a named " + t.kind);
    WriteOptions opts = write_options(req, &warnings);
    json obj = strip_params(req.get_header_value("Content-Type")) == kProtobufMediaType
                   ? decode_protobuf_object(req.body)
                   : cluster_.decode(req.body, body_kind(true), t, opts);
    json created = cluster_.create(t, tg.ns, std::move(obj), opts);
    return finish(201, created);
  }

  if (req.method == "PUT") {
    if (tg.name.empty()) throw ApiError::method_not_allowed("PUT needs a resource name");
    WriteOptions opts = write_options(req, &warnings);
    opts.subresource = tg.subresource;
    if (tg.subresource == "scale") {
      json scale = json::parse(req.body, nullptr, false);
      if (scale.is_discarded() || !scale.is_object())
        throw ApiError::bad_request("the body of the request is not a valid Scale object");
      json current = cluster_.get(t, tg.ns, tg.name);
      std::string rv = scale.value("/metadata/resourceVersion"_json_pointer, std::string());
      if (!rv.empty() && rv != current["metadata"].value("resourceVersion", ""))
        throw ApiError::conflict(t.group, t.plural, tg.name,
                                 "the object has been modified; please apply your changes to the "
                                 "latest version and try again");
      json replicas = scale.value("/spec/replicas"_json_pointer, json(0));
      if (!replicas.is_number_integer() || replicas.get<long long>() < 0)
        throw ApiError::invalid(
            "Scale", "autoscaling", tg.name,
            {{"FieldValueInvalid",
              "Invalid value: " + replicas.dump() + ": must be greater than or equal to 0",
              "spec.replicas"}});
      json patch = json::object();
      if (t.custom)
        json_path_set(patch, t.spec_replicas_path, replicas);
      else
        patch = {{"spec", {{"replicas", replicas}}}};
      WriteOptions po = opts;
      po.subresource = "scale";
      json updated = cluster_.patch(t, tg.ns, tg.name, "merge", patch.dump(), po);
      return finish(200, cluster_.scale_of(t, updated));
    }
    json obj = cluster_.decode(req.body, body_kind(true), t, opts);
    return finish(200, cluster_.update(t, tg.ns, tg.name, std::move(obj), opts));
  }

  if (req.method == "PATCH") {
    if (tg.name.empty()) throw ApiError::method_not_allowed("PATCH needs a resource name");
    WriteOptions opts = write_options(req, &warnings);
    opts.subresource = tg.subresource == "scale" ? "scale" : tg.subresource;
    std::string ct = strip_params(req.get_header_value("Content-Type"));
    std::string kind;
    if (ct == "application/merge-patch+json")
      kind = "merge";
    else if (ct == "application/json-patch+json")
      kind = "json";
    else if (ct == "application/strategic-merge-patch+json")
      kind = "strategic";
    else if (ct == "application/apply-patch+yaml")
      kind = "apply";
    else
      throw ApiError(415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json-patch+json, application/merge-patch+json, "
                     "application/apply-patch+yaml, application/strategic-merge-patch+json");
    if (kind == "apply" && param(req, "fieldManager").empty())
      throw ApiError::invalid(
          "PatchOptions", "meta.k8s.io", "",
          {{"FieldValueRequired", "Required value: is required for apply patch", "fieldManager"}});
    if (kind != "apply" && param(req, "force") != "")
      throw ApiError::bad_request("force: Forbidden: may not be specified for non-apply patch");
    if (tg.subresource == "scale") {
      json current = cluster_.get(t, tg.ns, tg.name);
      json scale = cluster_.scale_of(t, current);
      json patched;
      json doc = json::parse(req.body, nullptr, false);
      if (doc.is_discarded())
        throw ApiError::bad_request("the body of the request is not valid JSON");
      if (kind == "merge" || kind == "strategic")
        patched = apply_merge_patch(scale, doc);
      else if (kind == "json")
        patched = apply_json_patch(scale, doc);
      else
        throw ApiError(415, "UnsupportedMediaType",
                       "apply is not supported on the scale subresource");
      json replicas = patched.value("/spec/replicas"_json_pointer, json(0));
      if (!replicas.is_number_integer() || replicas.get<long long>() < 0)
        throw ApiError::invalid(
            "Scale", "autoscaling", tg.name,
            {{"FieldValueInvalid",
              "Invalid value: " + replicas.dump() + ": must be greater than or equal to 0",
              "spec.replicas"}});
      json patch = json::object();
      if (t.custom)
        json_path_set(patch, t.spec_replicas_path, replicas);
      else
        patch = {{"spec", {{"replicas", replicas}}}};
      json updated = cluster_.patch(t, tg.ns, tg.name, "merge", patch.dump(), opts);
      return finish(200, cluster_.scale_of(t, updated));
    }
    ObjectPtr existed = cluster_.store().get({t.storage_key(), t.namespaced ? tg.ns : "", tg.name});
    json out = cluster_.patch(t, tg.ns, tg.name, kind, req.body, opts);
    return finish(kind == "apply" && !existed ? 201 : 200, out);
  }

  if (req.method == "DELETE") {
    DeleteOptions d;
    json body = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
      throw ApiError::bad_request("the body of a DELETE must be a DeleteOptions object");
    d.propagation = body.value("propagationPolicy", param(req, "propagationPolicy"));
    if (!d.propagation.empty() && d.propagation != "Orphan" && d.propagation != "Background" &&
        d.propagation != "Foreground")
      throw ApiError::invalid(
          "DeleteOptions", "meta.k8s.io", "",
          {{"FieldValueNotSupported",
            "Unsupported value: \"" + d.propagation +
                "\": supported values: \"Foreground\", \"Background\", \"Orphan\"",
            "propagationPolicy"}});
    if (body.contains("gracePeriodSeconds") && body["gracePeriodSeconds"].is_number_integer())
      d.grace_period_seconds = body["gracePeriodSeconds"].get<long long>();
    else if (auto g = param(req, "gracePeriodSeconds"); !g.empty())
      d.grace_period_seconds = std::stoll(g);
    if (body.contains("orphanDependents") && body["orphanDependents"].is_boolean() &&
        d.propagation.empty())
      d.propagation = body["orphanDependents"].get<bool>() ? "Orphan" : "Background";
    d.precondition_uid = body.value("/preconditions/uid"_json_pointer, std::string());
    d.precondition_rv = body.value("/preconditions/resourceVersion"_json_pointer, std::string());
    d.dry_run = param(req, "dryRun") == "All" ||
                (body.contains("dryRun") && body["dryRun"].is_array() && !body["dryRun"].empty());
    if (!tg.name.empty()) {
      if (!tg.subresource.empty())
        throw ApiError::method_not_allowed("DELETE is not supported on a subresource");
      json out = cluster_.remove(t, tg.ns, tg.name, d);
      return finish(200, with_version(t, out));
    }
    LabelSelector labels = LabelSelector::parse(param(req, "labelSelector"));
    FieldSelector fields = FieldSelector::parse(param(req, "fieldSelector"));
    std::int64_t rv = 0;
    json items = json::array();
    for (const auto& o : cluster_.store().list(t.storage_key(), t.namespaced ? tg.ns : "", &rv)) {
      if (!labels.matches(o->value("/metadata/labels"_json_pointer, json::object())) ||
          !fields.matches(*o))
        continue;
      try {
        items.push_back(cluster_.remove(t, (*o)["metadata"].value("namespace", ""),
                                        (*o)["metadata"].value("name", ""), d));
      } catch (const ApiError& e) {
        if (e.code() != 404) throw;
      }
    }
    return finish(
        200,
        {{"kind", t.list_kind},
         {"apiVersion", t.api_version()},
         {"metadata", {{"resourceVersion", std::to_string(cluster_.store().resource_version())}}},
         {"items", items}});
  }
  throw ApiError::method_not_allowed(
      "the server does not allow this method on the requested resource");
}

} // namespace capstan::sandbox
