// Routes of the HTTP API: apply, run, executions, logs (with long-poll watch), delegates.
#include "api/http_api.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <unordered_map>

#include "api/json_views.h"
#include "capstan/apps/label_selector.h"
#include "capstan/wire/codec.h"
#include "model/gitops_steps.h"
#include "model/object.h"
#include "model/step_types.h"

namespace capstan::api {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxBody = 32u * 1024 * 1024;
constexpr int kAppPage = 500;              // applications read from the store at a time
constexpr std::int64_t kMaxAppPage = 5000; // the largest `limit` of GET /api/v1/apps

// Where an application or ApplicationSet is held, and why not when it is not.
json assignment_view(const std::optional<store::AppStateRecord>& st) {
  json assignment = {{"delegate", st ? st->delegate : ""},
                     {"epoch", st ? st->epoch : 0},
                     {"assignedAt", st ? st->assigned_at : 0},
                     {"statusAt", st ? st->status_at : 0}};
  if (st && !st->message.empty()) assignment["message"] = st->message;
  return assignment;
}

// A GitOps application: the applied document, where it is reconciled, the last status. Written
// from the stored JSON texts: a listing of thousands parses none of them.
std::string app_view(const store::AppListItem& a) {
  return R"({"apiVersion":"argoproj.io/v1alpha1","kind":"Application","metadata":)" +
         a.metadata_json + R"(,"spec":)" + a.spec_json + R"(,"status":)" + a.status_json +
         R"(,"assignment":)" + assignment_view(a.state).dump() +
         (a.unreadable.empty() ? "" : R"(,"unreadable":)" + json(a.unreadable).dump()) + "}";
}

// The `continue` token of a listing: opaque to clients (base64url of where the next page
// starts), so that what it holds may change.
std::string encode_continue(const std::string& after) {
  const std::string raw = json{{"v", 1}, {"after", after}}.dump();
  std::string out(sodium_base64_ENCODED_LEN(raw.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                    raw.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::optional<std::string> decode_continue(const std::string& token) {
  std::string raw(token.size(), '\0');
  std::size_t len = 0;
  if (token.empty() || sodium_base642bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(),
                                         token.data(), token.size(), nullptr, &len, nullptr,
                                         sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return std::nullopt;
  }
  raw.resize(len);
  json j = json::parse(raw, nullptr, false);
  if (!j.is_object() || j.value("v", 0) != 1 || !j.contains("after") || !j["after"].is_string())
    return std::nullopt;
  return j["after"].get<std::string>();
}
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
constexpr const char* kWebhookPath = "/api/v1/webhooks/git";

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

// Who sent the request, for the audit trail: the CLI sends its user name (configured, or the
// login name) in X-Capstan-User.
std::string user_of(const httplib::Request& req) {
  auto user = req.get_header_value("X-Capstan-User");
  if (user.empty()) return "unknown";
  if (user.size() > 128) user.resize(128);
  for (auto& c : user) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return user;
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
      // A body without framing would be read until the client closes the connection (up to
      // the read timeout): refuse it before reading, as HTTP's 411 Length Required says.
      if ((req.method == "POST" || req.method == "PUT" || req.method == "PATCH") &&
          !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
        res.set_header("Connection", "close");
        error(res, 411, "LengthRequired",
              req.method + " " + req.path +
                  " has no Content-Length: send the body with its length (an empty body as "
                  "Content-Length: 0)");
        return httplib::Server::HandlerResponse::Handled;
      }
      // Git hosts cannot send the API token: webhooks prove themselves with the webhook
      // secret instead (checked by the handler).
      if (req.path == "/healthz" || req.path == "/metrics" || req.path == kWebhookPath) {
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
          } catch (const store::StoredValueDamaged& e) {
            // Named by where it is and why, never quoted (store/stored_json.h).
            spdlog::error("{} {}: {}", req.method, req.path, e.what());
            return error(res, 500, "StoredValueDamaged",
                         std::string("a stored value cannot be read: ") + e.what() +
                             "; restore the data dir from a backup (docs/operations.md)");
          } catch (const nlohmann::json::parse_error& e) {
            // Its own message quotes the text it read, which may be stored content.
            what = "a JSON value does not parse (at byte " + std::to_string(e.byte) + ")";
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
      } else if (res.status == 400) {
        // The HTTP layer refused the request before any handler saw it: a malformed request
        // line or header, or a body that does not match its Content-Length or chunking.
        error(res, 400, "BadRequest",
              "malformed HTTP request for " + req.method + " " + req.path +
                  ": the request line, a header or the body framing could not be read");
      } else if (res.status >= 400) {
        error(res, res.status, "HttpError",
              "request " + req.method + " " + req.path + " refused with HTTP status " +
                  std::to_string(res.status));
      }
    });
    routes();
  }

  // GET /api/v1/apps?limit=&continue=&projects=&selector=: in name order, a page at a time as
  // the Kubernetes API lists (`limit` items, and `metadata.continue` to ask for the rest);
  // without `limit`, every application, streamed: the coordinator holds one page of them at a
  // time.
  void list_apps(const httplib::Request& req, httplib::Response& res) {
    auto limit = int_param(req, res, "limit", 0, 0, kMaxAppPage);
    if (!limit) return;
    std::string after;
    if (req.has_param("continue")) {
      auto from = decode_continue(req.get_param_value("continue"));
      if (!from) {
        return error(res, 400, "BadRequest",
                     "query parameter 'continue' is not a token this API returned: pass the "
                     "metadata.continue of the previous page as it was");
      }
      after = *from;
    }
    // Argo CD's `projects`: repeated, or separated by commas.
    std::set<std::string> projects;
    for (std::size_t i = 0; i < req.get_param_value_count("projects"); ++i) {
      std::string list = req.get_param_value("projects", i);
      for (std::size_t at = 0; at <= list.size();) {
        auto comma = std::min(list.find(',', at), list.size());
        if (comma > at) projects.insert(list.substr(at, comma - at));
        at = comma + 1;
      }
    }
    // Argo CD's `selector`: a Kubernetes label selector over metadata.labels.
    auto selector = std::make_shared<apps::LabelSelector>();
    if (req.get_param_value_count("selector") > 1) {
      return error(res, 400, "BadRequest",
                   "query parameter 'selector' is given more than once: give it once, its "
                   "requirements joined by commas (all must hold)");
    }
    if (req.has_param("selector")) {
      const std::string text = req.get_param_value("selector");
      std::string why;
      auto parsed = apps::LabelSelector::parse(text, why);
      if (!parsed) {
        return error(res, 400, "BadRequest",
                     "query parameter 'selector' is not a label selector: '" + text + "' " + why +
                         " (the syntax is kubectl's -l: key=value, key!=value, key in (a,b), "
                         "key notin (a,b), key, !key, joined by commas)");
      }
      *selector = std::move(*parsed);
    }
    auto wanted = [projects, selector](const store::AppListItem& a) {
      if (!projects.empty() && projects.count(a.project) == 0) return false;
      if (selector->empty()) return true;
      const json metadata = json::parse(a.metadata_json, nullptr, false);
      return selector->matches(metadata.is_object() ? metadata.value("labels", json()) : json());
    };
    if (*limit > 0) {
      std::string items;
      std::int64_t count = 0;
      std::string last = after;
      bool exhausted = false;
      const auto want = static_cast<int>(std::min<std::int64_t>(kAppPage, *limit + 1));
      while (count < *limit && !exhausted) {
        auto page = store.application_page(last, want);
        exhausted = static_cast<int>(page.size()) < want;
        for (std::size_t i = 0; i < page.size(); ++i) {
          last = page[i].name;
          if (wanted(page[i])) {
            items += (count++ == 0 ? "" : ",") + app_view(page[i]);
          }
          if (count == *limit) {
            exhausted = exhausted && i + 1 == page.size();
            break;
          }
        }
      }
      json metadata = json::object();
      if (!exhausted) metadata["continue"] = encode_continue(last);
      res.status = 200;
      res.set_content("{\"items\":[" + items + "],\"metadata\":" + metadata.dump() + "}",
                      "application/json");
      return;
    }
    struct Cursor {
      std::string last;
      bool started = false;
      bool first = true;
    };
    auto cursor = std::make_shared<Cursor>();
    cursor->last = after;
    res.status = 200;
    res.set_chunked_content_provider(
        "application/json", [this, cursor, wanted](std::size_t, httplib::DataSink& sink) {
          try {
            std::string out;
            if (!cursor->started) {
              cursor->started = true;
              out = "{\"items\":[";
            }
            auto page = store.application_page(cursor->last, kAppPage);
            for (const auto& a : page) {
              cursor->last = a.name;
              if (!wanted(a)) continue;
              if (!cursor->first) out += ',';
              cursor->first = false;
              out += app_view(a);
            }
            const bool end = static_cast<int>(page.size()) < kAppPage;
            if (end) out += "],\"metadata\":{}}";
            if (!out.empty() && !sink.write(out.data(), out.size())) return false;
            if (end) sink.done();
            return true;
          } catch (const std::exception& e) {
            spdlog::error("GET /api/v1/apps: {}", e.what());
            return false; // the client sees the answer cut off, not a partial list as whole
          }
        });
  }

  // GET /api/v1/backup: a consistent copy of the live database (Store::backup), streamed from
  // a file the store has already unlinked: it goes when the answer ends, however it ends.
  void send_backup(const httplib::Request& req, httplib::Response& res) {
    const auto started = Clock::now();
    std::shared_ptr<store::Store::Backup> copy;
    try {
      copy = std::make_shared<store::Store::Backup>(store.backup());
    } catch (const store::Store::BackupError& e) {
      spdlog::error("backup for {} failed: {}", user_of(req), e.what());
      if (e.disk_full()) {
        return error(res, 507, "InsufficientStorage",
                     std::string("the backup needs room for a copy of the database in the "
                                 "coordinator's data dir: ") +
                         e.what());
      }
      return error(res, 500, "BackupFailed", std::string("the backup failed: ") + e.what());
    }
    spdlog::info(
        "backup for {}: {} bytes ({} pages) copied in {} ms", user_of(req), copy->bytes,
        copy->pages,
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
    res.status = 200;
    res.set_header("Content-Disposition", "attachment; filename=\"capstan.db\"");
    res.set_header("X-Capstan-Schema-Version", std::to_string(store::schema_version()));
    res.set_content_provider(
        static_cast<std::size_t>(copy->bytes), "application/vnd.sqlite3",
        [copy](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
          char chunk[64 * 1024];
          auto n =
              ::pread(copy->fd, chunk, std::min(length, sizeof chunk), static_cast<off_t>(offset));
          if (n <= 0) return false; // the client sees the answer cut short, not a whole file
          return sink.write(chunk, static_cast<std::size_t>(n));
        });
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
                 const auto* kind = kind_of(req.matches[1], res);
                 if (kind == nullptr) return;
                 json items = json::array();
                 for (const auto& o : store.objects(kind->name, true)) {
                   items.push_back(to_json(o, false));
                 }
                 reply(res, 200, {{"kind", kind->name}, {"items", items}});
               });
    server.Get(R"(/api/v1/objects/([a-zA-Z]+)/([^/]+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 const auto* kind = kind_of(req.matches[1], res);
                 if (kind == nullptr) return;
                 auto version = int_param(req, res, "version", 0, 0, INT64_MAX);
                 if (!version) return;
                 auto o = store.object(kind->name, req.matches[2], *version);
                 if (!o) {
                   return error(res, 404, "NotFound",
                                kind->name + " '" + std::string(req.matches[2]) + "' " +
                                    (*version ? "has no version " + std::to_string(*version)
                                              : std::string("not found")));
                 }
                 reply(res, 200, to_json(*o, true));
               });
    server.Get("/api/v1/apps", [this](const httplib::Request& req, httplib::Response& res) {
      list_apps(req, res);
    });
    server.Get(R"(/api/v1/apps/([^/]+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 auto a = store.application_item(req.matches[1]);
                 if (!a) {
                   return error(res, 404, "NotFound",
                                "application '" + std::string(req.matches[1]) + "' not found");
                 }
                 res.status = 200;
                 res.set_content(app_view(*a), "application/json");
               });
    // ApplicationSets: the applied document, where it is rendered, what it generated.
    auto appset_view = [this](const store::ObjectRecord& o) {
      auto st = store.app_state("applicationset/" + o.identifier);
      json doc = o.model.value("document", json::object());
      json status = st && st->status.is_object() ? st->status : json::object();
      status.erase("reported"); // the generated documents: the applications themselves show them
      json view = {{"apiVersion", "argoproj.io/v1alpha1"},
                   {"kind", "ApplicationSet"},
                   {"metadata", doc.value("metadata", json::object())},
                   {"spec", doc.value("spec", json::object())},
                   {"status", status}};
      view["assignment"] = assignment_view(st);
      return view;
    };
    server.Get("/api/v1/appsets",
               [this, appset_view](const httplib::Request&, httplib::Response& res) {
                 json items = json::array();
                 for (const auto& o : store.objects("applicationSet")) {
                   items.push_back(appset_view(o));
                 }
                 reply(res, 200, {{"items", items}});
               });
    server.Get(R"(/api/v1/appsets/([^/]+))",
               [this, appset_view](const httplib::Request& req, httplib::Response& res) {
                 auto o = store.object("applicationSet", req.matches[1]);
                 if (!o) {
                   return error(res, 404, "NotFound",
                                "ApplicationSet '" + std::string(req.matches[1]) + "' not found");
                 }
                 reply(res, 200, appset_view(*o));
               });
    server.Delete(
        R"(/api/v1/appsets/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
          answer(res, engine.remove("applicationSet", req.matches[1], user_of(req)).get());
        });
    server.Post(R"(/api/v1/appsets/([^/]+)/refresh)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  auto body = body_of(req, res);
                  if (!body) return;
                  if (!body->empty()) {
                    return error(res, 400, "BadRequest", "refresh takes no parameters");
                  }
                  if (!store.object("applicationSet", req.matches[1])) {
                    return error(res, 404, "NotFound",
                                 "ApplicationSet '" + std::string(req.matches[1]) + "' not found");
                  }
                  engine::AppOperationRequest r;
                  r.app = "applicationset/" + std::string(req.matches[1]);
                  r.op = "refresh";
                  r.user = user_of(req);
                  r.params = json::object();
                  try {
                    answer(res, engine.app_operation(std::move(r)).get());
                  } catch (const std::future_error&) {
                    error(res, 503, "ShuttingDown", "the coordinator is shutting down");
                  }
                });
    server.Post(kWebhookPath,
                [this](const httplib::Request& req, httplib::Response& res) { webhook(req, res); });
    server.Post(
        R"(/api/v1/apps/([^/]+)/(sync|refresh|rollback|terminate-op))",
        [this](const httplib::Request& req, httplib::Response& res) { app_operation(req, res); });
    server.Get("/api/v1/prs", [this](const httplib::Request& req, httplib::Response& res) {
      store::PullRequestFilter f;
      f.repository = req.get_param_value("repository");
      f.state = req.get_param_value("state");
      f.execution_id = req.get_param_value("execution");
      if (!f.state.empty() && f.state != "open" && f.state != "merged" && f.state != "closed") {
        return error(res, 400, "InvalidInput",
                     "state must be open, merged or closed, not '" + f.state + "'");
      }
      auto limit = int_param(req, res, "limit", 500, 1, 5000);
      if (!limit) return;
      f.limit = static_cast<int>(*limit);
      json items = json::array();
      for (const auto& p : store.pull_requests(f)) items.push_back(store::to_json(p));
      reply(res, 200, {{"items", items}});
    });
    server.Get(R"(/api/v1/prs/([^/]+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 const std::string text = req.matches[1];
                 std::int64_t number = 0;
                 try {
                   std::size_t used = 0;
                   number = std::stoll(text, &used);
                   if (used != text.size() || number <= 0) throw std::invalid_argument(text);
                 } catch (const std::exception&) {
                   return error(res, 400, "InvalidInput",
                                "a pull request is named by its number, not '" + text + "'");
                 }
                 const std::string repository = req.get_param_value("repository");
                 std::vector<store::PullRequestRecord> found;
                 if (!repository.empty()) {
                   if (auto p = store.pull_request(repository, number)) found.push_back(*p);
                 } else {
                   store::PullRequestFilter f;
                   f.number = number;
                   found = store.pull_requests(f);
                 }
                 if (found.empty()) {
                   return error(res, 404, "NotFound",
                                "pull request #" + text +
                                    (repository.empty() ? "" : " of " + repository) + " not found");
                 }
                 if (found.size() > 1) {
                   std::string repos;
                   for (const auto& p : found) repos += (repos.empty() ? "" : ", ") + p.repository;
                   return error(res, 409, "Ambiguous",
                                "several repositories have a pull request #" + text + " (" + repos +
                                    "); name one with repository=");
                 }
                 reply(res, 200, store::to_json(found.front()));
               });
    server.Get(R"(/api/v1/objects/([a-zA-Z]+)/([^/]+)/versions)",
               [this](const httplib::Request& req, httplib::Response& res) {
                 const auto* kind = kind_of(req.matches[1], res);
                 if (kind == nullptr) return;
                 auto history = store.object_history(kind->name, req.matches[2]);
                 if (history.empty()) {
                   return error(res, 404, "NotFound",
                                kind->name + " '" + std::string(req.matches[2]) + "' not found");
                 }
                 json items = json::array();
                 for (const auto& o : history) items.push_back(to_json(o, false));
                 reply(res, 200, {{"items", items}});
               });
    server.Delete(R"(/api/v1/objects/([a-zA-Z]+)/([^/]+))", [this](const httplib::Request& req,
                                                                   httplib::Response& res) {
      const auto* kind = kind_of(req.matches[1], res);
      if (kind == nullptr) return;
      // Argo CD's cascade: false lets an application go at once, resources kept.
      const std::string cascade = req.get_param_value("cascade");
      if (!cascade.empty() && cascade != "true" && cascade != "false") {
        return error(res, 400, "InvalidInput",
                     "cascade must be true or false, not '" + cascade + "'");
      }
      answer(res,
             engine.remove(kind->name, req.matches[2], user_of(req), cascade != "false").get());
    });
    server.Get("/api/v1/audit", [this](const httplib::Request& req, httplib::Response& res) {
      store::AuditFilter f;
      f.user = req.get_param_value("user");
      f.action = req.get_param_value("action");
      f.kind = req.get_param_value("kind");
      if (!f.kind.empty()) {
        if (const auto* k = model::find_kind(f.kind)) f.kind = k->name;
      }
      f.target = req.get_param_value("target");
      auto before = int_param(req, res, "before", 0, 0, INT64_MAX);
      auto limit = before ? int_param(req, res, "limit", 100, 1, 1000) : std::nullopt;
      if (!before || !limit) return;
      f.before = *before;
      f.limit = static_cast<int>(*limit);
      json items = json::array();
      for (const auto& a : store.audit(f)) items.push_back(to_json(a));
      reply(res, 200, {{"items", items}});
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
                  answer(res, engine.abort(e->id, user_of(req)).get());
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
    server.Post(R"(/api/v1/executions/([^/]+)/approvals)",
                [this](const httplib::Request& req, httplib::Response& res) { approve(req, res); });
    server.Post(
        R"(/api/v1/executions/([^/]+)/interventions)",
        [this](const httplib::Request& req, httplib::Response& res) { intervene(req, res); });
    server.Post(R"(/api/v1/executions/([^/]+)/inputs)",
                [this](const httplib::Request& req, httplib::Response& res) { inputs(req, res); });
    server.Get("/api/v1/waits", [this](const httplib::Request&, httplib::Response& res) {
      json items = json::array();
      for (auto& w : engine.waits()) items.push_back(std::move(w));
      reply(res, 200, {{"items", items}});
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
    server.Get("/api/v1/backup", [this](const httplib::Request& req, httplib::Response& res) {
      send_backup(req, res);
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
    // The step-type catalog: every type a delegate has announced (kept across restarts), with
    // its spec schema, and the types the coordinator runs itself.
    server.Get("/api/v1/steptypes", [this](const httplib::Request&, httplib::Response& res) {
      json items = json::array();
      std::set<std::string> listed;
      for (const auto& t : store.step_types()) {
        json schema = nullptr;
        if (!t.spec_schema.empty()) {
          schema = json::parse(t.spec_schema, nullptr, false);
          if (schema.is_discarded()) schema = nullptr;
        }
        listed.insert(t.type);
        items.push_back({{"type", t.type},
                         {"runsOn", "delegate"},
                         {"plugin", t.plugin},
                         {"pluginVersion", t.plugin_version},
                         {"description", t.description},
                         {"retrySafe", t.retry_safe},
                         {"specSchema", schema},
                         {"lastDelegate", t.delegate},
                         {"lastSeen", t.last_seen}});
      }
      for (const auto& row : model::step_type_table()) {
        if (!row.coordinator || listed.count(std::string(row.type))) continue;
        json item = {{"type", std::string(row.type)}, {"runsOn", "coordinator"}};
        if (const auto& text = model::coordinator_step_schema(row.type); !text.empty()) {
          item["specSchema"] = json::parse(text);
        }
        items.push_back(std::move(item));
      }
      reply(res, 200, {{"items", items}});
    });
  }

  // The kind a path names (by name or alias); nullptr with the response written when unknown.
  static const model::KindSpec* kind_of(const std::string& name, httplib::Response& res) {
    if (const auto* k = model::find_kind(name)) return k;
    std::string list;
    for (const auto& k : model::kinds()) list += (list.empty() ? "" : ", ") + k.name;
    error(res, 404, "NotFound", "unknown kind '" + name + "' (kinds: " + list + ")");
    return nullptr;
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
          (f.contains("name") && !f["name"].is_string()) ||
          (f.contains("dir") && !f["dir"].is_string())) {
        return error(res, 400, "BadRequest",
                     "each entry of 'files' needs a string 'content' and may have a 'name' and "
                     "a 'dir' (the absolute folder it comes from)");
      }
      sources.push_back(
          {f.value("name", "<request>"), f["content"].get<std::string>(), f.value("dir", "")});
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
    answer(res, engine.apply(std::move(objects), dry_run, user_of(req)).get());
  }

  // A string map from a JSON object of scalars; nullopt (with the response written) otherwise.
  static std::optional<std::map<std::string, std::string>>
  scalars(const json& body, const char* key, httplib::Response& res) {
    std::map<std::string, std::string> out;
    if (!body.contains(key)) return out;
    const auto& v = body[key];
    if (!v.is_object()) {
      error(res, 400, "BadRequest", std::string("'") + key + "' must be an object");
      return std::nullopt;
    }
    for (const auto& [k, val] : v.items()) {
      if (val.is_string()) {
        out[k] = val.get<std::string>();
      } else if (val.is_number() || val.is_boolean()) {
        out[k] = val.dump();
      } else {
        error(res, 400, "BadRequest", std::string("'") + key + "." + k + "' must be a scalar");
        return std::nullopt;
      }
    }
    return out;
  }

  static std::string text(const json& body, const char* key) {
    return body.contains(key) && body[key].is_string() ? body[key].get<std::string>() : "";
  }

  void run(const httplib::Request& req, httplib::Response& res) {
    auto body = body_of(req, res);
    if (!body) return;
    engine::RunRequest run;
    run.pipeline = req.matches[1];
    run.user = user_of(req);
    // "variables" is the older name of "set".
    for (const char* key : {"variables", "set"}) {
      auto values = scalars(*body, key, res);
      if (!values) return;
      run.set.insert(values->begin(), values->end());
    }
    if (body->contains("inputsYaml") && !(*body)["inputsYaml"].is_string()) {
      return error(res, 400, "BadRequest", "'inputsYaml' must be a string (an inputs YAML)");
    }
    run.inputs_yaml = text(*body, "inputsYaml");
    run.inputs_name = text(*body, "inputsFile");
    answer(res, engine.run(std::move(run)).get());
  }

  void approve(const httplib::Request& req, httplib::Response& res) {
    auto body = body_of(req, res);
    if (!body) return;
    auto action = text(*body, "action");
    if (action != "approve" && action != "reject") {
      return error(res, 400, "BadRequest", "'action' must be \"approve\" or \"reject\"");
    }
    auto inputs = scalars(*body, "inputs", res);
    if (!inputs) return;
    engine::ApprovalRequest a;
    a.execution = req.matches[1];
    a.step = text(*body, "step");
    a.user = user_of(req);
    a.reject = action == "reject";
    a.comment = text(*body, "comment");
    a.inputs = std::move(*inputs);
    answer(res, engine.approve(std::move(a)).get());
  }

  void intervene(const httplib::Request& req, httplib::Response& res) {
    auto body = body_of(req, res);
    if (!body) return;
    engine::InterventionRequest i;
    i.execution = req.matches[1];
    i.step = text(*body, "step");
    i.user = user_of(req);
    i.action = text(*body, "action");
    i.comment = text(*body, "comment");
    if (i.action.empty()) return error(res, 400, "BadRequest", "'action' is required");
    answer(res, engine.intervene(std::move(i)).get());
  }

  // POST /api/v1/webhooks/git: GitHub and GitLab push events.
  void webhook(const httplib::Request& req, httplib::Response& res) {
    const std::string github = req.get_header_value("X-GitHub-Event");
    const std::string gitlab = req.get_header_value("X-Gitlab-Event");
    if (github.empty() && gitlab.empty()) {
      return error(res, 400, "BadRequest",
                   "not a GitHub or GitLab webhook (no X-GitHub-Event or X-Gitlab-Event header)");
    }
    if (!options.webhook_secret.empty()) {
      bool ok = false;
      if (!github.empty()) {
        // X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        HMAC(EVP_sha256(), options.webhook_secret.data(),
             static_cast<int>(options.webhook_secret.size()),
             reinterpret_cast<const unsigned char*>(req.body.data()), req.body.size(), mac, &len);
        static const char* hex = "0123456789abcdef";
        std::string expected = "sha256=";
        for (unsigned int i = 0; i < len; ++i) {
          expected += hex[mac[i] >> 4];
          expected += hex[mac[i] & 15];
        }
        ok = constant_time_equal(req.get_header_value("X-Hub-Signature-256"), expected);
      } else {
        ok = constant_time_equal(req.get_header_value("X-Gitlab-Token"), options.webhook_secret);
      }
      if (!ok) {
        return error(res, 401, "Unauthorized",
                     github.empty() ? "the X-Gitlab-Token does not match the webhook secret"
                                    : "the X-Hub-Signature-256 does not match the webhook secret");
      }
    }
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object()) return error(res, 400, "BadRequest", "the payload is not a JSON object");
    std::optional<engine::GitPush> push;
    try {
      push = github.empty() ? engine::parse_gitlab_push(gitlab, body)
                            : engine::parse_github_push(github, body);
    } catch (const std::invalid_argument& e) {
      return error(res, 400, "BadRequest", e.what());
    }
    if (!push) {
      // A ping or an event that moves no ref: acknowledged, nothing to do.
      return reply(res, 200, {{"ignored", github.empty() ? gitlab : github}});
    }
    answer(res, engine.git_push(std::move(*push)).get());
  }

  // POST /api/v1/apps/{name}/{sync|refresh|rollback}
  void app_operation(const httplib::Request& req, httplib::Response& res) {
    auto body = body_of(req, res);
    if (!body) return;
    engine::AppOperationRequest r;
    r.app = req.matches[1];
    r.op = req.matches[2];
    if (r.op == "terminate-op") r.op = "terminate"; // Argo CD's name for it
    r.user = user_of(req);
    std::set<std::string> allowed;
    if (r.op == "sync") allowed = {"prune", "dryRun", "applyOnly", "force", "revision"};
    if (r.op == "rollback") allowed = {"id"};
    for (const auto& [k, v] : body->items()) {
      if (!allowed.count(k)) {
        return error(res, 400, "BadRequest", "'" + k + "' is not a parameter of " + r.op);
      }
      bool ok = k == "revision" ? v.is_string()
                : k == "id"     ? v.is_number_integer()
                                : v.is_boolean();
      if (!ok) {
        return error(res, 400, "BadRequest",
                     "'" + k + "' must be " +
                         (k == "revision" ? "a string"
                          : k == "id"     ? "an integer"
                                          : "true or false"));
      }
    }
    if (r.op == "rollback" && !body->contains("id")) {
      return error(res, 400, "BadRequest", "'id' (the history entry to roll back to) is required");
    }
    r.params = *body;
    try {
      answer(res, engine.app_operation(std::move(r)).get());
    } catch (const std::future_error&) {
      error(res, 503, "ShuttingDown", "the coordinator is shutting down");
    }
  }

  void inputs(const httplib::Request& req, httplib::Response& res) {
    auto body = body_of(req, res);
    if (!body) return;
    auto values = scalars(*body, "values", res);
    if (!values) return;
    engine::InputAnswer i;
    i.execution = req.matches[1];
    i.step = text(*body, "step");
    i.user = user_of(req);
    i.values = std::move(*values);
    answer(res, engine.answer(std::move(i)).get());
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
