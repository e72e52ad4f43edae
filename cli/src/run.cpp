// `capstan run`, `capstan logs`, `capstan approve`, `capstan interventions` and `capstan input`:
// start executions, follow them, and answer what they wait for.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

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

std::map<std::string, std::string> pairs(const std::vector<std::string>& items, const char* flag) {
  std::map<std::string, std::string> out;
  for (const auto& kv : items) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UsageError(std::string(flag) + " expects NAME=VALUE, not '" + kv + "'");
    }
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

} // namespace

int cmd_run(const Globals& g, const Argv& argv) {
  Args a(
      argv,
      {{"--set", "", true, true}, {"--inputs", "", true, false}, {"--detach", "", false, false}});
  if (a.positional().size() != 1) throw UsageError("run needs exactly one PIPELINE");
  const std::string pipeline = a.positional()[0];
  json body = {{"set", pairs(a.values("--set"), "--set")}};
  if (auto file = a.value("--inputs")) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) throw CommandError("cannot read " + *file, 2);
    std::ostringstream ss;
    ss << in.rdbuf();
    body["inputsYaml"] = ss.str();
    body["inputsFile"] = *file;
  }
  auto format = parse_format(g.output);
  ApiClient api(g);
  json started = api.post("/api/v1/pipelines/" + url_encode(pipeline) + "/executions", body);
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
    const json inputs = started.value("inputs", json::object());
    for (const auto& [k, v] : inputs.items()) {
      std::cout << "  input " << k << " = " << (v.is_string() ? v.get<std::string>() : v.dump())
                << "\n";
    }
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
      if (terminal(e["status"].get<std::string>())) break;
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

namespace capstan::cli {

int cmd_approve(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--reject", "", false, false},
                {"--comment", "", true, false},
                {"--input", "", true, true},
                {"--step", "", true, false}});
  if (a.positional().size() != 1) throw UsageError("approve needs exactly one EXECUTION");
  json body = {{"action", a.has("--reject") ? "reject" : "approve"},
               {"comment", a.value_or("--comment", "")},
               {"inputs", pairs(a.values("--input"), "--input")},
               {"step", a.value_or("--step", "")}};
  ApiClient api(g);
  json r = api.post("/api/v1/executions/" + url_encode(a.positional()[0]) + "/approvals", body);
  std::cout << (a.has("--reject") ? "rejected " : "approved ") << r.value("step", "") << " of "
            << r.value("id", "") << " as " << user_name(g) << " (" << r.value("status", "")
            << ")\n";
  return 0;
}

int cmd_interventions(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--step", "", true, false}, {"--comment", "", true, false}});
  const auto& pos = a.positional();
  auto format = parse_format(g.output);
  ApiClient api(g);
  if (pos.empty() || pos[0] == "list") {
    json r = api.get("/api/v1/waits");
    if (format == Format::kJson || format == Format::kYaml) {
      print_document(r["items"], format);
      return 0;
    }
    if (r["items"].empty()) {
      std::cout << "Nothing waits for anyone.\n";
      return 0;
    }
    Table t({"EXECUTION", "PIPELINE", "WHERE", "WAITS FOR", "SINCE", "DETAILS"});
    for (const auto& w : r["items"]) {
      t.add({w.value("execution", ""),
             w.value("pipeline", "") + " #" + std::to_string(w.value("sequence", 0)),
             w.value("where", ""), w.value("kind", ""), format_age(w["since"]),
             w.value("details", "")});
    }
    t.print();
    return 0;
  }
  if (pos[0] == "resolve") {
    if (pos.size() != 3) throw UsageError("interventions resolve needs EXECUTION ACTION");
    json body = {{"action", pos[2]},
                 {"step", a.value_or("--step", "")},
                 {"comment", a.value_or("--comment", "")}};
    json r = api.post("/api/v1/executions/" + url_encode(pos[1]) + "/interventions", body);
    std::cout << r.value("step", "") << " of " << r.value("id", "") << ": " << r.value("action", "")
              << "\n";
    return 0;
  }
  throw UsageError("unknown interventions subcommand '" + pos[0] + "' (list or resolve)");
}

int cmd_input(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--set", "", true, true}, {"--step", "", true, false}});
  if (a.positional().size() != 1) throw UsageError("input needs exactly one EXECUTION");
  json body = {{"values", pairs(a.values("--set"), "--set")}, {"step", a.value_or("--step", "")}};
  ApiClient api(g);
  json r = api.post("/api/v1/executions/" + url_encode(a.positional()[0]) + "/inputs", body);
  std::cout << "execution " << r.value("id", "") << " continues with";
  const json inputs = r.value("inputs", json::object());
  for (const auto& [k, v] : inputs.items()) {
    std::cout << " " << k << "=" << (v.is_string() ? v.get<std::string>() : v.dump());
  }
  std::cout << "\n";
  return 0;
}

} // namespace capstan::cli
