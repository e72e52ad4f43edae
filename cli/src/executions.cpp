// `capstan executions`, `capstan delegates` and `capstan version`.
#include <iostream>

#include "args.h"
#include "commands.h"
#include "output.h"

namespace capstan::cli {

using nlohmann::json;

namespace {

int executions_list(ApiClient& api, const Args& a, Format format) {
  std::string q = "?limit=" + a.value_or("--limit", "20");
  if (auto p = a.value("--pipeline")) q += "&pipeline=" + *p;
  if (auto s = a.value("--status")) q += "&status=" + *s;
  json r = api.get("/api/v1/executions" + q);
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(r["items"], format);
    return 0;
  }
  if (r["items"].empty()) {
    std::cout << "No executions.\n";
    return 0;
  }
  Table t({"ID", "PIPELINE", "#", "STATUS", "STARTED", "DURATION", "MESSAGE"});
  Unreadable unreadable("execution", "executions");
  for (const auto& e : r["items"]) {
    // A row whose stored values cannot be read is listed with what could be, and says why.
    const auto why = unreadable.mark(e);
    t.add({field_text(e, "id"), field_text(e, "pipeline"), field_text(e, "sequence"),
           field_text(e, "status") + (why.empty() ? "" : " (unreadable)"),
           format_time(e["startedAt"]), format_duration_ms(e["durationMs"]),
           why.empty() ? field_text(e, "message") : "UNREADABLE: " + why});
  }
  t.print();
  unreadable.report(false); // each row says why in its message
  return 0;
}

int executions_get(ApiClient& api, const std::string& id, Format format) {
  json e = api.get("/api/v1/executions/" + id);
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(e, format);
    return 0;
  }
  std::cout << "Execution:  " << field_text(e, "id") << "\n"
            << "Pipeline:   " << field_text(e, "pipeline") << " #" << field_text(e, "sequence")
            << " (version " << field_text(e, "pipelineVersion") << ")\n"
            << "Status:     " << colour_status(field_text(e, "status")) << "\n"
            << "Started:    " << format_time(e["startedAt"]) << "\n"
            << "Duration:   " << format_duration_ms(e["durationMs"]) << "\n";
  if (!field_text(e, "message").empty())
    std::cout << "Message:    " << field_text(e, "message") << "\n";
  if (!e["variables"].empty()) {
    std::cout << "Variables:\n";
    for (const auto& [k, v] : e["variables"].items()) {
      std::cout << "  " << k << "=" << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
    }
  }
  std::cout << "\n";
  if (!field_text(e, "triggeredBy").empty())
    std::cout << "Started by: " << field_text(e, "triggeredBy") << "\n";
  const json inputs = e.value("inputs", json::object());
  if (!inputs.empty()) {
    std::cout << "Inputs:\n";
    for (const auto& [k, v] : inputs.items()) {
      std::cout << "  " << k << " = " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
    }
  }
  Table t({"STAGE", "STEP", "TYPE", "STATUS", "DELEGATE", "ATTEMPT", "DURATION", "MESSAGE"});
  std::vector<std::string> outputs;
  for (const auto& stage : e["stages"]) {
    t.add({field_text(stage, "identifier"), "", field_text(stage, "type"),
           field_text(stage, "status"), "", "", format_duration_ms(stage["durationMs"]),
           field_text(stage, "message")});
    const json& steps = stage["steps"];
    for (const auto& s : steps) {
      int depth = 0;
      for (int p = s.value("parent", -1); p >= 0 && p < static_cast<int>(steps.size());
           p = steps[static_cast<std::size_t>(p)].value("parent", -1)) {
        ++depth;
      }
      std::string name = field_text(s, "identifier");
      if (auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
      if (field_text(s, "section") == "rollback") name += " (rollback)";
      std::string attempt = s.value("attempt", 0) ? field_text(s, "attempt") : "";
      if (s.value("retries", 0) > 0) attempt += " (retry " + field_text(s, "retries") + ")";
      t.add({"", std::string(static_cast<std::size_t>(2 * depth), ' ') + name,
             field_text(s, "type"), field_text(s, "status"), field_text(s, "delegate"), attempt,
             format_duration_ms(s["durationMs"]), field_text(s, "message")});
      json step_outputs = s.value("outputs", json::object());
      for (const auto& [k, v] : step_outputs.items()) {
        outputs.push_back("  " + field_text(stage, "identifier") + "." +
                          field_text(s, "identifier") + "." + k + " = " +
                          (v.is_string() ? v.get<std::string>() : v.dump()));
      }
    }
  }
  t.print();
  if (!outputs.empty()) {
    std::cout << "\nOutputs:\n";
    for (const auto& o : outputs) std::cout << o << "\n";
  }
  return 0;
}

} // namespace

int cmd_executions(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--pipeline", "", true, false},
                {"--status", "", true, false},
                {"--limit", "", true, false}});
  const auto& pos = a.positional();
  if (pos.empty()) throw UsageError("executions needs a subcommand: list, get or abort");
  auto format = parse_format(g.output);
  if (pos[0] == "list") {
    if (pos.size() != 1) throw UsageError("executions list takes no arguments");
    ApiClient api(g);
    return executions_list(api, a, format);
  }
  if (pos[0] == "get" || pos[0] == "abort") {
    if (pos.size() != 2) throw UsageError("executions " + pos[0] + " needs one EXECUTION");
    ApiClient api(g);
    if (pos[0] == "get") return executions_get(api, pos[1], format);
    json r = api.post("/api/v1/executions/" + pos[1] + "/abort", json::object());
    std::cout << "execution " << field_text(r, "id") << " aborted\n";
    return 0;
  }
  throw UsageError("unknown executions subcommand '" + pos[0] + "' (list, get or abort)");
}

int cmd_step_types(const Globals& g, const Argv& argv) {
  Args a(argv, {});
  if (a.positional().size() > 1) throw UsageError("step-types takes at most one step type");
  auto format = parse_format(g.output);
  ApiClient api(g);
  json items = api.get("/api/v1/steptypes")["items"];
  if (!a.positional().empty()) {
    const std::string want = a.positional()[0];
    json found;
    for (const auto& t : items) {
      if (field_text(t, "type") == want) found = t;
    }
    if (found.is_null()) {
      throw CommandError("step type '" + want +
                             "' is not known to this coordinator (no delegate has announced it)",
                         1);
    }
    items = json::array({found});
  }
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(a.positional().empty() ? items : items[0], format);
    return 0;
  }
  Table t({"TYPE", "RUNS ON", "PLUGIN", "SCHEMA", "LAST DELEGATE", "DESCRIPTION"});
  for (const auto& i : items) {
    bool delegate = field_text(i, "runsOn") == "delegate";
    t.add({field_text(i, "type"), field_text(i, "runsOn"),
           delegate ? field_text(i, "plugin") + "@" + field_text(i, "pluginVersion") : "-",
           delegate ? (i.value("specSchema", json()).is_null() ? "unknown" : "yes") : "-",
           delegate ? field_text(i, "lastDelegate") : "-",
           delegate ? field_text(i, "description") : "-"});
  }
  t.print();
  return 0;
}

int cmd_delegates(const Globals& g, const Argv& argv) {
  Args a(argv, {});
  if (!a.positional().empty()) throw UsageError("delegates takes no arguments");
  auto format = parse_format(g.output);
  ApiClient api(g);
  json r = api.get("/api/v1/delegates");
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(r["items"], format);
    return 0;
  }
  if (r["items"].empty()) {
    std::cout << "No delegates have connected to this coordinator.\n";
    return 0;
  }
  bool wide = format == Format::kWide;
  std::vector<std::string> headers = {"NAME", "STATUS", "RUNNING", "STEP TYPES", "TAGS", "AGE"};
  if (wide) {
    headers.insert(headers.end(), {"PLUGINS", "VERSION", "HOSTNAME", "INSTANCE"});
  }
  Table t(headers);
  Unreadable unreadable("delegate", "delegates");
  for (const auto& d : r["items"]) {
    const bool damaged = !unreadable.mark(d).empty();
    std::vector<std::string> types, plugins, tags;
    for (const auto& st : d["stepTypes"]) {
      types.push_back(field_text(st, "type"));
      plugins.push_back(field_text(st, "plugin") + "@" + field_text(st, "pluginVersion"));
    }
    for (const auto& tag : d["tags"]) tags.push_back(tag.get<std::string>());
    bool up = d.value("connected", false);
    std::vector<std::string> row = {
        field_text(d, "name"),
        std::string(up ? (d.value("draining", false) ? "Draining" : "Connected") : "Disconnected") +
            (damaged ? " (unreadable)" : ""),
        up ? field_text(d, "running") + "/" + field_text(d, "slots") : "-",
        types.empty() ? "-" : join(types, ","),
        tags.empty() ? "-" : join(tags, ","),
        format_age(up ? d["connectedAt"] : d["lastSeen"])};
    if (wide) {
      std::sort(plugins.begin(), plugins.end());
      plugins.erase(std::unique(plugins.begin(), plugins.end()), plugins.end());
      row.insert(row.end(), {plugins.empty() ? "-" : join(plugins, ","), field_text(d, "version"),
                             field_text(d, "hostname"), field_text(d, "instanceId")});
    }
    t.add(row);
  }
  t.print();
  unreadable.report();
  return 0;
}

int cmd_version(const Globals& g, const Argv& argv) {
  Args a(argv, {});
  std::cout << "capstan " << CAPSTAN_VERSION << "\n";
  try {
    ApiClient api(g);
    json v = api.get("/api/v1/version");
    std::cout << "coordinator " << field_text(v, "version") << " at " << api.url()
              << " (wire protocol " << field_text(v, "wireProtocol") << ")\n";
  } catch (const CommandError& e) {
    std::cout << "coordinator: not reachable (" << e.what() << ")\n";
  }
  return 0;
}

} // namespace capstan::cli
