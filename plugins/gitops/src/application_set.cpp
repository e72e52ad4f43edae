// ApplicationSet generators and fasttemplate rendering.
#include "application_set.h"

#include <capstan/yaml/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace capstan::plugins::gitops {

namespace {

using nlohmann::json;
using Params = std::map<std::string, std::string>;

std::string scalar(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

// Nested objects become dotted keys ("cluster.address"), as the git files generator flattens.
void flatten(const json& v, const std::string& prefix, Params& out) {
  if (v.is_object()) {
    for (const auto& [k, child] : v.items()) {
      flatten(child, prefix.empty() ? k : prefix + "." + k, out);
    }
  } else if (!prefix.empty()) {
    out[prefix] = scalar(v);
  }
}

// Argo CD's "normalized" form: lowercase, characters other than [a-z0-9-.] replaced by '-'.
std::string normalize(const std::string& s) {
  std::string out;
  for (char c : s) {
    auto l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out += (std::isalnum(static_cast<unsigned char>(l)) || l == '-' || l == '.') ? l : '-';
  }
  return out;
}

void path_params(const std::string& dir, Params& p) {
  p["path"] = dir;
  auto slash = dir.rfind('/');
  std::string base = slash == std::string::npos ? dir : dir.substr(slash + 1);
  p["path.basename"] = base;
  p["path.basenameNormalized"] = normalize(base);
  std::size_t i = 0, start = 0;
  while (true) {
    auto next = dir.find('/', start);
    p["path[" + std::to_string(i++) + "]"] = dir.substr(start, next - start);
    if (next == std::string::npos) break;
    start = next + 1;
  }
}

std::string render_text(const std::string& text, const Params& params, const std::string& where) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    auto open = text.find("{{", pos);
    if (open == std::string::npos) break;
    auto close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    std::string key = text.substr(open + 2, close - open - 2);
    key.erase(0, key.find_first_not_of(' '));
    key.erase(key.find_last_not_of(' ') + 1);
    auto it = params.find(key);
    if (it == params.end()) {
      throw ApplicationSetError(where + ": the template uses {{" + key +
                                "}}, which the generator does not provide");
    }
    out += text.substr(pos, open - pos) + it->second;
    pos = close + 2;
  }
  return out + text.substr(pos);
}

json render_tree(const json& v, const Params& params, const std::string& where) {
  if (v.is_string()) return render_text(v.get<std::string>(), params, where);
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, child] : v.items()) {
      out[render_text(k, params, where)] = render_tree(child, params, where);
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& child : v) out.push_back(render_tree(child, params, where));
    return out;
  }
  return v;
}

std::vector<Params> list_generator(const json& g, const std::string& where) {
  std::vector<Params> out;
  const json elements = g.value("elements", json::array());
  if (!elements.is_array()) throw ApplicationSetError(where + ".elements must be a list");
  for (const auto& e : elements) {
    if (!e.is_object()) throw ApplicationSetError(where + ".elements: each element is a mapping");
    Params p;
    for (const auto& [k, v] : e.items()) {
      if (k == "values" && v.is_object()) {
        for (const auto& [vk, vv] : v.items()) p["values." + vk] = scalar(vv);
      } else {
        p[k] = scalar(v);
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Params> clusters_generator(const json& g,
                                       const std::vector<GeneratorCluster>& clusters) {
  std::vector<Params> out;
  const json values = g.value("values", json::object());
  for (const auto& c : clusters) {
    Params p{{"name", c.name}, {"nameNormalized", normalize(c.name)}, {"server", c.server}};
    if (values.is_object()) {
      for (const auto& [k, v] : values.items()) p["values." + k] = scalar(v);
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Params> git_generator(const json& g, const RepoView& repo, const std::string& where) {
  std::vector<Params> out;
  if (g.contains("files")) {
    for (const auto& f : g["files"]) {
      const std::string pattern = f.value("path", "");
      if (f.value("exclude", false)) continue;
      for (const auto& file : repo.files) {
        if (!glob_match(pattern, file)) continue;
        json doc;
        try {
          doc = yaml::load(repo.read(file), file).value; // JSON is YAML
        } catch (const std::exception& e) {
          throw ApplicationSetError(where + ": " + e.what());
        }
        std::vector<json> items = doc.is_array() ? doc.get<std::vector<json>>() : std::vector{doc};
        for (const auto& item : items) {
          Params p;
          flatten(item, "", p);
          auto slash = file.rfind('/');
          path_params(slash == std::string::npos ? "" : file.substr(0, slash), p);
          std::string name = slash == std::string::npos ? file : file.substr(slash + 1);
          p["path.filename"] = name;
          p["path.filenameNormalized"] = normalize(name);
          out.push_back(std::move(p));
        }
      }
    }
    return out;
  }
  if (g.contains("directories")) {
    std::set<std::string> dirs;
    for (const auto& file : repo.files) {
      for (auto slash = file.find('/'); slash != std::string::npos;
           slash = file.find('/', slash + 1)) {
        dirs.insert(file.substr(0, slash));
      }
    }
    std::set<std::string> picked;
    for (const auto& d : g["directories"]) {
      const std::string pattern = d.value("path", "");
      for (const auto& dir : dirs) {
        if (!glob_match(pattern, dir)) continue;
        if (d.value("exclude", false)) {
          picked.erase(dir);
        } else {
          picked.insert(dir);
        }
      }
    }
    for (const auto& dir : picked) {
      Params p;
      path_params(dir, p);
      out.push_back(std::move(p));
    }
    return out;
  }
  throw ApplicationSetError(where + ": a git generator needs files or directories");
}

bool glob_at(const std::string& pat, std::size_t pi, const std::string& s, std::size_t si) {
  while (pi < pat.size()) {
    char c = pat[pi];
    if (c == '*') {
      bool dbl = pi + 1 < pat.size() && pat[pi + 1] == '*';
      if (dbl) {
        std::size_t next = pi + 2;
        if (next < pat.size() && pat[next] == '/') {
          // "**/" matches zero or more whole directories.
          if (glob_at(pat, next + 1, s, si)) return true;
          for (std::size_t k = si; k < s.size(); ++k) {
            if (s[k] == '/' && glob_at(pat, next + 1, s, k + 1)) return true;
          }
          return false;
        }
        for (std::size_t k = si; k <= s.size(); ++k) {
          if (glob_at(pat, next, s, k)) return true;
        }
        return false;
      }
      for (std::size_t k = si; k <= s.size(); ++k) {
        if (glob_at(pat, pi + 1, s, k)) return true;
        if (k < s.size() && s[k] == '/') break;
      }
      return false;
    }
    if (si >= s.size()) return false;
    if (c == '?') {
      if (s[si] == '/') return false;
    } else if (c == '[') {
      auto end = pat.find(']', pi + 1);
      if (end == std::string::npos) return false;
      std::string set = pat.substr(pi + 1, end - pi - 1);
      bool negate = !set.empty() && (set[0] == '!' || set[0] == '^');
      if (negate) set.erase(0, 1);
      bool in = false;
      for (std::size_t k = 0; k < set.size(); ++k) {
        if (k + 2 < set.size() && set[k + 1] == '-') {
          in = in || (s[si] >= set[k] && s[si] <= set[k + 2]);
          k += 2;
        } else {
          in = in || s[si] == set[k];
        }
      }
      if (in == negate) return false;
      pi = end + 1;
      ++si;
      continue;
    } else if (c != s[si]) {
      return false;
    }
    ++pi;
    ++si;
  }
  return si == s.size();
}

} // namespace

bool glob_match(const std::string& pattern, const std::string& path) {
  return glob_at(pattern, 0, path, 0);
}

std::vector<json> render_application_set(const json& appset,
                                         const std::vector<GeneratorCluster>& clusters,
                                         const RepoView& repo) {
  if (!appset.is_object() || appset.value("kind", "") != "ApplicationSet") {
    throw ApplicationSetError("the document is not an ApplicationSet (kind: ApplicationSet)");
  }
  const json spec = appset.value("spec", json::object());
  if (spec.value("goTemplate", false)) {
    throw ApplicationSetError("spec.goTemplate: Go templates are not supported; use the default "
                              "{{param}} templates");
  }
  if (!spec.contains("template") || !spec["template"].is_object()) {
    throw ApplicationSetError("spec.template is missing");
  }
  const json generators = spec.value("generators", json::array());
  if (!generators.is_array() || generators.empty()) {
    throw ApplicationSetError("spec.generators must list at least one generator");
  }
  const std::string set_name = appset.value("metadata", json::object()).value("name", "");
  std::vector<json> apps;
  std::set<std::string> names;
  for (std::size_t i = 0; i < generators.size(); ++i) {
    const std::string where = "spec.generators[" + std::to_string(i) + "]";
    const json& g = generators[i];
    std::vector<Params> params;
    json tmpl = spec["template"];
    if (g.contains("list")) {
      params = list_generator(g["list"], where + ".list");
    } else if (g.contains("clusters")) {
      params = clusters_generator(g["clusters"], clusters);
    } else if (g.contains("git")) {
      params = git_generator(g["git"], repo, where + ".git");
    } else {
      std::string kind = g.is_object() && !g.empty() ? g.begin().key() : "?";
      throw ApplicationSetError(where + ": the " + kind +
                                " generator is not supported (list, clusters and git are)");
    }
    for (const auto* key : {"list", "clusters", "git"}) {
      if (g.contains(key) && g[key].is_object() && g[key].contains("template")) {
        tmpl.merge_patch(g[key]["template"]);
      }
    }
    for (const auto& p : params) {
      json app = render_tree(tmpl, p, where);
      json out = {{"apiVersion", "argoproj.io/v1alpha1"}, {"kind", "Application"}};
      out["metadata"] = app.value("metadata", json::object());
      out["spec"] = app.value("spec", json::object());
      const std::string name = out["metadata"].value("name", "");
      if (name.empty()) throw ApplicationSetError(where + ": an application has no name");
      if (!names.insert(name).second) {
        throw ApplicationSetError(where + ": two applications are named '" + name + "'");
      }
      if (!set_name.empty()) {
        out["metadata"]["ownerReferences"] = json::array({{{"apiVersion", "argoproj.io/v1alpha1"},
                                                           {"kind", "ApplicationSet"},
                                                           {"name", set_name}}});
      }
      apps.push_back(std::move(out));
    }
  }
  return apps;
}

} // namespace capstan::plugins::gitops
