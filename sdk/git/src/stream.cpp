// The socket stream libgit2 uses for git://, http:// and (under TLS) https://, with the timeouts
// libgit2 1.5 lacks: its own stream connects and reads with blocking calls and no deadline, so a
// server that accepts a connection and then stalls would hold a step forever. This one connects
// within RemoteOptions::connect_timeout, and every read and write waits in short slices: it fails
// after RemoteOptions::read_timeout without progress, and honours the operation's `cancelled`
// hook while it waits.
//
// The struct starts like libgit2 1.5's own git_socket_stream (parent, host, port, socket),
// because its SSH transport takes the socket out of the stream that way; the socket stays in
// blocking mode with SO_RCVTIMEO/SO_SNDTIMEO slices, which libssh2 handles as it does any
// socket.
#include <fcntl.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "libgit2.h"

namespace capstan::git::detail {

namespace {

thread_local RemoteSession* current_session = nullptr;

constexpr int kSliceMs = 100;

struct SocketStream {
  git_stream parent;
  char* host;
  char* port;
  int s;
};

std::string where(const SocketStream* st) {
  return std::string(st->host) + ":" + st->port;
}

void net_error(const std::string& message) {
  git_error_set_str(GIT_ERROR_NET, message.c_str());
}

// Whether the operation was cancelled; records it on the session so the caller reports it.
bool cancelled_now() {
  RemoteSession* s = current_session;
  if (s != nullptr && s->options.cancelled && s->options.cancelled()) {
    s->cancelled = true;
    return true;
  }
  return false;
}

std::chrono::milliseconds read_limit() {
  return current_session != nullptr ? current_session->options.read_timeout
                                    : std::chrono::milliseconds(0);
}

// Connects one address without blocking longer than `timeout`; returns the socket or -1 with
// `why` set.
int connect_one(const addrinfo* ai, std::chrono::milliseconds timeout, std::string& why) {
  int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) {
    why = std::strerror(errno);
    return -1;
  }
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      why = std::strerror(errno);
      ::close(fd);
      return -1;
    }
    long waited = 0;
    while (true) {
      pollfd p{fd, POLLOUT, 0};
      int rc = ::poll(&p, 1, kSliceMs);
      if (rc > 0) break;
      if (rc < 0 && errno != EINTR) {
        why = std::strerror(errno);
        ::close(fd);
        return -1;
      }
      waited += kSliceMs;
      if (cancelled_now()) {
        why = "cancelled";
        ::close(fd);
        return -1;
      }
      if (timeout.count() > 0 && waited >= timeout.count()) {
        why = "timed out after " + std::to_string(timeout.count()) + " ms";
        ::close(fd);
        return -1;
      }
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      why = std::strerror(err);
      ::close(fd);
      return -1;
    }
  }
  // Blocking from here on, with short timeouts so reads and writes come back to check the
  // deadline and the cancellation hook.
  int flags = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &flags, sizeof flags);
  timeval slice{0, kSliceMs * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof slice);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &slice, sizeof slice);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

int stream_connect(git_stream* stream) {
  auto* st = reinterpret_cast<SocketStream*>(stream);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(st->host, st->port, &hints, &res);
  if (rc != 0) {
    net_error("failed to resolve address for " + std::string(st->host) + ": " + gai_strerror(rc));
    return -1;
  }
  const auto timeout = current_session != nullptr ? current_session->options.connect_timeout
                                                  : std::chrono::milliseconds(0);
  std::string why = "no address";
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    st->s = connect_one(ai, timeout, why);
    if (st->s >= 0 || why == "cancelled") break;
  }
  ::freeaddrinfo(res);
  if (st->s < 0) {
    net_error("failed to connect to " + where(st) + ": " + why);
    return -1;
  }
  return 0;
}

// Runs `io` (a recv or send) until it moves data, the peer closes, or the limit passes without
// progress.
template <typename Io> ssize_t with_deadline(SocketStream* st, const char* what, Io io) {
  const auto limit = read_limit();
  long waited = 0;
  while (true) {
    ssize_t n = io();
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      net_error(std::string("error ") + what + " " + where(st) + ": " + std::strerror(errno));
      return -1;
    }
    waited += kSliceMs;
    if (cancelled_now()) {
      net_error(std::string(what) + " " + where(st) + ": cancelled");
      return -1;
    }
    if (limit.count() > 0 && waited >= limit.count()) {
      if (current_session != nullptr) current_session->timed_out = true;
      net_error(std::string(what) + " " + where(st) + ": no progress for " +
                std::to_string(limit.count()) + " ms, the server stalled (read timeout)");
      return -1;
    }
  }
}

ssize_t stream_read(git_stream* stream, void* data, size_t len) {
  auto* st = reinterpret_cast<SocketStream*>(stream);
  return with_deadline(st, "receiving data from", [&] { return ::recv(st->s, data, len, 0); });
}

ssize_t stream_write(git_stream* stream, const char* data, size_t len, int /*flags*/) {
  auto* st = reinterpret_cast<SocketStream*>(stream);
  return with_deadline(st, "sending data to",
                       [&] { return ::send(st->s, data, len, MSG_NOSIGNAL); });
}

int stream_close(git_stream* stream) {
  auto* st = reinterpret_cast<SocketStream*>(stream);
  if (st->s >= 0) ::close(st->s);
  st->s = -1;
  return 0;
}

void stream_free(git_stream* stream) {
  auto* st = reinterpret_cast<SocketStream*>(stream);
  if (st->s >= 0) ::close(st->s);
  std::free(st->host);
  std::free(st->port);
  delete st;
}

int stream_init(git_stream** out, const char* host, const char* port) {
  auto* st = new SocketStream{};
  st->parent.version = GIT_STREAM_VERSION;
  st->parent.encrypted = 0;
  st->parent.proxy_support = 0;
  st->parent.connect = stream_connect;
  st->parent.read = stream_read;
  st->parent.write = stream_write;
  st->parent.close = stream_close;
  st->parent.free = stream_free;
  st->host = ::strdup(host);
  st->port = ::strdup(port);
  st->s = -1;
  *out = &st->parent;
  return 0;
}

} // namespace

void register_socket_stream() {
  git_stream_registration reg{};
  reg.version = GIT_STREAM_VERSION;
  reg.init = stream_init;
  reg.wrap = nullptr;
  git_stream_register(GIT_STREAM_STANDARD, &reg);
}

StreamScope::StreamScope(RemoteSession* session) : previous_(current_session) {
  current_session = session;
}

StreamScope::~StreamScope() {
  current_session = previous_;
}

} // namespace capstan::git::detail
