// `capstan prs`: the pull requests GitOps steps opened, as the coordinator records them.
#include <cctype>
#include <iostream>

#include "args.h"
#include "commands.h"
#include "output.h"

namespace capstan::cli {

using nlohmann::json;

namespace {

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string query(const Args& a) {
  std::string q;
  auto add = [&](const char* flag, const char* name) {
    if (auto v = a.value(flag))
      q += (q.empty() ? "?" : "&") + std::string(name) + "=" + url_encode(*v);
  };
  add("--repository", "repository");
  add("--state", "state");
  add("--execution", "execution");
  return q;
}

int prs_list(ApiClient& api, const Args& a, Format format) {
  json r = api.get("/api/v1/prs" + query(a));
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(r["items"], format);
    return 0;
  }
  if (r["items"].empty()) {
    std::cout << "No pull requests.\n";
    return 0;
  }
  bool wide = format == Format::kWide;
  std::vector<std::string> headers = {"NUMBER", "STATE",      "TITLE", "SOURCE",
                                      "TARGET", "REPOSITORY", "AGE"};
  if (wide) headers.insert(headers.end(), {"PROVIDER", "HEAD", "MERGE COMMIT", "EXECUTION", "URL"});
  Table t(headers);
  Unreadable unreadable("pull request", "pull requests");
  for (const auto& p : r["items"]) {
    const bool damaged = !unreadable.mark(p).empty();
    std::vector<std::string> row = {
        "#" + field_text(p, "number"), field_text(p, "state") + (damaged ? " (unreadable)" : ""),
        field_text(p, "title"),        field_text(p, "source"),
        field_text(p, "target"),       field_text(p, "repository"),
        format_age(p["createdAt"])};
    if (wide) {
      row.insert(row.end(), {field_text(p, "provider"), short_sha(field_text(p, "headSha")),
                             short_sha(field_text(p, "mergeCommit")), field_text(p, "executionId"),
                             field_text(p, "url")});
    }
    t.add(row);
  }
  t.print();
  unreadable.report();
  return 0;
}

int prs_get(ApiClient& api, const std::string& number, const Args& a, Format format) {
  std::string q;
  if (auto v = a.value("--repository")) q = "?repository=" + url_encode(*v);
  json p = api.get("/api/v1/prs/" + url_encode(number) + q);
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(p, format);
    return 0;
  }
  std::cout << "Pull request: #" << field_text(p, "number") << " " << field_text(p, "title") << "\n"
            << "State:        " << field_text(p, "state") << "\n"
            << "Repository:   " << field_text(p, "repository") << " (" << field_text(p, "provider")
            << ")\n"
            << "Branches:     " << field_text(p, "source") << " -> " << field_text(p, "target")
            << "\n"
            << "Head:         " << field_text(p, "headSha") << "\n";
  if (!field_text(p, "mergeCommit").empty()) {
    std::cout << "Merge commit: " << field_text(p, "mergeCommit") << "\n";
  }
  if (!field_text(p, "url").empty()) std::cout << "URL:          " << field_text(p, "url") << "\n";
  std::cout << "Opened by:    execution " << field_text(p, "executionId") << ", step "
            << field_text(p, "step") << "\n"
            << "Created:      " << format_time(p["createdAt"]) << "\n"
            << "Updated:      " << format_time(p["updatedAt"]) << "\n";
  if (!field_text(p, "body").empty()) std::cout << "\n" << field_text(p, "body") << "\n";
  return 0;
}

} // namespace

int cmd_prs(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--repository", "", true}, {"--state", "", true}, {"--execution", "", true}});
  const auto& pos = a.positional();
  auto format = parse_format(g.output);
  ApiClient api(g);
  if (pos.empty() || pos[0] == "list") {
    if (pos.size() > 1) throw UsageError("prs list takes no arguments");
    return prs_list(api, a, format);
  }
  if (pos[0] == "get") {
    if (pos.size() != 2) throw UsageError("usage: capstan prs get NUMBER [--repository URL]");
    return prs_get(api, pos[1], a, format);
  }
  throw UsageError("unknown prs subcommand '" + pos[0] + "' (list or get)");
}

} // namespace capstan::cli
