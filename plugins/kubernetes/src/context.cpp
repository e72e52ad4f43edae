// Reading the stage context a step gets.
#include "context.h"

#include <capstan/kube/connector.h>
#include <capstan/kube/error.h>
#include <capstan/manifest/error.h>

#include <cstdlib>

#include "errors.h"

namespace capstan::plugins::kubernetes {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string text(const json& o, std::initializer_list<const char*> path) {
  const json* cur = &o;
  for (const char* k : path) {
    if (!cur->is_object()) return {};
    auto it = cur->find(k);
    if (it == cur->end()) return {};
    cur = &*it;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_number() || cur->is_boolean()) return cur->dump();
  return {};
}

const json& unwrap(const json& doc, const char* key) {
  if (doc.is_object()) {
    auto it = doc.find(key);
    if (it != doc.end() && it->is_object()) return *it;
  }
  return doc;
}

// doc[key] when doc is an object that has it, else null (a stage may come without an
// environment, a pipeline without variables).
json member(const json& doc, const char* key) {
  if (!doc.is_object()) return json();
  auto it = doc.find(key);
  return it == doc.end() ? json() : *it;
}

std::string strip_scope(std::string ref) {
  for (const char* p : {"account.", "org."}) {
    if (ref.rfind(p, 0) == 0) ref = ref.substr(std::strlen(p));
  }
  return ref;
}

std::string variables_value(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

// [{name, value}, ...] (as services and environments declare them) or {name: value} (as the
// pipeline's resolved variables come) as {name: value}.
json variables_map(const json& list) {
  json out = json::object();
  if (list.is_array()) {
    for (const auto& v : list) {
      if (v.is_object() && v.contains("name") && v["name"].is_string()) {
        out[v["name"].get<std::string>()] = variables_value(v.value("value", json()));
      }
    }
  } else if (list.is_object()) {
    out = list;
  }
  return out;
}

std::optional<manifest::Artifact> read_artifact(const json& context, const json& service,
                                                const StageContext& stage) {
  if (context.contains("artifact") && context["artifact"].is_object() &&
      !context["artifact"].empty()) {
    return manifest::Artifact::from_json(context["artifact"]);
  }
  // The service's primary artifact source, its runtime inputs already filled in.
  const json* sources = nullptr;
  json::json_pointer p("/serviceDefinition/spec/artifacts/primary/sources");
  if (service.contains(p) && service.at(p).is_array() && !service.at(p).empty()) {
    sources = &service.at(p);
  }
  if (sources == nullptr) return std::nullopt;
  const json& source = (*sources)[0];
  const json spec = source.value("spec", json::object());
  json a = {{"imagePath", text(spec, {"imagePath"})}, {"tag", text(spec, {"tag"})}};
  std::string tag = a["tag"];
  if (tag.find("<+") != std::string::npos) {
    throw invalid("the artifact's tag '" + tag + "' was not resolved before the step ran");
  }
  std::string registry = text(spec, {"registryHostname"});
  std::string conn = text(spec, {"connectorRef"});
  if (!conn.empty()) {
    if (const json* c = stage.connector(conn)) {
      if (registry.empty()) {
        std::string url = text(*c, {"url"});
        auto scheme = url.find("://");
        if (scheme != std::string::npos) url = url.substr(scheme + 3);
        while (!url.empty() && url.back() == '/') url.pop_back();
        if (url.find("index.docker.io") == std::string::npos &&
            url.find("registry.hub.docker.com") == std::string::npos) {
          registry = url.substr(0, url.find('/'));
        }
      }
      if (text(*c, {"auth", "type"}) == "UsernamePassword") {
        a["username"] = text(*c, {"auth", "username"});
        a["password"] = text(*c, {"auth", "password"});
      }
    }
  }
  if (!registry.empty()) {
    a["registryHostname"] = registry;
    a["image"] = registry + "/" + a["imagePath"].get<std::string>() + ":" + tag;
  }
  return manifest::Artifact::from_json(a);
}

} // namespace

kube::ClusterConfig cluster_from_connector(const json& connector,
                                           const std::function<void(const std::string&)>& mask) {
  const std::string type = text(connector, {"type"});
  if (!type.empty() && type != "K8sCluster") {
    throw invalid("connector '" + text(connector, {"identifier"}) + "' is a " + type +
                  " connector; the infrastructure needs a K8sCluster one");
  }
  try {
    return kube::cluster_from_connector(connector, mask);
  } catch (const kube::Error& e) {
    throw sdk::StepError(error_type(e.kind()), e.what());
  }
}

const json* StageContext::connector(const std::string& ref0) const {
  std::string ref = strip_scope(ref0);
  auto it = raw.find("connectors");
  if (it == raw.end()) return nullptr;
  if (it->is_object()) {
    auto c = it->find(ref);
    if (c != it->end() && c->is_object()) return &*c;
    return nullptr;
  }
  if (it->is_array()) {
    for (const auto& c : *it) {
      if (c.is_object() && strip_scope(text(c, {"identifier"})) == ref) return &c;
    }
  }
  return nullptr;
}

StageContext StageContext::parse(const sdk::StepContext& ctx) {
  StageContext s;
  s.raw = ctx.context();
  const json& raw = s.raw;
  s.execution_key = text(raw, {"pipeline", "executionId"});
  if (s.execution_key.empty()) s.execution_key = ctx.request().execution_id();
  s.execution_key += "/" + text(raw, {"stage", "identifier"});

  s.service = unwrap(raw.value("service", json::object()), "service");
  s.environment = unwrap(raw.value("environment", json()), "environment");
  s.infrastructure = unwrap(raw.value("infrastructure", json()), "infrastructureDefinition");
  s.service_dir = text(s.service, {"baseDir"});
  s.environment_dir = text(s.environment, {"baseDir"});

  const json& infra = s.infrastructure;
  if (!infra.is_object() || infra.empty()) {
    throw invalid("the stage has no infrastructure: Kubernetes steps run in a Deployment stage "
                  "whose environment names a KubernetesDirect infrastructure definition");
  }
  const json ispec = infra.contains("spec") ? infra["spec"] : infra;
  s.namespace_ = text(ispec, {"namespace"});
  s.release_name = text(ispec, {"releaseName"});
  std::string infra_key = text(infra, {"infraKey"});
  std::string key_expr = "<+INFRA_KEY>";
  if (auto pos = s.release_name.find(key_expr); pos != std::string::npos && !infra_key.empty()) {
    s.release_name.replace(pos, key_expr.size(), infra_key.substr(0, 40));
  }
  if (s.namespace_.empty()) throw invalid("the infrastructure definition has no namespace");
  if (s.release_name.empty()) s.release_name = "release-" + infra_key.substr(0, 40);
  if (s.release_name == "release-") {
    throw invalid("the infrastructure definition has no releaseName");
  }
  for (const auto& [what, value] :
       {std::pair{"namespace", s.namespace_}, std::pair{"releaseName", s.release_name}}) {
    if (value.find("<+") != std::string::npos) {
      throw invalid(std::string("the infrastructure's ") + what + " '" + value +
                    "' still holds an unresolved expression");
    }
  }

  auto mask = [&ctx](const std::string& v) { ctx.mask(v); };
  std::string conn_ref = text(ispec, {"connectorRef"});
  const json* conn = nullptr;
  if (infra.contains("connector") && infra["connector"].is_object()) conn = &infra["connector"];
  if (conn == nullptr && !conn_ref.empty()) conn = s.connector(conn_ref);
  if (conn == nullptr) {
    throw invalid("the infrastructure's connector '" + conn_ref +
                  "' was not sent with the step (is it a K8sCluster connector that exists?)");
  }
  s.cluster = cluster_from_connector(*conn, mask);
  s.cluster_key = s.cluster.server + "|" + s.cluster.context + "|" +
                  std::to_string(std::hash<std::string>{}(
                      s.cluster.token + s.cluster.token_file + s.cluster.client_cert_pem +
                      s.cluster.ca_pem + s.cluster.username + s.cluster.password +
                      (s.cluster.exec ? s.cluster.exec->command : std::string()) +
                      (s.cluster.insecure_skip_tls_verify ? "i" : "")));

  try {
    if (s.has_service()) s.artifact = read_artifact(raw, s.service, s);
  } catch (const manifest::ManifestError& e) {
    throw invalid(std::string("the stage's artifact: ") + e.what());
  }
  if (s.artifact && s.artifact->credentials) mask(s.artifact->credentials->password);

  // <+...> in fetched files: the coordinator's scope when it sends one, plus what we know.
  json scope = raw.value("expressions", json::object());
  if (!scope.is_object()) scope = json::object();
  auto put = [&](const std::string& root, const json& value) {
    if (!scope.contains(root) || !scope[root].is_object()) scope[root] = json::object();
    for (const auto& [k, v] : value.items()) {
      if (!scope[root].contains(k)) scope[root][k] = v;
    }
  };
  if (s.artifact) {
    put("artifact",
        {{"image", s.artifact->image},
         {"imagePath", s.artifact->image_path},
         {"tag", s.artifact->tag},
         {"imagePullSecret", manifest::image_pull_secret_dockercfg(*s.artifact)},
         {"dockerConfigJsonSecret", manifest::image_pull_secret_dockerconfigjson(*s.artifact)}});
  }
  json svc_vars = variables_map(s.service.contains("/serviceDefinition/spec/variables"_json_pointer)
                                    ? s.service.at("/serviceDefinition/spec/variables"_json_pointer)
                                    : json());
  put("serviceVariables", svc_vars);
  put("service", {{"name", text(s.service, {"name"})},
                  {"identifier", text(s.service, {"identifier"})},
                  {"description", text(s.service, {"description"})}});
  put("env", {{"name", text(s.environment, {"name"})},
              {"identifier", text(s.environment, {"identifier"})},
              {"type", text(s.environment, {"type"})},
              {"variables", variables_map(member(s.environment, "variables"))}});
  put("infra", {{"namespace", s.namespace_},
                {"releaseName", s.release_name},
                {"connectorRef", conn_ref},
                {"infraIdentifier", text(infra, {"identifier"})}});
  json pipeline = raw.value("pipeline", json::object());
  put("pipeline", {{"sequenceId", text(pipeline, {"sequenceId"})},
                   {"executionId", text(pipeline, {"executionId"})},
                   {"identifier", text(pipeline, {"identifier"})},
                   {"name", text(pipeline, {"name"})},
                   {"variables", variables_map(member(pipeline, "variables"))}});
  put("stage",
      {{"identifier", text(raw, {"stage", "identifier"})}, {"name", text(raw, {"stage", "name"})}});
  s.scope = std::move(scope);
  return s;
}

} // namespace capstan::plugins::kubernetes
