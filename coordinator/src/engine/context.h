// What a step sees: the expression scope of a stage or step (pipeline, stage, service,
// environment, infrastructure, artifact, step outputs, secrets) and the context a plugin gets
// with its task (resolved service, environment, infrastructure, connectors with credentials).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "capstan/expression/expression.h"
#include "engine/json_text.h"
#include "model/pipeline.h"
#include "secrets/secret_box.h"
#include "store/store.h"

namespace capstan::engine {

// Secret values as the engine needs them: by identifier, opened on demand.
class SecretSource {
public:
  SecretSource(store::Store& store, secrets::SecretBox& box) : store_(store), box_(box) {}
  // The value of secret `id`; nullopt when there is no such secret (or it cannot be opened).
  std::optional<std::string> value(const std::string& id) const;

private:
  store::Store& store_;
  secrets::SecretBox& box_;
};

// A scope over a JSON document that also answers <+secrets.getValue("id")> and records every
// secret value it hands out (to be masked and sent to the delegate's masker).
class StepScope : public expression::JsonScope {
public:
  StepScope(nlohmann::json root, const SecretSource& secrets)
      : JsonScope(std::move(root)), secrets_(secrets) {}
  std::optional<expression::Value> call(const std::vector<std::string>& target,
                                        const std::string& function,
                                        const std::vector<expression::Value>& args) const override;
  bool is_secret_call(const std::vector<std::string>& target,
                      const std::string& function) const override;
  // Values handed out by secrets.getValue(), and Secret variables.
  std::vector<std::string>& used() const { return used_; }

private:
  const SecretSource& secrets_;
  mutable std::vector<std::string> used_;
};

// Evaluates a field's template in `scope`; throws expression::Error.
nlohmann::json evaluate_field(const std::string& text, const StepScope& scope,
                              const std::vector<std::string>& deferred = {});
// Renders every string of `value` that holds an expression; `failed_at` is set to the pointer
// of the field being evaluated when it throws.
void render_tree(nlohmann::json& value, const StepScope& scope, std::string& failed_at,
                 const std::vector<std::string>& deferred = {});

// The resolved objects of a Deployment stage, as kept on its record when it starts (no secret
// values in it: credentials are resolved when each task leaves).
struct StageObjects {
  nlohmann::json snapshot; // {service, environment, infrastructure, ...}
  std::string error;       // why the stage cannot start, with file:line; "" on success
};

// The context a plugin gets with its task (docs/plugin-authoring.md). What every task has
// (schemaVersion, pipeline, stage, step) is written as text as it is built; the stage's objects
// (service, environment, infrastructure, connectors, outputs, ...) are a tree, which GitOps
// steps add to before the whole is written.
struct TaskContext {
  JsonText head;
  nlohmann::json members = nlohmann::json::object();
  JsonText expressions; // the "expressions" member: each fixed expression's value as text
  // The whole context as JSON text.
  std::string text() &&;
};

// Loads the stage's service, environment and infrastructure at their latest versions, with the
// run's inputs (FQN -> value) filled in, and checks them.
StageObjects load_stage_objects(store::Store& store, const model::Stage& stage,
                                const nlohmann::json& inputs);

// The identifiers an infrastructure key is made of, hashed as Harness does for
// `release-<+INFRA_KEY>`.
std::string infra_key(const std::string& service, const std::string& environment,
                      const std::string& infrastructure);

// A connector with its secrets resolved, in the shape docs/plugin-authoring.md describes.
// Secrets it reads are appended to `used`. Throws std::runtime_error naming a missing secret.
nlohmann::json resolve_connector(const nlohmann::json& model, const SecretSource& secrets,
                                 std::vector<std::string>& used);

} // namespace capstan::engine
