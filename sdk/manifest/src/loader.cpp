// Manifest gathering and rendering.
#include "capstan/manifest/loader.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "capstan/manifest/error.h"

namespace capstan::manifest {
namespace {

namespace fs = std::filesystem;

constexpr std::uintmax_t kMaxFileBytes = 16u << 20;

std::string read_text(const fs::path& p, const std::string& display) {
  std::error_code ec;
  auto size = fs::file_size(p, ec);
  if (ec) throw ManifestError(display, 0, 0, "cannot read: " + ec.message());
  if (size > kMaxFileBytes) {
    throw ManifestError(display, 0, 0,
                        "file is larger than " + std::to_string(kMaxFileBytes >> 20) + " MiB");
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) throw ManifestError(display, 0, 0, "cannot open the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A file's text: the stand-in when there is one, else what is on disk.
std::string text_of(const fs::path& p, const std::string& path, const FileTexts& texts) {
  auto it = texts.find(path);
  return it != texts.end() ? it->second : read_text(p, path);
}

bool has_ext(const fs::path& p, std::initializer_list<const char*> exts) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* x : exts) {
    if (e == x) return true;
  }
  return false;
}

bool marked_skip(const std::string& text) {
  std::size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || text[start] != '#') return false;
  std::size_t end = text.find('\n', start);
  std::string line =
      text.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
  auto b = line.find_first_not_of(" \t");
  auto e = line.find_last_not_of(" \t\r");
  if (b == std::string::npos) return false;
  return line.substr(b, e - b + 1) == annotations::kSkipFileForDeploy;
}

struct Store {
  fs::path root; // canonical
  std::string name;

  // Resolves a relative path, refusing anything that leaves the store.
  fs::path resolve(const std::string& rel, const char* what) const {
    fs::path p(rel);
    if (p.is_absolute()) {
      throw ManifestError(name + ": " + what + " \"" + rel +
                          "\" must be relative to the store, not absolute");
    }
    fs::path normal = p.lexically_normal();
    if (!normal.empty() && *normal.begin() == "..") {
      throw ManifestError(name + ": " + what + " \"" + rel + "\" leaves the store");
    }
    fs::path full = root / normal;
    std::error_code ec;
    if (!fs::exists(full, ec)) {
      throw ManifestError(name + ": " + what + " \"" + rel + "\" does not exist in the store");
    }
    check_inside(full, rel);
    return full;
  }

  void check_inside(const fs::path& full, const std::string& display) const {
    canonical_inside(full, display);
  }

  // The canonical path of `full`, refused when it leads out of the store.
  fs::path canonical_inside(const fs::path& full, const std::string& display) const {
    std::error_code ec;
    fs::path canon = fs::canonical(full, ec);
    if (ec) throw ManifestError(name + ": cannot resolve \"" + display + "\": " + ec.message());
    auto rel = canon.lexically_relative(root);
    if (rel.empty() || *rel.begin() == "..") {
      throw ManifestError(name + ": \"" + display +
                          "\" leads outside the store (a symbolic link?)");
    }
    return canon;
  }

  std::string relative(const fs::path& full) const {
    return fs::canonical(full).lexically_relative(root).generic_string();
  }
};

std::vector<fs::path> walk_folder(const Store& store, const fs::path& folder) {
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(folder, fs::directory_options::none, ec), end;
  if (ec)
    throw ManifestError(store.name + ": cannot list " + folder.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw ManifestError(store.name + ": cannot list a folder: " + ec.message());
    const fs::path& p = it->path();
    if (p.filename().string().starts_with(".")) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) files.push_back(p);
  }
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return a.generic_string() < b.generic_string();
  });
  return files;
}

// Finds the files a K8sApply filePath names among the loaded templates.
std::vector<const ManifestFile*> select_files(const std::vector<ManifestFile>& all,
                                              const std::vector<std::string>& wanted) {
  std::vector<const ManifestFile*> out;
  std::set<const ManifestFile*> taken;
  for (const auto& w0 : wanted) {
    std::string w = fs::path(w0).lexically_normal().generic_string();
    while (!w.empty() && w.back() == '/') w.pop_back();
    bool any = false;
    for (const auto& f : all) {
      bool hit = f.relative == w || f.path == w || f.relative.starts_with(w + "/") ||
                 f.path.starts_with(w + "/") || w == ".";
      if (hit) {
        any = true;
        if (taken.insert(&f).second) out.push_back(&f);
      }
    }
    if (!any) throw ManifestError("file path \"" + w0 + "\" matches no manifest file");
  }
  return out;
}

} // namespace

LoadedManifests load_manifests(const ManifestSource& source) {
  std::error_code ec;
  Store store{fs::canonical(source.root, ec), source.name};
  if (ec) {
    throw ManifestError(source.name + ": the store's folder " + source.root.string() +
                        " cannot be read: " + ec.message());
  }
  LoadedManifests out;
  std::set<std::string> seen;
  std::vector<std::string> paths = source.paths;
  if (paths.empty()) paths.push_back(".");
  for (const auto& rel : paths) {
    fs::path full = store.resolve(rel, "manifest path");
    if (fs::is_directory(full)) {
      const fs::path folder = fs::canonical(full);
      for (const auto& file : walk_folder(store, full)) {
        // One canonical path per file (each costs a stat per path component).
        const fs::path canon = store.canonical_inside(file, file.string());
        std::string path = canon.lexically_relative(store.root).generic_string();
        std::string within = canon.lexically_relative(folder).generic_string();
        if (within == "values.yaml") {
          out.values.push_back({path, text_of(file, path, source.texts)});
          continue;
        }
        bool tpl = has_ext(file, {".tpl"});
        if (!tpl && !has_ext(file, {".yaml", ".yml"})) continue;
        if (!seen.insert(path).second) continue;
        ManifestFile mf{path, within, text_of(file, path, source.texts), false};
        mf.skip_deploy = !tpl && marked_skip(mf.text);
        (tpl ? out.helpers : out.templates).push_back(std::move(mf));
      }
    } else {
      std::string path = store.relative(full);
      if (!seen.insert(path).second) continue;
      ManifestFile mf{path, fs::path(path).filename().generic_string(),
                      text_of(full, path, source.texts), false};
      mf.skip_deploy = marked_skip(mf.text);
      out.templates.push_back(std::move(mf));
    }
  }
  for (auto& v : load_values_files(source.root, source.values_paths, source.name, source.texts)) {
    out.values.push_back(std::move(v));
  }
  return out;
}

std::vector<ValuesFile> load_values_files(const std::filesystem::path& root,
                                          const std::vector<std::string>& paths,
                                          const std::string& name, const FileTexts& texts) {
  std::error_code ec;
  Store store{fs::canonical(root, ec), name};
  if (ec) {
    throw ManifestError(name + ": the store's folder " + root.string() +
                        " cannot be read: " + ec.message());
  }
  std::vector<ValuesFile> out;
  for (const auto& rel : paths) {
    fs::path full = store.resolve(rel, "values path");
    if (fs::is_directory(full)) {
      throw ManifestError(name + ": values path \"" + rel + "\" is a folder, not a file");
    }
    std::string path = store.relative(full);
    out.push_back({path, text_of(full, path, texts)});
  }
  return out;
}

RenderResult render_manifests(const RenderRequest& request) {
  RenderResult result;
  std::vector<ManifestFile> templates;
  std::vector<ManifestFile> helpers;
  std::vector<ValuesFile> layers;
  std::map<std::string, std::string> origin; // path → source name, to catch clashes
  for (const auto& source : request.sources) {
    LoadedManifests loaded = load_manifests(source);
    for (auto& f : loaded.templates) {
      auto [it, fresh] = origin.emplace(f.path, source.name);
      if (!fresh) {
        throw ManifestError(f.path + " comes from both " + it->second + " and " + source.name);
      }
      templates.push_back(std::move(f));
    }
    for (auto& f : loaded.helpers) helpers.push_back(std::move(f));
    for (auto& v : loaded.values) layers.push_back(std::move(v));
  }
  for (const auto& o : request.overrides) layers.push_back(o);

  bool render = !layers.empty() && !request.skip_rendering;
  nlohmann::json values = nlohmann::json::object();
  if (request.artifact) values["image"] = request.artifact->image;
  for (const auto& layer : layers) merge_values(values, parse_values(layer.text, layer.name));
  result.values = values;

  std::vector<const ManifestFile*> chosen;
  if (!request.only_files.empty()) {
    chosen = select_files(templates, request.only_files);
  } else {
    for (const auto& f : templates) chosen.push_back(&f);
  }

  TemplateSet set;
  if (render) {
    // Every file is parsed first so that a {{define}} anywhere serves all of them. A file that
    // is not being applied (K8sApply names others) cannot fail the step.
    std::set<std::string> wanted;
    for (const ManifestFile* f : chosen) wanted.insert(f->path);
    for (const auto& h : helpers) set.parse(h.path, h.text);
    for (const auto& f : templates) {
      try {
        set.parse(f.path, f.text);
      } catch (const TemplateError&) {
        if (wanted.count(f.path) > 0) throw;
      }
    }
  }
  nlohmann::json data = {{"Values", values}};
  // Parsing is most of the work for many files and each file is parsed on its own: spread it
  // over the cores. Failures are reported as a serial loop would: the first file's, in order.
  std::vector<std::string> texts(chosen.size());
  std::vector<std::vector<Resource>> parsed(chosen.size());
  std::vector<std::exception_ptr> failed(chosen.size());
  std::size_t rendered = chosen.size(); // files before this one rendered; it failed, if any
  std::exception_ptr render_failure;
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    try {
      texts[i] = render ? set.execute(chosen[i]->path, data, request.options, &result.warnings)
                        : chosen[i]->text;
    } catch (...) {
      render_failure = std::current_exception();
      rendered = i;
      break;
    }
  }
  auto parse = [&](std::size_t i) {
    if (i >= rendered) return;
    try {
      parsed[i] = parse_resources(texts[i], chosen[i]->path);
    } catch (...) {
      failed[i] = std::current_exception();
    }
  };
  unsigned threads = std::min(4u, std::max(1u, std::thread::hardware_concurrency()));
  if (chosen.size() < 64 || threads == 1) {
    for (std::size_t i = 0; i < chosen.size(); ++i) parse(i);
  } else {
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (std::size_t i = next++; i < chosen.size(); i = next++) parse(i);
      });
    }
    for (auto& t : pool) t.join();
  }
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    const ManifestFile* f = chosen[i];
    if (i == rendered) std::rethrow_exception(render_failure);
    if (failed[i]) {
      try {
        std::rethrow_exception(failed[i]);
      } catch (const ManifestError& e) {
        if (texts[i] == f->text) throw;
        throw ManifestError(e.file(), e.line(), e.column(),
                            e.message() + " (line " + std::to_string(e.line()) +
                                " of the rendered file)");
      }
    }
    bool skip = f->skip_deploy && request.only_files.empty();
    for (auto& o : parsed[i]) {
      o.skip_deploy = f->skip_deploy;
      (skip ? result.skipped : result.resources).push_back(std::move(o));
    }
    result.files.push_back({f->path, std::move(texts[i])});
  }
  if (!request.namespace_.empty()) {
    default_namespace(result.resources, request.namespace_);
    default_namespace(result.skipped, request.namespace_);
  }
  check_duplicates(result.resources);
  return result;
}

} // namespace capstan::manifest
