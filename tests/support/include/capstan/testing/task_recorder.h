// A TaskCallbacks that records everything a plugin sends, for assertions (header-only: link
// capstan::plugin_host where it is used).
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "capstan/delegate/plugin_host.h"

namespace capstan::testing {

struct Recorder {
  std::mutex mutex;
  std::vector<std::pair<capstan_log_level, std::string>> logs;
  std::map<std::string, std::string> outputs;
  std::vector<std::string> masks;
  std::vector<std::pair<std::uint32_t, std::string>> progress;
  std::atomic<bool> cancel{false};

  delegate::TaskCallbacks callbacks() {
    delegate::TaskCallbacks cb;
    cb.log = [this](capstan_log_level level, std::string_view line) {
      std::lock_guard lock(mutex);
      logs.emplace_back(level, std::string(line));
    };
    cb.cancelled = [this] { return cancel.load(); };
    cb.output = [this](std::string_view name, std::string_view value) {
      std::lock_guard lock(mutex);
      outputs[std::string(name)] = std::string(value);
    };
    cb.progress = [this](std::uint32_t percent, std::string_view message) {
      std::lock_guard lock(mutex);
      progress.emplace_back(percent, std::string(message));
    };
    cb.mask = [this](std::string_view value) {
      std::lock_guard lock(mutex);
      masks.emplace_back(value);
    };
    return cb;
  }

  std::vector<std::string> lines(capstan_log_level level) {
    std::lock_guard lock(mutex);
    std::vector<std::string> out;
    for (const auto& [l, text] : logs) {
      if (l == level) out.push_back(text);
    }
    return out;
  }
  std::string all_text() {
    std::lock_guard lock(mutex);
    std::string out;
    for (const auto& [l, text] : logs) out += text + "\n";
    return out;
  }
  bool saw(const std::string& needle) { return all_text().find(needle) != std::string::npos; }
};

} // namespace capstan::testing
