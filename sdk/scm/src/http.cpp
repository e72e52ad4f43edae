// libcurl transport shared by the GitHub and GitLab providers.
#include "http.h"

#include <curl/curl.h>

#include <algorithm>
#include <ctime>
#include <mutex>
#include <thread>

namespace capstan::scm {

const char* to_string(ErrorKind kind) {
  switch (kind) {
  case ErrorKind::kAuthentication:
    return "Authentication";
  case ErrorKind::kNotFound:
    return "NotFound";
  case ErrorKind::kValidation:
    return "Validation";
  case ErrorKind::kNotMergeable:
    return "NotMergeable";
  case ErrorKind::kConflict:
    return "Conflict";
  case ErrorKind::kRateLimited:
    return "RateLimited";
  case ErrorKind::kConnectivity:
    return "Connectivity";
  case ErrorKind::kTimeout:
    return "Timeout";
  case ErrorKind::kCancelled:
    return "Cancelled";
  case ErrorKind::kInvalidInput:
    return "InvalidInput";
  case ErrorKind::kInternal:
    return "Internal";
  }
  return "Internal";
}

const char* to_string(PrState state) {
  switch (state) {
  case PrState::kOpen:
    return "open";
  case PrState::kClosed:
    return "closed";
  case PrState::kMerged:
    return "merged";
  }
  return "open";
}

} // namespace capstan::scm

namespace capstan::scm::detail {

using nlohmann::json;

namespace {

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* out) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(out);
  std::string line(data, size * n);
  const auto colon = line.find(':');
  if (line.rfind("HTTP/", 0) == 0) headers->clear(); // a new response (after 100-continue)
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    while (!value.empty() &&
           (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.pop_back();
    }
    (*headers)[name] = value;
  }
  return size * n;
}

std::string clip(std::string s, std::size_t n = 300) {
  if (s.size() > n) s = s.substr(0, n) + "…";
  return s;
}

// The provider's explanation: GitHub {message, errors:[{message|code,field}]}, GitLab
// {message: "..."|[...]|{field: [...]}} or {error: "..."}.
std::string reason(const HttpResponse& r) {
  json j = r.json();
  if (!j.is_object()) return clip(r.body);
  std::vector<std::string> parts;
  auto add = [&](const json& v, const std::string& prefix) {
    if (v.is_string()) parts.push_back(prefix + v.get<std::string>());
  };
  if (j.contains("message")) {
    const json& m = j["message"];
    if (m.is_string()) {
      parts.push_back(m.get<std::string>());
    } else if (m.is_array()) {
      for (const auto& e : m) add(e, "");
    } else if (m.is_object()) {
      for (const auto& [field, msgs] : m.items()) {
        if (msgs.is_array()) {
          for (const auto& e : msgs) add(e, field + " ");
        } else {
          add(msgs, field + " ");
        }
      }
    }
  }
  if (j.contains("error")) add(j["error"], "");
  if (j.contains("errors") && j["errors"].is_array()) {
    for (const auto& e : j["errors"]) {
      if (e.is_string()) {
        parts.push_back(e.get<std::string>());
      } else if (e.is_object() && e.contains("message") && e["message"].is_string()) {
        parts.push_back(e["message"].get<std::string>());
      } else if (e.is_object()) {
        std::string s;
        for (const char* k : {"resource", "field", "code"}) {
          if (e.contains(k) && e[k].is_string())
            s += (s.empty() ? "" : " ") + e[k].get<std::string>();
        }
        if (!s.empty()) parts.push_back(s);
      }
    }
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out.empty() ? clip(r.body) : clip(out, 1000);
}

} // namespace

json HttpResponse::json() const {
  if (body.empty()) return nullptr;
  try {
    return json::parse(body);
  } catch (const json::exception&) {
    return nullptr;
  }
}

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

std::string string_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

RestClient::RestClient(const HttpProviderConfig& config, std::string base_url,
                       std::vector<std::string> auth_headers, std::string provider)
    : config_(config), base_(std::move(base_url)), auth_(std::move(auth_headers)),
      provider_(std::move(provider)) {
  curl_init_once();
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
  if (config_.repository.empty()) {
    throw Error(ErrorKind::kInvalidInput, provider_ + ": no repository configured");
  }
}

HttpResponse RestClient::perform(const std::string& method, const std::string& url,
                                 const std::string& body) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) throw Error(ErrorKind::kInternal, "curl_easy_init failed");
  HttpResponse resp;
  curl_slist* headers = nullptr;
  for (const auto& h : auth_) headers = curl_slist_append(headers, h.c_str());
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method != "GET" && method != "DELETE") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  } else if (!body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "capstan-scm");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.request_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(config_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &resp.headers);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!config_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, config_.ca_file.c_str());
  if (config_.insecure_skip_tls_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    const std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    const ErrorKind kind =
        rc == CURLE_OPERATION_TIMEDOUT ? ErrorKind::kTimeout : ErrorKind::kConnectivity;
    throw Error(kind, provider_ + ": " + method + " " + url + ": " + detail);
  }
  resp.status = static_cast<int>(status);
  return resp;
}

void RestClient::sleep_for(std::chrono::milliseconds d, const std::string& why) {
  if (config_.log) {
    config_.log(provider_ + ": " + why + "; waiting " + std::to_string((d.count() + 999) / 1000) +
                " s");
  }
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
    if (config_.cancelled && config_.cancelled()) {
      throw Error(ErrorKind::kCancelled, provider_ + ": cancelled while " + why);
    }
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(50), std::chrono::duration_cast<std::chrono::milliseconds>(
                                           until - std::chrono::steady_clock::now()) +
                                           std::chrono::milliseconds(1)));
  }
  waited_ += d;
}

HttpResponse RestClient::send_raw(const std::string& method, const std::string& path_or_url,
                                  const json& body) {
  const std::string url =
      path_or_url.rfind("http://", 0) == 0 || path_or_url.rfind("https://", 0) == 0
          ? path_or_url
          : base_ + path_or_url;
  const std::string payload = body.is_null() ? "" : body.dump();
  waited_ = std::chrono::milliseconds(0); // the allowed wait is per request
  for (int attempt = 0;; ++attempt) {
    if (config_.cancelled && config_.cancelled()) {
      throw Error(ErrorKind::kCancelled, provider_ + ": cancelled");
    }
    HttpResponse r = perform(method, url, payload);
    // Rate limits: 429, or 403 with the remaining quota at 0 or a Retry-After (GitHub's
    // secondary limits). Wait for the reset when it comes within the allowed wait.
    const bool limited =
        r.status == 429 || (r.status == 403 && (r.header("x-ratelimit-remaining") == "0" ||
                                                r.header("ratelimit-remaining") == "0" ||
                                                !r.header("retry-after").empty()));
    if (limited) {
      long long wait_s = 60;
      if (!r.header("retry-after").empty()) {
        wait_s = std::atoll(r.header("retry-after").c_str());
      } else {
        std::string reset = r.header("x-ratelimit-reset");
        if (reset.empty()) reset = r.header("ratelimit-reset");
        if (!reset.empty()) wait_s = std::atoll(reset.c_str()) - std::time(nullptr) + 1;
      }
      wait_s = std::max<long long>(wait_s, 1);
      const auto wait = std::chrono::milliseconds(wait_s * 1000);
      if (waited_ + wait > config_.max_wait) {
        throw Error(ErrorKind::kRateLimited,
                    provider_ + ": rate limit exceeded (" + reason(r) + "); it resets in " +
                        std::to_string(wait_s) + " s, longer than the allowed wait of " +
                        std::to_string(config_.max_wait.count() / 1000) + " s",
                    r.status);
      }
      sleep_for(wait, "rate limited");
      continue;
    }
    // Transient server trouble: retry reads a few times.
    if ((r.status == 502 || r.status == 503 || r.status == 504) && method == "GET" && attempt < 2) {
      sleep_for(std::chrono::milliseconds(500 * (attempt + 1)), "server busy");
      continue;
    }
    return r;
  }
}

void RestClient::fail(const HttpResponse& r, const std::string& what) const {
  const std::string msg =
      provider_ + ": " + what + ": HTTP " + std::to_string(r.status) + ": " + reason(r);
  switch (r.status) {
  case 401:
    throw Error(ErrorKind::kAuthentication, msg + " (check the token)", r.status);
  case 403:
    throw Error(ErrorKind::kAuthentication, msg + " (the token lacks permission)", r.status);
  case 404:
    throw Error(ErrorKind::kNotFound, msg, r.status);
  case 405:
  case 406:
    throw Error(ErrorKind::kNotMergeable, msg, r.status);
  case 409:
    throw Error(ErrorKind::kConflict, msg, r.status);
  case 400:
  case 422:
    throw Error(ErrorKind::kValidation, msg, r.status);
  default:
    throw Error(ErrorKind::kInternal, msg, r.status);
  }
}

HttpResponse RestClient::send(const std::string& method, const std::string& path_or_url,
                              const json& body, const std::string& what) {
  HttpResponse r = send_raw(method, path_or_url, body);
  if (r.status < 200 || r.status >= 300) fail(r, what);
  return r;
}

} // namespace capstan::scm::detail
