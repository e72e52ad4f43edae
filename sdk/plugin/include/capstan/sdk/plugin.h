// The C++ side of a Capstan plugin: write step handlers, get the C ABI of capstan/plugin_api.h.
//
//   #include <capstan/sdk/plugin.h>
//   namespace sdk = capstan::sdk;
//
//   CAPSTAN_PLUGIN(plugin) {
//     plugin.name("hello").version("1.0.0");
//     plugin.step({"Hello", R"({"type":"object","required":["name"]})", "Greets someone"},
//                 [](sdk::StepContext& ctx) {
//                   ctx.info("hello, " + ctx.spec()["name"].get<std::string>());
//                   ctx.set_output("greeted", ctx.spec()["name"].get<std::string>());
//                 });
//   }
//
// A handler returns void (success) or an sdk::Result, and fails by throwing sdk::StepError (or
// any exception). Plugins that keep state (clients, caches, configuration) name a class with
// plugin.state<T>(): one T is built per init() from an InitContext, and member functions of T
// serve as handlers. Nothing of C++ crosses the boundary: the trampolines below are noexcept
// and turn every exception into a result or an error code.
//
// Header-only on purpose: each plugin compiles its own copy with hidden visibility, and the
// plugin's build (capstan_add_plugin) compiles the capstan.plugin.v1 messages into it.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "capstan/plugin/v1/plugin.pb.h"
#include "capstan/plugin_api.h"

namespace capstan::sdk {

using ErrorType = plugin::v1::ErrorType;
using StepRequest = plugin::v1::StepRequest;

// Fails the step with a failure type that `onFailure.errors` strategies match on.
class StepError : public std::runtime_error {
public:
  StepError(ErrorType type, const std::string& message)
      : std::runtime_error(message), type_(type) {}
  explicit StepError(const std::string& message)
      : StepError(plugin::v1::ERROR_TYPE_UNKNOWN, message) {}
  ErrorType type() const noexcept { return type_; }

private:
  ErrorType type_;
};

// Ends the step as CANCELLED; thrown by StepContext::throw_if_cancelled().
class Cancelled : public std::runtime_error {
public:
  Cancelled() : std::runtime_error("cancelled") {}
  explicit Cancelled(const std::string& message) : std::runtime_error(message) {}
};

// How a step ended, when a handler wants to say more than "it returned".
struct Result {
  enum class Status { kSucceeded, kFailed, kCancelled };
  Status status = Status::kSucceeded;
  ErrorType error_type = plugin::v1::ERROR_TYPE_UNSPECIFIED;
  std::string message;

  static Result succeeded(std::string message = {}) {
    return {Status::kSucceeded, plugin::v1::ERROR_TYPE_UNSPECIFIED, std::move(message)};
  }
  static Result failed(ErrorType type, std::string message) {
    return {Status::kFailed, type, std::move(message)};
  }
  static Result cancelled(std::string message = {}) {
    return {Status::kCancelled, plugin::v1::ERROR_TYPE_UNSPECIFIED, std::move(message)};
  }
};

// One step type: its YAML `type:`, the JSON Schema of its `spec` (checked by the host before
// the handler runs), a one-line description and CAPSTAN_STEP_* flags: CAPSTAN_STEP_RETRY_SAFE,
// and CAPSTAN_STEP_PROMPT for a handler that returns at once without waiting for anything (the
// delegate may run it on its receiving thread, and stops when a call takes over 5 ms).
struct StepType {
  std::string type;
  std::string spec_schema;
  std::string description;
  std::uint32_t flags = 0;
};

namespace detail {

// The host's callbacks, each used only when the host's table is long enough to have it.
class Host {
public:
  Host(const capstan_host_api* api, void* ctx) : api_(api), ctx_(ctx) {}

  void log(capstan_log_level level, std::string_view line) const {
    if (auto* f = get(&capstan_host_api::log)) f(ctx_, level, line.data(), line.size());
  }
  bool cancelled() const {
    auto* f = get(&capstan_host_api::cancelled);
    return f != nullptr && f(ctx_) != 0;
  }
  void set_output(const std::string& name, const std::string& value) const {
    if (auto* f = get(&capstan_host_api::set_output)) f(ctx_, name.c_str(), value.c_str());
  }
  void progress(std::uint32_t percent, const std::string& message) const {
    if (auto* f = get(&capstan_host_api::progress)) f(ctx_, percent, message.c_str());
  }
  void set_result(const std::string& bytes) const {
    if (auto* f = get(&capstan_host_api::set_result)) {
      f(ctx_, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
  }
  void mask(std::string_view value) const {
    if (auto* f = get(&capstan_host_api::mask)) f(ctx_, value.data(), value.size());
  }

private:
  template <class F> F get(F capstan_host_api::*member) const {
    if (api_ == nullptr) return nullptr;
    // A member exists only when the host's table (struct_size) reaches past its end.
    static const capstan_host_api probe{};
    const auto offset = static_cast<std::size_t>(reinterpret_cast<const char*>(&(probe.*member)) -
                                                 reinterpret_cast<const char*>(&probe));
    if (offset + sizeof(F) > api_->struct_size) return nullptr;
    return api_->*member;
  }

  const capstan_host_api* api_;
  void* ctx_;
};

} // namespace detail

// What init() offers a stateful plugin's constructor: its configuration and a log.
class InitContext {
public:
  InitContext(nlohmann::json config, const capstan_host_api* host, void* host_ctx)
      : config_(std::move(config)), host_(host, host_ctx) {}

  // The plugin's section of the delegate configuration, plus "stateDir" and "delegateName".
  const nlohmann::json& config() const { return config_; }
  std::filesystem::path state_dir() const { return config_.value("stateDir", std::string()); }
  std::string delegate_name() const { return config_.value("delegateName", std::string()); }

  // Lines go to the delegate's own log.
  void log(capstan_log_level level, std::string_view line) const { host_.log(level, line); }
  void info(std::string_view line) const { log(CAPSTAN_LOG_INFO, line); }
  void warn(std::string_view line) const { log(CAPSTAN_LOG_WARN, line); }
  void error(std::string_view line) const { log(CAPSTAN_LOG_ERROR, line); }

private:
  nlohmann::json config_;
  detail::Host host_;
};

// What a handler gets for one step. Every method may be called from any thread the handler
// starts, as long as the handler has not returned.
class StepContext {
public:
  StepContext(const StepRequest& request, const capstan_host_api* host, void* host_ctx)
      : request_(request), host_(host, host_ctx), started_(std::chrono::steady_clock::now()) {}

  const StepRequest& request() const { return request_; }
  // The step's `spec`, expressions resolved and already valid against the type's schema.
  // Parsed on first use (a step that never reads it does not pay for it); text that is not
  // JSON throws StepError (ERROR_TYPE_INVALID_INPUT), which fails the step.
  const nlohmann::json& spec() const { return parsed(spec_, request_.spec_json(), "spec"); }
  // The stage's resolved model (see docs/plugin-authoring.md); an empty object when absent.
  // Parsed on first use, like spec().
  const nlohmann::json& context() const {
    return parsed(context_, request_.context_json(), "context");
  }
  // An empty folder for this step alone while it runs; what it leaves is removed after it ends.
  std::filesystem::path work_dir() const { return request_.work_dir(); }
  // The step's timeout, if it has one; the host also turns cancelled() true when it passes.
  std::optional<std::chrono::milliseconds> timeout() const {
    if (request_.timeout_ms() == 0) return std::nullopt;
    return std::chrono::milliseconds(request_.timeout_ms());
  }
  // How long is left before the timeout (zero once passed), if there is one.
  std::optional<std::chrono::milliseconds> remaining() const {
    auto t = timeout();
    if (!t) return std::nullopt;
    auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started_);
    return spent >= *t ? std::chrono::milliseconds(0) : *t - spent;
  }

  void log(capstan_log_level level, std::string_view line) const { host_.log(level, line); }
  void debug(std::string_view line) const { log(CAPSTAN_LOG_DEBUG, line); }
  void info(std::string_view line) const { log(CAPSTAN_LOG_INFO, line); }
  void warn(std::string_view line) const { log(CAPSTAN_LOG_WARN, line); }
  void error(std::string_view line) const { log(CAPSTAN_LOG_ERROR, line); }

  // True once the step is aborted, timed out or the delegate drains: stop and return soon.
  bool cancelled() const { return host_.cancelled(); }
  void throw_if_cancelled() const {
    if (cancelled()) throw Cancelled();
  }
  // Exports <+steps.ID.output.outputVariables.NAME>; setting a name twice keeps the last value.
  void set_output(std::string_view name, std::string_view value) const {
    host_.set_output(std::string(name), std::string(value));
  }
  // Masks a secret the plugin fetched or produced in every later log line and message.
  void mask(std::string_view value) const {
    if (!value.empty()) host_.mask(value);
  }
  void progress(std::uint32_t percent, std::string_view message = {}) const {
    host_.progress(percent, std::string(message));
  }
  // Hands the coordinator a record to keep (StepResult.records), delivered with the result
  // whatever the step's outcome: e.g. kind "PullRequest" for a `local` pull request.
  void add_record(std::string_view kind, const nlohmann::json& record) {
    std::lock_guard<std::mutex> lock(records_mutex_);
    records_.emplace_back(std::string(kind), record.dump());
  }
  std::vector<std::pair<std::string, std::string>> records() const {
    std::lock_guard<std::mutex> lock(records_mutex_);
    return records_;
  }

private:
  // A request field's JSON, parsed once by whichever thread reads it first.
  struct Lazy {
    std::mutex mutex;
    bool done = false;
    nlohmann::json value;
  };
  static const nlohmann::json& parsed(Lazy& lazy, const std::string& text, const char* what) {
    std::lock_guard<std::mutex> lock(lazy.mutex);
    if (lazy.done) return lazy.value;
    if (!text.empty()) {
      try {
        lazy.value = nlohmann::json::parse(text);
      } catch (const nlohmann::json::parse_error& e) {
        // Not done: the next reader gets the same error.
        throw StepError(plugin::v1::ERROR_TYPE_INVALID_INPUT,
                        std::string("the step's ") + what + " is not valid JSON: " + e.what());
      }
    } else {
      lazy.value = nlohmann::json::object();
    }
    lazy.done = true;
    return lazy.value;
  }

  mutable std::mutex records_mutex_;
  std::vector<std::pair<std::string, std::string>> records_;
  const StepRequest& request_;
  mutable Lazy spec_;
  mutable Lazy context_;
  detail::Host host_;
  std::chrono::steady_clock::time_point started_;
};

// The host's side of a running reconciler: status reports and progress lines. Copyable; valid
// from reconciler_start() until reconciler_stop() returns, from any thread.
class ReconcilerHost {
public:
  ReconcilerHost() = default;
  ReconcilerHost(const capstan_reconciler_host* api, void* ctx) : api_(api), ctx_(ctx) {}
  void status(std::string_view status_json) const {
    if (api_ != nullptr && api_->status != nullptr) {
      api_->status(ctx_, status_json.data(), status_json.size());
    }
  }
  void log(capstan_log_level level, const std::string& app, std::string_view line) const {
    if (api_ != nullptr &&
        api_->struct_size >= offsetof(capstan_reconciler_host, log) + sizeof(api_->log) &&
        api_->log != nullptr) {
      api_->log(ctx_, level, app.c_str(), line.data(), line.size());
    }
  }

private:
  const capstan_reconciler_host* api_ = nullptr;
  void* ctx_ = nullptr;
};

// A state class that reconciles applications (a GitOps agent) derives from this and registers
// with plugin.reconciler<State>(); the host then calls start once, call for each request
// (concurrently), and stop before the state is destroyed. A call fails by throwing.
class Reconciler {
public:
  virtual ~Reconciler() = default;
  virtual void reconciler_start(ReconcilerHost host) = 0;
  // The reply's ok/error are filled from the outcome: return result_json, throw on failure.
  virtual std::string reconciler_call(const plugin::v1::ReconcilerCall& call) = 0;
  virtual void reconciler_stop() = 0;
};

// What CAPSTAN_PLUGIN's body fills in: the plugin's name, version, state class and steps.
class PluginDefinition {
public:
  using Handler = std::function<Result(void* state, StepContext&)>;
  using Factory = std::function<std::shared_ptr<void>(InitContext&)>;

  PluginDefinition& name(std::string n) {
    name_ = std::move(n);
    return *this;
  }
  PluginDefinition& version(std::string v) {
    version_ = std::move(v);
    return *this;
  }

  // One State per init(), constructed from an InitContext& (or default-constructed); its
  // constructor may throw to fail init with the exception's message.
  template <class State> PluginDefinition& state() {
    factory_ = [](InitContext& init) -> std::shared_ptr<void> {
      if constexpr (std::is_constructible_v<State, InitContext&>) {
        return std::make_shared<State>(init);
      } else {
        return std::make_shared<State>();
      }
    };
    return *this;
  }

  // A handler: any callable taking StepContext& and returning void or Result.
  template <class F> PluginDefinition& step(StepType type, F handler) {
    steps_.push_back({std::move(type), [h = std::move(handler)](void*, StepContext& ctx) mutable {
                        return call(h, ctx);
                      }});
    return *this;
  }

  // A member function of the state class: Result (State::*)(StepContext&) or returning void.
  template <class State, class R>
  PluginDefinition& step(StepType type, R (State::*handler)(StepContext&)) {
    steps_.push_back({std::move(type), [handler](void* state, StepContext& ctx) {
                        auto* self = static_cast<State*>(state);
                        if (self == nullptr) {
                          throw StepError("the plugin has no state: call plugin.state<T>() in "
                                          "CAPSTAN_PLUGIN");
                        }
                        return call([&](StepContext& c) { return (self->*handler)(c); }, ctx);
                      }});
    return *this;
  }

  // The state class (see state<State>()) implements sdk::Reconciler: the plugin offers the
  // reconciler hooks.
  template <class State> PluginDefinition& reconciler() {
    static_assert(std::is_base_of_v<Reconciler, State>, "the state class must derive from "
                                                        "capstan::sdk::Reconciler");
    reconciler_ = [](void* state) -> Reconciler* { return static_cast<State*>(state); };
    return *this;
  }
  using ReconcilerCast = Reconciler* (*)(void*);
  ReconcilerCast reconciler_cast() const { return reconciler_; }

  struct Step {
    StepType type;
    Handler handler;
  };
  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  const std::vector<Step>& steps() const { return steps_; }
  const Factory& factory() const { return factory_; }

private:
  template <class F> static Result call(F&& f, StepContext& ctx) {
    if constexpr (std::is_void_v<std::invoke_result_t<F, StepContext&>>) {
      f(ctx);
      return Result::succeeded();
    } else {
      return f(ctx);
    }
  }

  std::string name_;
  std::string version_ = "0.0.0";
  std::vector<Step> steps_;
  Factory factory_;
  ReconcilerCast reconciler_ = nullptr;
};

namespace detail {

// The reason for the last failed call on this thread, read back through get_last_error().
inline std::string& last_error() {
  thread_local std::string error;
  return error;
}

// The plugin's static description, built once by the first capstan_plugin_entry() call.
struct Registry {
  PluginDefinition definition;
  std::vector<capstan_step_type> step_types;
  capstan_plugin_v1 api{};
};

struct State {
  const Registry* registry;
  std::shared_ptr<void> instance;
};

inline capstan_plugin_state* init(const char* config_json, const capstan_host_api* host,
                                  void* host_ctx, capstan_rc* rc) noexcept;
inline capstan_rc execute(capstan_plugin_state* state, const std::uint8_t* request,
                          std::size_t request_size, const capstan_host_api* host,
                          void* host_ctx) noexcept;
inline const char* get_last_error(capstan_plugin_state*) noexcept {
  return last_error().c_str();
}
inline void destroy(capstan_plugin_state* state) noexcept {
  delete reinterpret_cast<State*>(state);
}

inline Reconciler* reconciler_of(capstan_plugin_state* state) {
  auto* s = reinterpret_cast<State*>(state);
  if (s == nullptr || s->instance == nullptr ||
      s->registry->definition.reconciler_cast() == nullptr) {
    throw std::logic_error("the plugin state has no reconciler");
  }
  return s->registry->definition.reconciler_cast()(s->instance.get());
}

inline capstan_rc reconciler_start(capstan_plugin_state* state, const capstan_reconciler_host* host,
                                   void* host_ctx) noexcept {
  try {
    reconciler_of(state)->reconciler_start(ReconcilerHost(host, host_ctx));
    return CAPSTAN_RC_OK;
  } catch (const std::exception& e) {
    last_error() = e.what();
  } catch (...) {
    last_error() = "reconciler_start failed with a non-standard exception";
  }
  return CAPSTAN_RC_ERROR;
}

inline capstan_rc reconciler_call(capstan_plugin_state* state, const std::uint8_t* call,
                                  std::size_t call_size, capstan_reply_fn reply,
                                  void* reply_ctx) noexcept {
  try {
    plugin::v1::ReconcilerCall request;
    if (!request.ParseFromArray(call, static_cast<int>(call_size))) {
      last_error() = "the call is not a capstan.plugin.v1.ReconcilerCall";
      return CAPSTAN_RC_BAD_REQUEST;
    }
    plugin::v1::ReconcilerReply out;
    try {
      out.set_result_json(reconciler_of(state)->reconciler_call(request));
      out.set_ok(true);
    } catch (const std::exception& e) {
      out.set_ok(false);
      out.set_error(e.what());
    } catch (...) {
      out.set_ok(false);
      out.set_error("the reconciler failed with a non-standard exception");
    }
    const std::string bytes = out.SerializeAsString();
    if (reply != nullptr) {
      reply(reply_ctx, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    return CAPSTAN_RC_OK;
  } catch (const std::exception& e) {
    last_error() = e.what();
  } catch (...) {
    last_error() = "reconciler_call failed with a non-standard exception";
  }
  return CAPSTAN_RC_ERROR;
}

inline void reconciler_stop(capstan_plugin_state* state) noexcept {
  try {
    reconciler_of(state)->reconciler_stop();
  } catch (...) {
  }
}

inline Registry* registry(void (*define)(PluginDefinition&)) noexcept {
  static Registry* instance = [define]() -> Registry* {
    try {
      auto r = std::make_unique<Registry>();
      define(r->definition);
      if (r->definition.name().empty()) {
        throw std::invalid_argument("the plugin has no name: call plugin.name(...)");
      }
      for (const auto& step : r->definition.steps()) {
        capstan_step_type st{};
        st.type = step.type.type.c_str();
        st.spec_schema = step.type.spec_schema.c_str();
        st.description = step.type.description.c_str();
        st.flags = step.type.flags;
        r->step_types.push_back(st);
      }
      capstan_plugin_v1& api = r->api;
      api.struct_size = sizeof(capstan_plugin_v1);
      api.api_major = CAPSTAN_PLUGIN_API_MAJOR;
      api.api_minor = CAPSTAN_PLUGIN_API_MINOR;
      api.name = r->definition.name().c_str();
      api.version = r->definition.version().c_str();
      api.step_types = r->step_types.data();
      api.step_type_count = static_cast<std::uint32_t>(r->step_types.size());
      api.init = &init;
      api.execute = &execute;
      api.get_last_error = &get_last_error;
      api.destroy = &destroy;
      api.step_type_size = sizeof(capstan_step_type);
      if (r->definition.reconciler_cast() != nullptr) {
        api.reconciler_start = &reconciler_start;
        api.reconciler_call = &reconciler_call;
        api.reconciler_stop = &reconciler_stop;
      }
      return r.release(); // lives as long as the library
    } catch (const std::exception& e) {
      // The entry point has no error channel; the host reports the NULL it gets.
      std::fprintf(stderr, "capstan plugin: the plugin definition failed: %s\n", e.what());
      return nullptr;
    } catch (...) {
      return nullptr;
    }
  }();
  return instance;
}

// Set by CAPSTAN_PLUGIN's entry point before the host can call init().
inline const Registry*& current_registry() {
  static const Registry* r = nullptr;
  return r;
}

inline capstan_plugin_state* init(const char* config_json, const capstan_host_api* host,
                                  void* host_ctx, capstan_rc* rc) noexcept {
  try {
    const Registry* reg = current_registry();
    if (reg == nullptr) throw std::logic_error("init() called before capstan_plugin_entry()");
    nlohmann::json config = nlohmann::json::object();
    if (config_json != nullptr && *config_json != '\0') config = nlohmann::json::parse(config_json);
    auto state = std::make_unique<State>(State{reg, nullptr});
    if (reg->definition.factory()) {
      InitContext init_ctx(std::move(config), host, host_ctx);
      state->instance = reg->definition.factory()(init_ctx);
    }
    if (rc != nullptr) *rc = CAPSTAN_RC_OK;
    return reinterpret_cast<capstan_plugin_state*>(state.release());
  } catch (const std::exception& e) {
    last_error() = e.what();
  } catch (...) {
    last_error() = "init failed with a non-standard exception";
  }
  if (rc != nullptr) *rc = CAPSTAN_RC_ERROR;
  return nullptr;
}

inline void deliver(const Result& r, const Host& host,
                    const std::vector<std::pair<std::string, std::string>>& records = {}) {
  plugin::v1::StepResult out;
  for (const auto& [kind, json] : records) {
    auto* rec = out.add_records();
    rec->set_kind(kind);
    rec->set_json(json);
  }
  switch (r.status) {
  case Result::Status::kSucceeded:
    out.set_status(plugin::v1::StepResult::STATUS_SUCCEEDED);
    break;
  case Result::Status::kFailed:
    out.set_status(plugin::v1::StepResult::STATUS_FAILED);
    out.set_error_type(r.error_type == plugin::v1::ERROR_TYPE_UNSPECIFIED
                           ? plugin::v1::ERROR_TYPE_UNKNOWN
                           : r.error_type);
    break;
  case Result::Status::kCancelled:
    out.set_status(plugin::v1::StepResult::STATUS_CANCELLED);
    break;
  }
  out.set_message(r.message);
  host.set_result(out.SerializeAsString());
}

inline capstan_rc execute(capstan_plugin_state* state, const std::uint8_t* request,
                          std::size_t request_size, const capstan_host_api* host,
                          void* host_ctx) noexcept {
  try {
    auto* s = reinterpret_cast<State*>(state);
    if (s == nullptr) throw std::invalid_argument("execute() called without a state");
    StepRequest req;
    if (!req.ParseFromArray(request, static_cast<int>(request_size))) {
      last_error() = "the request is not a capstan.plugin.v1.StepRequest";
      return CAPSTAN_RC_BAD_REQUEST;
    }
    const PluginDefinition::Step* step = nullptr;
    for (const auto& candidate : s->registry->definition.steps()) {
      if (candidate.type.type == req.step_type()) step = &candidate;
    }
    if (step == nullptr) {
      last_error() = "plugin '" + s->registry->definition.name() + "' has no step type '" +
                     req.step_type() + "'";
      return CAPSTAN_RC_BAD_REQUEST;
    }
    Host h(host, host_ctx);
    Result result;
    std::vector<std::pair<std::string, std::string>> records;
    try {
      // The spec and context are parsed when the handler first reads them.
      StepContext ctx(req, host, host_ctx);
      struct Collect { // records survive a handler that throws
        StepContext& ctx;
        std::vector<std::pair<std::string, std::string>>& out;
        ~Collect() {
          try {
            out = ctx.records();
          } catch (...) {
          }
        }
      } collect{ctx, records};
      result = step->handler(s->instance.get(), ctx);
    } catch (const StepError& e) {
      result = Result::failed(e.type(), e.what());
    } catch (const Cancelled& e) {
      result = Result::cancelled(e.what());
    } catch (const std::exception& e) {
      result = Result::failed(plugin::v1::ERROR_TYPE_UNKNOWN, e.what());
    } catch (...) {
      result = Result::failed(plugin::v1::ERROR_TYPE_UNKNOWN, "the step failed with a "
                                                              "non-standard exception");
    }
    deliver(result, h, records);
    return CAPSTAN_RC_OK;
  } catch (const std::exception& e) {
    last_error() = e.what();
  } catch (...) {
    last_error() = "execute failed with a non-standard exception";
  }
  return CAPSTAN_RC_ERROR;
}

inline const capstan_plugin_v1* entry(void (*define)(PluginDefinition&)) noexcept {
  Registry* reg = registry(define);
  current_registry() = reg;
  return reg == nullptr ? nullptr : &reg->api;
}

} // namespace detail
} // namespace capstan::sdk

// Defines the plugin's capstan_plugin_entry(); the body that follows fills in `def`, a
// capstan::sdk::PluginDefinition&. Use once per plugin library.
#define CAPSTAN_PLUGIN(def)                                                                        \
  static void capstan_sdk_define_plugin(::capstan::sdk::PluginDefinition& def);                    \
  extern "C" CAPSTAN_PLUGIN_EXPORT const capstan_plugin_v1* capstan_plugin_entry(                  \
      uint32_t /*host_api_major*/, uint32_t /*host_api_minor*/) {                                  \
    return ::capstan::sdk::detail::entry(&capstan_sdk_define_plugin);                              \
  }                                                                                                \
  static void capstan_sdk_define_plugin(::capstan::sdk::PluginDefinition& def)
