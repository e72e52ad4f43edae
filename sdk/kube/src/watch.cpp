// Reconnecting watches with resourceVersion tracking, bookmarks and relist on 410 Expired.
#include "capstan/kube/watch.h"

#include <random>

#include "shared.h"

namespace capstan::kube {

using nlohmann::json;

std::string_view to_string(WatchEventType t) {
  switch (t) {
  case WatchEventType::kAdded:
    return "ADDED";
  case WatchEventType::kModified:
    return "MODIFIED";
  case WatchEventType::kDeleted:
    return "DELETED";
  case WatchEventType::kBookmark:
    return "BOOKMARK";
  }
  return "?";
}

namespace {

std::string rv_of(const json& object) {
  auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return {};
  auto rv = m->find("resourceVersion");
  return rv != m->end() && rv->is_string() ? rv->get<std::string>() : std::string();
}

} // namespace

Watch::Watch(const Client& client, std::string api_version, std::string kind, WatchOptions options,
             WatchHandlers handlers)
    : client_(client), options_(std::move(options)), handlers_(std::move(handlers)) {
  info_ = client.resource(api_version, kind);
  auto outer = client.cancelled_;
  client_ =
      Client(client.shared_, [this, outer] { return stopping_.load() || (outer && outer()); });
  rv_ = options_.resource_version;
  thread_ = std::thread([this] { run(); });
}

Watch::~Watch() {
  stop();
}

void Watch::stop() {
  stopping_ = true;
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::string Watch::resource_version() const {
  std::lock_guard lock(rv_mutex_);
  return rv_;
}

void Watch::relist() {
  ListOptions o;
  o.label_selector = options_.label_selector;
  o.field_selector = options_.field_selector;
  ObjectList list = client_.list(info_.api_version(), info_.kind, options_.namespace_, o);
  ++lists_;
  {
    std::lock_guard lock(rv_mutex_);
    rv_ = list.resource_version;
  }
  if (handlers_.on_sync) handlers_.on_sync(list.items, list.resource_version);
}

void Watch::run() {
  auto backoff = options_.min_backoff;
  static thread_local std::mt19937 rng{std::random_device{}()};
  while (!stopping_) {
    try {
      if (resource_version().empty()) relist();
      watch_once();
      backoff = options_.min_backoff;
    } catch (const Error& e) {
      if (stopping_ || e.is(ErrorKind::kCancelled)) break;
      if (e.is(ErrorKind::kExpired)) {
        // Our resourceVersion fell out of the server's history: start over from a list.
        std::lock_guard lock(rv_mutex_);
        rv_.clear();
        continue;
      }
      if (handlers_.on_error) handlers_.on_error(e);
      try {
        std::uniform_int_distribution<long> jitter(0, backoff.count() / 4);
        detail::sleep_cancellable(backoff + std::chrono::milliseconds(jitter(rng)),
                                  [this] { return stopping_.load(); });
      } catch (const Error&) {
        break;
      }
      backoff = std::min(backoff * 2, options_.max_backoff);
    } catch (const std::exception& e) {
      // A handler threw: report it and keep watching rather than die silently.
      if (handlers_.on_error) handlers_.on_error(Error(ErrorKind::kProtocol, e.what()));
      if (stopping_) break;
    }
  }
}

void Watch::watch_once() {
  detail::Shared& s = *client_.shared_;
  auto cancel = client_.cancelled_;
  static thread_local std::mt19937 rng{std::random_device{}()};
  auto timeout = options_.server_timeout.count();
  std::uniform_int_distribution<long> jitter(0, std::max<long>(1, timeout / 4));
  std::string p = Client::path(info_, options_.namespace_);
  p += "?watch=1";
  auto add = [&](const char* k, const std::string& v) {
    if (!v.empty()) p += std::string("&") + k + "=" + detail::url_encode(v);
  };
  add("resourceVersion", resource_version());
  add("labelSelector", options_.label_selector);
  add("fieldSelector", options_.field_selector);
  if (options_.bookmarks) p += "&allowWatchBookmarks=true";
  p += "&timeoutSeconds=" + std::to_string(timeout + jitter(rng));

  detail::HttpRequest req;
  req.path = p;
  if (s.limiter.acquire(cancel)) ++s.throttled;
  ++s.requests;
  ++connects_;

  std::string buffer;
  std::optional<Error> failure;
  auto handle_line = [&](std::string_view line) -> bool {
    json ev = json::parse(line, nullptr, false);
    if (!ev.is_object()) {
      failure = Error(ErrorKind::kProtocol, "watch " + info_.resource + ": a line is not JSON");
      return false;
    }
    std::string type = ev.value("type", "");
    json object = ev.value("object", json::object());
    if (type == "ERROR") {
      int code = object.value("code", 0);
      failure =
          error_from_response(code == 0 ? 500 : code, object.dump(), "watch " + info_.resource);
      if (code == 410) failure = Error(ErrorKind::kExpired, failure->what(), 410);
      return false;
    }
    WatchEventType t;
    if (type == "ADDED") {
      t = WatchEventType::kAdded;
    } else if (type == "MODIFIED") {
      t = WatchEventType::kModified;
    } else if (type == "DELETED") {
      t = WatchEventType::kDeleted;
    } else if (type == "BOOKMARK") {
      t = WatchEventType::kBookmark;
    } else {
      return true; // unknown event types are skipped
    }
    if (std::string rv = rv_of(object); !rv.empty()) {
      std::lock_guard lock(rv_mutex_);
      rv_ = rv;
    }
    if (t != WatchEventType::kBookmark && object.is_object()) {
      object["apiVersion"] = info_.api_version();
      object["kind"] = info_.kind;
    }
    if (handlers_.on_event && !stopping_) handlers_.on_event(WatchEvent{t, std::move(object)});
    return !stopping_;
  };
  auto on_data = [&](std::string_view chunk) -> bool {
    buffer.append(chunk);
    std::size_t start = 0;
    for (;;) {
      auto nl = buffer.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(buffer.data() + start, nl - start);
      start = nl + 1;
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      if (!handle_line(line)) {
        buffer.erase(0, start);
        return false;
      }
    }
    buffer.erase(0, start);
    return true;
  };
  detail::HttpResult r = s.transport.stream(req, on_data, cancel);
  if (failure) throw *failure;
  if (r.code != CURLE_OK) {
    throw detail::transport_error(r, client_.config().server, "watch " + info_.resource);
  }
  if (r.status == 401 && s.transport.credentials().invalidate()) {
    throw Error(ErrorKind::kUnauthorized, "watch " + info_.resource + ": credentials expired", 401);
  }
  if (r.status == 410)
    throw Error(ErrorKind::kExpired, "watch " + info_.resource + ": expired", 410);
  if (r.status >= 400)
    throw error_from_response(static_cast<int>(r.status), r.body, "watch " + info_.resource);
}

} // namespace capstan::kube
