// Manifest stores made local: a Git revision exported and Inline content written into the
// step's work folder, a Local folder read where it is; <+...> references in their files
// resolved in memory.
#pragma once

#include <capstan/git/cache.h>
#include <capstan/manifest/loader.h>
#include <capstan/manifest/service.h>
#include <capstan/sdk/plugin.h>

#include <filesystem>
#include <string>
#include <vector>

#include "context.h"

namespace capstan::plugins::kubernetes {

// A store's files on disk, and the texts that stand in for those whose references were
// resolved.
struct FetchedStore {
  std::filesystem::path root;
  manifest::FileTexts texts;
};

class StoreFetcher {
public:
  StoreFetcher(git::RepoCache& repos, const StageContext& stage, const sdk::StepContext& ctx);

  // The store's files. `paths` are the files and folders the caller will read (relative to
  // the store); references are resolved in those. `optional` paths are taken along when the
  // store has them. An Inline K8sManifest becomes the file "inline.yaml" (added to `paths`).
  // A Local store is read in place (nothing is copied): its paths must exist.
  FetchedStore fetch(const manifest::ManifestSpec& spec, std::vector<std::string>& paths,
                     const std::vector<std::string>& optional = {});

private:
  git::RemoteOptions remote_for(const manifest::ManifestSpec& spec, std::string& revision);
  manifest::FileTexts resolve_in(const std::filesystem::path& root,
                                 const std::vector<std::string>& paths, const std::string& name);

  git::RepoCache& repos_;
  const StageContext& stage_;
  const sdk::StepContext& ctx_;
  int count_ = 0;
};

} // namespace capstan::plugins::kubernetes
