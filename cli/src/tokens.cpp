// `capstan tokens`: delegate tokens.
#include <iostream>

#include "args.h"
#include "commands.h"
#include "output.h"

namespace capstan::cli {

using nlohmann::json;

int cmd_tokens(const Globals& g, const Argv& argv) {
  Args a(argv, {});
  const auto& pos = a.positional();
  if (pos.empty()) throw UsageError("tokens needs a subcommand: create, list or revoke");
  ApiClient api(g);
  if (pos[0] == "create" || pos[0] == "revoke") {
    if (pos.size() != 2) throw UsageError("tokens " + pos[0] + " takes one NAME");
    if (pos[0] == "revoke") {
      json r = api.del("/api/v1/tokens/" + pos[1]);
      std::cout << "token " << pos[1] << " revoked";
      auto dropped = r.value("droppedSessions", 0);
      if (dropped > 0) std::cout << "; " << dropped << " delegate session(s) dropped";
      std::cout << "\n";
      return 0;
    }
    json r = api.post("/api/v1/tokens", {{"name", pos[1]}});
    if (stdout_is_terminal()) {
      std::cerr << "token " << pos[1]
                << " created; it is shown only now (give it to delegates with --token-file):\n";
    }
    std::cout << r.value("token", "") << "\n";
    return 0;
  }
  if (pos[0] != "list") {
    throw UsageError("unknown tokens subcommand '" + pos[0] + "' (create, list or revoke)");
  }
  if (pos.size() != 1) throw UsageError("tokens list takes no arguments");
  auto format = parse_format(g.output);
  json r = api.get("/api/v1/tokens");
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(r["items"], format);
    return 0;
  }
  if (r["items"].empty()) {
    std::cout << "No delegate tokens.\n";
    return 0;
  }
  Table t({"NAME", "STATUS", "DELEGATES", "CREATED", "LAST USED"});
  for (const auto& tok : r["items"]) {
    t.add({tok.value("name", ""), tok.value("revoked", false) ? "Revoked" : "Valid",
           std::to_string(tok.value("connectedDelegates", 0)), format_time(tok["createdAt"]),
           format_time(tok["lastUsedAt"])});
  }
  t.print();
  return 0;
}

} // namespace capstan::cli
