// The delegate's plugin host: loads plugin libraries, checks them, and runs steps through them.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "capstan/plugin/v1/plugin.pb.h"
#include "capstan/plugin_api.h"

namespace capstan::delegate {

// A step type a loaded plugin provides, as the delegate announces it to the coordinator.
struct StepTypeInfo {
  std::string type;
  std::string plugin;
  std::string plugin_version;
  std::string description;
  nlohmann::json spec_schema;
  bool retry_safe = false;
  // CAPSTAN_STEP_PROMPT: the plugin says a call returns at once, so the runner may make it on
  // the thread that received the task (and stops doing so when a call proves it wrong).
  bool prompt = false;
};

// A plugin file the host refused, and why (wrong ABI version, missing entry symbol, init
// failure, duplicate step type, schema that is not JSON, ...).
struct PluginRejection {
  std::filesystem::path path;
  std::string reason;
};

// What a running task offers the plugin through the capstan_host_api callbacks. Supplied by
// the task runner; each callback may be called from any thread while execute() runs, and any of
// them may be left empty. Text reaching them is valid UTF-8 (the host replaces bad bytes), and
// log gets one line per call (the host splits multi-line text).
struct TaskCallbacks {
  std::function<void(capstan_log_level, std::string_view line)> log;
  std::function<bool()> cancelled;
  std::function<void(std::string_view name, std::string_view value)> output;
  std::function<void(std::uint32_t percent, std::string_view message)> progress;
  // A value the plugin asks to be masked from now on (a secret it fetched or produced, such as
  // a Secret output variable); the runner adds it to the task's masker.
  std::function<void(std::string_view value)> mask;
};

// What the host does with what running reconcilers report (any thread; text is valid UTF-8).
struct ReconcilerCallbacks {
  // An application's status (JSON with at least "name"), from plugin `plugin`.
  std::function<void(const std::string& plugin, std::string_view status_json)> status;
  std::function<void(const std::string& plugin, capstan_log_level, std::string_view app,
                     std::string_view line)>
      log;
};

class PluginHost {
public:
  // plugin_config: {"<plugin name>": {...}} handed to each plugin's init (plus stateDir and
  // delegateName); state_root: where each plugin gets its state directory.
  PluginHost(nlohmann::json plugin_config, std::filesystem::path state_root,
             std::string delegate_name);
  ~PluginHost();
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // Loads every shared library (*.so) in the folders (non-recursive, sorted by name; folders in
  // the order given). A bad plugin is logged, recorded in rejections() and skipped; loading never
  // throws for a plugin's fault. A missing folder is logged and skipped. Not to be called while
  // execute() runs. Libraries stay loaded until the process exits.
  void load(const std::vector<std::filesystem::path>& dirs);

  const std::vector<StepTypeInfo>& step_types() const;
  const std::vector<PluginRejection>& rejections() const;

  // Runs one step through the plugin that provides request.step_type(). Never throws: an
  // unknown type, a spec that fails the type's schema, a plugin error or a missing/garbled
  // result all come back as a FAILED StepResult whose message says what happened. Safe to call
  // from several threads at once. When request.timeout_ms() passes, the plugin sees cancelled()
  // turn true and a step that then ends other than SUCCEEDED is reported FAILED with
  // ERROR_TYPE_TIMEOUT; a plugin that ignores cancellation is the runner's to abandon.
  // bytes, when given, are `request` as encoded (the same fields; an encoding the caller has,
  // handed to the plugin as it is instead of encoding the request again).
  plugin::v1::StepResult execute(const plugin::v1::StepRequest& request,
                                 const TaskCallbacks& callbacks, std::string_view bytes = {});

  // Plugins that offer the reconciler hooks (all three of them), by name.
  std::vector<std::string> reconcilers() const;
  // Starts every such plugin's reconciler; one that fails to start is logged and no longer
  // listed by reconcilers(). Call once, after load().
  void start_reconcilers(ReconcilerCallbacks callbacks);
  // One call into a plugin's reconciler; never throws: failures come back as ok=false with the
  // reason. Safe to call from several threads at once.
  plugin::v1::ReconcilerReply reconcile(const std::string& plugin,
                                        const plugin::v1::ReconcilerCall& call);
  // Stops every started reconciler (no callback runs after it returns). Also done by the
  // destructor.
  void stop_reconcilers();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace capstan::delegate
