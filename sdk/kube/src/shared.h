// What all copies of a Client share: the transport, discovery cache, rate limit and counters.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "capstan/kube/client.h"
#include "transport.h"

namespace capstan::kube::detail {

// A token bucket (client-go's QPS/burst): `acquire` waits for a token, polling the cancel hook.
class RateLimiter {
public:
  RateLimiter(double qps, int burst);
  // Returns true when it had to wait. Throws Error(kCancelled).
  bool acquire(const std::function<bool()>& cancelled);

private:
  double qps_;
  double burst_;
  std::mutex mutex_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
};

struct GroupVersion {
  bool served = false;
  std::vector<ResourceInfo> resources;
  std::chrono::steady_clock::time_point fetched;
};

struct Shared {
  Shared(ClusterConfig config, ClientOptions opts)
      : options(opts), transport(std::move(config), opts), limiter(opts.qps, opts.burst) {}

  ClientOptions options;
  Transport transport;
  RateLimiter limiter;

  std::mutex discovery_mutex;
  std::map<std::string, GroupVersion> discovery; // "apps/v1" → resources
  std::optional<std::vector<std::string>> served_group_versions;

  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::uint64_t> throttled{0};
};

// Sleeps `d`, waking every 50 ms to look at the cancel hook. Throws Error(kCancelled).
void sleep_cancellable(std::chrono::milliseconds d, const std::function<bool()>& cancelled);

std::string url_encode(std::string_view s);

} // namespace capstan::kube::detail
