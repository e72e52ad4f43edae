// `capstan run` and `capstan logs`: start and follow executions.
#include <unistd.h>

#include <iostream>
#include <map>

#include "args.h"
#include "commands.h"
#include "output.h"

namespace capstan::cli {

using nlohmann::json;

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

namespace {

bool terminal(const std::string& status) {
  return status == "Succeeded" || status == "Failed" || status == "Aborted" || status == "Skipped";
}

// The footer line a terminal shows under the scrolling output: what runs now.
class LiveLine {
public:
  explicit LiveLine(bool enabled) : enabled_(enabled) {}
  void clear() {
    if (enabled_ && shown_) std::cout << "\r\033[K" << std::flush;
    shown_ = false;
  }
  void show(const json& execution) {
    if (!enabled_) return;
    std::string running;
    for (const auto& stage : execution.value("stages", json::array())) {
      for (const auto& step : stage.value("steps", json::array())) {
        auto st = step.value("status", "");
        if (st == "Running" || st == "Dispatched" || st == "Queued") {
          running = stage.value("identifier", "") + "." + step.value("identifier", "") + " " + st;
        }
      }
    }
    if (running.empty()) return;
    static const char* spin[] = {"|", "/", "-", "\\"};
    std::cout << "\r\033[K\033[2m" << spin[frame_++ % 4] << " " << running << "\033[0m"
              << std::flush;
    shown_ = true;
  }

private:
  bool enabled_;
  bool shown_ = false;
  unsigned frame_ = 0;
};

} // namespace

json follow_execution(ApiClient& api, const std::string& id, const std::string& step,
                      bool show_steps) {
  std::int64_t revision = 0, after = 0;
  std::map<std::string, std::string> seen; // "stage.step" -> status printed
  LiveLine live(show_steps && stdout_is_terminal());
  const bool prefix = step.empty();
  while (true) {
    std::string path = "/api/v1/executions/" + url_encode(id) +
                       "/watch?wait=20&revision=" + std::to_string(revision) +
                       "&after=" + std::to_string(after) +
                       (step.empty() ? "" : "&step=" + url_encode(step));
    json w = api.get(path, 40);
    const json& e = w["execution"];
    live.clear();
    auto print_line = [&](const json& l) {
      if (prefix) std::cout << l["step"].get<std::string>() << " | ";
      std::cout << l["line"].get<std::string>() << "\n";
    };
    if (!show_steps) {
      for (const auto& l : w["lines"]) print_line(l);
    } else {
      // Step by step, in pipeline order: its start, its lines of this batch, its end.
      std::map<std::string, std::vector<const json*>> by_step;
      for (const auto& l : w["lines"]) by_step[l["step"].get<std::string>()].push_back(&l);
      for (const auto& stage : e["stages"]) {
        for (const auto& s : stage["steps"]) {
          std::string key =
              stage["identifier"].get<std::string>() + "." + s["identifier"].get<std::string>();
          std::string status = s["status"];
          bool started = status == "Dispatched" || status == "Running" ||
                         (terminal(status) && status != "Skipped");
          if (started && !seen.count(key)) {
            seen[key] = "started";
            std::cout << key << ": " << colour_status("Running") << " on "
                      << s.value("delegate", "?") << "\n";
          }
          for (const auto* l : by_step[key]) print_line(*l);
          if (terminal(status) && seen[key] != "ended") {
            seen[key] = "ended";
            if (status == "Skipped") continue;
            std::cout << key << ": " << colour_status(status) << " in "
                      << format_duration_ms(s["durationMs"]);
            if (status != "Succeeded" && !s.value("message", "").empty()) {
              std::cout << ": " << s["message"].get<std::string>();
            }
            std::cout << "\n";
          }
        }
      }
    }
    std::cout << std::flush;
    after = w["next"].get<std::int64_t>();
    revision = e["revision"].get<std::int64_t>();
    if (terminal(e["status"]) && w["lines"].empty()) return e;
    live.show(e);
  }
}

int cmd_run(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--set", "", true, true}, {"--detach", "", false, false}});
  if (a.positional().size() != 1) throw UsageError("run needs exactly one PIPELINE");
  const std::string pipeline = a.positional()[0];
  json vars = json::object();
  for (const auto& kv : a.values("--set")) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UsageError("--set expects NAME=VALUE, not '" + kv + "'");
    }
    vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto format = parse_format(g.output);
  ApiClient api(g);
  json started =
      api.post("/api/v1/pipelines/" + url_encode(pipeline) + "/executions", {{"variables", vars}});
  std::string id = started["id"];
  if (a.has("--detach")) {
    if (format == Format::kJson || format == Format::kYaml) {
      print_document(started, format);
    } else {
      std::cout << id << "\n";
    }
    return 0;
  }
  bool structured = format == Format::kJson || format == Format::kYaml;
  if (!structured) {
    std::cout << "execution " << id << ": pipeline " << pipeline << " #"
              << started["sequence"].get<std::int64_t>() << "\n";
  }
  json e = structured ? json() : follow_execution(api, id, "", true);
  if (structured) {
    // Wait without printing, then print the final document.
    std::int64_t revision = 0;
    while (true) {
      json w = api.get("/api/v1/executions/" + id + "/watch?wait=20&after=" +
                           std::to_string(INT64_MAX / 2) + "&revision=" + std::to_string(revision),
                       40);
      e = w["execution"];
      revision = e["revision"];
      if (terminal(e["status"])) break;
    }
    print_document(e, format);
  } else {
    std::string status = e["status"];
    std::cout << "execution " << id << ": " << colour_status(status) << " in "
              << format_duration_ms(e["durationMs"])
              << (status != "Succeeded" && !e.value("message", "").empty()
                      ? " (" + e["message"].get<std::string>() + ")"
                      : "")
              << "\n";
  }
  return e["status"] == "Succeeded" ? 0 : 1;
}

int cmd_logs(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--step", "", true, false}, {"--follow", "-f", false, false}});
  if (a.positional().size() != 1) throw UsageError("logs needs exactly one EXECUTION");
  ApiClient api(g);
  std::string id = a.positional()[0];
  std::string step = a.value_or("--step", "");
  if (a.has("--follow")) {
    follow_execution(api, id, step, false);
    return 0;
  }
  std::int64_t after = 0;
  const bool prefix = step.empty();
  while (true) {
    json r = api.get("/api/v1/executions/" + url_encode(id) + "/logs?limit=5000&after=" +
                     std::to_string(after) + (step.empty() ? "" : "&step=" + url_encode(step)));
    for (const auto& l : r["lines"]) {
      if (prefix) std::cout << l["step"].get<std::string>() << " | ";
      std::cout << l["line"].get<std::string>() << "\n";
    }
    if (r["lines"].empty()) break;
    after = r["next"];
  }
  return 0;
}

} // namespace capstan::cli
