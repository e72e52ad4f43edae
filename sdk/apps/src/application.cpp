// Argo CD Application documents parsed and validated.
#include "capstan/apps/application.h"
#include "capstan/apps/label_selector.h"

#include <algorithm>
#include <cctype>

#include "fields.h"

namespace capstan::apps {

using detail::Fields;
using nlohmann::json;

Error::Error(std::string where, std::string message)
    : std::runtime_error(where.empty() ? message : where + ": " + message),
      where_(std::move(where)), message_(std::move(message)) {}

std::chrono::milliseconds Backoff::delay(int attempt) const {
  double ms = static_cast<double>(duration.count());
  for (int i = 1; i < attempt && ms < static_cast<double>(max_duration.count()); ++i) ms *= factor;
  ms = std::min(ms, static_cast<double>(max_duration.count()));
  return std::chrono::milliseconds(static_cast<long long>(ms));
}

std::chrono::milliseconds parse_duration(std::string_view text) {
  if (text.empty()) throw std::invalid_argument("an empty duration");
  // A bare number is seconds, as Argo CD reads backoff durations.
  if (std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(c) != 0; })) {
    return std::chrono::seconds(std::stoll(std::string(text)));
  }
  double total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    if (start == i) {
      throw std::invalid_argument("'" + std::string(text) +
                                  "' is not a duration (units: ms, s, m, h; e.g. 5s, 3m)");
    }
    double number = std::stod(std::string(text.substr(start, i - start)));
    std::size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    double factor = 0;
    if (unit == "ms")
      factor = 1;
    else if (unit == "s")
      factor = 1000;
    else if (unit == "m")
      factor = 60'000;
    else if (unit == "h")
      factor = 3'600'000;
    else
      throw std::invalid_argument("'" + std::string(text) +
                                  "' is not a duration (units: ms, s, m, h; e.g. 5s, 3m)");
    total_ms += number * factor;
  }
  return std::chrono::milliseconds(static_cast<long long>(total_ms));
}

bool IgnoreDifference::matches(std::string_view g, std::string_view k, std::string_view ns,
                               std::string_view n) const {
  return (group.empty() || group == g) && (kind.empty() || kind == k) &&
         (namespace_.empty() || namespace_ == ns) && (name.empty() || name == n);
}

void set_sync_option(SyncOptions& out, const std::string& item) {
  auto eq = item.find('=');
  if (eq == std::string::npos) {
    throw std::invalid_argument("'" + item + "' must read Name=value (e.g. CreateNamespace=true)");
  }
  std::string key = item.substr(0, eq);
  std::string value = item.substr(eq + 1);
  auto flag = [&](bool& target) {
    if (value != "true" && value != "false") {
      throw std::invalid_argument("syncOptions " + key + " must be true or false, not '" + value +
                                  "'");
    }
    target = value == "true";
  };
  if (key == "CreateNamespace")
    flag(out.create_namespace);
  else if (key == "PruneLast")
    flag(out.prune_last);
  else if (key == "ApplyOutOfSyncOnly")
    flag(out.apply_out_of_sync_only);
  else if (key == "Replace")
    flag(out.replace);
  else if (key == "ServerSideApply")
    flag(out.server_side_apply);
  else if (key == "Validate")
    flag(out.validate);
  else if (key == "RespectIgnoreDifferences")
    flag(out.respect_ignore_differences);
  else if (key == "PrunePropagationPolicy") {
    if (value != "foreground" && value != "background" && value != "orphan") {
      throw std::invalid_argument("syncOptions PrunePropagationPolicy must be foreground, "
                                  "background or orphan, not '" +
                                  value + "'");
    }
    out.prune_propagation_policy = value;
  } else {
    throw std::invalid_argument("syncOptions: unknown option '" + key +
                                "' (supported: CreateNamespace, PruneLast, ApplyOutOfSyncOnly, "
                                "Replace, ServerSideApply, Validate, RespectIgnoreDifferences, "
                                "PrunePropagationPolicy)");
  }
}

namespace {

void parse_sync_options(const Fields& policy, SyncOptions& out) {
  auto list = policy.strings("syncOptions");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string& item = list[i];
    std::string where = policy.locate("syncOptions");
    if (item.find('=') == std::string::npos) {
      throw Error(where, "syncOptions[" + std::to_string(i) + "] '" + item +
                             "' must read Name=value (e.g. CreateNamespace=true)");
    }
    try {
      set_sync_option(out, item);
    } catch (const std::invalid_argument& e) {
      throw Error(where, e.what());
    }
  }
}

std::chrono::milliseconds duration_field(const Fields& f, std::string_view key,
                                         std::chrono::milliseconds fallback) {
  if (!f.has(key)) return fallback;
  try {
    auto d = parse_duration(f.string(key));
    if (d.count() <= 0) f.fail(key, f.display() + "." + std::string(key) + " must be positive");
    return d;
  } catch (const std::invalid_argument& e) {
    f.fail(key, f.display() + "." + std::string(key) + ": " + e.what());
  }
}

Source parse_source(const Fields& s) {
  s.only({"repoURL", "path", "targetRevision", "directory", "kustomize", "helm", "plugin", "chart",
          "ref", "name"});
  for (const char* unsupported : {"helm", "plugin", "chart"}) {
    if (s.has(unsupported)) {
      s.fail(unsupported, s.display() + "." + unsupported +
                              ": Helm and plugin sources are not supported; use a directory of "
                              "plain YAML/JSON or a Kustomize folder");
    }
  }
  Source out;
  out.repo_url = s.required_string("repoURL");
  out.path = s.string("path", ".");
  if (out.path.empty()) out.path = ".";
  if (out.path.front() == '/' || out.path == ".." || out.path.rfind("../", 0) == 0 ||
      out.path.find("/../") != std::string::npos) {
    s.fail("path", s.display() + ".path '" + out.path + "' must stay inside the repository");
  }
  out.target_revision = s.string("targetRevision", "HEAD");
  if (out.target_revision.empty()) out.target_revision = "HEAD";
  if (s.has("directory")) {
    Fields d = s.object("directory");
    d.only({"recurse", "include", "exclude", "jsonnet"});
    if (d.has("jsonnet") && !d.object("jsonnet").value().empty()) {
      d.fail("jsonnet", d.display() + ".jsonnet: Jsonnet is not supported");
    }
    DirectoryOptions dir;
    dir.recurse = d.boolean("recurse", false);
    dir.include = d.string("include");
    dir.exclude = d.string("exclude");
    out.directory = dir;
  }
  if (s.has("kustomize")) {
    Fields k = s.object("kustomize");
    k.only({"namePrefix", "nameSuffix", "namespace", "commonLabels", "commonAnnotations", "images",
            "version"});
    KustomizeOptions opts;
    opts.name_prefix = k.string("namePrefix");
    opts.name_suffix = k.string("nameSuffix");
    opts.namespace_ = k.string("namespace");
    opts.common_labels = k.string_map("commonLabels");
    opts.common_annotations = k.string_map("commonAnnotations");
    opts.images = k.strings("images");
    out.kustomize = opts;
  }
  if (out.directory && out.kustomize) {
    s.fail_here(s.display() + " sets both directory and kustomize; choose one");
  }
  return out;
}

} // namespace

Application parse_application(const json& document, const yaml::SourceMap& where) {
  Fields root(document, where, "", "");
  if (!document.is_object()) root.fail_here("an Application must be a mapping");
  root.only({"apiVersion", "kind", "metadata", "spec", "status", "operation"});
  if (root.string("apiVersion") != kApiVersion) {
    root.fail("apiVersion", "apiVersion must be " + std::string(kApiVersion) + ", not '" +
                                root.string("apiVersion") + "'");
  }
  if (root.string("kind") != "Application") {
    root.fail("kind", "kind must be Application, not '" + root.string("kind") + "'");
  }
  Application app;
  app.document = document;
  app.where = root.locate("");
  Fields meta = root.object("metadata");
  app.name = meta.required_string("name");
  {
    // Application names are DNS subdomains (they name resources and tracking annotations).
    bool ok = app.name.size() <= 253;
    for (char c : app.name) {
      ok = ok && (std::islower(static_cast<unsigned char>(c)) ||
                  std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.');
    }
    ok = ok && std::isalnum(static_cast<unsigned char>(app.name.front())) &&
         std::isalnum(static_cast<unsigned char>(app.name.back()));
    if (!ok) {
      meta.fail("name", "metadata.name '" + app.name +
                            "' must be lower-case letters, digits, '-' and '.', starting and "
                            "ending with a letter or digit");
    }
  }
  app.namespace_ = meta.string("namespace");
  // Labels as the Kubernetes API takes them: `capstan apps list -l` selects by them.
  const Fields labels = meta.object("labels");
  for (const auto& [key, value] : meta.string_map("labels")) {
    if (auto why = label_key_problem(key); !why.empty()) {
      labels.fail(key, "metadata.labels: " + why);
    }
    if (auto why = label_value_problem(value); !why.empty()) {
      labels.fail(key, "metadata.labels." + key + ": " + why);
    }
  }
  Fields spec = root.object("spec");
  if (!root.has("spec")) root.fail_here("spec is required");
  spec.only({"source", "sources", "destination", "project", "syncPolicy", "ignoreDifferences",
             "revisionHistoryLimit", "info"});
  if (spec.has("sources")) {
    spec.fail("sources", "spec.sources: applications with several sources are not supported; "
                         "use spec.source");
  }
  if (!spec.has("source")) spec.fail_here("spec.source is required");
  app.source = parse_source(spec.object("source"));
  app.project = spec.string("project", "default");
  if (app.project.empty()) app.project = "default";

  if (!spec.has("destination")) spec.fail_here("spec.destination is required");
  Fields dest = spec.object("destination");
  dest.only({"server", "name", "namespace"});
  app.destination.server = dest.string("server");
  app.destination.name = dest.string("name");
  app.destination.namespace_ = dest.string("namespace");
  if (app.destination.server.empty() == app.destination.name.empty()) {
    dest.fail_here("spec.destination needs exactly one of server (the cluster's API URL) or name "
                   "(the cluster's name)");
  }

  if (spec.has("syncPolicy")) {
    Fields policy = spec.object("syncPolicy");
    policy.only({"automated", "syncOptions", "retry", "managedNamespaceMetadata"});
    if (policy.has("automated") ||
        (policy.value().is_object() && policy.value().contains("automated"))) {
      Fields automated = policy.object("automated");
      automated.only({"prune", "selfHeal", "allowEmpty", "enabled"});
      app.sync_policy.automated = automated.boolean("enabled", true);
      app.sync_policy.prune = automated.boolean("prune", false);
      app.sync_policy.self_heal = automated.boolean("selfHeal", false);
      app.sync_policy.allow_empty = automated.boolean("allowEmpty", false);
    }
    parse_sync_options(policy, app.sync_policy.options);
    if (policy.has("retry")) {
      Fields retry = policy.object("retry");
      retry.only({"limit", "backoff"});
      Retry r;
      r.limit = static_cast<int>(retry.integer("limit", 0));
      Fields backoff = retry.object("backoff");
      backoff.only({"duration", "factor", "maxDuration"});
      r.backoff.duration = duration_field(backoff, "duration", r.backoff.duration);
      r.backoff.max_duration = duration_field(backoff, "maxDuration", r.backoff.max_duration);
      r.backoff.factor = static_cast<int>(backoff.integer("factor", 2));
      if (r.backoff.factor < 1)
        backoff.fail("factor", "syncPolicy.retry.backoff.factor must be at least 1");
      app.sync_policy.retry = r;
    }
  }

  for (const Fields& rule : spec.objects("ignoreDifferences")) {
    rule.only({"group", "kind", "name", "namespace", "jsonPointers", "jqPathExpressions",
               "managedFieldsManagers"});
    if (rule.has("jqPathExpressions")) {
      rule.fail("jqPathExpressions", rule.display() + ".jqPathExpressions: jq expressions are not "
                                                      "supported; use jsonPointers");
    }
    IgnoreDifference d;
    d.group = rule.string("group");
    d.kind = rule.required_string("kind");
    d.name = rule.string("name");
    d.namespace_ = rule.string("namespace");
    d.json_pointers = rule.strings("jsonPointers");
    for (const auto& p : d.json_pointers) {
      if (!p.empty() && p.front() != '/') {
        rule.fail("jsonPointers", rule.display() + ".jsonPointers: '" + p +
                                      "' is not a JSON pointer (it must start with '/')");
      }
    }
    d.managed_fields_managers = rule.strings("managedFieldsManagers");
    if (d.json_pointers.empty() && d.managed_fields_managers.empty()) {
      rule.fail_here(rule.display() + " needs jsonPointers or managedFieldsManagers");
    }
    app.ignore_differences.push_back(std::move(d));
  }

  long long limit = spec.integer("revisionHistoryLimit", 10);
  if (limit < 0)
    spec.fail("revisionHistoryLimit", "spec.revisionHistoryLimit must not be negative");
  app.revision_history_limit = static_cast<int>(limit);
  app.deleting = meta.has("deletionTimestamp");
  if (app.deleting) app.sync_policy.automated = false;
  return app;
}

bool deletes_resources(const json& document) {
  if (!document.is_object() || !document.contains("metadata")) return false;
  const json& meta = document["metadata"];
  if (!meta.is_object() || !meta.contains("finalizers") || !meta["finalizers"].is_array())
    return false;
  const std::string base = kResourcesFinalizer;
  for (const auto& f : meta["finalizers"]) {
    if (!f.is_string()) continue;
    const std::string v = f.get<std::string>();
    if (v == base || v == base + "/background" || v == base + "/foreground") return true;
  }
  return false;
}

} // namespace capstan::apps
