// The ShellScript step, as Harness defines it: an inline Bash or sh script run on the delegate
// in the task's work folder, its output streamed line by line, its variables exported.
#include <capstan/process/subprocess.h>
#include <capstan/sdk/plugin.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "script_wrapper.h"

namespace capstan::plugins::shell {
namespace {

namespace fs = std::filesystem;
namespace sdk = capstan::sdk;
using nlohmann::json;
using plugin::v1::ERROR_TYPE_INVALID_INPUT;
using plugin::v1::ERROR_TYPE_TIMEOUT;
using plugin::v1::ERROR_TYPE_UNKNOWN;

// Harness caps a Shell Script step's output variables at 512 KB; so do we.
constexpr std::size_t kMaxOutputBytes = 512 * 1024;

constexpr const char* kSchema = R"json({
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "ShellScript step spec",
  "type": "object",
  "required": ["shell", "source"],
  "additionalProperties": false,
  "properties": {
    "shell": {"enum": ["Bash", "Sh"]},
    "onDelegate": {"type": ["boolean", "string"]},
    "source": {
      "type": "object",
      "required": ["type", "spec"],
      "additionalProperties": false,
      "properties": {
        "type": {"enum": ["Inline"]},
        "spec": {
          "type": "object",
          "required": ["script"],
          "additionalProperties": false,
          "properties": {"script": {"type": "string"}}
        }
      }
    },
    "environmentVariables": {"type": "array", "items": {"$ref": "#/$defs/environmentVariable"}},
    "outputVariables": {"type": "array", "items": {"$ref": "#/$defs/outputVariable"}},
    "executionTarget": {"type": "object"},
    "delegateSelectors": {"type": ["array", "string"], "items": {"type": "string"}},
    "includeInfraSelectors": {"type": ["boolean", "string"]},
    "outputAlias": {"type": "object"}
  },
  "$defs": {
    "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
    "environmentVariable": {
      "type": "object",
      "required": ["name", "type"],
      "additionalProperties": false,
      "properties": {
        "name": {"$ref": "#/$defs/name"},
        "type": {"enum": ["String", "Secret", "Number"]},
        "value": {"type": ["string", "number", "boolean", "null"]},
        "description": {"type": "string"},
        "required": {"type": "boolean"},
        "default": {}
      }
    },
    "outputVariable": {
      "type": "object",
      "required": ["name", "type", "value"],
      "additionalProperties": false,
      "properties": {
        "name": {"$ref": "#/$defs/name"},
        "type": {"enum": ["String", "Secret", "Number"]},
        "value": {"$ref": "#/$defs/name"},
        "description": {"type": "string"}
      }
    }
  }
})json";

std::string as_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

bool is_false(const json& v) {
  return (v.is_boolean() && !v.get<bool>()) || (v.is_string() && v.get<std::string>() == "false");
}

std::string describe(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  auto s = ms / 1000;
  if (s % 60 != 0 || s < 60) return std::to_string(s) + "s";
  return std::to_string(s / 60) + "m";
}

// A private folder for the script, its wrapper and the variables file, outside the work folder
// so the script can empty that without breaking the hand-back. Removed when the step ends.
class ScratchDir {
public:
  explicit ScratchDir(const fs::path& parent) {
    fs::create_directories(parent);
    std::string templ = (parent / "step-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      throw sdk::StepError("cannot create a scratch folder under " + parent.string());
    }
    path_ = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw sdk::StepError("cannot write " + path.string());
}

class Shell {
public:
  explicit Shell(sdk::InitContext& init) {
    fs::path state = init.state_dir();
    scratch_root_ = state.empty() ? fs::temp_directory_path() / "capstan-shell" : state / "runs";
  }

  sdk::Result run(sdk::StepContext& ctx) {
    const json& spec = ctx.spec();
    if (spec.contains("onDelegate") && is_false(spec["onDelegate"])) {
      throw sdk::StepError(ERROR_TYPE_INVALID_INPUT,
                           "onDelegate: false (running the script on a remote host) is not "
                           "supported; set onDelegate: true to run it on the delegate");
    }
    const bool bash = spec["shell"] == "Bash";
    const std::string& script = spec["source"]["spec"]["script"].get_ref<const std::string&>();

    process::Options options;
    for (const auto& var : spec.value("environmentVariables", json::array())) {
      std::string value = as_text(var.value("value", json()));
      if (var["type"] == "Secret") ctx.mask(value);
      options.env[var["name"].get<std::string>()] = std::move(value);
    }
    std::vector<std::string> script_names;
    for (const auto& out : spec.value("outputVariables", json::array())) {
      script_names.push_back(out["value"].get<std::string>());
    }

    ScratchDir scratch(scratch_root_);
    const fs::path script_file = scratch.path() / "script.sh";
    const fs::path wrapper_file = scratch.path() / "run.sh";
    const fs::path variables_file = scratch.path() / "variables";
    write_text(script_file, script);
    write_text(wrapper_file,
               wrapper_script(script_file.string(), variables_file.string(), script_names));

    options.argv = {bash ? "bash" : "sh", wrapper_file.string()};
    // The delegate gives every task a work folder; a request without one runs in a private
    // folder rather than wherever the delegate happens to be.
    options.working_dir = ctx.work_dir().string();
    if (options.working_dir.empty()) {
      fs::create_directory(scratch.path() / "work");
      options.working_dir = (scratch.path() / "work").string();
    }
    options.new_process_group = true;

    process::RunControl control;
    control.capture = false;
    control.timeout = ctx.remaining();
    control.cancelled = [&ctx] { return ctx.cancelled(); };
    control.on_line = [&ctx](process::Stream stream, const std::string& line) {
      // Harness shows stderr as error lines; so do we.
      ctx.log(stream == process::Stream::kStdout ? CAPSTAN_LOG_INFO : CAPSTAN_LOG_ERROR, line);
    };

    ctx.info(std::string("Executing ") + (bash ? "Bash" : "sh") + " script in " +
             options.working_dir);
    process::RunResult r;
    try {
      r = process::run(options, control);
    } catch (const process::SpawnError& e) {
      throw sdk::StepError(ERROR_TYPE_UNKNOWN, std::string("cannot start the script: ") + e.what());
    }

    // The host turns cancelled() true when the step's timeout passes, which may beat
    // process::run's own deadline by a hair: both are a timeout, told as the step's timeout
    // (not what was left of it when the script started).
    const auto left = ctx.remaining();
    if (r.timed_out || (r.cancelled && left && left->count() == 0)) {
      std::string msg = "Shell script timed out after " + describe(*ctx.timeout()) +
                        " and was killed with its child processes";
      ctx.error(msg);
      return sdk::Result::failed(ERROR_TYPE_TIMEOUT, msg);
    }
    if (r.cancelled) {
      ctx.warn("Shell script cancelled; it was stopped with its child processes");
      return sdk::Result::cancelled("Shell script cancelled");
    }
    if (!r.status.success()) {
      std::string msg = "Shell script failed: " + r.status.describe();
      ctx.error(msg);
      return sdk::Result::failed(ERROR_TYPE_UNKNOWN, msg);
    }
    ctx.info("Shell script completed with exit code 0");
    if (!script_names.empty()) export_outputs(ctx, variables_file.string());
    return sdk::Result::succeeded();
  }

private:
  static void export_outputs(sdk::StepContext& ctx, const std::string& variables_file) {
    const json& outputs = ctx.spec()["outputVariables"];
    std::vector<std::optional<std::string>> values;
    try {
      values = read_variables(variables_file, outputs.size());
    } catch (const std::runtime_error& e) {
      throw sdk::StepError(ERROR_TYPE_UNKNOWN,
                           std::string("cannot collect the output variables: ") + e.what() +
                               " (did the script replace the EXIT trap and exit early, or "
                               "exec another program?)");
    }
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      const std::string name = outputs[i]["name"].get<std::string>();
      const std::string var = outputs[i]["value"].get<std::string>();
      std::string value = values[i].value_or("");
      if (!values[i]) {
        ctx.warn("output variable " + name + ": the script did not set " + var +
                 "; exporting an empty value");
      }
      if (value.size() > kMaxOutputBytes) {
        throw sdk::StepError(ERROR_TYPE_INVALID_INPUT,
                             "output variable " + name + " is " + std::to_string(value.size()) +
                                 " bytes; the limit is " + std::to_string(kMaxOutputBytes) +
                                 " (512 KiB)");
      }
      if (outputs[i]["type"] == "Secret") ctx.mask(value);
      ctx.set_output(name, value);
    }
  }

  fs::path scratch_root_;
};

} // namespace
} // namespace capstan::plugins::shell

CAPSTAN_PLUGIN(plugin) {
  using capstan::plugins::shell::Shell;
  plugin.name("shell").version("1.0.0").state<Shell>();
  plugin.step({"ShellScript", capstan::plugins::shell::kSchema,
               "Runs an inline Bash or sh script on the delegate", 0},
              &Shell::run);
}
