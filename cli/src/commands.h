// The capstan subcommands. Each returns the process exit code: 0 success, 1 failed or aborted
// (or an operational error), 2 usage or validation error.
#pragma once

#include <string>
#include <vector>

#include "api_client.h"

namespace capstan::cli {

using Argv = std::vector<std::string>;

struct Command {
  const char* name;
  const char* summary;
  const char* usage; // the full --help text
  int (*run)(const Globals&, const Argv&);
};

const std::vector<Command>& commands();

int cmd_up(const Globals& g, const Argv& argv);
int cmd_down(const Globals& g, const Argv& argv);
int cmd_apply(const Globals& g, const Argv& argv);
int cmd_run(const Globals& g, const Argv& argv);
int cmd_executions(const Globals& g, const Argv& argv);
int cmd_logs(const Globals& g, const Argv& argv);
int cmd_delegates(const Globals& g, const Argv& argv);
int cmd_step_types(const Globals& g, const Argv& argv);
int cmd_get(const Globals& g, const Argv& argv);
int cmd_delete(const Globals& g, const Argv& argv);
int cmd_audit(const Globals& g, const Argv& argv);
int cmd_approve(const Globals& g, const Argv& argv);
int cmd_interventions(const Globals& g, const Argv& argv);
int cmd_input(const Globals& g, const Argv& argv);
int cmd_tokens(const Globals& g, const Argv& argv);
int cmd_prs(const Globals& g, const Argv& argv);
int cmd_apps(const Globals& g, const Argv& argv);
int cmd_appsets(const Globals& g, const Argv& argv);
int cmd_backup(const Globals& g, const Argv& argv);
int cmd_version(const Globals& g, const Argv& argv);

// Shared by run and logs: follows an execution until it ends, printing log lines and (with
// show_steps) the steps: a live tree on a terminal, which also asks for execution inputs; one
// line per change otherwise. Returns the final execution JSON.
std::string url_encode(const std::string& s);

nlohmann::json follow_execution(ApiClient& api, const std::string& id, const std::string& step,
                                bool show_steps);

} // namespace capstan::cli
