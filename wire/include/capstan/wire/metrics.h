// Prometheus metrics for both ends of the wire: lock-free counters, gauges and histograms, their
// text exposition format, and a minimal HTTP endpoint serving GET /metrics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace capstan::wire {

class Counter {
public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
public:
  void set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<std::int64_t> value_{0};
};

// Durations in seconds, with fixed buckets from 5 ms to 1 h (what CD steps take).
class Histogram {
public:
  static constexpr std::array<double, 14> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                     1,     2.5,  5,     10,   30,  300,  3600};
  void observe(double seconds);
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }

private:
  friend class MetricsText;
  std::array<std::atomic<std::uint64_t>, kBounds.size()> buckets_{}; // non-cumulative
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_micros_{0};
};

// Builds the text exposition format (version 0.0.4).
class MetricsText {
public:
  void counter(const std::string& name, const std::string& help, std::uint64_t value);
  void gauge(const std::string& name, const std::string& help, std::int64_t value);
  void histogram(const std::string& name, const std::string& help, const Histogram& h);
  const std::string& str() const { return out_; }

private:
  std::string out_;
};

// Serves GET /metrics on host:port (port 0 picks one) from one thread; anything else gets 404.
// Requests are small and answered at once; a client that does not send its request within a
// second is dropped, so a slow peer cannot hold the endpoint.
class MetricsServer {
public:
  using Render = std::function<std::string()>;
  // Throws std::runtime_error when the address cannot be bound.
  MetricsServer(const std::string& host, int port, Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  int port() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace capstan::wire
