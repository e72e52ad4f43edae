// The plugin host: dlopen()s plugin libraries through Boost.DLL, checks every field the C ABI
// hands over before trusting it, and turns whatever a plugin does during execute() into a
// StepResult.
#include "capstan/delegate/plugin_host.h"

#include <dlfcn.h>

#include <boost/dll/shared_library.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "capstan/json_schema/schema.h"
#include "utf8.h"

namespace capstan::delegate {

namespace fs = std::filesystem;
namespace dll = boost::dll;
using nlohmann::json;
using plugin::v1::ErrorType;
using plugin::v1::StepRequest;
using plugin::v1::StepResult;
using Clock = std::chrono::steady_clock;

namespace {

// The capstan_plugin_v1 fields every 1.x plugin has: the version header, then 1.0's fields.
constexpr std::size_t kHeaderSize = offsetof(capstan_plugin_v1, name);
constexpr std::size_t kPluginV1Size =
    offsetof(capstan_plugin_v1, step_type_size) + sizeof(uint32_t);
constexpr std::size_t kStepTypeV1Size = offsetof(capstan_step_type, flags) + sizeof(uint32_t);
constexpr std::uint32_t kMaxStepTypes = 1024;
constexpr std::size_t kMaxResultMessage = 4096;
// The longest spec remembered as valid for its step type (PluginHost::Impl::ValidSpec).
constexpr std::size_t kMaxRememberedSpec = 4096;

// Every library the host opened stays mapped until the process exits, bad ones included: a
// library may have registered thread-local destructors, atexit handlers or threads during its
// static initialisation, and unmapping its code under them is a crash at some later moment.
void keep_loaded(dll::shared_library library) {
  static std::mutex mutex;
  static auto* libraries = new std::vector<dll::shared_library>(); // never destroyed, on purpose
  std::lock_guard lock(mutex);
  libraries->push_back(std::move(library));
}

bool valid_name(std::string_view name, bool allow_dot_dash) {
  if (name.empty() || name.size() > 128) return false;
  if (!std::isalpha(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
           (allow_dot_dash && (c == '-' || c == '.'));
  });
}

std::string format_duration(std::uint64_t ms) {
  if (ms < 1000) return std::to_string(ms) + "ms";
  std::uint64_t s = ms / 1000;
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h";
  if (s >= 60 && s % 3600 / 60 != 0) out += std::to_string(s % 3600 / 60) + "m";
  if (s % 60 != 0 || s < 60) out += std::to_string(s % 60) + "s";
  return out;
}

StepResult failed(ErrorType type, std::string message) {
  StepResult r;
  r.set_status(StepResult::STATUS_FAILED);
  r.set_error_type(type);
  r.set_message(std::move(message));
  return r;
}

const char* c_str_or(const char* s, const char* fallback) {
  return s != nullptr ? s : fallback;
}

} // namespace

// A loaded, initialised plugin. Its api is a copy of the plugin's struct, zero beyond the
// plugin's struct_size, so fields a plugin does not have read as NULL.
struct LoadedPlugin {
  fs::path path;
  capstan_plugin_v1 api{};
  std::string name;
  std::string version;
  capstan_plugin_state* state = nullptr;

  // The plugin's reason for its last failed call on this thread, never NULL.
  std::string last_error(capstan_plugin_state* s) const {
    if (api.get_last_error == nullptr) return "(no reason given)";
    try {
      const char* e = api.get_last_error(s);
      if (e == nullptr || *e == '\0') return "(no reason given)";
      return utf8::sanitize(std::string_view(e, strnlen(e, kMaxResultMessage)));
    } catch (...) {
      return "(get_last_error threw an exception)";
    }
  }
};

namespace {

// What host_ctx points to during one init() or execute() call.
struct CallContext {
  const LoadedPlugin* plugin = nullptr;
  const TaskCallbacks* callbacks = nullptr; // null during init: lines go to the delegate's log
  std::optional<Clock::time_point> deadline;
  std::mutex mutex; // guards result: set_result may come from any of the plugin's threads
  std::optional<std::string> result;
};

CallContext& context(void* host_ctx) {
  return *static_cast<CallContext*>(host_ctx);
}

capstan_log_level clamp_level(capstan_log_level level) {
  switch (level) {
  case CAPSTAN_LOG_DEBUG:
  case CAPSTAN_LOG_INFO:
  case CAPSTAN_LOG_WARN:
  case CAPSTAN_LOG_ERROR:
    return level;
  }
  return CAPSTAN_LOG_INFO;
}

void log_to_delegate(const std::string& plugin, capstan_log_level level, const std::string& line) {
  switch (level) {
  case CAPSTAN_LOG_DEBUG:
    spdlog::debug("plugin {}: {}", plugin, line);
    break;
  case CAPSTAN_LOG_WARN:
    spdlog::warn("plugin {}: {}", plugin, line);
    break;
  case CAPSTAN_LOG_ERROR:
    spdlog::error("plugin {}: {}", plugin, line);
    break;
  default:
    spdlog::info("plugin {}: {}", plugin, line);
  }
}

// The callbacks a plugin gets. Each is noexcept at the boundary: a throwing runner callback
// must not unwind through plugin frames (which may be C, Rust or Go).
void host_log(void* host_ctx, capstan_log_level level, const char* line, size_t len) noexcept {
  if (host_ctx == nullptr || (line == nullptr && len > 0)) return;
  try {
    CallContext& ctx = context(host_ctx);
    level = clamp_level(level);
    std::string_view text(line == nullptr ? "" : line, len);
    // One call, one or more lines: each goes out on its own, without a trailing '\r'.
    std::size_t start = 0;
    do {
      std::size_t end = text.find('\n', start);
      std::string_view piece =
          text.substr(start, end == std::string_view::npos ? end : end - start);
      if (!piece.empty() && piece.back() == '\r') piece.remove_suffix(1);
      const bool trailing = end != std::string_view::npos && end + 1 == text.size();
      std::string clean = utf8::sanitize(piece);
      if (ctx.callbacks == nullptr) {
        log_to_delegate(ctx.plugin->name, level, clean);
      } else if (ctx.callbacks->log) {
        ctx.callbacks->log(level, clean);
      }
      if (end == std::string_view::npos || trailing) break;
      start = end + 1;
    } while (true);
  } catch (...) {
  }
}

int host_cancelled(void* host_ctx) noexcept {
  if (host_ctx == nullptr) return 0;
  try {
    CallContext& ctx = context(host_ctx);
    if (ctx.deadline && Clock::now() >= *ctx.deadline) return 1;
    if (ctx.callbacks != nullptr && ctx.callbacks->cancelled && ctx.callbacks->cancelled())
      return 1;
  } catch (...) {
  }
  return 0;
}

void host_set_output(void* host_ctx, const char* name, const char* value) noexcept {
  if (host_ctx == nullptr || name == nullptr) return;
  try {
    CallContext& ctx = context(host_ctx);
    if (ctx.callbacks == nullptr || !ctx.callbacks->output) return;
    ctx.callbacks->output(utf8::sanitize(name), utf8::sanitize(value == nullptr ? "" : value));
  } catch (...) {
  }
}

void host_progress(void* host_ctx, uint32_t percent, const char* message) noexcept {
  if (host_ctx == nullptr) return;
  try {
    CallContext& ctx = context(host_ctx);
    if (ctx.callbacks == nullptr || !ctx.callbacks->progress) return;
    ctx.callbacks->progress(std::min<uint32_t>(percent, 100),
                            utf8::sanitize(message == nullptr ? "" : message));
  } catch (...) {
  }
}

void host_set_result(void* host_ctx, const uint8_t* data, size_t size) noexcept {
  if (host_ctx == nullptr || (data == nullptr && size > 0)) return;
  try {
    CallContext& ctx = context(host_ctx);
    std::lock_guard lock(ctx.mutex);
    ctx.result.emplace(reinterpret_cast<const char*>(data), size);
  } catch (...) {
  }
}

void host_mask(void* host_ctx, const char* value, size_t len) noexcept {
  if (host_ctx == nullptr || value == nullptr || len == 0) return;
  try {
    CallContext& ctx = context(host_ctx);
    if (ctx.callbacks == nullptr || !ctx.callbacks->mask) return;
    ctx.callbacks->mask(std::string_view(value, len));
  } catch (...) {
  }
}

const capstan_host_api kHostApi = {
    sizeof(capstan_host_api), &host_log,        &host_cancelled, &host_set_output,
    &host_progress,           &host_set_result, &host_mask,
};

// What host_ctx points to for a running reconciler: lives until the host is destroyed.
struct ReconcilerContext {
  const LoadedPlugin* plugin = nullptr;
  const ReconcilerCallbacks* callbacks = nullptr;
};

void reconciler_status(void* host_ctx, const char* status_json, size_t len) noexcept {
  try {
    auto& rc = *static_cast<ReconcilerContext*>(host_ctx);
    if (status_json == nullptr || !rc.callbacks->status) return;
    rc.callbacks->status(rc.plugin->name, utf8::sanitize(std::string_view(status_json, len)));
  } catch (...) {
    // a report lost is better than a plugin thread ended by an exception
  }
}

void reconciler_log(void* host_ctx, capstan_log_level level, const char* app, const char* line,
                    size_t len) noexcept {
  try {
    auto& rc = *static_cast<ReconcilerContext*>(host_ctx);
    if (line == nullptr || !rc.callbacks->log) return;
    rc.callbacks->log(rc.plugin->name, clamp_level(level),
                      utf8::sanitize(app == nullptr ? "" : app),
                      utf8::sanitize(std::string_view(line, len)));
  } catch (...) {
  }
}

const capstan_reconciler_host kReconcilerHost = {sizeof(capstan_reconciler_host),
                                                 &reconciler_status, &reconciler_log};

void reconciler_reply(void* reply_ctx, const uint8_t* data, size_t size) noexcept {
  try {
    auto* out = static_cast<std::optional<std::string>*>(reply_ctx);
    *out = std::string(reinterpret_cast<const char*>(data), size);
  } catch (...) {
  }
}

} // namespace

struct PluginHost::Impl {
  json plugin_config;
  fs::path state_root;
  std::string delegate_name;

  std::vector<std::unique_ptr<LoadedPlugin>> plugins;
  // The spec that last passed its type's schema: a step run again and again (the same pipeline,
  // the same step) brings the same spec, and checking it again would parse and walk it for
  // nothing. Small specs only, so a large one is not kept.
  struct ValidSpec {
    std::mutex mutex;
    std::optional<std::string> spec; // guarded by mutex
  };
  struct Step {
    LoadedPlugin* plugin;
    json_schema::Schema schema;
    std::unique_ptr<ValidSpec> valid = std::make_unique<ValidSpec>();
  };
  std::map<std::string, Step, std::less<>> steps;
  std::vector<StepTypeInfo> step_types;
  std::vector<PluginRejection> rejections;

  // Reconcilers: the callbacks live here so the host_ctx handed to plugins stays valid.
  ReconcilerCallbacks reconciler_callbacks;
  std::vector<std::unique_ptr<ReconcilerContext>> reconciler_contexts;
  std::vector<LoadedPlugin*> with_hooks; // loaded plugins offering the reconciler hooks
  std::vector<LoadedPlugin*> started;    // reconcilers running
  bool reconcilers_started = false;
  std::mutex reconcilers_mutex; // guards `started` and reconcilers_started

  void load_file(const fs::path& path);
  std::optional<std::string> try_load(const fs::path& path);
  StepResult run(const StepRequest& request, const TaskCallbacks& callbacks,
                 std::string_view bytes);
};

PluginHost::PluginHost(json plugin_config, fs::path state_root, std::string delegate_name)
    : impl_(std::make_unique<Impl>()) {
  impl_->plugin_config = plugin_config.is_object() ? std::move(plugin_config) : json::object();
  impl_->state_root = std::move(state_root);
  impl_->delegate_name = std::move(delegate_name);
}

PluginHost::~PluginHost() {
  stop_reconcilers();
  for (auto it = impl_->plugins.rbegin(); it != impl_->plugins.rend(); ++it) {
    LoadedPlugin& p = **it;
    try {
      if (p.api.destroy != nullptr && p.state != nullptr) p.api.destroy(p.state);
    } catch (...) {
      spdlog::warn("plugin {}: destroy threw an exception", p.name);
    }
  }
}

const std::vector<StepTypeInfo>& PluginHost::step_types() const {
  return impl_->step_types;
}

const std::vector<PluginRejection>& PluginHost::rejections() const {
  return impl_->rejections;
}

void PluginHost::load(const std::vector<fs::path>& dirs) {
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      spdlog::warn("plugin folder {} does not exist or is not a folder; skipped", dir.string());
      continue;
    }
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const fs::path& p = it->path();
      std::error_code file_ec;
      if (p.extension() == ".so" && p.filename().string()[0] != '.' &&
          fs::is_regular_file(p, file_ec)) {
        files.push_back(p);
      }
    }
    if (ec) {
      spdlog::warn("cannot list plugin folder {}: {}", dir.string(), ec.message());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) impl_->load_file(file);
  }
}

void PluginHost::Impl::load_file(const fs::path& path) {
  std::optional<std::string> reason;
  try {
    reason = try_load(path);
  } catch (const std::exception& e) {
    reason = std::string("unexpected error while loading: ") + e.what();
  } catch (...) {
    reason = "unexpected error while loading (a non-standard exception)";
  }
  if (reason) {
    spdlog::warn("refusing plugin {}: {}", path.string(), *reason);
    rejections.push_back(PluginRejection{path, *reason});
  }
}

std::optional<std::string> PluginHost::Impl::try_load(const fs::path& path) {
  dll::shared_library library;
  std::error_code ec;
  library.load(path, dll::load_mode::rtld_local | dll::load_mode::rtld_now, ec);
  if (ec || !library.is_loaded()) {
    const char* why = ::dlerror(); // Boost.DLL reports only a generic error code
    return std::string("cannot load the library: ") + (why != nullptr ? why : ec.message());
  }
  const bool has_entry = library.has(CAPSTAN_PLUGIN_ENTRY_SYMBOL);
  auto entry =
      has_entry
          ? &library.get<const capstan_plugin_v1*(uint32_t, uint32_t)>(CAPSTAN_PLUGIN_ENTRY_SYMBOL)
          : nullptr;
  keep_loaded(std::move(library));
  if (entry == nullptr) {
    return std::string("it does not export the symbol " CAPSTAN_PLUGIN_ENTRY_SYMBOL
                       " (not a Capstan plugin, or built without CAPSTAN_PLUGIN_EXPORT; "
                       "capstan_add_plugin() and CAPSTAN_PLUGIN() do that)");
  }

  const capstan_plugin_v1* raw = nullptr;
  try {
    raw = entry(CAPSTAN_PLUGIN_API_MAJOR, CAPSTAN_PLUGIN_API_MINOR);
  } catch (...) {
    return std::string(CAPSTAN_PLUGIN_ENTRY_SYMBOL "() threw a C++ exception");
  }
  const std::string host_version =
      std::to_string(CAPSTAN_PLUGIN_API_MAJOR) + "." + std::to_string(CAPSTAN_PLUGIN_API_MINOR);
  if (raw == nullptr) {
    return std::string(CAPSTAN_PLUGIN_ENTRY_SYMBOL "() returned NULL: the plugin cannot serve a "
                                                   "host with plugin API ") +
           host_version;
  }
  if (raw->struct_size < kHeaderSize) {
    return "its capstan_plugin_v1.struct_size is " + std::to_string(raw->struct_size) +
           ", too small to hold even the version header";
  }
  const std::string plugin_version =
      std::to_string(raw->api_major) + "." + std::to_string(raw->api_minor);
  if (raw->api_major != CAPSTAN_PLUGIN_API_MAJOR) {
    return "it was built for plugin API " + plugin_version + " and this delegate speaks " +
           host_version + "; the major versions must be equal (rebuild the plugin against a " +
           std::to_string(CAPSTAN_PLUGIN_API_MAJOR) + ".x SDK)";
  }
  if (raw->api_minor > CAPSTAN_PLUGIN_API_MINOR) {
    return "it needs plugin API " + plugin_version + " but this delegate provides " + host_version +
           " (upgrade the delegate, or use a plugin build for API " + host_version + ")";
  }
  if (raw->struct_size < kPluginV1Size) {
    return "its capstan_plugin_v1.struct_size is " + std::to_string(raw->struct_size) +
           " bytes but plugin API " + plugin_version + " needs at least " +
           std::to_string(kPluginV1Size);
  }

  auto plugin = std::make_unique<LoadedPlugin>();
  plugin->path = path;
  std::memcpy(&plugin->api, raw, std::min<std::size_t>(raw->struct_size, sizeof(plugin->api)));
  const capstan_plugin_v1& api = plugin->api;

  if (api.name == nullptr || !valid_name(api.name, true)) {
    return std::string("its name ") + (api.name == nullptr ? "is NULL" : "is not valid") +
           " (letters, digits, '_', '-', '.', starting with a letter, at most 128)";
  }
  plugin->name = api.name;
  if (api.version == nullptr) return "plugin '" + plugin->name + "' has a NULL version";
  plugin->version = utf8::sanitize(api.version);
  std::vector<std::string> missing;
  if (api.init == nullptr) missing.emplace_back("init");
  if (api.execute == nullptr) missing.emplace_back("execute");
  if (api.get_last_error == nullptr) missing.emplace_back("get_last_error");
  if (api.destroy == nullptr) missing.emplace_back("destroy");
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return "plugin '" + plugin->name + "' leaves required functions NULL: " + list;
  }
  const int hooks = (api.reconciler_start != nullptr) + (api.reconciler_call != nullptr) +
                    (api.reconciler_stop != nullptr);
  if (hooks != 0 && hooks != 3) {
    return "plugin '" + plugin->name +
           "' sets only some of the reconciler hooks (reconciler_start, reconciler_call, "
           "reconciler_stop): a reconciler needs all three";
  }
  for (const auto& other : plugins) {
    if (other->name == plugin->name) {
      return "a plugin named '" + plugin->name + "' is already loaded from " + other->path.string();
    }
  }
  if (api.step_type_count > kMaxStepTypes) {
    return "plugin '" + plugin->name + "' claims " + std::to_string(api.step_type_count) +
           " step types (at most " + std::to_string(kMaxStepTypes) + ")";
  }
  if (api.step_type_count > 0 && api.step_types == nullptr) {
    return "plugin '" + plugin->name + "' has step_type_count " +
           std::to_string(api.step_type_count) + " but step_types is NULL";
  }
  if (api.step_type_count > 0 && api.step_type_size < kStepTypeV1Size) {
    return "plugin '" + plugin->name + "' has step_type_size " +
           std::to_string(api.step_type_size) + ", smaller than a 1.0 capstan_step_type (" +
           std::to_string(kStepTypeV1Size) + ")";
  }

  // Step types, each with its schema compiled up front: a plugin whose schema cannot be used
  // is refused now rather than failing every step later.
  std::vector<std::pair<StepTypeInfo, json_schema::Schema>> types;
  for (std::uint32_t i = 0; i < api.step_type_count; ++i) {
    capstan_step_type st{};
    const auto* at = reinterpret_cast<const std::byte*>(api.step_types) +
                     static_cast<std::size_t>(i) * api.step_type_size;
    std::memcpy(&st, at, std::min<std::size_t>(api.step_type_size, sizeof(st)));
    const std::string where = "plugin '" + plugin->name + "' step type #" + std::to_string(i);
    if (st.type == nullptr || !valid_name(st.type, false)) {
      return where + ": its type name " + (st.type == nullptr ? "is NULL" : "is not valid") +
             " (letters, digits and '_', starting with a letter)";
    }
    const std::string type = st.type;
    if (st.spec_schema == nullptr) {
      return "plugin '" + plugin->name + "' step type '" + type + "': spec_schema is NULL";
    }
    json schema_json;
    try {
      schema_json = json::parse(st.spec_schema);
    } catch (const json::parse_error& e) {
      return "plugin '" + plugin->name + "' step type '" + type +
             "': spec_schema is not JSON: " + e.what();
    }
    std::optional<json_schema::Schema> schema;
    try {
      schema = json_schema::Schema::compile(schema_json);
    } catch (const json_schema::SchemaError& e) {
      return "plugin '" + plugin->name + "' step type '" + type +
             "': spec_schema is not a usable JSON Schema: " + e.what();
    }
    if (auto taken = steps.find(type); taken != steps.end()) {
      return "step type '" + type + "' is already provided by plugin '" +
             taken->second.plugin->name + "' (" + taken->second.plugin->path.string() + ")";
    }
    for (const auto& [seen, unused] : types) {
      if (seen.type == type) {
        return "plugin '" + plugin->name + "' lists step type '" + type + "' twice";
      }
    }
    StepTypeInfo info;
    info.type = type;
    info.plugin = plugin->name;
    info.plugin_version = plugin->version;
    info.description = utf8::sanitize(c_str_or(st.description, ""));
    info.spec_schema = std::move(schema_json);
    info.retry_safe = (st.flags & CAPSTAN_STEP_RETRY_SAFE) != 0;
    info.prompt = (st.flags & CAPSTAN_STEP_PROMPT) != 0;
    types.emplace_back(std::move(info), std::move(*schema));
  }

  // init() gets the plugin's config section plus where it may keep state.
  json config = json::object();
  if (auto it = plugin_config.find(plugin->name); it != plugin_config.end()) {
    if (!it->is_object()) {
      return "the delegate's configuration for plugin '" + plugin->name +
             "' must be a JSON object, got " + std::string(it->type_name());
    }
    config = *it;
  }
  fs::path state_dir = state_root / plugin->name;
  std::error_code ec_dir;
  fs::create_directories(state_dir, ec_dir);
  if (ec_dir) {
    return "cannot create its state folder " + state_dir.string() + ": " + ec_dir.message();
  }
  config["stateDir"] = state_dir.string();
  config["delegateName"] = delegate_name;
  const std::string config_text = config.dump();

  CallContext ctx;
  ctx.plugin = plugin.get();
  capstan_rc rc = CAPSTAN_RC_OK;
  try {
    plugin->state = api.init(config_text.c_str(), &kHostApi, &ctx, &rc);
  } catch (...) {
    return "plugin '" + plugin->name + "' init() threw a C++ exception out of the C ABI";
  }
  if (plugin->state == nullptr) {
    return "plugin '" + plugin->name + "' failed to initialise: " + plugin->last_error(nullptr);
  }

  std::string list;
  for (auto& [info, schema] : types) {
    list += (list.empty() ? "" : ", ") + info.type;
    steps.emplace(info.type, Step{plugin.get(), std::move(schema)});
    step_types.push_back(std::move(info));
  }
  spdlog::info("loaded plugin {} {} from {} (step types: {})", plugin->name, plugin->version,
               path.string(), list.empty() ? "none" : list);
  if (plugin->api.reconciler_start != nullptr) {
    spdlog::info("plugin {} offers a reconciler", plugin->name);
    with_hooks.push_back(plugin.get());
  }
  plugins.push_back(std::move(plugin));
  return std::nullopt;
}

StepResult PluginHost::execute(const StepRequest& request, const TaskCallbacks& callbacks,
                               std::string_view bytes) {
  try {
    return impl_->run(request, callbacks, bytes);
  } catch (const std::exception& e) {
    return failed(plugin::v1::ERROR_TYPE_UNKNOWN,
                  std::string("the plugin host failed to run the step: ") + e.what());
  } catch (...) {
    return failed(plugin::v1::ERROR_TYPE_UNKNOWN, "the plugin host failed to run the step");
  }
}

StepResult PluginHost::Impl::run(const StepRequest& request, const TaskCallbacks& callbacks,
                                 std::string_view given_bytes) {
  auto found = steps.find(request.step_type());
  if (found == steps.end()) {
    std::string known;
    for (const auto& [type, step] : steps) known += (known.empty() ? "" : ", ") + type;
    return failed(plugin::v1::ERROR_TYPE_DELEGATE_PROVISIONING,
                  "no plugin on this delegate provides step type '" +
                      utf8::sanitize(request.step_type()) +
                      "' (it has: " + (known.empty() ? "none" : known) + ")");
  }
  const LoadedPlugin& plugin = *found->second.plugin;
  // Only errors name the step and the plugin: made when one needs them.
  auto step_name = [&] { return "step '" + utf8::sanitize(request.step_identifier()) + "'"; };
  // The runner's callbacks may throw; here, as behind the ABI, that must not end the call.
  auto user_cancelled = [&] {
    try {
      return callbacks.cancelled && callbacks.cancelled();
    } catch (...) {
      return false;
    }
  };
  if (user_cancelled()) {
    StepResult r;
    r.set_status(StepResult::STATUS_CANCELLED);
    r.set_message("cancelled before it started");
    return r;
  }

  auto& valid = *found->second.valid;
  bool checked = false;
  if (request.spec_json().size() <= kMaxRememberedSpec) {
    std::lock_guard lock(valid.mutex);
    checked = valid.spec && *valid.spec == request.spec_json();
  }
  json spec = json::object();
  if (!checked && !request.spec_json().empty()) {
    try {
      spec = json::parse(request.spec_json());
    } catch (const json::parse_error& e) {
      return failed(plugin::v1::ERROR_TYPE_INVALID_INPUT,
                    "the spec of " + step_name() + " is not valid JSON: " + e.what());
    }
  }
  auto violations =
      checked ? std::vector<json_schema::Violation>{} : found->second.schema.validate(spec);
  if (!checked && violations.empty() && request.spec_json().size() <= kMaxRememberedSpec) {
    std::lock_guard lock(valid.mutex);
    valid.spec = request.spec_json();
  }
  if (!violations.empty()) {
    for (const auto& v : violations) {
      const std::string line =
          "invalid spec: spec" + v.pointer + ": " + v.message + " (" + v.rule + ")";
      try {
        if (callbacks.log) callbacks.log(CAPSTAN_LOG_ERROR, utf8::sanitize(line));
      } catch (...) {
      }
    }
    return failed(plugin::v1::ERROR_TYPE_INVALID_INPUT,
                  "invalid spec for " + request.step_type() + " " + step_name() + ": " +
                      utf8::sanitize(json_schema::summarize(violations)));
  }

  std::string encoded;
  if (given_bytes.empty()) encoded = request.SerializeAsString();
  const std::string_view bytes = given_bytes.empty() ? std::string_view(encoded) : given_bytes;
  CallContext ctx;
  ctx.plugin = &plugin;
  ctx.callbacks = &callbacks;
  if (request.timeout_ms() > 0) {
    ctx.deadline = Clock::now() + std::chrono::milliseconds(request.timeout_ms());
  }
  auto who = [&] { return "plugin '" + plugin.name + "'"; };
  capstan_rc rc = CAPSTAN_RC_ERROR;
  try {
    rc = plugin.api.execute(plugin.state, reinterpret_cast<const uint8_t*>(bytes.data()),
                            bytes.size(), &kHostApi, &ctx);
  } catch (const std::exception& e) {
    return failed(plugin::v1::ERROR_TYPE_UNKNOWN,
                  who() + " let a C++ exception escape execute(): " + utf8::sanitize(e.what()));
  } catch (...) {
    return failed(plugin::v1::ERROR_TYPE_UNKNOWN, who() + " let an exception escape execute()");
  }
  const bool timed_out = ctx.deadline && Clock::now() >= *ctx.deadline;

  if (rc != CAPSTAN_RC_OK) {
    return failed(rc == CAPSTAN_RC_BAD_REQUEST ? plugin::v1::ERROR_TYPE_INVALID_INPUT
                                               : plugin::v1::ERROR_TYPE_UNKNOWN,
                  who() + " failed to run the step (rc " + std::to_string(static_cast<int>(rc)) +
                      "): " + plugin.last_error(plugin.state));
  }
  std::optional<std::string> result_bytes;
  {
    std::lock_guard lock(ctx.mutex);
    result_bytes = std::move(ctx.result);
  }
  if (!result_bytes) {
    return failed(plugin::v1::ERROR_TYPE_UNKNOWN,
                  who() + " returned without a result (execute() must call set_result before "
                          "returning CAPSTAN_RC_OK)");
  }
  StepResult result;
  if (!result.ParseFromString(*result_bytes)) {
    return failed(plugin::v1::ERROR_TYPE_UNKNOWN,
                  who() + " returned " + std::to_string(result_bytes->size()) +
                      " bytes that are not a capstan.plugin.v1.StepResult");
  }
  const auto status = result.status();
  if (status != StepResult::STATUS_SUCCEEDED && status != StepResult::STATUS_FAILED &&
      status != StepResult::STATUS_CANCELLED) {
    return failed(plugin::v1::ERROR_TYPE_UNKNOWN,
                  who() + " returned a result without a valid status (" +
                      std::to_string(static_cast<int>(status)) + ")");
  }
  std::string message = utf8::sanitize(result.message());
  if (message.size() > kMaxResultMessage) {
    message = utf8::sanitize(std::string_view(message).substr(0, kMaxResultMessage)) + "...";
  }
  result.set_message(message);
  if (status != StepResult::STATUS_SUCCEEDED && timed_out && !user_cancelled() &&
      !(status == StepResult::STATUS_FAILED &&
        result.error_type() == plugin::v1::ERROR_TYPE_TIMEOUT)) {
    return failed(plugin::v1::ERROR_TYPE_TIMEOUT,
                  step_name() + " timed out after " + format_duration(request.timeout_ms()));
  }
  if (status == StepResult::STATUS_FAILED) {
    if (!plugin::v1::ErrorType_IsValid(result.error_type()) ||
        result.error_type() == plugin::v1::ERROR_TYPE_UNSPECIFIED) {
      result.set_error_type(plugin::v1::ERROR_TYPE_UNKNOWN);
    }
    if (result.message().empty())
      result.set_message(who() + " reported a failure without a reason");
  } else {
    result.set_error_type(plugin::v1::ERROR_TYPE_UNSPECIFIED);
  }
  return result;
}

} // namespace capstan::delegate

namespace capstan::delegate {

std::vector<std::string> PluginHost::reconcilers() const {
  std::lock_guard lock(impl_->reconcilers_mutex);
  std::vector<std::string> out;
  const auto& list = impl_->reconcilers_started ? impl_->started : impl_->with_hooks;
  for (const auto* p : list) out.push_back(p->name);
  return out;
}

void PluginHost::start_reconcilers(ReconcilerCallbacks callbacks) {
  impl_->reconciler_callbacks = std::move(callbacks);
  {
    std::lock_guard lock(impl_->reconcilers_mutex);
    impl_->reconcilers_started = true;
  }
  for (auto* p : impl_->with_hooks) {
    auto ctx = std::make_unique<ReconcilerContext>();
    ctx->plugin = p;
    ctx->callbacks = &impl_->reconciler_callbacks;
    capstan_rc rc = CAPSTAN_RC_ERROR;
    try {
      rc = p->api.reconciler_start(p->state, &kReconcilerHost, ctx.get());
    } catch (...) {
      rc = CAPSTAN_RC_ERROR;
    }
    if (rc != CAPSTAN_RC_OK) {
      spdlog::warn("plugin {}: its reconciler did not start: {}", p->name, p->last_error(p->state));
    } else {
      spdlog::info("plugin {}: reconciler started", p->name);
      std::lock_guard lock(impl_->reconcilers_mutex);
      impl_->started.push_back(p);
    }
    impl_->reconciler_contexts.push_back(std::move(ctx));
  }
}

plugin::v1::ReconcilerReply PluginHost::reconcile(const std::string& plugin,
                                                  const plugin::v1::ReconcilerCall& call) {
  plugin::v1::ReconcilerReply reply;
  LoadedPlugin* p = nullptr;
  {
    std::lock_guard lock(impl_->reconcilers_mutex);
    for (auto* candidate : impl_->started) {
      if (candidate->name == plugin) p = candidate;
    }
  }
  if (p == nullptr) {
    reply.set_error("no reconciler of plugin '" + utf8::sanitize(plugin) + "' runs here");
    return reply;
  }
  try {
    const std::string bytes = call.SerializeAsString();
    std::optional<std::string> answer;
    capstan_rc rc = p->api.reconciler_call(p->state, reinterpret_cast<const uint8_t*>(bytes.data()),
                                           bytes.size(), &reconciler_reply, &answer);
    if (rc != CAPSTAN_RC_OK) {
      reply.set_error("plugin " + p->name + ": " + p->last_error(p->state));
      return reply;
    }
    if (!answer || !reply.ParseFromString(*answer)) {
      reply.Clear();
      reply.set_error("plugin " + p->name + " answered without a valid ReconcilerReply");
      return reply;
    }
    reply.set_error(utf8::sanitize(reply.error()));
    reply.set_result_json(utf8::sanitize(reply.result_json()));
  } catch (const std::exception& e) {
    reply.Clear();
    reply.set_error(std::string("the plugin host failed to call the reconciler: ") + e.what());
  }
  return reply;
}

void PluginHost::stop_reconcilers() {
  std::vector<LoadedPlugin*> running;
  {
    std::lock_guard lock(impl_->reconcilers_mutex);
    running.swap(impl_->started);
  }
  for (auto* p : running) {
    try {
      p->api.reconciler_stop(p->state);
    } catch (...) {
      spdlog::warn("plugin {}: reconciler_stop threw an exception", p->name);
    }
  }
}

} // namespace capstan::delegate
