// What expressions see at each point of an execution, and what a plugin gets with its task.
#include <spdlog/spdlog.h>

#include "engine/gitops.h"
#include "engine/machine.h"
#include "model/duration.h"
#include "model/expression_check.h"
#include "model/step_specs.h"
#include "model/step_types.h"

namespace capstan::engine {

using nlohmann::json;
namespace st = store::status;

namespace {

// steps[G]["steps"][X]... for a row's path "G.X".
json& step_slot(json& steps, const std::string& path) {
  json* node = &steps;
  std::size_t start = 0;
  while (true) {
    auto dot = path.find('.', start);
    auto part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    json& entry = (*node)[part];
    if (dot == std::string::npos) return entry;
    node = &entry["steps"];
    start = dot + 1;
  }
}

// A step's outputs as expressions read them: output.X, output.outputVariables.X and (for
// approvals) output.approverInputs.X.
json output_of(const store::StepRecord& s) {
  json out = json::object();
  for (const auto& [k, v] : s.outputs.items()) {
    if (k != "outputVariables" && k != "approverInputs") out[k] = v;
  }
  out["outputVariables"] = s.outputs;
  if (s.type == "HarnessApproval") {
    out["approverInputs"] = s.outputs;
    if (s.state.contains("approval")) {
      out["approvalActivities"] = s.state["approval"].value("activities", json::array());
    }
  }
  return out;
}

std::string short_key(const std::string& key) {
  return key.substr(0, 6);
}

} // namespace

secrets::SecretBox& Machine::secret_box() {
  if (!secret_box_) {
    secret_box_ = std::make_unique<secrets::SecretBox>(store_.file().parent_path());
  }
  return *secret_box_;
}

SecretSource& Machine::secret_source() {
  if (!secret_source_) secret_source_ = std::make_unique<SecretSource>(store_, secret_box());
  return *secret_source_;
}

const secrets::Masker& Machine::masker() {
  if (secrets_changed_) {
    std::vector<std::string> values;
    for (const auto& [id, sealed] : store_.secret_values()) {
      if (auto v = secret_box().open(sealed, id)) values.push_back(*v);
    }
    masker_ = secrets::Masker(std::move(values));
    secrets_changed_ = false;
  }
  return masker_;
}

std::string Machine::mask(const std::string& text) {
  return masker().mask(text);
}

json Machine::variable_values(const std::vector<model::Variable>& vars, const json& given,
                              const std::string& fqn_prefix, const json& inputs) {
  json out = json::object();
  for (const auto& v : vars) {
    std::string value = v.value;
    if (given.contains(v.name) && given[v.name].is_string()) {
      value = given[v.name].get<std::string>();
    } else if (v.runtime_input) {
      auto fqn = fqn_prefix + "." + v.name;
      value = inputs.contains(fqn) && inputs[fqn].is_string() ? inputs[fqn].get<std::string>() : "";
    }
    if (v.type == "Secret" && !value.empty() && !expression::has_expression(value)) {
      auto secret = secret_source().value(value);
      value = secret.value_or("");
    }
    out[v.name] = value;
  }
  return out;
}

json Machine::scope_root(Active& a, std::size_t si, int row) {
  const auto& rec = a.record;
  json stages = json::object();
  json local_steps = json::object();
  for (std::size_t i = 0; i < a.plan().size(); ++i) {
    const auto& sp = a.plan()[i];
    json steps = json::object();
    for (std::size_t r = 0; r < sp.rows.size(); ++r) {
      const auto& pr = sp.rows[r];
      if (pr.node->kind == model::NodeKind::kParallel) continue;
      const auto& s = rec.steps[a.offset()[i] + r];
      json& slot = step_slot(steps, pr.path);
      slot["name"] = pr.node->name;
      slot["identifier"] = pr.node->identifier;
      slot["type"] = s.type;
      slot["status"] = s.status;
      if (pr.node->kind == model::NodeKind::kStep) slot["output"] = output_of(s);
    }
    const auto& stage_rec = rec.stages[i];
    json sj = {
        {"name", sp.stage->name},
        {"identifier", sp.stage->identifier},
        {"type", sp.stage->type},
        {"description", sp.stage->description},
        {"status", stage_rec.status},
        {"variables",
         variable_values(sp.stage->variables, json::object(),
                         "pipeline.stages." + sp.stage->identifier + ".variables", rec.inputs)},
        {"spec", {{"execution", {{"steps", steps}}}}}};
    if (i == si) local_steps = steps;
    stages[sp.stage->identifier] = std::move(sj);
  }
  json root = {{"pipeline",
                {{"name", a.pipeline().name},
                 {"identifier", a.pipeline().identifier},
                 {"description", a.pipeline().description},
                 {"executionId", rec.id},
                 {"sequenceId", rec.sequence},
                 {"startTs", rec.started_at},
                 {"triggeredBy", {{"name", rec.triggered_by}, {"email", ""}}},
                 {"variables", variable_values(a.pipeline().variables, rec.variables,
                                               "pipeline.variables", rec.inputs)},
                 {"stages", stages}}}};
  if (si >= a.plan().size()) return root;
  root["stage"] = stages[a.plan()[si].stage->identifier];
  root["execution"] = {{"steps", local_steps}};
  if (row >= 0) {
    const auto& pr = plan_row(a, si, row);
    const auto& s = rec.steps[a.offset()[si] + static_cast<std::size_t>(row)];
    root["step"] = {{"name", pr.node->name},
                    {"identifier", pr.node->identifier},
                    {"type", s.type},
                    {"timeout", model::format_duration(std::chrono::milliseconds(s.timeout_ms))}};
  }
  const json& snap = rec.stages[si].context;
  if (snap.contains("service")) {
    const json& svc = snap["service"];
    root["service"] = {{"name", svc.value("name", "")},
                       {"identifier", svc.value("identifier", "")},
                       {"description", svc.value("description", "")},
                       {"type", svc.value("type", "Kubernetes")},
                       {"gitOpsEnabled", svc.value("gitOpsEnabled", false)}};
    // Environment variables override service variables of the same name, and environment
    // overrides override both.
    std::vector<model::Variable> merged = svc.value("variables", std::vector<model::Variable>{});
    auto overlay = [&](const std::vector<model::Variable>& vars) {
      for (const auto& v : vars) {
        auto it = std::find_if(merged.begin(), merged.end(),
                               [&](const auto& m) { return m.name == v.name; });
        if (it != merged.end()) *it = v;
      }
    };
    const json env = snap.value("environment", json::object());
    auto env_vars = env.value("variables", std::vector<model::Variable>{});
    overlay(env_vars);
    overlay(
        env.value("overrides", json::object()).value("variables", std::vector<model::Variable>{}));
    for (const auto& v : env.value("overrides", json::object())
                             .value("variables", std::vector<model::Variable>{})) {
      if (std::none_of(merged.begin(), merged.end(),
                       [&](const auto& m) { return m.name == v.name; })) {
        merged.push_back(v);
      }
    }
    root["serviceVariables"] = variable_values(merged, json::object(), "", json::object());
    root["env"] = {{"name", env.value("name", "")},
                   {"identifier", env.value("identifier", "")},
                   {"type", env.value("type", "")},
                   {"description", env.value("description", "")},
                   {"variables", variable_values(env_vars, json::object(), "", json::object())}};
  }
  if (snap.contains("infrastructure")) {
    const json& infra = snap["infrastructure"];
    const json spec = infra.value("spec", json::object());
    root["infra"] = {{"name", infra.value("name", "")},
                     {"identifier", infra.value("identifier", "")},
                     {"infraIdentifier", infra.value("identifier", "")},
                     {"infraName", infra.value("name", "")},
                     {"connectorRef", spec.value("connectorRef", "")},
                     {"namespace", snap.value("namespace", spec.value("namespace", ""))},
                     {"releaseName", snap.value("releaseName", spec.value("releaseName", ""))}};
    root["INFRA_KEY"] = infra.value("infraKey", "");
    root["INFRA_KEY_SHORT_ID"] = short_key(infra.value("infraKey", ""));
  }
  if (snap.contains("artifact")) {
    root["artifact"] = snap["artifact"];
    root["artifacts"] = {{"primary", snap["artifact"]}};
  }
  return root;
}

json Machine::task_scope_root(Active& a, std::size_t si, int row, const json& spec) {
  const json& snap = a.record.stages[si].context;
  if (model::holds_expression(spec) || snap.contains("service") || snap.contains("environment") ||
      snap.contains("infrastructure") || snap.contains("environmentGroup") ||
      snap.contains("artifact") || snap.contains("gitOps")) {
    return scope_root(a, si, row);
  }
  const auto& stage = *a.plan()[si].stage;
  json pipeline_vars = variable_values(a.pipeline().variables, a.record.variables,
                                       "pipeline.variables", a.record.inputs);
  json stage_vars =
      variable_values(stage.variables, json::object(),
                      "pipeline.stages." + stage.identifier + ".variables", a.record.inputs);
  if (model::holds_expression(pipeline_vars) || model::holds_expression(stage_vars)) {
    return scope_root(a, si, row);
  }
  return {{"pipeline", {{"variables", std::move(pipeline_vars)}}},
          {"stage", {{"variables", std::move(stage_vars)}}}};
}

bool Machine::condition_holds(Active& a, std::size_t si, int row, const std::string& condition,
                              std::string& error) {
  try {
    StepScope scope(scope_root(a, si, row), secret_source());
    expression::EvalOptions options;
    options.secrets_used = &scope.used();
    return expression::Expression::parse_condition(condition).evaluate_bool(scope, options);
  } catch (const expression::Error& e) {
    error = mask(e.what());
    return false;
  }
}

// Execution inputs answered for a step, written into its spec.
void Machine::fill_inputs(const Active& a, std::size_t si, int row, json& spec) const {
  const auto& sid = a.plan()[si].stage->identifier;
  const auto& path = a.plan()[si].rows[static_cast<std::size_t>(row)].path;
  for (const auto& site : a.record.pending_inputs) {
    if (site.value("stage", "") != sid || site.value("step", "") != path) continue;
    auto fqn = site.value("fqn", "");
    if (!a.record.inputs.contains(fqn)) continue;
    auto pointer = site.value("pointer", "");
    auto at = pointer.rfind("/step/spec");
    if (at == std::string::npos) continue;
    json::json_pointer ptr(pointer.substr(at + 10));
    if (spec.contains(ptr)) spec[ptr] = a.record.inputs[fqn];
  }
}

json Machine::rendered_spec(Active& a, std::size_t si, int row, std::string& error) {
  const auto& node = *plan_row(a, si, row).node;
  json spec = node.spec;
  fill_inputs(a, si, row, spec);
  std::string failed_at;
  try {
    StepScope scope(scope_root(a, si, row), secret_source());
    render_tree(spec, scope, failed_at);
  } catch (const expression::Error& e) {
    auto loc = node.expression_locations.find(failed_at);
    error = (loc != node.expression_locations.end() ? loc->second : node.location) + ": " +
            mask(e.what());
  }
  return spec;
}

std::string Machine::start_deployment(Active& a, std::size_t si) {
  auto& stage = a.record.stages[si];
  const auto& model_stage = *a.plan()[si].stage;
  auto objects = load_stage_objects(store_, model_stage, a.record.inputs);
  if (!objects.error.empty()) return objects.error;
  stage.context = std::move(objects.snapshot);
  set_stage(a, si);
  // What the stage computes once: the namespace, the release name and the primary artifact.
  StepScope scope(scope_root(a, si, -1), secret_source());
  auto field = [&](const json& value, const std::string& where) -> std::string {
    if (!value.is_string()) return value.is_null() ? "" : expression::to_text(value);
    try {
      return expression::to_text(evaluate_field(value.get<std::string>(), scope));
    } catch (const expression::Error& e) {
      throw std::runtime_error(where + ": " + e.what());
    }
  };
  auto locate = [](const json& model, const std::string& pointer) {
    auto locations = model.value("locations", json::object());
    return locations.value(pointer, model.value("location", ""));
  };
  try {
    if (stage.context.contains("infrastructure")) {
      const json& infra = stage.context["infrastructure"];
      const json spec = infra.value("spec", json::object());
      stage.context["namespace"] = field(spec.value("namespace", ""),
                                         locate(infra, "/infrastructureDefinition/spec/namespace"));
      scope.root()["infra"]["namespace"] = stage.context["namespace"];
      stage.context["releaseName"] =
          field(spec.value("releaseName", ""),
                locate(infra, "/infrastructureDefinition/spec/releaseName"));
      auto conn_id = model::strip_scope(spec.value("connectorRef", ""));
      if (auto conn = store_.object("connector", conn_id)) {
        stage.context["connectorSelectors"] =
            conn->model.value("spec", json::object()).value("delegateSelectors", json::array());
      }
      if (!infra.value("allowSimultaneousDeployments", false)) {
        stage.lock_key =
            infra.value("identifier", "") + "/" + stage.context["releaseName"].get<std::string>();
      }
    }
    const json& svc = stage.context["service"];
    const json arts = svc.value("artifacts", json::object());
    const json sources = arts.value("sources", json::array());
    if (!sources.empty()) {
      auto ref = field(arts.value("primaryArtifactRef", ""), svc.value("location", ""));
      const json* source = &sources[0];
      if (!ref.empty()) {
        source = nullptr;
        for (const auto& s : sources) {
          if (s.value("identifier", "") == ref) source = &s;
        }
        if (source == nullptr) {
          return "stage '" + model_stage.identifier + "': primaryArtifactRef '" + ref +
                 "' names no artifact source of service '" + svc.value("identifier", "") + "'";
        }
      }
      const json spec = source->value("spec", json::object());
      const std::string base = source->value("location", "");
      json art = {{"identifier", source->value("identifier", "")},
                  {"type", source->value("type", "DockerRegistry")},
                  {"imagePath", field(spec.value("imagePath", ""), base)},
                  {"tag", field(spec.value("tag", ""), base)},
                  {"digest", field(spec.value("digest", ""), base)},
                  {"connectorRef", field(spec.value("connectorRef", ""), base)}};
      std::string host = "docker.io";
      if (auto conn = art["connectorRef"].get<std::string>(); !conn.empty()) {
        if (auto c = store_.object("connector", model::strip_scope(conn))) {
          auto url = c->model.value("spec", json::object()).value("dockerRegistryUrl", "");
          if (auto p = url.find("://"); p != std::string::npos) url = url.substr(p + 3);
          url = url.substr(0, url.find('/'));
          if (!url.empty() && url != "index.docker.io" && url != "registry-1.docker.io") {
            host = url;
          }
        }
      }
      std::string image = art["imagePath"].get<std::string>();
      if (host != "docker.io") image = host + "/" + image;
      if (!art["digest"].get<std::string>().empty()) {
        image += "@" + art["digest"].get<std::string>();
      } else if (!art["tag"].get<std::string>().empty()) {
        image += ":" + art["tag"].get<std::string>();
      }
      art["registryHostname"] = host;
      art["image"] = image;
      stage.context["artifact"] = std::move(art);
    }
  } catch (const std::runtime_error& e) {
    return mask(e.what());
  }
  return "";
}

TaskContext Machine::plugin_context(Active& a, std::size_t si, int row, StepScope& scope,
                                    std::vector<std::string>& secrets_used) {
  const auto& rec = a.record;
  const auto& pr = plan_row(a, si, row);
  const auto& step_rec = rec.steps[a.offset()[si] + static_cast<std::size_t>(row)];
  const json& root = scope.root();
  const auto& model_stage = *a.plan()[si].stage;
  TaskContext out;
  json& context = out.members;
  std::string ignored;
  static const std::vector<std::string> deferred_roots(model::deferred_roots().begin(),
                                                       model::deferred_roots().end());
  auto render = [&](json value) {
    render_tree(value, scope, ignored, deferred_roots);
    return value;
  };
  // Written as text: what every task gets (a Custom stage's tasks get little else).
  const json pipeline_vars = render(root["pipeline"]["variables"]);
  const json stage_vars = render(root["stage"]["variables"]);
  JsonText& head = out.head;
  head.member("schemaVersion", std::int64_t{1});
  head.open("pipeline")
      .member("identifier", a.pipeline().identifier)
      .member("name", a.pipeline().name)
      .member("executionId", rec.id)
      .member("sequenceId", rec.sequence)
      .member("triggeredBy", rec.triggered_by)
      .member("variables", pipeline_vars)
      .close();
  head.open("stage")
      .member("identifier", model_stage.identifier)
      .member("name", model_stage.name)
      .member("type", model_stage.type)
      .member("variables", stage_vars)
      .close();
  head.open("step")
      .member("identifier", pr.node->identifier)
      .member("name", pr.node->name)
      .member("type", pr.node->type)
      .member("path", pr.path)
      .member("timeoutMs", step_rec.timeout_ms)
      .member("rollback", pr.section == "rollback")
      .close();
  // Every fixed expression's value as text. Each prefix names a different object, so no name
  // is written twice.
  JsonText& flat = out.expressions;
  std::string name;
  auto flatten = [&](std::string_view prefix, const json& obj) {
    for (const auto& [k, v] : obj.items()) {
      if (!v.is_primitive()) continue;
      name.assign(prefix).append(k);
      flat.member(name, expression::to_text(v));
    }
  };
  flat.member("pipeline.name", a.pipeline().name);
  flat.member("pipeline.identifier", a.pipeline().identifier);
  flat.member("pipeline.executionId", rec.id);
  flat.member("pipeline.sequenceId", std::to_string(rec.sequence));
  flatten("pipeline.variables.", pipeline_vars);
  flat.member("stage.name", model_stage.name);
  flat.member("stage.identifier", model_stage.identifier);
  flatten("stage.variables.", stage_vars);
  const json& snap = rec.stages[si].context;
  std::set<std::string> connectors;
  // Over an environment group each cluster has its own environment: <+env.*> in manifests (the
  // release repo's paths) and in the service's variables is resolved per cluster by the step,
  // like <+cluster.*>.
  auto render_manifest = [&](json value) {
    if (!snap.contains("environmentGroup")) return render(std::move(value));
    std::vector<std::string> deferred = deferred_roots;
    deferred.push_back("env");
    render_tree(value, scope, ignored, deferred);
    return value;
  };
  if (snap.contains("service")) {
    const json& svc = snap["service"];
    const std::string base = svc.value("baseDir", "");
    auto manifests = [&](const json& list, bool from_env, const std::string& env_base) {
      json out = json::array();
      for (const auto& m : list) {
        json spec = render_manifest(m.value("spec", json::object()));
        json store = spec.value("store", json::object());
        json s = store.value("spec", json::object());
        s["type"] = store.value("type", "");
        if (s["type"] == "Local") s["basePath"] = from_env ? env_base : base;
        if (s.contains("connectorRef")) {
          s["connectorRef"] = model::strip_scope(s["connectorRef"].get<std::string>());
          connectors.insert(s["connectorRef"].get<std::string>());
        }
        json entry = spec;
        entry.erase("store");
        entry["identifier"] = m.value("identifier", "");
        entry["type"] = m.value("type", "");
        entry["store"] = s;
        entry["fromEnvironment"] = from_env;
        out.push_back(std::move(entry));
      }
      return out;
    };
    const json env = snap.value("environment", json::object());
    json list = manifests(svc.value("manifests", json::array()), false, "");
    for (auto& m :
         manifests(env.value("overrides", json::object()).value("manifests", json::array()), true,
                   env.value("baseDir", ""))) {
      list.push_back(std::move(m));
    }
    json config_files = json::array();
    for (const auto& f : svc.value("configFiles", json::array())) {
      json spec = render(f.value("spec", json::object()));
      json store = spec.value("store", json::object());
      json s = store.value("spec", json::object());
      s["type"] = store.value("type", "");
      if (s["type"] == "Local") s["basePath"] = base;
      if (s.contains("connectorRef")) connectors.insert(model::strip_scope(s["connectorRef"]));
      config_files.push_back({{"identifier", f.value("identifier", "")}, {"store", s}});
    }
    context["service"] = {
        {"identifier", svc.value("identifier", "")},
        {"name", svc.value("name", "")},
        {"type", svc.value("type", "Kubernetes")},
        {"gitOpsEnabled", svc.value("gitOpsEnabled", false)},
        {"version", svc.value("version", 0)},
        {"variables", render_manifest(root.value("serviceVariables", json::object()))},
        {"manifests", list},
        {"configFiles", config_files}};
    // The same service as its YAML declares it (serviceDefinition, expressions resolved) and
    // the folder it was applied from, which is how deployment plugins read a service.
    json raw_manifests = json::array();
    for (const auto& m : svc.value("manifests", json::array())) {
      raw_manifests.push_back({{"identifier", m.value("identifier", "")},
                               {"type", m.value("type", "")},
                               {"spec", render(m.value("spec", json::object()))}});
    }
    json definition_spec = {{"manifests", raw_manifests},
                            {"variables", render(svc.value("variables", json::array()))}};
    if (snap.contains("artifact")) {
      const json& art = snap["artifact"];
      definition_spec["artifacts"] = {
          {"primary",
           {{"primaryArtifactRef", art.value("identifier", "")},
            {"sources", json::array({{{"identifier", art.value("identifier", "")},
                                      {"type", art.value("type", "")},
                                      {"spec",
                                       {{"connectorRef", art.value("connectorRef", "")},
                                        {"imagePath", art.value("imagePath", "")},
                                        {"tag", art.value("tag", "")},
                                        {"digest", art.value("digest", "")}}}}})}}}};
    }
    context["service"]["serviceDefinition"] = {{"type", svc.value("type", "Kubernetes")},
                                               {"spec", definition_spec}};
    context["service"]["baseDir"] = base;
    if (snap.contains("artifact")) {
      context["artifact"] = snap["artifact"];
      context["service"]["artifact"] = snap["artifact"];
      auto conn = snap["artifact"].value("connectorRef", "");
      if (!conn.empty()) connectors.insert(model::strip_scope(conn));
      flatten("artifact.", snap["artifact"]);
    }
    context["environment"] = {{"identifier", env.value("identifier", "")},
                              {"name", env.value("name", "")},
                              {"type", env.value("type", "")},
                              {"version", env.value("version", 0)},
                              {"variables", render(root["env"]["variables"])},
                              {"overrides", render(env.value("overrides", json::object()))},
                              {"baseDir", env.value("baseDir", "")}};
    flatten("service.", root["service"]);
    flatten("serviceVariables.", context["service"]["variables"]);
    flatten("env.", {{"name", env.value("name", "")},
                     {"identifier", env.value("identifier", "")},
                     {"type", env.value("type", "")}});
    flatten("env.variables.", context["environment"]["variables"]);
  }
  if (snap.contains("infrastructure")) {
    const json& infra = snap["infrastructure"];
    auto conn = model::strip_scope(infra.value("spec", json::object()).value("connectorRef", ""));
    context["infrastructure"] = {
        {"identifier", infra.value("identifier", "")},
        {"name", infra.value("name", "")},
        {"type", infra.value("type", "")},
        {"version", infra.value("version", 0)},
        {"namespace", snap.value("namespace", "")},
        {"releaseName", snap.value("releaseName", "")},
        {"infraKey", infra.value("infraKey", "")},
        {"connectorRef", conn},
        {"allowSimultaneousDeployments", infra.value("allowSimultaneousDeployments", false)}};
    context["release"] = {{"name", snap.value("releaseName", "")}};
    connectors.insert(conn);
    flatten("infra.", root["infra"]);
    flat.member("INFRA_KEY", root.value("INFRA_KEY", ""));
    flat.member("INFRA_KEY_SHORT_ID", root.value("INFRA_KEY_SHORT_ID", ""));
  }
  if (snap.contains("gitOps")) context["gitOps"] = snap["gitOps"];
  if (snap.contains("environmentGroup")) {
    // Each cluster brings its own environment: its variables are rendered here, as the stage's
    // environment's are, but for <+env.*>, which the step resolves for the cluster.
    context["environmentGroup"] = {{"identifier", snap["environmentGroup"].value("identifier", "")},
                                   {"name", snap["environmentGroup"].value("name", "")}};
    for (auto& c : context["gitOps"]["clusters"]) {
      if (!c.is_object() || !c.contains("environment")) continue;
      json& env = c["environment"];
      env["variables"] =
          render_manifest(variable_values(env.value("variables", std::vector<model::Variable>{}),
                                          json::object(), "", json::object()));
    }
  }
  json resolved = json::object();
  for (const auto& id : connectors) {
    if (id.empty()) continue;
    auto c = store_.object("connector", id);
    if (!c) throw std::runtime_error("connector '" + id + "' does not exist (any more)");
    resolved[id] = resolve_connector(c->model, secret_source(), secrets_used);
  }
  context["connectors"] = resolved;
  if (context.contains("infrastructure") &&
      resolved.contains(context["infrastructure"]["connectorRef"].get<std::string>())) {
    context["infrastructure"]["connector"] =
        resolved[context["infrastructure"]["connectorRef"].get<std::string>()];
  }
  // Outputs of this stage's steps so far (what a rollback step needs from the deployment).
  json outputs = json::object();
  for (std::size_t r = 0; r < a.plan()[si].rows.size(); ++r) {
    const auto& s = rec.steps[a.offset()[si] + r];
    if (a.plan()[si].rows[r].node->kind == model::NodeKind::kStep && !s.outputs.empty()) {
      outputs[a.plan()[si].rows[r].path] = s.outputs;
    }
  }
  context["stageOutputs"] = outputs;
  if (pr.section == "rollback") {
    const auto& stage = rec.stages[si];
    context["rollback"] = {
        {"reason", stage.state.value("rollback", json::object()).value("reason", "")},
        {"stageStatus", stage.status}};
  }
  return out;
}

std::string TaskContext::text() && {
  for (const auto& [key, value] : members.items()) head.member(key, value);
  head.raw_member("expressions", std::move(expressions).take());
  return std::move(head).take();
}

bool Machine::resolve(Active& a, std::size_t index, plugin::v1::StepRequest& request) {
  auto& s = a.record.steps[index];
  const auto si = static_cast<std::size_t>(s.stage_index);
  const int row = s.step_index;
  const auto& plan_entry = plan_row(a, si, row);
  const auto& node = *plan_entry.node;
  // A spec without expressions, and without execution inputs to fill in, is sent as the plan
  // wrote it once: no copy, no walk, no dump per task.
  const bool fixed = plan_entry.fixed_spec && a.record.pending_inputs.empty();
  json spec;
  if (!fixed) {
    spec = node.spec;
    fill_inputs(a, si, row, spec);
  }
  std::vector<std::string> secrets_used;
  std::string context;
  std::string failed_at;
  try {
    StepScope scope(task_scope_root(a, si, row, fixed ? node.spec : spec), secret_source());
    // UpdateReleaseRepo edits one file per GitOps cluster: <+cluster.*> and <+envgroup.*> in
    // its variables are that cluster's, and over an environment group so is <+env.*>, resolved
    // by the step as in the paths.
    json per_cluster;
    if (!fixed && (node.type == "UpdateReleaseRepo" || node.type == "GitOpsUpdateReleaseRepo") &&
        spec.contains("variables")) {
      per_cluster = {{"variables", std::move(spec["variables"])}};
      spec.erase("variables");
      std::vector<std::string> deferred(model::deferred_roots().begin(),
                                        model::deferred_roots().end());
      if (a.record.stages[si].context.contains("environmentGroup")) deferred.push_back("env");
      render_tree(per_cluster, scope, failed_at, deferred);
    }
    if (!fixed) render_tree(spec, scope, failed_at);
    if (!per_cluster.is_null()) spec["variables"] = std::move(per_cluster["variables"]);
    auto task_context = plugin_context(a, si, row, scope, secrets_used);
    json& members = task_context.members;
    if (is_gitops_step(node.type)) add_gitops_context(store_, a.record.id, node.type, members);
    if (node.type == "FetchLinkedApps" || node.type == "GitOpsFetchLinkedApps") {
      members["gitOps"]["applications"] =
          live_applications(members["gitOps"].value("clusters", json::array()));
    }
    context = std::move(task_context).text();
    secrets_used.insert(secrets_used.end(), scope.used().begin(), scope.used().end());
  } catch (const expression::Error& e) {
    auto loc = node.expression_locations.find(failed_at);
    std::string where = loc != node.expression_locations.end() ? loc->second : node.location;
    fail_step(a, index, "InvalidInput", where + ": " + mask(e.what()));
    return false;
  } catch (const std::exception& e) {
    fail_step(a, index, "InvalidInput", node.location + ": " + mask(e.what()));
    return false;
  }
  request.set_execution_id(a.record.id);
  request.set_step_type(node.type);
  request.set_step_identifier(node.identifier);
  request.set_step_name(node.name);
  request.set_spec_json(fixed ? *plan_entry.fixed_spec : spec.dump());
  request.set_timeout_ms(static_cast<std::uint64_t>(node.timeout.count()));
  request.set_context_json(std::move(context));
  request.set_rollback(plan_row(a, si, row).section == "rollback");
  task_secrets_[s.task_id.empty() ? a.record.id + "-" + std::to_string(index) : s.task_id] =
      std::move(secrets_used);
  return true;
}

} // namespace capstan::engine
