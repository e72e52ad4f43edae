// capstan: the command-line interface to a Capstan coordinator and the local embedded stack.
#include <csignal>
#include <iostream>

#include "args.h"
#include "commands.h"

using namespace capstan::cli;

namespace {

const char* kGlobalHelp = R"(Global options (accepted by every command):
  --home DIR        the local stack's home (default $CAPSTAN_HOME or ~/.capstan)
  --server URL      the coordinator's API (default: the one 'capstan up' started, or $CAPSTAN_SERVER)
  --token TOKEN     the API bearer token (default: read from the home, or $CAPSTAN_TOKEN)
  --user NAME       who you act as (default $CAPSTAN_USER, "user" in HOME/config.json, or your
                    login name); recorded in the audit trail and on approvals
  -o, --output FMT  json, yaml or wide instead of the table
  -h, --help        help for the command
)";

void print_overview() {
  std::cout << "capstan: continuous delivery with a coordinator, delegates and plugins.\n\n"
               "Usage: capstan COMMAND [options]\n\nCommands:\n";
  for (const auto& c : commands()) {
    std::string name = c.name;
    name.resize(12, ' ');
    std::cout << "  " << name << c.summary << "\n";
  }
  std::cout << "\n" << kGlobalHelp << "\nRun 'capstan COMMAND --help' for a command's options.\n";
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  Globals g;
  g.home = default_home();
  Argv rest;
  bool help = false;
  try {
    // Global options may appear anywhere; what remains belongs to the command.
    std::vector<std::string> all(argv + 1, argv + argc);
    for (std::size_t i = 0; i < all.size(); ++i) {
      std::string a = all[i];
      std::string name = a, value;
      bool inline_value = false;
      if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        inline_value = true;
      }
      auto take = [&]() {
        if (inline_value) return value;
        if (i + 1 >= all.size()) throw UsageError(name + " needs a value");
        return all[++i];
      };
      if (name == "--home") {
        g.home = take();
      } else if (name == "--server") {
        g.server = take();
      } else if (name == "--token") {
        g.token = take();
      } else if (name == "--user") {
        g.user = take();
      } else if (name == "-o" || name == "--output") {
        g.output = take();
      } else if (a == "-h" || a == "--help") {
        help = true;
      } else if (a == "--") {
        rest.insert(rest.end(), all.begin() + static_cast<long>(i), all.end());
        break;
      } else {
        rest.push_back(a);
      }
    }
    if (rest.empty() || rest[0] == "help") {
      if (rest.size() > 1) {
        rest = {rest[1]};
        help = true;
      } else {
        print_overview();
        return rest.empty() && !help ? 2 : 0;
      }
    }
    if (rest[0] == "--version") rest[0] = "version";
    for (const auto& c : commands()) {
      if (rest[0] != c.name) continue;
      if (help) {
        std::cout << c.usage << "\n" << kGlobalHelp;
        return 0;
      }
      return c.run(g, Argv(rest.begin() + 1, rest.end()));
    }
    std::cerr << "error: unknown command '" << rest[0]
              << "'\nRun 'capstan --help' for the commands.\n";
    return 2;
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << "\n"
              << "Run 'capstan " << (rest.empty() ? "" : rest[0] + " ") << "--help' for usage.\n";
    return 2;
  } catch (const CommandError& e) {
    std::cerr << "error: " << e.what() << "\n";
    for (const auto& d : e.details()) {
      if (d != e.what()) std::cerr << "  " << d << "\n";
    }
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
