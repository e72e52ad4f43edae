// Manifest stores made local: a Git revision exported, a Local folder copied, Inline content
// written, each into the step's work folder with <+...> references in its files resolved.
#pragma once

#include <capstan/git/cache.h>
#include <capstan/manifest/service.h>
#include <capstan/sdk/plugin.h>

#include <filesystem>
#include <string>
#include <vector>

#include "context.h"

namespace capstan::plugins::kubernetes {

class StoreFetcher {
public:
  StoreFetcher(git::RepoCache& repos, const StageContext& stage, const sdk::StepContext& ctx);

  // The folder holding the store's files. `paths` are the files and folders the caller will
  // read (relative to the store); a Local store copies only those, and references are
  // resolved in them. `optional` paths are taken along when the store has them. An Inline
  // K8sManifest becomes the file "inline.yaml" (added to `paths`).
  std::filesystem::path fetch(const manifest::ManifestSpec& spec, std::vector<std::string>& paths,
                              const std::vector<std::string>& optional = {});

private:
  git::RemoteOptions remote_for(const manifest::ManifestSpec& spec, std::string& revision);
  void resolve_in(const std::filesystem::path& root, const std::vector<std::string>& paths,
                  const std::string& name);

  git::RepoCache& repos_;
  const StageContext& stage_;
  const sdk::StepContext& ctx_;
  int count_ = 0;
};

} // namespace capstan::plugins::kubernetes
