// The smallest useful Capstan plugin: a "Hello" step that greets someone and exports the
// greeting as an output variable (<+steps.ID.output.outputVariables.greeting>).
//
//   - step:
//       type: Hello
//       name: Greet
//       identifier: greet
//       spec:
//         name: world
//         shout: true
#include <capstan/sdk/plugin.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace sdk = capstan::sdk;

namespace {

constexpr const char* kSpecSchema = R"({
  "type": "object",
  "required": ["name"],
  "additionalProperties": false,
  "properties": {
    "name": {"type": "string", "minLength": 1},
    "shout": {"type": "boolean"}
  }
})";

void greet(sdk::StepContext& ctx) {
  std::string greeting = "Hello, " + ctx.spec()["name"].get<std::string>() + "!";
  if (ctx.spec().value("shout", false)) {
    std::transform(greeting.begin(), greeting.end(), greeting.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  }
  ctx.info(greeting);
  ctx.set_output("greeting", greeting);
}

} // namespace

CAPSTAN_PLUGIN(plugin) {
  plugin.name("hello").version("1.0.0");
  plugin.step({"Hello", kSpecSchema, "Greets someone by name", CAPSTAN_STEP_RETRY_SAFE}, &greet);
}
