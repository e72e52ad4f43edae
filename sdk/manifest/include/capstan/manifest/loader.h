// From fetched manifest stores to the objects to apply: files are gathered as Harness gathers
// them, values are layered, every manifest file is rendered as a Go template and split into
// Kubernetes objects.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "capstan/manifest/artifact.h"
#include "capstan/manifest/resource.h"
#include "capstan/manifest/template.h"
#include "capstan/manifest/values.h"

namespace capstan::manifest {

// A K8sManifest whose store has been fetched (a Git checkout, a local folder).
// Texts that stand in for files of a store on disk, by path relative to the store's root
// ("k8s/deployment.yaml"): a store read in place whose files needed changes (references
// resolved) before they are loaded.
using FileTexts = std::map<std::string, std::string>;

struct ManifestSource {
  std::filesystem::path root;            // the store's content on disk
  std::vector<std::string> paths;        // files and folders, relative to root
  std::vector<std::string> values_paths; // values files, relative to root, lowest first
  std::string name = "manifests";        // for messages (the manifest identifier)
  FileTexts texts;                       // read instead of these files on disk
};

struct ManifestFile {
  std::string path;     // relative to the store root: the name errors and templates use
  std::string relative; // relative to the declared folder it was found in
  std::string text;
  bool skip_deploy = false; // first line is "# harness.io/skip-file-for-deploy"
};

struct LoadedManifests {
  std::vector<ManifestFile> templates; // each rendered on its own, sorted by path
  std::vector<ManifestFile> helpers;   // *.tpl files: {{define}}s shared by all templates
  std::vector<ValuesFile> values;      // a folder's own values.yaml, then values_paths
};

// Gathers a source's files. A folder contributes every *.yaml and *.yml below it (hidden
// files and folders skipped), its *.tpl files as helpers, and the values.yaml at its top as
// values rather than a manifest; a file named explicitly is a manifest whatever its extension.
// Paths must stay inside the store (no absolute paths, "..", or symlinks leading out).
LoadedManifests load_manifests(const ManifestSource& source);

// Reads values files (a Values manifest's paths) under `root`, with the same path rules;
// `texts` stand in for files on disk as in ManifestSource.
std::vector<ValuesFile> load_values_files(const std::filesystem::path& root,
                                          const std::vector<std::string>& paths,
                                          const std::string& name, const FileTexts& texts = {});

struct RenderRequest {
  std::vector<ManifestSource> sources;
  // Override layers after the sources' own values, lowest priority first: Values manifests of
  // the service, then environment, environment-service, infrastructure overrides.
  std::vector<ValuesFile> overrides;
  // Sets .Values.image to the artifact's image when no values file sets image.
  std::optional<Artifact> artifact;
  // Given to namespaced objects without one (the infrastructure's namespace).
  std::string namespace_;
  // K8sApply filePaths: render only these files or folders (relative to the manifest folder or
  // the store root). Files marked skip-file-for-deploy are applied when named here.
  std::vector<std::string> only_files;
  // Take the files as they are, even with values files (K8sApply's skipRendering).
  bool skip_rendering = false;
  RenderOptions options;
};

struct RenderedFile {
  std::string path;
  std::string text;
};

struct RenderResult {
  std::vector<Resource> resources; // to apply, in file order (sort_for_apply before applying)
  std::vector<Resource> skipped;   // from files marked skip-file-for-deploy
  nlohmann::json values;           // the merged values the templates saw as .Values
  std::vector<RenderedFile> files; // rendered text per file, for dry runs and logs
  std::vector<std::string> warnings;
};

// Renders everything. As Harness does, templates are only rendered when there is at least one
// values file (otherwise the files are taken as they are, so text that merely looks like a
// template survives). Throws ManifestError (TemplateError for template faults) naming the
// file, line and column.
RenderResult render_manifests(const RenderRequest& request);

} // namespace capstan::manifest
