// Harness-style durations ("10m", "1h 30m", "45s", "1d", "500ms").
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace capstan::model {

// Units w, d, h, m, s, ms, combined largest first, spaces allowed; nullopt when malformed or 0.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// The shortest form: "1h30m", "45s", "1.2s" for under a minute with a fraction.
std::string format_duration(std::chrono::milliseconds d);

} // namespace capstan::model
