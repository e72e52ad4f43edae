// The benchmarks' plugin: a "Noop" step that succeeds at once (with `log: true` it logs one line
// naming its task, so the store shows each run), declared prompt (CAPSTAN_STEP_PROMPT) so the
// delegate runs it on its receiving thread, and a "Sleep" step that waits `seconds` while
// watching for cancellation.
#include <capstan/sdk/plugin.h>

#include <chrono>
#include <thread>

namespace sdk = capstan::sdk;

CAPSTAN_PLUGIN(plugin) {
  plugin.name("bench").version("1.0.0");
  plugin.step({"Noop", R"({"type":"object","properties":{"log":{"type":"boolean"}}})",
               "Does nothing, at once", CAPSTAN_STEP_PROMPT},
              [](sdk::StepContext& ctx) {
                if (ctx.spec().value("log", false)) ctx.info("ran " + ctx.request().task_id());
              });
  plugin.step({"Sleep", R"({"type":"object","properties":{"seconds":{"type":"number"}}})",
               "Sleeps, watching for cancellation", 0},
              [](sdk::StepContext& ctx) {
                auto until = std::chrono::steady_clock::now() +
                             std::chrono::milliseconds(
                                 static_cast<long long>(ctx.spec().value("seconds", 1.0) * 1000));
                while (std::chrono::steady_clock::now() < until) {
                  ctx.throw_if_cancelled();
                  std::this_thread::sleep_for(std::chrono::milliseconds(50));
                }
              });
}
