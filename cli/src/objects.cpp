// `capstan get`, `capstan delete` and `capstan audit`.
#include <iostream>

#include "args.h"
#include "commands.h"
#include "output.h"

namespace capstan::cli {

using nlohmann::json;

namespace {

std::string text(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

} // namespace

int cmd_get(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--version", "", true, false}, {"--history", "", false, false}});
  const auto& pos = a.positional();
  if (pos.empty() || pos.size() > 2) throw UsageError("get needs KIND [ID]");
  auto format = parse_format(g.output);
  ApiClient api(g);
  const std::string base = "/api/v1/objects/" + url_encode(pos[0]);
  if (pos.size() == 1) {
    if (a.has("--version") || a.has("--history")) {
      throw UsageError("--version and --history need an ID");
    }
    json r = api.get(base);
    if (format == Format::kJson || format == Format::kYaml) {
      print_document(r["items"], format);
      return 0;
    }
    if (r["items"].empty()) {
      std::cout << "No " << text(r, "kind") << " objects.\n";
      return 0;
    }
    bool wide = format == Format::kWide;
    std::vector<std::string> headers = {"IDENTIFIER", "NAME", "VERSION", "APPLIED", "BY"};
    if (wide) headers.push_back("SOURCE");
    Table t(headers);
    Unreadable unreadable("object", "objects");
    for (const auto& o : r["items"]) {
      const bool damaged = !unreadable.mark(o).empty();
      std::vector<std::string> row = {
          text(o, "identifier"), text(o, "name") + (damaged ? " (unreadable)" : ""),
          text(o, "version"), format_age(o["appliedAt"]), text(o, "appliedBy")};
      if (wide) row.push_back(text(o, "source"));
      t.add(row);
    }
    t.print();
    unreadable.report();
    return 0;
  }
  const std::string path = base + "/" + url_encode(pos[1]);
  if (a.has("--history")) {
    json r = api.get(path + "/versions");
    if (format == Format::kJson || format == Format::kYaml) {
      print_document(r["items"], format);
      return 0;
    }
    Table t({"VERSION", "APPLIED", "BY", "SOURCE"});
    for (const auto& o : r["items"]) {
      t.add({text(o, "version") + (o.value("deleted", false) ? " (deleted)" : ""),
             format_time(o["appliedAt"]), text(o, "appliedBy"), text(o, "source")});
    }
    t.print();
    return 0;
  }
  std::string query;
  if (auto v = a.value("--version")) query = "?version=" + url_encode(*v);
  json o = api.get(path + query);
  switch (format) {
  case Format::kYaml:
    // Exactly the document as it was applied, comments and all.
    std::cout << text(o, "yaml");
    if (!text(o, "yaml").empty() && text(o, "yaml").back() != '\n') std::cout << "\n";
    return 0;
  case Format::kJson:
    std::cout << o["document"].dump(2) << "\n";
    return 0;
  default: {
    Table t({"KIND", "IDENTIFIER", "NAME", "VERSION", "APPLIED", "BY", "SOURCE"});
    t.add({text(o, "kind"), text(o, "identifier"), text(o, "name"), text(o, "version"),
           format_time(o["appliedAt"]), text(o, "appliedBy"), text(o, "source")});
    t.print();
    return 0;
  }
  }
}

int cmd_delete(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--cascade", "", true}});
  const auto& pos = a.positional();
  if (pos.size() != 2) throw UsageError("delete needs KIND ID");
  std::string path = "/api/v1/objects/" + url_encode(pos[0]) + "/" + url_encode(pos[1]);
  if (auto cascade = a.value("--cascade")) {
    if (*cascade != "true" && *cascade != "false") {
      throw UsageError("--cascade must be true or false, not '" + *cascade + "'");
    }
    path += "?cascade=" + *cascade;
  }
  ApiClient api(g);
  json r = api.del(path);
  if (r.value("deleting", false)) {
    std::cout << text(r, "kind") << "/" << text(r, "identifier")
              << " deleting: its resources are deleted first\n";
    return 0;
  }
  std::cout << text(r, "kind") << "/" << text(r, "identifier") << " deleted\n";
  return 0;
}

int cmd_audit(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--by", "", true, false},
                {"--action", "", true, false},
                {"--kind", "", true, false},
                {"--target", "", true, false},
                {"--limit", "", true, false}});
  if (!a.positional().empty()) throw UsageError("audit takes no arguments");
  std::string q = "?limit=" + url_encode(a.value_or("--limit", "50"));
  if (auto v = a.value("--by")) q += "&user=" + url_encode(*v);
  for (const char* f : {"action", "kind", "target"}) {
    if (auto v = a.value(std::string("--") + f)) q += std::string("&") + f + "=" + url_encode(*v);
  }
  auto format = parse_format(g.output);
  ApiClient api(g);
  json r = api.get("/api/v1/audit" + q);
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(r["items"], format);
    return 0;
  }
  if (r["items"].empty()) {
    std::cout << "No audit entries.\n";
    return 0;
  }
  Table t({"TIME", "USER", "ACTION", "OBJECT", "DETAILS"});
  Unreadable unreadable("audit entry", "audit entries");
  for (const auto& e : r["items"]) {
    std::string details = unreadable.mark(e).empty() ? "" : "(unreadable)";
    const json d = e.value("details", json::object());
    for (const auto& [k, v] : d.items()) {
      details += (details.empty() ? "" : " ") + k + "=" +
                 (v.is_string() ? v.get<std::string>() : v.dump());
    }
    t.add({format_time(e["time"]), text(e, "user"), text(e, "action"),
           text(e, "kind") + "/" + text(e, "target"), details});
  }
  t.print();
  unreadable.report();
  return 0;
}

} // namespace capstan::cli
