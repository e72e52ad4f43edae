// The stage's primary artifact: its image for values, and registry credentials turned into an
// image pull secret.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capstan/manifest/resource.h"

namespace capstan::manifest {

struct RegistryCredentials {
  std::string username;
  std::string password; // a secret: never logged, never put in an error
  std::string email;
};

struct Artifact {
  std::string image;      // <+artifact.image>: "registry.example.com/team/app:1.2"
  std::string image_path; // <+artifact.imagePath>: "team/app"
  std::string tag;        // <+artifact.tag>
  std::string registry;   // where the credentials apply; derived from image when empty
  std::optional<RegistryCredentials> credentials;

  // From the resolved artifact JSON the coordinator sends:
  //   {image, imagePath, tag, registryHostname, username, password, email}
  // `image` defaults to imagePath:tag. Throws ManifestError when neither is given.
  static Artifact from_json(const nlohmann::json& j);
};

// The registry host of an image reference: "docker.io" unless the first path component looks
// like a host ("gcr.io/x", "localhost:5000/x").
std::string registry_of(std::string_view image);

// The key Docker and the kubelet use for a registry in config files (Docker Hub's is
// "https://index.docker.io/v1/").
std::string registry_auth_key(std::string_view registry);

// A .dockerconfigjson document ({"auths": {...}}) for the artifact's registry.
std::string docker_config_json(const Artifact& artifact);
// Base64 values as Harness's <+artifact.imagePullSecret> (a .dockercfg) and
// <+artifact.dockerConfigJsonSecret> (a .dockerconfigjson) give them; "" without credentials.
std::string image_pull_secret_dockercfg(const Artifact& artifact);
std::string image_pull_secret_dockerconfigjson(const Artifact& artifact);

// A kubernetes.io/dockerconfigjson Secret for the artifact (annotated to skip versioning:
// its content does not change with each release).
nlohmann::json image_pull_secret(const Artifact& artifact, const std::string& name,
                                 const std::string& ns);

// When the artifact has credentials: adds the Secret `secret_name` in `ns` and lists it in
// imagePullSecrets of every workload whose containers run the artifact's image and which
// names no pull secret of its own. Returns whether anything was added.
bool inject_image_pull_secret(std::vector<Resource>& resources, const Artifact& artifact,
                              const std::string& secret_name, const std::string& ns);

} // namespace capstan::manifest
