// An application's source folder rendered into the Kubernetes objects it wants: plain YAML/JSON
// directories (recurse, include, exclude) or Kustomize (through `kubectl kustomize`).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "capstan/apps/application.h"

namespace capstan::apps {

// The source cannot be turned into objects (invalid YAML, a document that is not an object,
// Kustomize failing or missing). Reported as the application's ComparisonError condition;
// what() names the file and line when there is one.
class ComparisonError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct DesiredObject {
  nlohmann::json object;
  std::string file;          // relative to the source path ("" for Kustomize output)
  int line = 0;              // first line of its document
  std::string where() const; // "file:line", or "kustomize build"
};

struct RenderOptions {
  std::string kubectl = "kubectl"; // for `kubectl kustomize`; looked up on PATH
  std::chrono::milliseconds kustomize_timeout{std::chrono::seconds(60)};
  std::function<bool()> cancelled;
};

// Renders `source.path` under `checkout` (a revision's files on disk). A folder holding a
// kustomization.yaml, kustomization.yml or Kustomization is built with Kustomize (with the
// source's kustomize options); any other is read as a directory of *.yaml, *.yml and *.json
// files (sub-folders only with directory.recurse; include/exclude globs on paths relative to
// the source path; hidden files and folders skipped). `kind: List` documents are expanded.
// Throws ComparisonError.
std::vector<DesiredObject> render_source(const std::filesystem::path& checkout,
                                         const Source& source, const RenderOptions& options = {});

// Whether `kubectl kustomize` can run here (kubectl on PATH with its built-in Kustomize).
bool kustomize_available(const RenderOptions& options = {});

} // namespace capstan::apps
