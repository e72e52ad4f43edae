// Routes of the HTTP API: apply, run, executions, logs (with long-poll watch), delegates.
#include "api/http_api.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <map>
#include <set>
#include <thread>

#include "api/json_views.h"
#include "capstan/wire/codec.h"
#include "model/object.h"

namespace capstan::api {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxBody = 32u * 1024 * 1024;
constexpr int kMaxWaitSeconds = 60;

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void error(httplib::Response& res, int status, const std::string& code, const std::string& message,
           const json& details = json::array()) {
  reply(res, status, {{"error", {{"code", code}, {"message", message}, {"details", details}}}});
}

void answer(httplib::Response& res, const engine::Outcome& o) {
  if (o.ok()) {
    reply(res, o.status, o.body);
  } else {
    error(res, o.status, o.code, o.message, o.details);
  }
}

// A JSON request body; nullopt (with the response written) when it is not a JSON object.
std::optional<json> body_of(const httplib::Request& req, httplib::Response& res) {
  if (req.body.empty()) return json::object();
  try {
    auto j = json::parse(req.body);
    if (!j.is_object()) {
      error(res, 400, "BadRequest", "the request body must be a JSON object");
      return std::nullopt;
    }
    return j;
  } catch (const json::parse_error& e) {
    error(res, 400, "BadRequest", std::string("the request body is not valid JSON: ") + e.what());
    return std::nullopt;
  }
}

// An integer query parameter within [lo, hi]; nullopt (with the response written) when invalid.
std::optional<std::int64_t> int_param(const httplib::Request& req, httplib::Response& res,
                                      const std::string& name, std::int64_t fallback,
                                      std::int64_t lo, std::int64_t hi) {
  if (!req.has_param(name.c_str())) return fallback;
  auto text = req.get_param_value(name.c_str());
  try {
    std::size_t used = 0;
    auto v = std::stoll(text, &used);
    if (used != text.size() || v < lo || v > hi) throw std::out_of_range("range");
    return v;
  } catch (const std::exception&) {
    error(res, 400, "BadRequest",
          "query parameter '" + name + "' must be an integer from " + std::to_string(lo) + " to " +
              std::to_string(hi) + ", not '" + text + "'");
    return std::nullopt;
  }
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace

struct HttpApi::Impl {
  store::Store& store;
  engine::Engine& engine;
  engine::ChangeFeed& feed;
  ApiOptions options;
  httplib::Server server;
  int bound_port = 0;
  std::thread thread;

  Impl(store::Store& s, engine::Engine& e, engine::ChangeFeed& f, ApiOptions o)
      : store(s), engine(e), feed(f), options(std::move(o)) {
    // Long-polls hold a thread each; leave room for them and for ordinary calls.
    server.new_task_queue = [] { return new httplib::ThreadPool(32); };
    server.set_payload_max_length(kMaxBody);
    server.set_read_timeout(30, 0);
    server.set_write_timeout(30, 0);
    server.set_keep_alive_max_count(1000);
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (req.path == "/healthz" || req.path == "/metrics") {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      auto auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      if (auth.rfind(prefix, 0) != 0 ||
          !constant_time_equal(auth.substr(prefix.size()), options.token)) {
        res.set_header("WWW-Authenticate", "Bearer");
        error(res, 401, "Unauthorized",
              "missing or wrong bearer token; the CLI reads it from the coordinator's data dir "
              "(api-token) or CAPSTAN_TOKEN");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    server.set_exception_handler(
        [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown error";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) { // NOLINT(bugprone-empty-catch): reported below
          }
          spdlog::error("{} {}: {}", req.method, req.path, what);
          error(res, 500, "Internal", "internal error: " + what);
        });
    server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 404) {
        error(res, 404, "NotFound", "no such endpoint: " + req.method + " " + req.path);
      } else if (res.status == 413) {
        error(res, 413, "TooLarge", "request body exceeds " + std::to_string(kMaxBody) + " bytes");
      }
    });
    routes();
  }

  void routes() {
    server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      reply(res, 200, {{"status", "ok"}});
    });
    server.Get("/api/v1/version", [this](const httplib::Request&, httplib::Response& res) {
      reply(res, 200,
            {{"version", options.version},
             {"wireProtocol", wire::kProtocolVersion},
             {"schemaVersion", store::schema_version()},
             {"coordinatorId", options.coordinator_id}});
    });
    server.Post("/api/v1/apply",
                [this](const httplib::Request& req, httplib::Response& res) { apply(req, res); });
    server.Get(R"(/api/v1/objects/([a-zA-Z]+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 json items = json::array();
                 for (const auto& o : store.objects(req.matches[1])) {
                   items.push_back(to_json(o, false));
                 }
                 reply(res, 200, {{"items", items}});
               });
    server.Get(R"(/api/v1/objects/([a-zA-Z]+)/([^/]+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 auto o = store.object(req.matches[1], req.matches[2]);
                 if (!o) {
                   return error(res, 404, "NotFound",
                                std::string(req.matches[1]) + " '" + std::string(req.matches[2]) +
                                    "' not found");
                 }
                 reply(res, 200, to_json(*o, true));
               });
    server.Post(R"(/api/v1/pipelines/([^/]+)/executions)",
                [this](const httplib::Request& req, httplib::Response& res) { run(req, res); });
    server.Get("/api/v1/executions", [this](const httplib::Request& req, httplib::Response& res) {
      store::ExecutionFilter f;
      f.pipeline = req.get_param_value("pipeline");
      f.status = req.get_param_value("status");
      auto limit = int_param(req, res, "limit", 50, 1, 1000);
      if (!limit) return;
      f.limit = static_cast<int>(*limit);
      json items = json::array();
      for (const auto& e : store.executions(f)) items.push_back(to_json(e, false));
      reply(res, 200, {{"items", items}});
    });
    server.Get(R"(/api/v1/executions/([^/]+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 auto e = find_execution(req.matches[1], res);
                 if (e) reply(res, 200, to_json(*e, true));
               });
    server.Post(R"(/api/v1/executions/([^/]+)/abort)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  auto e = find_execution(req.matches[1], res);
                  if (!e) return;
                  answer(res, engine.abort(e->id).get());
                });
    server.Get(R"(/api/v1/executions/([^/]+)/logs)", [this](const httplib::Request& req,
                                                            httplib::Response& res) {
      auto e = find_execution(req.matches[1], res);
      if (!e) return;
      auto after = int_param(req, res, "after", 0, 0, INT64_MAX);
      auto limit = after ? int_param(req, res, "limit", 1000, 1, 10000) : std::nullopt;
      if (!after || !limit) return;
      auto lines = store.logs(e->id, *after, static_cast<int>(*limit), req.get_param_value("step"));
      reply(res, 200, logs_body(lines, *after));
    });
    server.Get(R"(/api/v1/executions/([^/]+)/watch)",
               [this](const httplib::Request& req, httplib::Response& res) { watch(req, res); });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(options.metrics ? options.metrics() : std::string(),
                      "text/plain; version=0.0.4; charset=utf-8");
    });
    server.Get("/api/v1/tokens", [this](const httplib::Request&, httplib::Response& res) {
      std::map<std::string, int> sessions;
      for (const auto& d : engine.delegates()) ++sessions[d.token];
      json items = json::array();
      for (const auto& t : store.tokens()) {
        items.push_back({{"name", t.name},
                         {"createdAt", t.created_at},
                         {"revoked", t.revoked_at != 0},
                         {"revokedAt", t.revoked_at ? json(t.revoked_at) : json(nullptr)},
                         {"lastUsedAt", t.last_used_at ? json(t.last_used_at) : json(nullptr)},
                         {"connectedDelegates", t.revoked_at ? 0 : sessions[t.name]}});
      }
      reply(res, 200, {{"items", items}});
    });
    server.Post("/api/v1/tokens", [this](const httplib::Request& req, httplib::Response& res) {
      auto body = body_of(req, res);
      if (!body) return;
      auto name = body->find("name");
      if (name == body->end() || !name->is_string()) {
        return error(res, 400, "BadRequest", "'name' (a string) is required");
      }
      answer(res, engine.create_token(name->get<std::string>()).get());
    });
    server.Delete(R"(/api/v1/tokens/([^/]+))",
                  [this](const httplib::Request& req, httplib::Response& res) {
                    answer(res, engine.revoke_token(req.matches[1]).get());
                  });
    server.Get("/api/v1/delegates", [this](const httplib::Request&, httplib::Response& res) {
      json items = json::array();
      std::set<std::string> connected;
      for (const auto& d : engine.delegates()) {
        connected.insert(d.name);
        items.push_back(to_json(d));
      }
      for (const auto& d : store.delegates()) {
        if (!connected.count(d.name)) items.push_back(to_json(d));
      }
      reply(res, 200, {{"items", items}});
    });
  }

  std::optional<store::ExecutionRecord> find_execution(const std::string& id,
                                                       httplib::Response& res) {
    auto e = store.execution(id);
    if (!e) {
      error(res, 404, "NotFound",
            "execution '" + id + "' not found (or the prefix matches more than one)");
    }
    return e;
  }

  static json logs_body(const std::vector<store::LogRecord>& lines, std::int64_t after) {
    json items = json::array();
    std::int64_t next = after;
    for (const auto& l : lines) {
      items.push_back(to_json(l));
      next = l.seq;
    }
    return {{"lines", items}, {"next", next}};
  }

  void apply(const httplib::Request& req, httplib::Response& res) {
    auto body = body_of(req, res);
    if (!body) return;
    auto files = body->find("files");
    if (files == body->end() || !files->is_array() || files->empty()) {
      return error(res, 400, "BadRequest",
                   "'files' must be a non-empty list of {\"name\": ..., \"content\": ...}");
    }
    std::vector<model::SourceFile> sources;
    for (const auto& f : *files) {
      if (!f.is_object() || !f.contains("content") || !f["content"].is_string() ||
          (f.contains("name") && !f["name"].is_string())) {
        return error(res, 400, "BadRequest",
                     "each entry of 'files' needs a string 'content' and may have a 'name'");
      }
      sources.push_back({f.value("name", "<request>"), f["content"].get<std::string>()});
    }
    bool dry_run = body->value("dryRun", false);
    std::vector<model::Object> objects;
    try {
      objects = model::parse_objects(sources);
    } catch (const model::ValidationError& e) {
      json details = json::array();
      for (const auto& p : e.problems()) {
        details.push_back({{"location", p.location}, {"message", p.message}});
      }
      return error(res, 422, "InvalidInput",
                   std::to_string(e.problems().size()) + " problem(s) in the applied documents",
                   details);
    }
    if (objects.empty()) {
      return error(res, 422, "InvalidInput", "the files contain no documents");
    }
    answer(res, engine.apply(std::move(objects), dry_run).get());
  }

  void run(const httplib::Request& req, httplib::Response& res) {
    auto body = body_of(req, res);
    if (!body) return;
    std::map<std::string, std::string> vars;
    if (body->contains("variables")) {
      const auto& v = (*body)["variables"];
      if (!v.is_object()) return error(res, 400, "BadRequest", "'variables' must be an object");
      for (const auto& [k, val] : v.items()) {
        if (val.is_string()) {
          vars[k] = val.get<std::string>();
        } else if (val.is_number() || val.is_boolean()) {
          vars[k] = val.dump();
        } else {
          return error(res, 400, "BadRequest", "variable '" + k + "' must be a scalar");
        }
      }
    }
    answer(res, engine.run(req.matches[1], std::move(vars)).get());
  }

  // Long-poll: returns when the execution's revision passes `revision`, log lines after
  // `after` exist, the execution has ended, or `wait` seconds pass.
  void watch(const httplib::Request& req, httplib::Response& res) {
    auto revision = int_param(req, res, "revision", 0, 0, INT64_MAX);
    auto after = revision ? int_param(req, res, "after", 0, 0, INT64_MAX) : std::nullopt;
    auto wait = after ? int_param(req, res, "wait", 25, 0, kMaxWaitSeconds) : std::nullopt;
    if (!revision || !after || !wait) return;
    std::string step = req.get_param_value("step");
    auto deadline = Clock::now() + std::chrono::seconds(*wait);
    engine::Position seen{*revision, *after};
    while (true) {
      auto e = find_execution(req.matches[1], res);
      if (!e) return;
      auto lines = store.logs(e->id, *after, 1000, step);
      bool finished = store::status::terminal(e->status);
      if (e->revision > *revision || !lines.empty() || finished || Clock::now() >= deadline) {
        json body = logs_body(lines, *after);
        body["execution"] = to_json(*e, true);
        return reply(res, 200, body);
      }
      seen.revision = std::max(seen.revision, e->revision);
      if (auto now = feed.wait(e->id, seen, deadline)) {
        seen = *now;
      } else {
        // Not tracked (it just ended, or the coordinator is stopping): read the store again
        // shortly; this path is taken at most a few times per watch.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
};

HttpApi::HttpApi(store::Store& store, engine::Engine& engine, engine::ChangeFeed& feed,
                 ApiOptions options)
    : impl_(std::make_unique<Impl>(store, engine, feed, std::move(options))) {}

HttpApi::~HttpApi() {
  stop();
}

void HttpApi::start() {
  auto& o = impl_->options;
  if (o.port == 0) {
    impl_->bound_port = impl_->server.bind_to_any_port(o.host.c_str());
  } else if (impl_->server.bind_to_port(o.host.c_str(), o.port)) {
    impl_->bound_port = o.port;
  }
  if (impl_->bound_port <= 0) {
    throw std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                             " (in use? pick another with --api-port)");
  }
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
}

void HttpApi::stop() {
  if (impl_->thread.joinable()) {
    impl_->server.stop();
    impl_->thread.join();
  }
}

int HttpApi::port() const {
  return impl_->bound_port;
}

} // namespace capstan::api
