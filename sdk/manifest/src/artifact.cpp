// Artifact image and pull-secret helpers.
#include "capstan/manifest/artifact.h"

#include "capstan/kube/base64.h"
#include "capstan/manifest/error.h"

namespace capstan::manifest {
namespace {

std::string str_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

nlohmann::json auth_entry(const RegistryCredentials& c) {
  nlohmann::json e = {{"username", c.username},
                      {"password", c.password},
                      {"auth", kube::base64_encode(c.username + ":" + c.password)}};
  if (!c.email.empty()) e["email"] = c.email;
  return e;
}

// Does the container image come from the artifact (same repository, any tag or digest)?
bool same_repository(const std::string& image, const Artifact& artifact) {
  auto repo = [](std::string s) {
    auto at = s.find('@');
    if (at != std::string::npos) s.resize(at);
    auto slash = s.rfind('/');
    auto colon = s.rfind(':');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
      s.resize(colon);
    return s;
  };
  return !image.empty() && repo(image) == repo(artifact.image);
}

} // namespace

Artifact Artifact::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ManifestError("artifact: expected an object");
  Artifact a;
  a.image = str_field(j, "image");
  a.image_path = str_field(j, "imagePath");
  a.tag = str_field(j, "tag");
  a.registry = str_field(j, "registryHostname");
  if (a.image.empty() && !a.image_path.empty()) {
    a.image = a.image_path + (a.tag.empty() ? "" : ":" + a.tag);
  }
  if (a.image.empty()) throw ManifestError("artifact: neither image nor imagePath is set");
  if (a.registry.empty()) a.registry = registry_of(a.image);
  std::string user = str_field(j, "username");
  std::string password = str_field(j, "password");
  if (!user.empty() || !password.empty()) {
    a.credentials = RegistryCredentials{user, password, str_field(j, "email")};
  }
  return a;
}

std::string registry_of(std::string_view image) {
  auto slash = image.find('/');
  if (slash == std::string_view::npos) return "docker.io";
  std::string_view first = image.substr(0, slash);
  if (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
      first == "localhost") {
    return std::string(first);
  }
  return "docker.io";
}

std::string registry_auth_key(std::string_view registry) {
  std::string r(registry);
  for (const char* prefix : {"https://", "http://"}) {
    if (r.starts_with(prefix)) r.erase(0, std::string_view(prefix).size());
  }
  auto slash = r.find('/');
  std::string host = slash == std::string::npos ? r : r.substr(0, slash);
  if (host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io" ||
      host == "registry.hub.docker.com") {
    return "https://index.docker.io/v1/";
  }
  return host;
}

std::string docker_config_json(const Artifact& artifact) {
  nlohmann::json auths = nlohmann::json::object();
  if (artifact.credentials) {
    auths[registry_auth_key(artifact.registry)] = auth_entry(*artifact.credentials);
  }
  return nlohmann::json{{"auths", auths}}.dump();
}

std::string image_pull_secret_dockercfg(const Artifact& artifact) {
  if (!artifact.credentials) return {};
  nlohmann::json cfg = {{registry_auth_key(artifact.registry), auth_entry(*artifact.credentials)}};
  return kube::base64_encode(cfg.dump());
}

std::string image_pull_secret_dockerconfigjson(const Artifact& artifact) {
  if (!artifact.credentials) return {};
  return kube::base64_encode(docker_config_json(artifact));
}

nlohmann::json image_pull_secret(const Artifact& artifact, const std::string& name,
                                 const std::string& ns) {
  nlohmann::json meta = {{"name", name}, {"annotations", {{annotations::kSkipVersioning, "true"}}}};
  if (!ns.empty()) meta["namespace"] = ns;
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", meta},
          {"type", "kubernetes.io/dockerconfigjson"},
          {"data", {{".dockerconfigjson", image_pull_secret_dockerconfigjson(artifact)}}}};
}

bool inject_image_pull_secret(std::vector<Resource>& resources, const Artifact& artifact,
                              const std::string& secret_name, const std::string& ns) {
  if (!artifact.credentials) return false;
  bool used = false;
  for (auto& r : resources) {
    for (nlohmann::json* spec : pod_specs(r.object)) {
      bool runs_artifact = false;
      for (const char* list : {"containers", "initContainers"}) {
        auto it = spec->find(list);
        if (it == spec->end() || !it->is_array()) continue;
        for (const auto& c : *it) {
          if (c.is_object() && same_repository(str_field(c, "image"), artifact)) {
            runs_artifact = true;
          }
        }
      }
      if (!runs_artifact) continue;
      auto existing = spec->find("imagePullSecrets");
      if (existing != spec->end() && existing->is_array() && !existing->empty()) continue;
      (*spec)["imagePullSecrets"] = nlohmann::json::array({{{"name", secret_name}}});
      used = true;
    }
  }
  if (!used) return false;
  Resource secret;
  secret.object = image_pull_secret(artifact, secret_name, ns);
  secret.file = "(image pull secret for " + artifact.image + ")";
  resources.push_back(std::move(secret));
  return true;
}

} // namespace capstan::manifest
