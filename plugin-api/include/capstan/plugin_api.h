/* The C ABI between a Capstan delegate (the host) and a plugin shared library.
 *
 * A plugin is a shared library exporting one symbol, capstan_plugin_entry(). The host calls it
 * once with its own API version and gets back a description of the plugin: its step types (each
 * with a JSON Schema for the step's `spec`) and a table of functions. Requests and results cross
 * as Protobuf bytes (plugin-api/proto/capstan/plugin/v1/plugin.proto), so a plugin can be
 * written in any language with a C FFI and a Protobuf library. No C++ exception, STL type or
 * RTTI crosses this boundary.
 *
 * Versioning (CAPSTAN_PLUGIN_API_MAJOR/MINOR): the host loads a plugin only when the majors are
 * equal and the host's minor is >= the plugin's minor. Fields are only ever appended to the
 * structs below; `struct_size` tells the reader which fields exist, so a newer host reads an
 * older plugin's shorter struct and vice versa.
 *
 * Ownership: every pointer below carries a note saying who owns it and how long it lives.
 * Threads: `execute` is called concurrently from several host threads, each call with its own
 * host context; everything else is called from one thread at a time. Libraries are loaded
 * RTLD_LOCAL and are never unloaded while the host runs.
 */
#ifndef CAPSTAN_PLUGIN_API_H
#define CAPSTAN_PLUGIN_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CAPSTAN_PLUGIN_API_MAJOR 1
#define CAPSTAN_PLUGIN_API_MINOR 1

/* The one symbol a plugin exports. */
#define CAPSTAN_PLUGIN_ENTRY_SYMBOL "capstan_plugin_entry"

#if defined(_WIN32)
#define CAPSTAN_PLUGIN_EXPORT __declspec(dllexport)
#else
#define CAPSTAN_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* Return codes of the functions in capstan_plugin_v1. */
typedef enum capstan_rc {
  CAPSTAN_RC_OK = 0,
  /* The call failed; get_last_error() says why. A step that ran and failed is NOT this: it is
   * CAPSTAN_RC_OK with a StepResult whose status is FAILED. */
  CAPSTAN_RC_ERROR = 1,
  /* The request could not be decoded or was not for this plugin. */
  CAPSTAN_RC_BAD_REQUEST = 2
} capstan_rc;

typedef enum capstan_log_level {
  CAPSTAN_LOG_DEBUG = 0,
  CAPSTAN_LOG_INFO = 1,
  CAPSTAN_LOG_WARN = 2,
  CAPSTAN_LOG_ERROR = 3
} capstan_log_level;

/* Callbacks the host offers a plugin. The table and host_ctx are owned by the host and valid
 * for the duration of the call they were passed to (init or execute); a plugin must not keep
 * them after that call returns. Every callback may be called from any thread the plugin starts
 * during that call, and copies what it is given before returning. */
typedef struct capstan_host_api {
  uint32_t struct_size; /* sizeof(capstan_host_api) as the host knows it */

  /* One line of step log (no trailing newline needed). `line` is owned by the plugin; `len`
   * bytes are read. The host masks secret values before the line leaves the delegate. */
  void (*log)(void* host_ctx, capstan_log_level level, const char* line, size_t len);

  /* Non-zero once the task has been cancelled (abort, timeout, delegate draining past its
   * grace). A plugin polls it during long waits and returns promptly when it turns true. */
  int (*cancelled)(void* host_ctx);

  /* Exports a step output variable, readable by later steps as
   * <+...steps.ID.output.outputVariables.NAME>. Both strings are NUL-terminated, owned by the
   * plugin. Setting a name twice keeps the last value. */
  void (*set_output)(void* host_ctx, const char* name, const char* value);

  /* Progress of a long step, 0-100, with an optional NUL-terminated message (may be NULL),
   * owned by the plugin. */
  void (*progress)(void* host_ctx, uint32_t percent, const char* message);

  /* Delivers the serialized capstan.plugin.v1.StepResult of an execute() call. `data` is owned
   * by the plugin and copied by the host. Must be called exactly once before execute() returns
   * CAPSTAN_RC_OK; a later call replaces an earlier one. */
  void (*set_result)(void* host_ctx, const uint8_t* data, size_t size);

  /* Asks the host to mask `len` bytes of `value` (owned by the plugin, copied) wherever they
   * appear in this task's logs and messages from now on: a secret the plugin fetched or
   * produced itself, such as a token or a Secret output variable. Values the host already knows
   * to be secret are masked without this. */
  void (*mask)(void* host_ctx, const char* value, size_t len);
} capstan_host_api;

/* Step flags. */
/* Running the step twice has the same effect as running it once (e.g. a server-side apply),
 * so the coordinator may re-queue it on another delegate when its delegate is lost. */
#define CAPSTAN_STEP_RETRY_SAFE 0x1u
/* The step returns promptly (well under a millisecond) without blocking I/O, sleeping or
 * waiting for another thread, as a step that only computes or validates does: the host may run
 * it on the thread that received the task instead of handing it to a worker thread, which saves
 * a thread hand-off per task. The host times each such call; once one takes longer than its
 * budget (a few milliseconds) having waited for something or computed that long, it logs a
 * warning and runs that step type on worker threads from then on. A call that blocks holds up the
 * delegate's connection while it lasts: do not set this flag on a step that may wait for anything.
 */
#define CAPSTAN_STEP_PROMPT 0x2u

/* One step type a plugin provides. All strings are NUL-terminated, owned by the plugin, and
 * live as long as the library is loaded (static storage in practice). Fields may be appended in
 * later minors; the host steps through the array by capstan_plugin_v1.step_type_size. */
typedef struct capstan_step_type {
  const char* type;        /* the YAML `type:`, e.g. "ShellScript"; unique across plugins */
  const char* spec_schema; /* a JSON Schema (draft 2020-12 subset) for the step's `spec` */
  const char* description; /* one line for `capstan delegates -o wide`; may be NULL */
  uint32_t flags;          /* CAPSTAN_STEP_* */
} capstan_step_type;

/* Callbacks the host offers a plugin's reconciler (API minor 1). The table and host_ctx are owned
 * by the host and stay valid from reconciler_start() until reconciler_stop() returns; the
 * callbacks may be called from any thread in between and copy what they are given. */
typedef struct capstan_reconciler_host {
  uint32_t struct_size; /* sizeof(capstan_reconciler_host) as the host knows it */

  /* An application's status changed: `status_json` (`len` bytes, owned by the plugin) is a JSON
   * object with at least "name", "sync" {"status", "revision"} and "health" {"status"} (the
   * shape of `capstan apps get -o json`). */
  void (*status)(void* host_ctx, const char* status_json, size_t len);

  /* One progress line about application `app` (NUL-terminated; both owned by the plugin). The
   * host masks secret values before the line leaves the delegate. */
  void (*log)(void* host_ctx, capstan_log_level level, const char* app, const char* line,
              size_t len);
} capstan_reconciler_host;

/* Delivers the serialized capstan.plugin.v1.ReconcilerReply of a reconciler_call(). `data` is
 * owned by the plugin and copied. Called exactly once before reconciler_call() returns
 * CAPSTAN_RC_OK. */
typedef void (*capstan_reply_fn)(void* reply_ctx, const uint8_t* data, size_t size);

/* The plugin's state, created by init() and passed back to every other call. Opaque. */
typedef struct capstan_plugin_state capstan_plugin_state;

/* What capstan_plugin_entry() returns. Static storage owned by the plugin, valid while the
 * library is loaded. */
typedef struct capstan_plugin_v1 {
  uint32_t struct_size; /* sizeof(capstan_plugin_v1) as the plugin was built */
  uint32_t api_major;   /* CAPSTAN_PLUGIN_API_MAJOR the plugin was built against */
  uint32_t api_minor;   /* CAPSTAN_PLUGIN_API_MINOR the plugin was built against */

  const char* name;    /* unique plugin name, e.g. "shell"; NUL-terminated, plugin-owned */
  const char* version; /* the plugin's own semantic version, e.g. "1.2.0" */

  const capstan_step_type* step_types; /* array of step_type_count entries, plugin-owned */
  uint32_t step_type_count;

  /* Creates the plugin state. `config_json` is the plugin's section of the delegate config as a
   * JSON object (at least "{}"), and includes "stateDir", a directory the plugin may keep caches
   * in, and "delegateName". Owned by the host, valid during the call only. `host` may be used to
   * log during init (set_result/set_output do nothing there). On failure returns NULL and sets
   * *rc; the plugin's reason is then read with get_last_error(NULL). */
  capstan_plugin_state* (*init)(const char* config_json, const capstan_host_api* host,
                                void* host_ctx, capstan_rc* rc);

  /* Runs one step. `request` is a serialized capstan.plugin.v1.StepRequest of `request_size`
   * bytes, owned by the host and valid during the call. The result goes through
   * host->set_result(). Called concurrently; must honour host->cancelled(). */
  capstan_rc (*execute)(capstan_plugin_state* state, const uint8_t* request, size_t request_size,
                        const capstan_host_api* host, void* host_ctx);

  /* Why the last failed call on this thread failed (state may be NULL for a failed init).
   * NUL-terminated, owned by the plugin, valid until the next call from the same thread. */
  const char* (*get_last_error)(capstan_plugin_state* state);

  /* Releases the state. No other call is in flight when the host calls it. */
  void (*destroy)(capstan_plugin_state* state);

  /* sizeof(capstan_step_type) as the plugin was built: the stride of `step_types`, so a host
   * reads the array right whichever fields either side knows. */
  uint32_t step_type_size;

  /* --- API minor 1: optional reconciler hooks ---------------------------------------------
   * A plugin that keeps applications equal to Git (a GitOps agent) sets all three; any other
   * plugin leaves them NULL (or is built against minor 0, whose struct ends above). The host
   * hosts the applications the coordinator assigns to it through them. */

  /* Starts the reconciler of this state. Called once, before any reconciler_call. `host` and
   * `host_ctx` stay valid until reconciler_stop() returns. */
  capstan_rc (*reconciler_start)(capstan_plugin_state* state, const capstan_reconciler_host* host,
                                 void* host_ctx);

  /* One call: a serialized capstan.plugin.v1.ReconcilerCall of `call_size` bytes (owned by the
   * host, valid during the call): add or update an application, remove it, refresh, sync,
   * roll back, or read its status. The answer goes through reply(reply_ctx, ...). May be called
   * concurrently (a sync can take minutes while other applications are added). */
  capstan_rc (*reconciler_call)(capstan_plugin_state* state, const uint8_t* call, size_t call_size,
                                capstan_reply_fn reply, void* reply_ctx);

  /* Stops reconciling every application: when it returns no callback runs any more and no
   * write to any cluster is in flight. Called before destroy() when reconciler_start() was. */
  void (*reconciler_stop)(capstan_plugin_state* state);
} capstan_plugin_v1;

/* The entry point. The host passes its API version so a plugin that supports several can pick;
 * a plugin that cannot serve this host returns NULL. */
typedef const capstan_plugin_v1* (*capstan_plugin_entry_fn)(uint32_t host_api_major,
                                                            uint32_t host_api_minor);

#ifdef __cplusplus
}
#endif

#endif /* CAPSTAN_PLUGIN_API_H */
