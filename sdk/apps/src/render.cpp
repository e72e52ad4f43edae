// Source folders rendered into desired objects.
#include "capstan/apps/render.h"

#include <capstan/process/subprocess.h>
#include <capstan/yaml/yaml.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include "capstan/apps/glob.h"

namespace capstan::apps {

namespace fs = std::filesystem;
using nlohmann::json;

std::string DesiredObject::where() const {
  if (file.empty()) return "kustomize build";
  return line > 0 ? file + ":" + std::to_string(line) : file;
}

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw ComparisonError(p.string() + ": cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void add_documents(std::string_view text, const std::string& file,
                   std::vector<DesiredObject>& out) {
  std::vector<yaml::Document> docs;
  try {
    docs = yaml::load_all(text, file);
  } catch (const yaml::Error& e) {
    throw ComparisonError(e.what());
  }
  for (auto& doc : docs) {
    if (doc.value.is_null()) continue;
    auto check = [&](const json& v, const std::string& pointer) {
      std::string at = doc.where.locate(pointer);
      if (!v.is_object())
        throw ComparisonError(at + ": a document must be a Kubernetes object (a mapping)");
      for (const char* field : {"apiVersion", "kind"}) {
        if (!v.contains(field) || !v[field].is_string() || v[field].get<std::string>().empty()) {
          throw ComparisonError(at + ": the object has no " + std::string(field));
        }
      }
      const json meta = v.value("metadata", json::object());
      if (!meta.is_object() ||
          (meta.value("name", "").empty() && meta.value("generateName", "").empty())) {
        throw ComparisonError(at + ": the object has no metadata.name");
      }
    };
    auto line_of = [&](const std::string& pointer) { return doc.where.find(pointer).line; };
    if (doc.value.is_object() && doc.value.value("kind", "") == "List" &&
        doc.value.contains("items")) {
      const json& items = doc.value["items"];
      for (std::size_t i = 0; i < items.size(); ++i) {
        std::string pointer = "/items/" + std::to_string(i);
        check(items[i], pointer);
        out.push_back({items[i], file, line_of(pointer)});
      }
      continue;
    }
    check(doc.value, "");
    out.push_back({std::move(doc.value), file, doc.start.line});
  }
}

bool is_kustomize_dir(const fs::path& dir) {
  for (const char* name : {"kustomization.yaml", "kustomization.yml", "Kustomization"}) {
    if (fs::is_regular_file(dir / name)) return true;
  }
  return false;
}

bool is_hidden(const fs::path& p) {
  std::string name = p.filename().string();
  return !name.empty() && name.front() == '.';
}

// Refuses paths that lead outside the checkout (symbolic links included).
fs::path inside(const fs::path& checkout, const std::string& rel) {
  std::error_code ec;
  fs::path root = fs::weakly_canonical(checkout, ec);
  fs::path target = fs::weakly_canonical(checkout / rel, ec);
  auto r = root.lexically_normal().string();
  auto t = target.lexically_normal().string();
  if (t != r && t.rfind(r.back() == '/' ? r : r + "/", 0) != 0) {
    throw ComparisonError("path '" + rel + "' leads outside the repository");
  }
  return target;
}

std::vector<DesiredObject> render_directory(const fs::path& checkout, const fs::path& dir,
                                            const Source& source) {
  DirectoryOptions opts = source.directory.value_or(DirectoryOptions{});
  std::vector<std::string> files;
  std::error_code ec;
  auto consider = [&](const fs::directory_entry& entry) {
    std::string rel = entry.path().lexically_relative(dir).generic_string();
    std::string ext = entry.path().extension().string();
    if (ext != ".yaml" && ext != ".yml" && ext != ".json") return;
    if (!opts.include.empty() && !glob_match(opts.include, rel)) return;
    if (!opts.exclude.empty() && glob_match(opts.exclude, rel)) return;
    // A link pointing outside the repository is refused rather than read.
    inside(checkout, entry.path().lexically_relative(checkout).generic_string());
    files.push_back(rel);
  };
  if (opts.recurse) {
    fs::recursive_directory_iterator it(dir, ec), end;
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      if (is_hidden(it->path())) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file()) consider(*it);
    }
  } else {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (!is_hidden(entry.path()) && entry.is_regular_file()) consider(entry);
    }
  }
  if (ec) throw ComparisonError(source.path + ": cannot list the folder: " + ec.message());
  std::sort(files.begin(), files.end());
  std::vector<DesiredObject> out;
  std::string prefix = source.path == "." ? "" : source.path + "/";
  for (const auto& rel : files) add_documents(read_text(dir / rel), prefix + rel, out);
  return out;
}

std::string run_kubectl_kustomize(const fs::path& dir, const RenderOptions& options) {
  process::Options p;
  p.argv = {options.kubectl, "kustomize", dir.string()};
  process::RunControl control;
  control.timeout = options.kustomize_timeout;
  control.cancelled = options.cancelled;
  process::RunResult r;
  try {
    r = process::run(p, control);
  } catch (const process::SpawnError& e) {
    throw ComparisonError("Kustomize is not available: cannot run '" + options.kubectl +
                          " kustomize' (" + e.what() + "); install kubectl 1.14 or newer");
  }
  if (r.timed_out) throw ComparisonError("kustomize build of " + dir.string() + " timed out");
  if (r.cancelled) throw ComparisonError("kustomize build cancelled");
  if (r.status.exit_code == 127 && r.status.signal == 0) {
    throw ComparisonError("Kustomize is not available: '" + options.kubectl +
                          "' was not found; install kubectl 1.14 or newer");
  }
  if (!r.status.success()) {
    std::string err = r.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    throw ComparisonError("kustomize build failed (" + r.status.describe() + "): " + err);
  }
  return r.out;
}

std::string temp_name() {
  std::random_device rd;
  std::ostringstream s;
  s << std::hex << rd() << rd();
  return s.str();
}

std::vector<DesiredObject> render_kustomize(const fs::path& dir, const Source& source,
                                            const RenderOptions& options) {
  fs::path build = dir;
  fs::path overlay;
  if (source.kustomize && !source.kustomize->empty()) {
    // The options go into an overlay that uses the folder as its base, so the repository's own
    // files stay untouched.
    const KustomizeOptions& k = *source.kustomize;
    overlay = fs::temp_directory_path() / ("capstan-kustomize-" + temp_name());
    fs::create_directories(overlay);
    // Kustomize refuses absolute paths as resources; a relative one may lead anywhere.
    json kz = {{"apiVersion", "kustomize.config.k8s.io/v1beta1"},
               {"kind", "Kustomization"},
               {"resources", json::array({fs::relative(dir, overlay).generic_string()})}};
    if (!k.name_prefix.empty()) kz["namePrefix"] = k.name_prefix;
    if (!k.name_suffix.empty()) kz["nameSuffix"] = k.name_suffix;
    if (!k.namespace_.empty()) kz["namespace"] = k.namespace_;
    if (!k.common_labels.empty()) kz["commonLabels"] = k.common_labels;
    if (!k.common_annotations.empty()) kz["commonAnnotations"] = k.common_annotations;
    json images = json::array();
    for (const auto& image : k.images) {
      // name=newName:tag, name:tag, name@digest (kustomize edit set image's forms)
      std::string name = image;
      std::string target = image;
      if (auto eq = image.find('='); eq != std::string::npos) {
        name = image.substr(0, eq);
        target = image.substr(eq + 1);
      }
      json entry;
      std::string new_name = target;
      if (auto at = target.find('@'); at != std::string::npos) {
        entry["digest"] = target.substr(at + 1);
        new_name = target.substr(0, at);
      } else if (auto colon = target.rfind(':');
                 colon != std::string::npos && target.find('/', colon) == std::string::npos) {
        entry["newTag"] = target.substr(colon + 1);
        new_name = target.substr(0, colon);
      }
      if (auto at = name.find('@'); at != std::string::npos)
        name = name.substr(0, at);
      else if (auto colon = name.rfind(':');
               colon != std::string::npos && name.find('/', colon) == std::string::npos)
        name = name.substr(0, colon);
      entry["name"] = name;
      if (new_name != name) entry["newName"] = new_name;
      images.push_back(entry);
    }
    if (!images.empty()) kz["images"] = images;
    std::ofstream(overlay / "kustomization.yaml") << kz.dump(2);
    build = overlay;
  }
  std::string out;
  try {
    out = run_kubectl_kustomize(build, options);
  } catch (...) {
    if (!overlay.empty()) fs::remove_all(overlay);
    throw;
  }
  if (!overlay.empty()) fs::remove_all(overlay);
  std::vector<DesiredObject> objects;
  add_documents(out, "kustomize build of " + source.path, objects);
  for (auto& o : objects) {
    o.file.clear();
    o.line = 0;
  }
  return objects;
}

} // namespace

bool kustomize_available(const RenderOptions& options) {
  process::Options p;
  p.argv = {options.kubectl, "kustomize", "--help"};
  process::RunControl control;
  control.timeout = std::chrono::seconds(20);
  try {
    return process::run(p, control).status.success();
  } catch (const process::SpawnError&) {
    return false;
  }
}

std::vector<DesiredObject> render_source(const fs::path& checkout, const Source& source,
                                         const RenderOptions& options) {
  fs::path dir = inside(checkout, source.path);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw ComparisonError("app path '" + source.path + "' does not exist in the repository");
  }
  if (is_kustomize_dir(dir)) {
    if (source.directory) {
      throw ComparisonError("app path '" + source.path +
                            "' holds a kustomization but spec.source.directory is set");
    }
    return render_kustomize(dir, source, options);
  }
  if (source.kustomize) {
    throw ComparisonError("spec.source.kustomize is set but '" + source.path +
                          "' has no kustomization.yaml");
  }
  return render_directory(checkout, dir, source);
}

} // namespace capstan::apps
