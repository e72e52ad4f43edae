// ApplicationSet generators and templates.
#include "capstan/apps/application_set.h"

#include <capstan/kube/client.h>
#include <capstan/manifest/template.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "capstan/apps/glob.h"
#include "fields.h"
#include "label_selector.h"

namespace capstan::apps {

using detail::Fields;
using nlohmann::json;

namespace {

const char* const kGeneratorKinds[] = {"list", "clusters", "git", "matrix"};
const char* const kClusterSecretTypeLabel = "argocd.argoproj.io/secret-type";

std::string generator_kind(const Fields& g) {
  std::string kind;
  for (const auto& [key, _] : g.value().items()) {
    if (key == "template" || key == "selector") continue;
    bool known = false;
    for (const char* k : kGeneratorKinds) known = known || key == k;
    if (!known) {
      g.fail(key, g.display() + ": the " + key +
                      " generator is not supported (list, clusters, git and matrix are)");
    }
    if (!kind.empty())
      g.fail(key, g.display() + " names two generators (" + kind + ", " + key + ")");
    kind = key;
  }
  if (kind.empty()) g.fail_here(g.display() + " names no generator (list, clusters, git, matrix)");
  return kind;
}

// The generator's post selector (`selector:` beside the generator), or nullopt when it has none.
// Argo CD puts no bounds on its values, so that a server URL can be matched.
std::optional<LabelSelector> post_selector(const Fields& g) {
  if (!g.has("selector")) return std::nullopt;
  return detail::parse_label_selector(g.object("selector"), /*check_values=*/false);
}

void check_generator(const Fields& g, bool inside_matrix) {
  (void)post_selector(g);
  std::string kind = generator_kind(g);
  Fields body = g.object(kind);
  if (kind == "list") {
    body.only({"elements", "template", "elementsYaml"});
    if (body.has("elementsYaml"))
      body.fail("elementsYaml", body.display() + ".elementsYaml is not supported; use elements");
    for (const Fields& e : body.objects("elements")) (void)e; // each must be a mapping
  } else if (kind == "clusters") {
    body.only({"selector", "values", "template"});
    if (body.has("selector")) (void)detail::parse_label_selector(body.object("selector"));
  } else if (kind == "git") {
    body.only({"repoURL", "revision", "files", "directories", "values", "template",
               "pathParamPrefix", "requeueAfterSeconds"});
    body.required_string("repoURL");
    bool files = body.has("files");
    bool dirs = body.has("directories");
    if (files == dirs)
      body.fail_here(body.display() + " needs exactly one of files or directories");
    for (const Fields& item : body.objects(files ? "files" : "directories")) {
      item.only({"path", "exclude"});
      item.required_string("path");
      item.boolean("exclude", false);
    }
  } else if (kind == "matrix") {
    if (inside_matrix)
      body.fail_here(body.display() + ": a matrix inside a matrix is not supported");
    body.only({"generators", "template"});
    auto children = body.objects("generators");
    if (children.size() != 2) {
      body.fail_here(body.display() + ".generators must list exactly two generators, not " +
                     std::to_string(children.size()));
    }
    for (const Fields& child : children) check_generator(child, true);
  }
}

std::string scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

void flatten(const json& v, const std::string& prefix, json& out) {
  if (v.is_object()) {
    for (const auto& [k, child] : v.items())
      flatten(child, prefix.empty() ? k : prefix + "." + k, out);
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      flatten(v[i], prefix + "[" + std::to_string(i) + "]", out);
    }
  } else if (!prefix.empty()) {
    out[prefix] = scalar_text(v);
  }
}

std::string dirname(const std::string& file) {
  auto slash = file.rfind('/');
  return slash == std::string::npos ? "." : file.substr(0, slash);
}
std::string basename(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}
std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    auto slash = path.find('/', start);
    out.push_back(path.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

bool hidden(const std::string& path) {
  for (const auto& s : segments(path)) {
    if (!s.empty() && s.front() == '.' && s != "." && s != "..") return true;
  }
  return false;
}

// Path parameters of a directory (and the file in it, when there is one), in either mode.
void add_path_params(json& params, const std::string& dir, const std::string* file, bool go,
                     const std::string& prefix) {
  if (go) {
    json p = json::object();
    p["path"] = dir;
    p["basename"] = basename(dir);
    p["basenameNormalized"] = sanitize_name(basename(dir));
    p["segments"] = segments(dir);
    if (file) {
      p["filename"] = basename(*file);
      p["filenameNormalized"] = sanitize_name(basename(*file));
    }
    if (prefix.empty())
      params["path"] = p;
    else
      params[prefix] = json{{"path", p}};
    return;
  }
  std::string name = prefix.empty() ? "path" : prefix + ".path";
  params[name] = dir;
  params[name + ".basename"] = basename(dir);
  params[name + ".basenameNormalized"] = sanitize_name(basename(dir));
  auto segs = segments(dir);
  for (std::size_t i = 0; i < segs.size(); ++i) {
    if (!segs[i].empty()) params[name + "[" + std::to_string(i) + "]"] = segs[i];
  }
  if (file) {
    params[name + ".filename"] = basename(*file);
    params[name + ".filenameNormalized"] = sanitize_name(basename(*file));
  }
}

// Default mode: {{ name }} replaced by the parameter; unknown names stay as written, as Argo
// CD leaves them.
std::string replace_params(const std::string& text, const json& params) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    auto open = text.find("{{", pos);
    if (open == std::string::npos) break;
    auto close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    std::string tag = text.substr(open + 2, close - open - 2);
    std::string key = tag;
    key.erase(0, key.find_first_not_of(" \t"));
    auto last = key.find_last_not_of(" \t");
    key.erase(last == std::string::npos ? 0 : last + 1);
    out += text.substr(pos, open - pos);
    auto it = key.empty() ? params.end() : params.find(key);
    if (it == params.end()) {
      out += "{{" + tag + "}}";
    } else {
      out += scalar_text(*it);
    }
    pos = close + 2;
  }
  return out + text.substr(pos);
}

struct TemplateContext {
  const ApplicationSet& set;
  const json& params;
  std::string pointer; // where the template sits, for error positions
  std::string who;     // "spec.generators[0]" for messages
};

std::string render_string(const std::string& text, const TemplateContext& ctx,
                          const std::string& field, const std::string& pointer = "") {
  if (!ctx.set.go_template) return replace_params(text, ctx.params);
  if (text.find("{{") == std::string::npos) return text;
  manifest::RenderOptions options;
  options.missing_key_error = ctx.set.missing_key_error;
  try {
    return manifest::render_template(text, ctx.params, field, options);
  } catch (const manifest::TemplateError& e) {
    throw Error(ctx.set.where.locate(pointer.empty() ? ctx.pointer : pointer),
                ctx.who + ": " + e.what());
  }
}

// `pointer` follows the value through the document so template errors name its line.
json render_tree(const json& v, const TemplateContext& ctx, const std::string& field,
                 const std::string& pointer) {
  if (v.is_string()) return render_string(v.get<std::string>(), ctx, field, pointer);
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, child] : v.items()) {
      std::string name = field.empty() ? k : field + "." + k;
      std::string at = yaml::pointer_append(pointer, k);
      out[render_string(k, ctx, name, at)] = render_tree(child, ctx, name, at);
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (std::size_t i = 0; i < v.size(); ++i) {
      out.push_back(render_tree(v[i], ctx, field + "[" + std::to_string(i) + "]",
                                yaml::pointer_append(pointer, i)));
    }
    return out;
  }
  return v;
}

std::vector<json> list_params(const json& body, bool go) {
  std::vector<json> out;
  for (const auto& e : body.value("elements", json::array())) {
    if (go) {
      out.push_back(e);
      continue;
    }
    json p = json::object();
    for (const auto& [k, v] : e.items()) {
      if (k == "values" && v.is_object()) {
        for (const auto& [vk, vv] : v.items()) p["values." + vk] = scalar_text(vv);
      } else {
        p[k] = scalar_text(v);
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

void add_values(json& params, const json& body, const ApplicationSet& set, const std::string& who,
                const std::string& pointer) {
  if (!body.contains("values") || !body["values"].is_object()) return;
  json rendered = json::object();
  TemplateContext ctx{set, params, pointer + "/values", who};
  for (const auto& [k, v] : body["values"].items()) {
    rendered[k] = render_string(scalar_text(v), ctx, "values." + k);
  }
  if (set.go_template) {
    params["values"] = rendered;
  } else {
    for (const auto& [k, v] : rendered.items()) params["values." + k] = v;
  }
}

std::vector<json> cluster_params(const json& body, const ApplicationSet& set,
                                 const GenerateContext& context, const std::string& who,
                                 const std::string& pointer) {
  LabelSelector selector;
  if (body.contains("selector") && !body["selector"].is_null()) {
    selector = detail::parse_label_selector(Fields(
        body["selector"], set.where, yaml::pointer_append(pointer, "selector"), who + ".selector"));
  }
  std::vector<json> out;
  for (const auto& c : context.clusters) {
    // Every Argo CD cluster Secret carries this label; selectors written for Argo CD use it.
    auto labels = c.labels;
    labels.emplace(kClusterSecretTypeLabel, "cluster");
    if (!selector.matches(labels)) continue;
    json p = json::object();
    p["name"] = c.name;
    p["nameNormalized"] = sanitize_name(c.name);
    p["server"] = c.server;
    if (set.go_template) {
      p["metadata"] = json{{"labels", labels}};
    } else {
      for (const auto& [k, v] : labels) p["metadata.labels." + k] = v;
    }
    add_values(p, body, set, who, pointer);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<json> git_params(const json& body, const ApplicationSet& set,
                             const GenerateContext& context, const std::string& who,
                             const std::string& pointer) {
  const std::string repo_url = body.value("repoURL", "");
  const std::string revision =
      body.value("revision", "HEAD").empty() ? "HEAD" : body.value("revision", "HEAD");
  const std::string prefix = body.value("pathParamPrefix", "");
  const std::string where = set.where.locate(pointer);
  if (!context.repo) throw Error(where, who + ": no repository access to read " + repo_url);
  RepoTree tree;
  try {
    tree = context.repo(repo_url, revision);
  } catch (const std::exception& e) {
    throw Error(where, who + ": cannot read " + repo_url + " at " + revision + ": " + e.what());
  }
  std::vector<json> out;
  if (body.contains("files")) {
    std::set<std::string> picked;
    for (const auto& item : body["files"]) {
      if (item.value("exclude", false)) continue;
      for (const auto& f : tree.files) {
        if (glob_match(item.value("path", ""), f)) picked.insert(f);
      }
    }
    for (const auto& item : body["files"]) {
      if (!item.value("exclude", false)) continue;
      for (const auto& f : tree.files) {
        if (glob_match(item.value("path", ""), f)) picked.erase(f);
      }
    }
    for (const auto& file : picked) { // sorted, as Argo CD processes them
      json doc;
      try {
        doc = yaml::load(tree.read(file), file).value; // JSON is YAML too
      } catch (const std::exception& e) {
        throw Error(where, who + ": unable to process file '" + file + "': " + e.what());
      }
      std::vector<json> objects;
      if (doc.is_array()) {
        for (const auto& o : doc) objects.push_back(o);
      } else if (doc.is_object() || doc.is_null()) {
        objects.push_back(doc.is_null() ? json::object() : doc);
      } else {
        throw Error(where, who + ": file '" + file + "' must hold a mapping or a list of mappings");
      }
      for (const auto& o : objects) {
        if (!o.is_object()) {
          throw Error(where, who + ": file '" + file + "': each list item must be a mapping");
        }
        json p = json::object();
        if (set.go_template) {
          p = o;
        } else {
          flatten(o, "", p);
        }
        add_path_params(p, dirname(file), &file, set.go_template, prefix);
        add_values(p, body, set, who, pointer);
        out.push_back(std::move(p));
      }
    }
    return out;
  }
  std::set<std::string> dirs;
  for (const auto& f : tree.files) {
    for (auto slash = f.find('/'); slash != std::string::npos; slash = f.find('/', slash + 1)) {
      std::string d = f.substr(0, slash);
      if (!hidden(d)) dirs.insert(d);
    }
  }
  for (const auto& dir : dirs) {
    bool include = false;
    bool exclude = false;
    for (const auto& item : body["directories"]) {
      if (!glob_match(item.value("path", ""), dir)) continue;
      (item.value("exclude", false) ? exclude : include) = true;
    }
    if (!include || exclude) continue;
    json p = json::object();
    add_path_params(p, dir, nullptr, set.go_template, prefix);
    add_values(p, body, set, who, pointer);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<json> params_of(const json& generator, const ApplicationSet& set,
                            const GenerateContext& context, const std::string& who,
                            const std::string& pointer);

// A parameter set as the post selector sees it, as Argo CD flattens it: nested keys joined with
// dots (list items by their index: `path.segments.0`), values as text.
void selector_labels(const json& v, const std::string& prefix,
                     std::map<std::string, std::string>& out) {
  if (v.is_object()) {
    for (const auto& [k, child] : v.items())
      selector_labels(child, prefix.empty() ? k : prefix + "." + k, out);
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i)
      selector_labels(v[i], prefix + "." + std::to_string(i), out);
  } else if (!prefix.empty()) {
    out[prefix] = v.is_null() ? "<nil>" : scalar_text(v);
  }
}

// Keeps the parameter sets that `generator`'s post selector (as written, before a matrix fills
// in the first generator's parameters) picks.
std::vector<json> post_select(std::vector<json> params, const json& generator,
                              const ApplicationSet& set, const std::string& who,
                              const std::string& pointer) {
  auto selector = post_selector(Fields(generator, set.where, pointer, who));
  if (!selector) return params;
  std::vector<json> out;
  for (auto& p : params) {
    std::map<std::string, std::string> labels;
    selector_labels(p, "", labels);
    if (selector->matches(labels)) out.push_back(std::move(p));
  }
  return out;
}

std::vector<json> matrix_params(const json& body, const ApplicationSet& set,
                                const GenerateContext& context, const std::string& who,
                                const std::string& pointer) {
  const json& children = body["generators"];
  std::string p0 = pointer + "/generators/0";
  std::string p1 = pointer + "/generators/1";
  std::vector<json> out;
  const std::string who0 = who + ".generators[0]";
  const std::string who1 = who + ".generators[1]";
  for (const auto& a :
       post_select(params_of(children[0], set, context, who0, p0), children[0], set, who0, p0)) {
    // The second generator may use the first one's parameters (a git path per cluster, say).
    TemplateContext ctx{set, a, p1, who1};
    json second = render_tree(children[1], ctx, "", p1);
    for (const auto& b :
         post_select(params_of(second, set, context, who1, p1), children[1], set, who1, p1)) {
      json merged = a;
      if (set.go_template) {
        merged.merge_patch(b);
      } else {
        for (const auto& [k, v] : b.items()) {
          if (merged.contains(k) && merged[k] != v) {
            throw Error(set.where.locate(pointer), who + ": both generators set the parameter '" +
                                                       k + "' (" + merged[k].dump() + " and " +
                                                       v.dump() + ")");
          }
          merged[k] = v;
        }
      }
      out.push_back(std::move(merged));
    }
  }
  return out;
}

std::vector<json> params_of(const json& generator, const ApplicationSet& set,
                            const GenerateContext& context, const std::string& who,
                            const std::string& pointer) {
  for (const auto& [kind, body] : generator.items()) {
    if (kind == "template" || kind == "selector") continue;
    std::string at = yaml::pointer_append(pointer, kind);
    if (kind == "list") return list_params(body, set.go_template);
    if (kind == "clusters") return cluster_params(body, set, context, who + ".clusters", at);
    if (kind == "git") return git_params(body, set, context, who + ".git", at);
    if (kind == "matrix") return matrix_params(body, set, context, who + ".matrix", at);
  }
  return {};
}

} // namespace

std::string sanitize_name(const std::string& text) {
  std::string out;
  for (char c : text) {
    auto l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '-' || l == '.';
    out += ok ? l : '-';
  }
  if (out.size() > 253) out.resize(253);
  auto first = out.find_first_not_of("-.");
  if (first == std::string::npos) return "";
  auto last = out.find_last_not_of("-.");
  return out.substr(first, last - first + 1);
}

ApplicationSet parse_application_set(const json& document, const yaml::SourceMap& where) {
  Fields root(document, where, "", "");
  if (!document.is_object()) root.fail_here("an ApplicationSet must be a mapping");
  root.only({"apiVersion", "kind", "metadata", "spec", "status"});
  if (root.string("apiVersion") != kApiVersion) {
    root.fail("apiVersion", "apiVersion must be " + std::string(kApiVersion) + ", not '" +
                                root.string("apiVersion") + "'");
  }
  if (root.string("kind") != "ApplicationSet") {
    root.fail("kind", "kind must be ApplicationSet, not '" + root.string("kind") + "'");
  }
  ApplicationSet set;
  set.document = document;
  set.where = where;
  Fields meta = root.object("metadata");
  set.name = meta.required_string("name");
  set.namespace_ = meta.string("namespace");
  if (!root.has("spec")) root.fail_here("spec is required");
  Fields spec = root.object("spec");
  spec.only({"generators", "template", "goTemplate", "goTemplateOptions", "syncPolicy",
             "templatePatch", "strategy", "preservedFields", "ignoreApplicationDifferences"});
  if (spec.has("templatePatch")) spec.fail("templatePatch", "spec.templatePatch is not supported");
  if (spec.has("strategy"))
    spec.fail("strategy", "spec.strategy (progressive syncs) is not supported");
  set.go_template = spec.boolean("goTemplate", false);
  for (const auto& option : spec.strings("goTemplateOptions")) {
    if (option == "missingkey=error")
      set.missing_key_error = true;
    else if (option == "missingkey=default" || option == "missingkey=invalid" ||
             option == "missingkey=zero")
      set.missing_key_error = false;
    else
      spec.fail("goTemplateOptions", "spec.goTemplateOptions: unknown option '" + option +
                                         "' (supported: missingkey=error, missingkey=default)");
  }
  if (spec.has("syncPolicy")) {
    Fields policy = spec.object("syncPolicy");
    policy.only({"preserveResourcesOnDeletion", "applicationsSync"});
    set.preserve_resources_on_deletion = policy.boolean("preserveResourcesOnDeletion", false);
    std::string sync = policy.string("applicationsSync", "sync");
    if (sync != "sync" && sync != "create-only" && sync != "create-update" &&
        sync != "create-delete") {
      policy.fail("applicationsSync",
                  "spec.syncPolicy.applicationsSync must be sync, create-only, create-update or "
                  "create-delete, not '" +
                      sync + "'");
    }
    set.applications_sync = sync;
  }
  auto generators = spec.objects("generators");
  if (generators.empty()) spec.fail_here("spec.generators must list at least one generator");
  for (const Fields& g : generators) check_generator(g, false);
  if (!spec.has("template")) spec.fail_here("spec.template is required");
  Fields tmpl = spec.object("template");
  tmpl.only({"metadata", "spec"});
  if (!tmpl.object("metadata").has("name")) {
    tmpl.fail_here("spec.template.metadata.name is required");
  }
  set.generators = spec.value()["generators"];
  set.template_ = spec.value()["template"];
  return set;
}

std::vector<Params> generate_params(const ApplicationSet& set, std::size_t index,
                                    const GenerateContext& context) {
  std::string who = "spec.generators[" + std::to_string(index) + "]";
  std::string pointer = "/spec/generators/" + std::to_string(index);
  const json& generator = set.generators.at(index);
  return post_select(params_of(generator, set, context, who, pointer), generator, set, who,
                     pointer);
}

std::vector<Application> generate_applications(const ApplicationSet& set,
                                               const GenerateContext& context) {
  std::vector<Application> apps;
  std::set<std::string> names;
  for (std::size_t i = 0; i < set.generators.size(); ++i) {
    const json& g = set.generators[i];
    std::string who = "spec.generators[" + std::to_string(i) + "]";
    std::string pointer = "/spec/generators/" + std::to_string(i);
    json tmpl = set.template_;
    for (const auto& [kind, body] : g.items()) {
      if (body.is_object() && body.contains("template") && body["template"].is_object()) {
        tmpl.merge_patch(body["template"]); // the generator's template overrides the set's
      }
    }
    for (const auto& params : generate_params(set, i, context)) {
      TemplateContext ctx{set, params, "/spec/template", who};
      json rendered = render_tree(tmpl, ctx, "template", "/spec/template");
      json doc = {{"apiVersion", kApiVersion}, {"kind", "Application"}};
      doc["metadata"] = rendered.value("metadata", json::object());
      if (!doc["metadata"].contains("namespace") && !set.namespace_.empty()) {
        doc["metadata"]["namespace"] = set.namespace_;
      }
      doc["metadata"]["ownerReferences"] = json::array({{{"apiVersion", kApiVersion},
                                                         {"kind", "ApplicationSet"},
                                                         {"name", set.name},
                                                         {"controller", true},
                                                         {"blockOwnerDeletion", true}}});
      if (!set.preserve_resources_on_deletion) {
        // Argo CD's cascading deletion: the application's resources go with it.
        json& finalizers = doc["metadata"]["finalizers"];
        if (!finalizers.is_array()) finalizers = json::array();
        if (std::find(finalizers.begin(), finalizers.end(), kResourcesFinalizer) ==
            finalizers.end()) {
          finalizers.push_back(kResourcesFinalizer);
        }
      }
      doc["spec"] = rendered.value("spec", json::object());
      Application app;
      try {
        app = parse_application(doc);
      } catch (const Error& e) {
        throw Error(set.where.locate(pointer),
                    who + " generated an invalid Application: " + e.message() +
                        " (parameters: " + params.dump() + ")");
      }
      if (!names.insert(app.name).second) {
        throw Error(set.where.locate(pointer),
                    who + " generated a second application named '" + app.name +
                        "'; application names must be unique within the set");
      }
      app.where = set.where.locate(pointer);
      apps.push_back(std::move(app));
    }
  }
  return apps;
}

json set_condition(const std::string& type, bool status, const std::string& reason,
                   const std::string& message) {
  return {{"type", type},
          {"status", status ? "True" : "False"},
          {"reason", reason},
          {"message", message},
          {"lastTransitionTime", kube::format_rfc3339(std::chrono::system_clock::now())}};
}

} // namespace capstan::apps
