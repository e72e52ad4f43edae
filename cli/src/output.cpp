// How the CLI prints.
#include "output.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "args.h"
#include "capstan/yaml/yaml.h"

namespace capstan::cli {

using nlohmann::json;

Format parse_format(const std::string& text) {
  if (text.empty()) return Format::kTable;
  if (text == "wide") return Format::kWide;
  if (text == "json") return Format::kJson;
  if (text == "yaml") return Format::kYaml;
  throw UsageError("unknown output format '" + text + "' (use json, yaml or wide)");
}

void print_document(const json& value, Format format) {
  if (format == Format::kJson) {
    std::cout << value.dump(2) << "\n";
  } else {
    std::cout << yaml::dump(value);
  }
}

void Table::print() const {
  std::vector<std::size_t> widths(headers_.size());
  for (std::size_t i = 0; i < headers_.size(); ++i) widths[i] = headers_[i].size();
  for (const auto& r : rows_) {
    for (std::size_t i = 0; i < r.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], r[i].size());
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t i = 0; i < headers_.size(); ++i) {
      std::string cell = i < cells.size() ? cells[i] : "";
      if (i + 1 < headers_.size()) cell.resize(widths[i] + 3, ' ');
      out += cell;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::cout << out << "\n";
  };
  line(headers_);
  for (const auto& r : rows_) line(r);
}

bool stdout_is_terminal() {
  static const bool tty = ::isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr;
  return tty;
}

std::string colour_status(const std::string& status) {
  if (!stdout_is_terminal()) return status;
  const char* code = nullptr;
  if (status == "Succeeded") {
    code = "32";
  } else if (status == "Failed" || status == "Aborted") {
    code = "31";
  } else if (status == "Running" || status == "Dispatched") {
    code = "36";
  } else if (status == "Queued") {
    code = "33";
  } else {
    return status;
  }
  return std::string("\033[") + code + "m" + status + "\033[0m";
}

std::string format_duration_ms(const json& ms) {
  if (!ms.is_number()) return "-";
  long long v = ms.get<long long>();
  if (v < 0) v = 0;
  char buf[32];
  if (v < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(v) / 1000.0);
  } else if (v < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", v / 60'000, (v / 1000) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", v / 3'600'000, (v / 60'000) % 60);
  }
  return buf;
}

std::string format_time(const json& unix_ms) {
  if (!unix_ms.is_number() || unix_ms.get<long long>() == 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_ms.get<long long>() / 1000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string format_age(const json& unix_ms) {
  if (!unix_ms.is_number() || unix_ms.get<long long>() == 0) return "-";
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  long long s = std::max<long long>(0, (now - unix_ms.get<long long>()) / 1000);
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

std::string short_sha(const std::string& sha) {
  return sha.size() > 12 ? sha.substr(0, 12) : sha;
}

std::string Unreadable::mark(const nlohmann::json& row) {
  auto why = field_text(row, "unreadable");
  if (!why.empty()) why_.push_back(why);
  return why;
}

void Unreadable::report(bool reasons) const {
  if (why_.empty()) return;
  if (reasons) {
    for (const auto& why : why_) std::cerr << "unreadable: " << why << "\n";
  }
  const bool one = why_.size() == 1;
  std::cerr << why_.size() << " " << (one ? one_ : more_) << (one ? " holds" : " hold")
            << " a stored value that cannot be read; what to do: docs/operations.md, "
               "\"Liveness and failure modes\"\n";
}

std::string field_text(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

} // namespace capstan::cli
