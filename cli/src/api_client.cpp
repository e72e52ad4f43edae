// The CLI's HTTP client for the coordinator API.
#include "api_client.h"

#include <httplib.h>

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace capstan::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string read_first_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

bool process_alive(long pid) {
  if (pid <= 0) return false;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::string content((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
  return !content.empty(); // zombies and the dead have none
}

// An error answer is a short JSON document; more than this is not one.
constexpr std::size_t kMaxErrorBody = 1 << 20;

std::string describe(httplib::Error e) {
  switch (e) {
  case httplib::Error::Connection:
    return "connection refused";
  case httplib::Error::ConnectionTimeout:
    return "connection timed out";
  case httplib::Error::Read:
    return "the connection was closed while reading the answer";
  case httplib::Error::Write:
    return "the connection was closed while sending";
  default:
    return httplib::to_string(e);
  }
}

} // namespace

fs::path default_home() {
  if (auto h = env("CAPSTAN_HOME"); !h.empty()) return h;
  auto home = env("HOME");
  return fs::path(home.empty() ? "." : home) / ".capstan";
}

std::string user_name(const Globals& g) {
  if (!g.user.empty()) return g.user;
  if (auto u = env("CAPSTAN_USER"); !u.empty()) return u;
  std::ifstream config(g.home / "config.json");
  if (config) {
    try {
      auto j = json::parse(config);
      if (j.contains("user") && j["user"].is_string() && !j["user"].get<std::string>().empty()) {
        return j["user"];
      }
    } catch (const json::exception&) { // NOLINT(bugprone-empty-catch): falls back below
    }
  }
  if (auto u = env("USER"); !u.empty()) return u;
  if (const auto* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_name != nullptr) {
    return pw->pw_name;
  }
  return "unknown";
}

ApiClient::ApiClient(const Globals& g) : user_(user_name(g)) {
  url_ = !g.server.empty() ? g.server : env("CAPSTAN_SERVER");
  token_ = !g.token.empty() ? g.token : env("CAPSTAN_TOKEN");
  auto info_file = g.home / "coordinator" / "coordinator.json";
  std::string up = "capstan up" + (g.home == default_home() ? "" : " --home " + g.home.string());
  if (!url_.empty()) {
    hint_ = "check --server / CAPSTAN_SERVER, or start the coordinator";
    if (token_.empty()) {
      // The token of the local stack, when the server is the local one.
      std::ifstream in(info_file);
      if (in) {
        try {
          auto info = json::parse(in);
          if (info.value("api", "") == url_) token_ = read_first_line(info.value("tokenFile", ""));
        } catch (const json::exception&) { // NOLINT(bugprone-empty-catch): token stays empty
        }
      }
    }
    return;
  }
  std::ifstream in(info_file);
  if (!in) {
    throw CommandError("no coordinator found: " + info_file.string() +
                           " does not exist. Start one with '" + up +
                           "', or point at one with --server URL --token TOKEN "
                           "(or CAPSTAN_SERVER / CAPSTAN_TOKEN)",
                       1);
  }
  json info;
  try {
    info = json::parse(in);
  } catch (const json::exception& e) {
    throw CommandError(info_file.string() + " is not valid JSON: " + e.what(), 1);
  }
  url_ = info.value("api", "");
  long pid = info.value("pid", 0L);
  if (!process_alive(pid)) {
    throw CommandError("the coordinator under " + g.home.string() + " is not running (pid " +
                           std::to_string(pid) + " is gone). Start it with '" + up + "'",
                       1);
  }
  if (token_.empty()) token_ = read_first_line(info.value("tokenFile", ""));
  hint_ = "is it running? Start it with '" + up + "'";
}

ApiClient::~ApiClient() = default;

json ApiClient::handle(const std::string& method, const std::string& path, int status,
                       const std::string& body) {
  json j;
  try {
    j = body.empty() ? json::object() : json::parse(body);
  } catch (const json::exception&) {
    throw CommandError(method + " " + path + ": the coordinator at " + url_ + " answered HTTP " +
                           std::to_string(status) + " with a non-JSON body",
                       1);
  }
  if (status < 300) return j;
  std::string message = "HTTP " + std::to_string(status);
  std::vector<std::string> details;
  if (j.contains("error") && j["error"].is_object()) {
    message = j["error"].value("message", message);
    for (const auto& d : j["error"].value("details", json::array())) {
      std::string loc = d.value("location", "");
      details.push_back((loc.empty() ? "" : loc + ": ") + d.value("message", ""));
    }
  }
  if (status == 401) {
    message += " (the token does not match the coordinator at " + url_ + ")";
  }
  throw CommandError(message, status == 400 || status == 422 ? 2 : 1, details);
}

namespace {
std::unique_ptr<httplib::Client> make_client(const std::string& url, const std::string& token,
                                             const std::string& user, int read_timeout) {
  auto c = std::make_unique<httplib::Client>(url);
  c->set_default_headers({{"X-Capstan-User", user}});
  c->set_connection_timeout(3, 0);
  c->set_read_timeout(read_timeout, 0);
  c->set_write_timeout(30, 0);
  if (!token.empty()) c->set_bearer_token_auth(token);
  return c;
}
} // namespace

json ApiClient::get(const std::string& path, int read_timeout_seconds) {
  auto c = make_client(url_, token_, user_, read_timeout_seconds);
  auto res = c->Get(path);
  if (!res) {
    throw CommandError("cannot reach the coordinator at " + url_ + " (" + describe(res.error()) +
                           "); " + hint_,
                       1);
  }
  return handle("GET", path, res->status, res->body);
}

json ApiClient::post(const std::string& path, const json& body, int read_timeout_seconds) {
  auto c = make_client(url_, token_, user_, read_timeout_seconds);
  auto res = c->Post(path, body.dump(), "application/json");
  if (!res) {
    throw CommandError("cannot reach the coordinator at " + url_ + " (" + describe(res.error()) +
                           "); " + hint_,
                       1);
  }
  return handle("POST", path, res->status, res->body);
}

json ApiClient::del(const std::string& path) {
  auto c = make_client(url_, token_, user_, 60);
  auto res = c->Delete(path);
  if (!res) {
    throw CommandError("cannot reach the coordinator at " + url_ + " (" + describe(res.error()) +
                           "); " + hint_,
                       1);
  }
  return handle("DELETE", path, res->status, res->body);
}

bool ApiClient::download(const std::string& path,
                         const std::function<bool(const char*, std::size_t)>& sink,
                         int read_timeout_seconds) {
  auto c = make_client(url_, token_, user_, read_timeout_seconds);
  int status = 0;
  std::string error_body;
  bool stopped = false;
  auto res = c->Get(
      path,
      [&](const httplib::Response& r) {
        status = r.status;
        return true;
      },
      [&](const char* data, std::size_t size) {
        if (status != 200) {
          error_body.append(data, size);
          return error_body.size() < kMaxErrorBody;
        }
        stopped = !sink(data, size);
        return !stopped;
      });
  if (stopped) return false;
  if (!res && status == 200) {
    throw CommandError("GET " + path + ": the answer of the coordinator at " + url_ +
                           " was cut short (" + describe(res.error()) + ")",
                       1);
  }
  if (!res && status == 0) {
    throw CommandError("cannot reach the coordinator at " + url_ + " (" + describe(res.error()) +
                           "); " + hint_,
                       1);
  }
  if (status != 200) handle("GET", path, status, error_body);
  return true;
}

} // namespace capstan::cli
