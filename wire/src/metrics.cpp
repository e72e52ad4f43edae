// Prometheus metrics: exposition format and the /metrics endpoint.
#include "capstan/wire/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace capstan::wire {

void Histogram::observe(double seconds) {
  if (seconds < 0) seconds = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

namespace {
std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
} // namespace

void MetricsText::counter(const std::string& name, const std::string& help, std::uint64_t value) {
  out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
          std::to_string(value) + "\n";
}

void MetricsText::gauge(const std::string& name, const std::string& help, std::int64_t value) {
  out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " +
          std::to_string(value) + "\n";
}

void MetricsText::histogram(const std::string& name, const std::string& help, const Histogram& h) {
  out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    cumulative += h.buckets_[i].load(std::memory_order_relaxed);
    out_ += name + "_bucket{le=\"" + number(Histogram::kBounds[i]) + "\"} " +
            std::to_string(cumulative) + "\n";
  }
  auto count = h.count_.load(std::memory_order_relaxed);
  out_ += name + "_bucket{le=\"+Inf\"} " + std::to_string(std::max(count, cumulative)) + "\n";
  out_ += name + "_sum " + number(h.sum_micros_.load(std::memory_order_relaxed) / 1e6) + "\n";
  out_ += name + "_count " + std::to_string(count) + "\n";
}

struct MetricsServer::Impl {
  Render render;
  int listener = -1;
  int wake = -1;
  int port = 0;
  std::thread thread;

  void loop() {
    while (true) {
      pollfd fds[2] = {{listener, POLLIN, 0}, {wake, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      if (fds[0].revents & POLLIN) serve_one();
    }
  }

  void serve_one() {
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    // Read the request head with a deadline; only the request line matters.
    std::string head;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    char buf[2048];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      head.append(buf, static_cast<std::size_t>(n));
    }
    std::string status = "404 Not Found", type = "text/plain", body = "not found\n";
    if (head.rfind("GET /metrics ", 0) == 0 || head.rfind("GET /metrics?", 0) == 0) {
      status = "200 OK";
      type = "text/plain; version=0.0.4; charset=utf-8";
      body = render();
    } else if (head.find("\r\n\r\n") == std::string::npos) {
      ::close(fd);
      return;
    }
    std::string reply = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                        "\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\nConnection: close\r\n\r\n" + body;
    std::size_t sent = 0;
    while (sent < reply.size()) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 1000) <= 0) break;
      auto n = ::send(fd, reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    ::close(fd);
  }
};

MetricsServer::MetricsServer(const std::string& host, int port, Render render)
    : impl_(std::make_unique<Impl>()) {
  impl_->render = std::move(render);
  impl_->listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(impl_->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(impl_->listener);
    throw std::runtime_error("metrics address '" + host + "' is not an IPv4 address");
  }
  if (::bind(impl_->listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(impl_->listener, 16) != 0) {
    std::string why = std::strerror(errno);
    ::close(impl_->listener);
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + why);
  }
  socklen_t len = sizeof addr;
  ::getsockname(impl_->listener, reinterpret_cast<sockaddr*>(&addr), &len);
  impl_->port = ntohs(addr.sin_port);
  impl_->wake = ::eventfd(0, EFD_CLOEXEC);
  impl_->thread = std::thread([this] { impl_->loop(); });
}

MetricsServer::~MetricsServer() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(impl_->wake, &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
  ::close(impl_->listener);
  ::close(impl_->wake);
}

int MetricsServer::port() const {
  return impl_->port;
}

} // namespace capstan::wire
