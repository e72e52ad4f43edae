// Argo CD ApplicationSets rendered into Applications, as the ApplicationSet controller does for
// the list, clusters and git (files, directories) generators with fasttemplate `{{param}}`
// templates.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace capstan::plugins::gitops {

struct GeneratorCluster {
  std::string name;
  std::string server;
};

// What the git generators read: the files of the repository's revision and their contents.
struct RepoView {
  std::vector<std::string> files;                           // every file path, '/'-separated
  std::function<std::string(const std::string& path)> read; // throws when missing
};

class ApplicationSetError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Renders `appset` (the ApplicationSet document as JSON) into Application documents. `repo`
// serves the git generators (which must point at the same repository); `clusters` serve the
// clusters generator. Throws ApplicationSetError naming the generator or field at fault.
std::vector<nlohmann::json> render_application_set(const nlohmann::json& appset,
                                                   const std::vector<GeneratorCluster>& clusters,
                                                   const RepoView& repo);

// Whether a '/'-separated path matches a glob with `*`, `?`, `[...]` and `**` (any number of
// directories), as the git generators match.
bool glob_match(const std::string& pattern, const std::string& path);

} // namespace capstan::plugins::gitops
