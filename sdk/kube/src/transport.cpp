// libcurl transport: pooled keep-alive handles, a DNS/TLS-session share, streamed bodies.
#include "transport.h"

#include <algorithm>
#include <cctype>

namespace capstan::kube::detail {

void share_lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
  static_cast<Transport*>(user)->share_locks_[data].lock();
}
void share_unlock(CURL*, curl_lock_data data, void* user) {
  static_cast<Transport*>(user)->share_locks_[data].unlock();
}

namespace {

struct GlobalInit {
  GlobalInit() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

void global_init() {
  static GlobalInit once;
}

struct Sink {
  std::string* body = nullptr;
  std::map<std::string, std::string>* headers = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;
  CURL* handle = nullptr;
  bool stopped = false;
  std::size_t limit = 0; // body bytes kept for non-streamed answers (0: no limit)
};

std::size_t write_body(char* ptr, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  std::size_t len = size * n;
  if (sink->on_data != nullptr) {
    long status = 0;
    curl_easy_getinfo(sink->handle, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
      if (!(*sink->on_data)(std::string_view(ptr, len))) {
        sink->stopped = true;
        return 0; // ends the transfer (CURLE_WRITE_ERROR)
      }
      return len;
    }
  }
  if (sink->limit == 0 || sink->body->size() < sink->limit) sink->body->append(ptr, len);
  return len;
}

std::size_t write_header(char* ptr, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  std::size_t len = size * n;
  std::string_view line(ptr, len);
  if (line.rfind("HTTP/", 0) == 0) {
    sink->headers->clear(); // a new response (after a 100 Continue, a redirect)
    return len;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  (*sink->headers)[name] = std::string(value);
  return len;
}

int progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancelled = static_cast<const std::function<bool()>*>(user);
  return (*cancelled && (*cancelled)()) ? 1 : 0;
}

void set_blob(CURL* h, CURLoption option, const std::string& data) {
  curl_blob blob{const_cast<char*>(data.data()), data.size(), CURL_BLOB_COPY};
  curl_easy_setopt(h, option, &blob);
}

// Host and port of an https://host[:port][/path] URL.
std::pair<std::string, std::string> host_port(const std::string& url) {
  auto scheme = url.find("://");
  std::string rest = scheme == std::string::npos ? url : url.substr(scheme + 3);
  rest = rest.substr(0, rest.find('/'));
  std::string port = url.rfind("http://", 0) == 0 ? "80" : "443";
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    std::string host = rest.substr(0, close + 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
    return {host, port};
  }
  auto colon = rest.rfind(':');
  if (colon != std::string::npos) return {rest.substr(0, colon), rest.substr(colon + 1)};
  return {rest, port};
}

} // namespace

Transport::Transport(ClusterConfig config, const ClientOptions& options)
    : config_(std::move(config)), options_(options), credentials_(config_) {
  global_init();
  base_url_ = config_.server;
  if (!config_.tls_server_name.empty()) {
    // Verify the certificate against tls-server-name while connecting to the configured host:
    // the URL names the expected host, CONNECT_TO routes it to the real one.
    auto [host, port] = host_port(config_.server);
    auto scheme_end = config_.server.find("://") + 3;
    auto path_start = config_.server.find('/', scheme_end);
    std::string path = path_start == std::string::npos ? "" : config_.server.substr(path_start);
    base_url_ = config_.server.substr(0, scheme_end) + config_.tls_server_name + ":" + port + path;
    connect_to_ = curl_slist_append(
        nullptr, (config_.tls_server_name + ":" + port + ":" + host + ":" + port).c_str());
  }
  share_ = curl_share_init();
  curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
  // Connections are not shared across threads (libcurl does not support that); each pooled
  // handle keeps its own. DNS answers and TLS sessions are.
  curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

Transport::~Transport() {
  for (CURL* h : idle_) curl_easy_cleanup(h);
  curl_share_cleanup(share_);
  curl_slist_free_all(connect_to_);
}

CURL* Transport::take() {
  {
    std::lock_guard lock(pool_mutex_);
    if (!idle_.empty()) {
      CURL* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void Transport::give_back(CURL* handle) {
  std::lock_guard lock(pool_mutex_);
  if (idle_.size() < options_.max_idle_connections) {
    idle_.push_back(handle);
    return;
  }
  curl_easy_cleanup(handle);
}

void Transport::prepare(CURL* h, const HttpRequest& request, curl_slist*& headers,
                        const CredentialSet& creds) {
  curl_easy_reset(h); // keeps the handle's live connection and TLS session
  std::string url = base_url_ + request.path;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_SHARE, share_);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  // gzip only, as client-go asks: kube-apiserver compresses with nothing else, and offering
  // brotli invites servers to spend more CPU compressing than the transfer saves.
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "gzip");
  curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
  if (connect_to_ != nullptr) curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to_);
  if (!config_.proxy_url.empty()) curl_easy_setopt(h, CURLOPT_PROXY, config_.proxy_url.c_str());

  if (config_.insecure_skip_tls_verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!config_.ca_pem.empty()) {
    set_blob(h, CURLOPT_CAINFO_BLOB, config_.ca_pem);
  }
  if (!creds.cert_pem.empty()) {
    set_blob(h, CURLOPT_SSLCERT_BLOB, creds.cert_pem);
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    set_blob(h, CURLOPT_SSLKEY_BLOB, creds.key_pem);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
  }
  if (!creds.bearer.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + creds.bearer).c_str());
  } else if (!creds.username.empty()) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERNAME, creds.username.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, creds.password.c_str());
  }
  headers = curl_slist_append(headers, ("Accept: " + request.accept).c_str());
  headers = curl_slist_append(headers, "Expect:");
  if (!request.content_type.empty()) {
    headers = curl_slist_append(headers, ("Content-Type: " + request.content_type).c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (!request.body.empty() || request.method != "DELETE") {
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    }
  }
}

// Where the answer of `h` goes: headers and body into `out` (through `sink`), curl's message
// into `errbuf`.
static void attach(CURL* h, Sink& sink, HttpResult& out, char* errbuf) {
  sink.body = &out.body;
  sink.headers = &out.headers;
  sink.handle = h;
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, write_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
}

HttpResult Transport::perform(const HttpRequest& request, const std::function<bool()>& cancelled) {
  HttpResult out;
  CredentialSet creds = credentials_.current(cancelled);
  CURL* h = take();
  curl_slist* headers = nullptr;
  prepare(h, request, headers, creds);
  Sink sink;
  char errbuf[CURL_ERROR_SIZE] = {0};
  attach(h, sink, out, errbuf);
  if (cancelled) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &cancelled);
  }
  out.code = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
  long connect_code = 0;
  curl_easy_getinfo(h, CURLINFO_HTTP_CONNECTCODE, &connect_code);
  double connect_time = 0;
  curl_easy_getinfo(h, CURLINFO_CONNECT_TIME, &connect_time);
  out.connected = connect_time > 0 || out.status > 0;
  if (out.code != CURLE_OK) out.error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(out.code);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(headers);
  if (out.code == CURLE_OK) {
    give_back(h);
  } else {
    curl_easy_cleanup(h); // a failed connection is not worth keeping
  }
  return out;
}

HttpResult Transport::stream(const HttpRequest& request,
                             const std::function<bool(std::string_view)>& on_data,
                             const std::function<bool()>& cancelled) {
  HttpResult out;
  CredentialSet creds = credentials_.current(cancelled);
  CURL* h = take();
  curl_slist* headers = nullptr;
  prepare(h, request, headers, creds);
  Sink sink;
  sink.on_data = &on_data;
  sink.limit = 1 << 20;
  char errbuf[CURL_ERROR_SIZE] = {0};
  attach(h, sink, out, errbuf);

  // A multi handle lets us wake up every 100 ms to look at the cancel hook even when the
  // stream is silent (a progress callback may only come once a second then).
  CURLM* multi = curl_multi_init();
  curl_multi_add_handle(multi, h);
  int running = 1;
  bool aborted = false;
  while (running > 0) {
    CURLMcode mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK) break;
    if (running == 0) break;
    if (cancelled && cancelled()) {
      aborted = true;
      break;
    }
    curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  out.code = CURLE_OK;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
    if (msg->msg == CURLMSG_DONE) out.code = msg->data.result;
  }
  if (aborted) out.code = CURLE_ABORTED_BY_CALLBACK;
  if (sink.stopped) out.code = CURLE_OK; // the consumer ended it on purpose
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
  out.connected = out.status > 0;
  if (out.code != CURLE_OK) out.error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(out.code);
  curl_multi_remove_handle(multi, h);
  curl_multi_cleanup(multi);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(headers);
  // A stream that was cut short leaves its connection mid-body: never reuse it.
  curl_easy_cleanup(h);
  return out;
}

Error transport_error(const HttpResult& r, const std::string& server, const std::string& what) {
  std::string detail = r.error.empty() ? curl_easy_strerror(r.code) : r.error;
  switch (r.code) {
  case CURLE_ABORTED_BY_CALLBACK:
    return Error(ErrorKind::kCancelled, what + ": cancelled");
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
    return Error(ErrorKind::kAuthentication,
                 what + ": the server " + server + " could not be verified (" + detail +
                     "); check the cluster's certificate-authority in the kubeconfig");
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
    return Error(ErrorKind::kAuthentication,
                 what + ": the client certificate or key cannot be used (" + detail + ")");
  case CURLE_OPERATION_TIMEDOUT:
    return Error(ErrorKind::kConnectivity,
                 what + ": " + server + " did not answer in time (" + detail + ")");
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return Error(ErrorKind::kConnectivity,
                 what + ": cannot resolve the host of " + server + " (" + detail + ")");
  case CURLE_COULDNT_CONNECT:
    return Error(ErrorKind::kConnectivity,
                 what + ": cannot connect to " + server + " (" + detail + ")");
  default:
    return Error(ErrorKind::kConnectivity,
                 what + ": the connection to " + server + " failed (" + detail + ")");
  }
}

} // namespace capstan::kube::detail
