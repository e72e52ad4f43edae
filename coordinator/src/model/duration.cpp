// Harness-style durations.
#include "model/duration.h"

#include <cctype>
#include <cstdio>

namespace capstan::model {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  using namespace std::chrono;
  long long total = 0;
  std::size_t i = 0;
  bool any = false;
  int last_rank = 99;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    if (i == text.size()) break;
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    long long n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      n = n * 10 + (text[i] - '0');
      if (n > 1'000'000'000) return std::nullopt;
      ++i;
    }
    std::size_t start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(start, i - start);
    long long ms = 0;
    int rank = 0;
    if (unit == "w") {
      ms = 7LL * 24 * 3600 * 1000, rank = 6;
    } else if (unit == "d") {
      ms = 24LL * 3600 * 1000, rank = 5;
    } else if (unit == "h") {
      ms = 3600LL * 1000, rank = 4;
    } else if (unit == "m") {
      ms = 60LL * 1000, rank = 3;
    } else if (unit == "s") {
      ms = 1000, rank = 2;
    } else if (unit == "ms") {
      ms = 1, rank = 1;
    } else {
      return std::nullopt;
    }
    if (rank >= last_rank) return std::nullopt; // "10m 5h", "5s5s"
    last_rank = rank;
    total += n * ms;
    any = true;
  }
  if (!any || total <= 0) return std::nullopt;
  return milliseconds(total);
}

std::string format_duration(std::chrono::milliseconds d) {
  long long ms = d.count();
  if (ms < 0) ms = 0;
  char buf[64];
  if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
    return buf;
  }
  long long s = ms / 1000;
  long long h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
  if (h > 0) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", h, m);
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", m, sec);
  }
  return buf;
}

} // namespace capstan::model
