// Create, update, patch, apply and delete with the API server's semantics.
#include "capstan/sandbox/cluster.h"

#include "capstan/sandbox/api_error.h"
#include "capstan/sandbox/managed_fields.h"
#include "capstan/sandbox/patch.h"
#include "capstan/sandbox/util.h"
#include "capstan/yaml/yaml.h"
#include "kinds.h"

#include <algorithm>
#include <set>

namespace capstan::sandbox {

using nlohmann::json;

namespace {

json spec_part(const json& o) {
  json out = o;
  out.erase("metadata");
  out.erase("status");
  return out;
}

bool has_finalizers(const json& o) {
  const json f = o.value("/metadata/finalizers"_json_pointer, json::array());
  return f.is_array() && !f.empty();
}

void add_finalizer(json& o, const std::string& f) {
  json& list = o["metadata"]["finalizers"];
  if (!list.is_array()) list = json::array();
  if (std::find(list.begin(), list.end(), f) == list.end()) list.push_back(f);
}

} // namespace

Cluster::Cluster(const std::filesystem::path& data_dir, SandboxConfig config)
    : config_(std::move(config)),
      store_(std::make_unique<Store>(data_dir / "state.db", config_.watch_history)) {
  for (const auto& crd : store_->list("apiextensions.k8s.io/customresourcedefinitions", "")) {
    try {
      registry_.set_custom((*crd)["metadata"].value("name", ""), types_from_crd(*crd));
    } catch (const ApiError&) {
      // A stored CRD that no longer converts serves nothing; it can still be fixed or deleted.
    }
  }
}

json Cluster::decode(const std::string& body, bool yaml_body, const ResourceType& t,
                     const WriteOptions& options) const {
  if (body.empty()) throw ApiError::bad_request("the request body is empty; an object is required");
  json out;
  std::vector<std::string> duplicates;
  auto from_yaml = [&] {
    try {
      out = yaml::load(body, "request body").value;
    } catch (const yaml::Error& e) {
      throw ApiError::bad_request(std::string("error decoding YAML: ") + e.what());
    }
  };
  // JSON is YAML, and clients (client-go, Capstan's) send apply patches as JSON: those are
  // read by the JSON parser, many times faster; what it refuses (a YAML flow mapping such as
  // "{a: b}") goes to the YAML parser as before.
  auto first = body.find_first_not_of(" \t\r\n");
  if (yaml_body && (first == std::string::npos || body[first] != '{')) {
    from_yaml();
  } else {
    std::vector<std::set<std::string>> keys;
    try {
      out = json::parse(body, [&](int, json::parse_event_t ev, json& parsed) {
        if (ev == json::parse_event_t::object_start)
          keys.emplace_back();
        else if (ev == json::parse_event_t::object_end && !keys.empty())
          keys.pop_back();
        else if (ev == json::parse_event_t::key && !keys.empty() &&
                 !keys.back().insert(parsed.get<std::string>()).second)
          duplicates.push_back(parsed.get<std::string>());
        return true;
      });
    } catch (const json::parse_error& e) {
      if (!yaml_body)
        throw ApiError::bad_request("the body of the request is not valid JSON: " +
                                    std::string(e.what()));
      duplicates.clear();
      from_yaml();
    }
  }
  if (!out.is_object())
    throw ApiError::bad_request("the body of the request must be a JSON or YAML object, got " +
                                std::string(out.type_name()));
  if (!duplicates.empty()) {
    std::string msg;
    for (const auto& d : duplicates)
      msg += (msg.empty() ? "" : ", ") + ("duplicate field \"" + d + "\"");
    if (options.validation == FieldValidation::kStrict)
      throw ApiError::bad_request(t.kind + " in version \"" + t.version +
                                  "\" cannot be handled as a " + t.kind +
                                  ": strict decoding error: " + msg);
    if (options.validation == FieldValidation::kWarn && options.warnings)
      for (const auto& d : duplicates) options.warnings->push_back("duplicate field \"" + d + "\"");
  }
  return out;
}

void Cluster::check_fields_for(const ResourceType& t, json& object,
                               const WriteOptions& options) const {
  std::vector<FieldProblem> problems;
  check_fields(*t.schema, object, "", problems);
  std::string unknown, typed;
  std::vector<StatusCause> type_causes;
  for (const auto& p : problems) {
    if (p.unknown) {
      if (options.validation == FieldValidation::kWarn && options.warnings)
        options.warnings->push_back("unknown field \"" + p.path + "\"");
      unknown += (unknown.empty() ? "" : ", ") + ("unknown field \"" + p.path + "\"");
    } else {
      typed += (typed.empty() ? "" : "; ") + p.path + ": " + p.message;
      type_causes.push_back({"FieldValueTypeInvalid", "Invalid value: " + p.message, p.path});
    }
  }
  if (!typed.empty()) {
    if (t.custom)
      throw ApiError::invalid(
          t.kind, t.group, object.value("/metadata/name"_json_pointer, std::string()), type_causes);
    const auto& first = problems.front().unknown
                            ? *std::find_if(problems.begin(), problems.end(),
                                            [](const FieldProblem& p) { return !p.unknown; })
                            : problems.front();
    throw ApiError::bad_request(
        t.kind + " in version \"" + t.version + "\" cannot be handled as a " + t.kind +
        ": json: cannot unmarshal " + first.message + " in field " + first.path);
  }
  if (!unknown.empty() && options.validation == FieldValidation::kStrict)
    throw ApiError::bad_request(t.kind + " in version \"" + t.version +
                                "\" cannot be handled as a " + t.kind +
                                ": strict decoding error: " + unknown);
}

void Cluster::check_namespace(const ResourceType& t, const std::string& ns) const {
  if (!t.namespaced) return;
  auto nso = store_->get({"/namespaces", "", ns});
  if (!nso) throw ApiError::not_found("", "namespaces", ns);
  if ((*nso)["metadata"].contains("deletionTimestamp") && t.kind != "Event")
    throw ApiError(403, "Forbidden",
                   t.qualified() + " is forbidden: unable to create new content in namespace " +
                       ns + " because it is being terminated");
}

namespace {
void check_type_meta(const ResourceType& t, const json& obj) {
  if (obj.contains("apiVersion") && obj["apiVersion"] != t.api_version()) {
    std::string got = obj["apiVersion"].is_string() ? obj["apiVersion"].get<std::string>()
                                                    : obj["apiVersion"].dump();
    throw ApiError::bad_request("the API version in the data (" + got +
                                ") does not match the expected API version (" + t.api_version() +
                                ")");
  }
  if (obj.contains("kind") && obj["kind"] != t.kind) {
    std::string got = obj["kind"].is_string() ? obj["kind"].get<std::string>() : obj["kind"].dump();
    throw ApiError::bad_request("the kind in the data (" + got +
                                ") does not match the expected kind (" + t.kind + ") for " +
                                t.qualified());
  }
  if (obj.contains("metadata") && !obj["metadata"].is_object())
    throw ApiError::bad_request(t.kind + " in version \"" + t.version +
                                "\" cannot be handled as a " + t.kind +
                                ": metadata must be an object");
}
} // namespace

json Cluster::prepare_create(const ResourceType& t, const std::string& ns, json obj,
                             const WriteOptions& options) const {
  check_type_meta(t, obj);
  obj["apiVersion"] = t.api_version();
  obj["kind"] = t.kind;
  json& meta = obj["metadata"];
  if (!meta.is_object()) meta = json::object();
  if (t.namespaced) {
    if (meta.contains("namespace") && meta["namespace"] != "" && meta["namespace"] != ns)
      throw ApiError::bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request");
    meta["namespace"] = ns;
  } else {
    meta.erase("namespace");
  }
  if (meta.value("name", "").empty() && !meta.value("generateName", "").empty())
    meta["name"] = meta["generateName"].get<std::string>() + random_suffix(5);
  for (const char* f : {"uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                        "deletionGracePeriodSeconds", "generation", "selfLink", "managedFields"})
    meta.erase(f);
  check_fields_for(t, obj, options);
  apply_defaults(t, obj);
  prepare_new(t, obj);
  auto causes = validate_object(t, obj, nullptr);
  if (!causes.empty())
    throw ApiError::invalid(t.kind, t.group, obj["metadata"].value("name", ""), causes);
  obj["metadata"]["uid"] = new_uid();
  obj["metadata"]["creationTimestamp"] = now_rfc3339();
  if (tracks_generation(t)) obj["metadata"]["generation"] = 1;
  if (t.kind == "Job" && !t.custom && !obj.value("/spec/manualSelector"_json_pointer, false)) {
    // The job controller's selector: the job's own uid, stamped on its pod template.
    std::string uid = obj["metadata"]["uid"];
    std::string job_name = obj["metadata"]["name"];
    obj["spec"]["selector"] = {{"matchLabels", {{"batch.kubernetes.io/controller-uid", uid}}}};
    json& labels = obj["spec"]["template"]["metadata"]["labels"];
    labels["batch.kubernetes.io/controller-uid"] = uid;
    labels["batch.kubernetes.io/job-name"] = job_name;
    labels["controller-uid"] = uid;
    labels["job-name"] = job_name;
  }
  if (t.kind == "CustomResourceDefinition") {
    types_from_crd(obj); // refuses an unusable CRD before it is stored
    obj["status"] = {{"acceptedNames", obj["spec"]["names"]},
                     {"storedVersions", json::array()},
                     {"conditions",
                      {{{"type", "NamesAccepted"},
                        {"status", "True"},
                        {"reason", "NoConflicts"},
                        {"message", "no conflicts found"},
                        {"lastTransitionTime", now_rfc3339()}},
                       {{"type", "Established"},
                        {"status", "True"},
                        {"reason", "InitialNamesAccepted"},
                        {"message", "the initial names have been accepted"},
                        {"lastTransitionTime", now_rfc3339()}}}}};
    for (const auto& v : obj["spec"]["versions"])
      if (v.value("storage", false)) obj["status"]["storedVersions"].push_back(v.value("name", ""));
  }
  if (!options.manager.empty()) {
    ManagedFieldsInput who{options.manager, t.api_version(), "", now_rfc3339()};
    obj["metadata"]["managedFields"] = record_update(json(), obj, *t.schema, who);
    if (obj["metadata"]["managedFields"].empty()) obj["metadata"].erase("managedFields");
  }
  return obj;
}

json Cluster::prepare_update(const ResourceType& t, const json& current, json next,
                             const WriteOptions& options, bool check_rv) const {
  check_type_meta(t, next);
  next["apiVersion"] = t.api_version();
  next["kind"] = t.kind;
  if (!next["metadata"].is_object()) next["metadata"] = json::object();
  json& meta = next["metadata"];
  const json& cur_meta = current["metadata"];
  std::string name = cur_meta.value("name", "");
  if (meta.contains("name") && meta["name"] != name)
    throw ApiError::bad_request(
        "the name of the object (" +
        (meta["name"].is_string() ? meta["name"].get<std::string>() : meta["name"].dump()) +
        ") does not match the name on the URL (" + name + ")");
  if (t.namespaced && meta.contains("namespace") && meta["namespace"] != "" &&
      meta["namespace"] != cur_meta.value("namespace", ""))
    throw ApiError::bad_request("the namespace of the provided object does not match the "
                                "namespace sent on the request");
  if (check_rv && meta.contains("resourceVersion") && meta["resourceVersion"] != "" &&
      meta["resourceVersion"] != cur_meta.value("resourceVersion", ""))
    throw ApiError::conflict(t.group, t.plural, name,
                             "the object has been modified; please apply your changes to the "
                             "latest version and try again");
  if (meta.contains("uid") && meta["uid"] != "" && meta["uid"] != cur_meta.value("uid", ""))
    throw ApiError::conflict(
        t.group, t.plural, name,
        "Precondition failed: UID in precondition: " + meta["uid"].get<std::string>() +
            ", UID in object meta: " + cur_meta.value("uid", ""));
  for (const char* f : {"name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                        "deletionGracePeriodSeconds", "generation", "resourceVersion"}) {
    if (cur_meta.contains(f))
      meta[f] = cur_meta[f];
    else
      meta.erase(f);
  }
  if (!meta.contains("managedFields") && cur_meta.contains("managedFields"))
    meta["managedFields"] = cur_meta["managedFields"];
  if (options.subresource == "status") {
    json status = next.value("status", json());
    next = current;
    if (status.is_null())
      next.erase("status");
    else
      next["status"] = status;
  } else if (t.status_subresource || t.kind == "Namespace") {
    if (current.contains("status"))
      next["status"] = current["status"];
    else
      next.erase("status");
  }
  check_fields_for(t, next, options);
  apply_defaults(t, next);
  if (t.kind == "Namespace") next["spec"] = current.value("spec", json::object());
  if (t.kind == "Service") {
    json& spec = next["spec"];
    for (const char* f : {"clusterIP", "clusterIPs"})
      if ((!spec.contains(f) || spec[f] == "") && current.contains("spec") &&
          current["spec"].contains(f))
        spec[f] = current["spec"][f];
  }
  auto causes = validate_object(t, next, &current);
  if (!causes.empty()) throw ApiError::invalid(t.kind, t.group, name, causes);
  if (t.kind == "CustomResourceDefinition") {
    types_from_crd(next);
    next["status"] = current.value("status", json::object());
    if (next["status"].is_object()) next["status"]["acceptedNames"] = next["spec"]["names"];
  }
  if (tracks_generation(t) && spec_part(next) != spec_part(current))
    meta["generation"] = current["metadata"].value("generation", 1) + 1;
  if (!options.manager.empty()) {
    ManagedFieldsInput who{options.manager, t.api_version(), options.subresource, now_rfc3339()};
    json mf = record_update(current, next, *t.schema, who);
    if (mf.empty())
      next["metadata"].erase("managedFields");
    else
      next["metadata"]["managedFields"] = mf;
  }
  return next;
}

void Cluster::after_write(const ResourceType& t, const json* before, const json* after) {
  if (t.kind != "CustomResourceDefinition") return;
  const json* o = after ? after : before;
  std::string name = (*o)["metadata"].value("name", "");
  if (after) {
    try {
      registry_.set_custom(name, types_from_crd(*after));
    } catch (const ApiError&) {
    }
  } else {
    auto types = types_from_crd(*before);
    registry_.set_custom(name, {});
    if (!types.empty()) {
      // Custom resources go with their definition.
      for (const auto& obj : store_->list(types.front().storage_key(), "")) {
        const auto& m = (*obj)["metadata"];
        store_->mutate({types.front().storage_key(), m.value("namespace", ""), m.value("name", "")},
                       [](const ObjectPtr&) { return std::optional<json>(); });
      }
    }
  }
}

json Cluster::get(const ResourceType& t, const std::string& ns, const std::string& name) const {
  auto o = store_->get({t.storage_key(), t.namespaced ? ns : "", name});
  if (!o) throw ApiError::not_found(t.group, t.plural, name);
  json out = *o;
  out["apiVersion"] = t.api_version();
  return out;
}

json Cluster::create(const ResourceType& t, const std::string& ns, json object,
                     const WriteOptions& options) {
  check_namespace(t, ns);
  json prepared = prepare_create(t, ns, std::move(object), options);
  std::string name = prepared["metadata"]["name"];
  ObjectKey key{t.storage_key(), t.namespaced ? ns : "", name};
  if (options.dry_run) {
    if (store_->get(key)) throw ApiError::already_exists(t.group, t.plural, name);
    return prepared;
  }
  auto stored =
      store_->mutate_optimistic(key, [&](const ObjectPtr& current) -> std::optional<json> {
        if (current) throw ApiError::already_exists(t.group, t.plural, name);
        return prepared;
      });
  after_write(t, nullptr, stored.get());
  return *stored;
}

json Cluster::update(const ResourceType& t, const std::string& ns, const std::string& name,
                     json object, const WriteOptions& options) {
  ObjectKey key{t.storage_key(), t.namespaced ? ns : "", name};
  auto compute = [&](const ObjectPtr& current) -> std::optional<json> {
    if (!current) throw ApiError::not_found(t.group, t.plural, name);
    json next = prepare_update(t, *current, object, options, true);
    if (next["metadata"].contains("deletionTimestamp") && !has_finalizers(next))
      return std::nullopt;
    return next;
  };
  if (options.dry_run) {
    auto r = compute(store_->get(key));
    return r ? *r : *store_->get(key);
  }
  ObjectPtr before = store_->get(key);
  auto stored = store_->mutate_optimistic(key, compute);
  after_write(t, before.get(), stored.get());
  return stored ? *stored : *before;
}

json Cluster::patch(const ResourceType& t, const std::string& ns, const std::string& name,
                    const std::string& patch_type, const std::string& body,
                    const WriteOptions& options) {
  ObjectKey key{t.storage_key(), t.namespaced ? ns : "", name};
  const bool apply = patch_type == "apply";
  json applied;
  json patch_doc;
  if (apply) {
    if (options.manager.empty())
      throw ApiError::invalid(
          "PatchOptions", "meta.k8s.io", "",
          {{"FieldValueRequired", "Required value: is required for apply patch", "fieldManager"}});
    applied = decode(body, true, t, options);
    if (!applied.contains("apiVersion") || !applied.contains("kind"))
      throw ApiError::bad_request("invalid object: apiVersion and kind must be set in an apply "
                                  "patch");
    check_type_meta(t, applied);
    if (!applied.contains("metadata") || !applied["metadata"].is_object())
      applied["metadata"] = json::object();
    if (applied["metadata"].contains("name") && applied["metadata"]["name"] != name)
      throw ApiError::bad_request("the name of the object (" + applied["metadata"]["name"].dump() +
                                  ") does not match the name on the URL (" + name + ")");
    applied["metadata"]["name"] = name;
    if (t.namespaced) applied["metadata"]["namespace"] = ns;
    for (const char* f :
         {"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"})
      applied["metadata"].erase(f);
    check_fields_for(t, applied, options);
  } else {
    if (body.empty()) throw ApiError::bad_request("the request body is empty; a patch is required");
    patch_doc = json::parse(body, nullptr, false);
    if (patch_doc.is_discarded())
      throw ApiError::bad_request("the body of the request is not valid JSON");
    if (patch_type == "strategic" && t.custom)
      throw ApiError(415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json-patch+json, application/merge-patch+json, "
                     "application/apply-patch+yaml");
  }
  // Checked before the store's write lock is taken (the check reads the store).
  if (apply && !store_->get(key)) check_namespace(t, ns);
  std::vector<ApplyConflict> conflicts;
  bool created = false;
  auto compute = [&](const ObjectPtr& current) -> std::optional<json> {
    conflicts.clear(); // it may run again, on a newer object
    created = false;
    if (!current) {
      if (!apply || !options.subresource.empty())
        throw ApiError::not_found(t.group, t.plural, name);
      ManagedFieldsInput who{options.manager, t.api_version(), "", now_rfc3339()};
      json merged = server_side_apply(json(), applied, *t.schema, who, options.force, conflicts);
      json mf = merged["metadata"]["managedFields"];
      WriteOptions o = options;
      o.manager.clear();
      json obj = prepare_create(t, ns, merged, o);
      if (mf.empty())
        obj["metadata"].erase("managedFields");
      else
        obj["metadata"]["managedFields"] = mf;
      created = true;
      return obj;
    }
    const json& base = *current;
    json next;
    if (apply) {
      ManagedFieldsInput who{options.manager, t.api_version(), options.subresource, now_rfc3339()};
      next = server_side_apply(base, applied, *t.schema, who, options.force, conflicts);
      if (!conflicts.empty()) {
        std::string msg = "Apply failed with " + std::to_string(conflicts.size()) + " conflict" +
                          (conflicts.size() > 1 ? "s" : "") + ": ";
        ApiError err(409, "Conflict", "");
        std::vector<StatusCause> causes;
        for (std::size_t i = 0; i < conflicts.size(); ++i) {
          std::string m = "conflict with \"" + conflicts[i].manager + "\" using " + t.api_version();
          msg += (i ? "\n" : "") + m + ": " + conflicts[i].path;
          causes.push_back({"FieldManagerConflict", m, conflicts[i].path});
        }
        ApiError e(409, "Conflict", msg);
        e.with_details(name, t.group, t.plural);
        for (auto& c : causes) e.with_cause(c);
        throw e;
      }
      WriteOptions o = options;
      o.manager.clear(); // ownership already computed by apply
      json mf = next["metadata"]["managedFields"];
      next = prepare_update(t, base, next, o, false);
      if (mf.empty())
        next["metadata"].erase("managedFields");
      else
        next["metadata"]["managedFields"] = mf;
    } else {
      if (patch_type == "merge")
        next = apply_merge_patch(base, patch_doc);
      else if (patch_type == "json")
        next = apply_json_patch(base, patch_doc);
      else
        next = apply_strategic_merge_patch(base, patch_doc, t.schema.get());
      if (!next.is_object()) throw ApiError::bad_request("the patch does not leave an object");
      next = prepare_update(t, base, next, options, true);
    }
    if (next["metadata"].contains("deletionTimestamp") && !has_finalizers(next))
      return std::nullopt;
    return next;
  };
  if (options.dry_run) {
    auto r = compute(store_->get(key));
    return r ? *r : json();
  }
  ObjectPtr before = store_->get(key);
  auto stored = store_->mutate_optimistic(key, compute);
  after_write(t, before.get(), stored.get());
  (void)created;
  return stored ? *stored : (before ? *before : json());
}

json Cluster::remove(const ResourceType& t, const std::string& ns, const std::string& name,
                     const DeleteOptions& options) {
  ObjectKey key{t.storage_key(), t.namespaced ? ns : "", name};
  json last;
  auto compute = [&](const ObjectPtr& current) -> std::optional<json> {
    if (!current) throw ApiError::not_found(t.group, t.plural, name);
    const json& meta = (*current)["metadata"];
    if (!options.precondition_uid.empty() && options.precondition_uid != meta.value("uid", ""))
      throw ApiError::conflict(
          t.group, t.plural, name,
          "Precondition failed: UID in precondition: " + options.precondition_uid +
              ", UID in object meta: " + meta.value("uid", ""));
    if (!options.precondition_rv.empty() &&
        options.precondition_rv != meta.value("resourceVersion", ""))
      throw ApiError::conflict(
          t.group, t.plural, name,
          "Precondition failed: ResourceVersion in precondition: " + options.precondition_rv +
              ", ResourceVersion in object meta: " + meta.value("resourceVersion", ""));
    json next = *current;
    last = next;
    bool terminating = meta.contains("deletionTimestamp");
    if (options.propagation == "Orphan")
      add_finalizer(next, "orphan");
    else if (options.propagation == "Foreground")
      add_finalizer(next, "foregroundDeletion");
    long long grace = 0;
    if (t.kind == "Pod") {
      grace = options.grace_period_seconds.value_or(
          (*current).value("/spec/terminationGracePeriodSeconds"_json_pointer, 30LL));
      if (grace > 0 && !(*current).value("/spec/nodeName"_json_pointer, std::string()).empty() &&
          (*current).value("/status/phase"_json_pointer, std::string()) != "Succeeded" &&
          (*current).value("/status/phase"_json_pointer, std::string()) != "Failed") {
        if (!terminating) {
          next["metadata"]["deletionTimestamp"] = now_rfc3339();
          next["metadata"]["deletionGracePeriodSeconds"] = grace;
        }
        last = next;
        return next;
      }
    }
    if (t.kind == "Namespace") {
      if (!terminating) {
        next["metadata"]["deletionTimestamp"] = now_rfc3339();
        next["metadata"]["deletionGracePeriodSeconds"] = 0;
        next["status"]["phase"] = "Terminating";
      }
      last = next;
      return next;
    }
    if (has_finalizers(next)) {
      if (!terminating) {
        next["metadata"]["deletionTimestamp"] = now_rfc3339();
        next["metadata"]["deletionGracePeriodSeconds"] = 0;
      }
      last = next;
      return next;
    }
    return std::nullopt;
  };
  if (options.dry_run) {
    auto r = compute(store_->get(key));
    return r ? *r : last;
  }
  ObjectPtr before = store_->get(key);
  auto stored = store_->mutate(key, compute);
  after_write(t, before.get(), stored.get());
  return stored ? *stored : last;
}

json Cluster::scale_of(const ResourceType& t, const json& object) const {
  const json& m = object["metadata"];
  json scale = {{"kind", "Scale"},
                {"apiVersion", "autoscaling/v1"},
                {"metadata",
                 {{"name", m.value("name", "")},
                  {"namespace", m.value("namespace", "")},
                  {"uid", m.value("uid", "")},
                  {"resourceVersion", m.value("resourceVersion", "")},
                  {"creationTimestamp", m.value("creationTimestamp", "")}}},
                {"spec", json::object()},
                {"status", json::object()}};
  if (t.custom) {
    json r = json_path_get(object, t.spec_replicas_path);
    if (!r.is_null()) scale["spec"]["replicas"] = r;
    json sr = json_path_get(object, t.status_replicas_path);
    scale["status"]["replicas"] = sr.is_null() ? json(0) : sr;
    if (!t.label_selector_path.empty()) {
      json sel = json_path_get(object, t.label_selector_path);
      if (sel.is_string()) scale["status"]["selector"] = sel;
    }
  } else {
    scale["spec"]["replicas"] = object.value("/spec/replicas"_json_pointer, 0);
    scale["status"]["replicas"] = object.value("/status/replicas"_json_pointer, 0);
    std::string sel =
        LabelSelector::from_object(object.value("/spec/selector"_json_pointer, json())).str();
    if (!sel.empty()) scale["status"]["selector"] = sel;
  }
  return scale;
}

ObjectPtr Cluster::modify(const ResourceType& t, const std::string& ns, const std::string& name,
                          const std::function<bool(json&)>& fn, const std::string& manager,
                          const std::string& subresource) {
  ObjectKey key{t.storage_key(), t.namespaced ? ns : "", name};
  ObjectPtr before;
  auto stored = store_->mutate(key, [&](const ObjectPtr& current) -> std::optional<json> {
    before = current;
    if (!current) return std::nullopt;
    json next = *current;
    if (!fn(next)) return *current;
    if (tracks_generation(t) && spec_part(next) != spec_part(*current))
      next["metadata"]["generation"] = (*current)["metadata"].value("generation", 1) + 1;
    if (!manager.empty()) {
      ManagedFieldsInput who{manager, t.api_version(), subresource, now_rfc3339()};
      json mf = record_update(*current, next, *t.schema, who);
      if (mf.empty())
        next["metadata"].erase("managedFields");
      else
        next["metadata"]["managedFields"] = mf;
    }
    if (next["metadata"].contains("deletionTimestamp") && !has_finalizers(next) &&
        t.kind != "Pod" && t.kind != "Namespace")
      return std::nullopt;
    return next;
  });
  if (before && !stored) after_write(t, before.get(), nullptr);
  return stored;
}

void Cluster::record_event(const json& involved, const std::string& type, const std::string& reason,
                           const std::string& message, const std::string& component,
                           const std::string& field_path) {
  const json& m = involved["metadata"];
  std::string ns = m.value("namespace", "default");
  if (ns.empty()) ns = "default";
  std::string agg = m.value("uid", "") + "\x1f" + type + "\x1f" + reason + "\x1f" + message;
  std::string now = now_rfc3339();
  const ResourceType events = type_of("", "Event");
  std::string existing;
  {
    std::lock_guard lock(events_mu_);
    auto it = event_names_.find(agg);
    if (it != event_names_.end()) existing = it->second;
  }
  if (!existing.empty()) {
    auto updated = modify(
        events, ns, existing,
        [&](json& e) {
          e["count"] = e.value("count", 1) + 1;
          e["lastTimestamp"] = now;
          return true;
        },
        "");
    if (updated) return;
  }
  char hex[17];
  std::snprintf(
      hex, sizeof hex, "%016llx",
      static_cast<unsigned long long>(std::chrono::system_clock::now().time_since_epoch().count()) ^
          std::hash<std::string>{}(agg));
  std::string name = m.value("name", "") + "." + hex;
  json involved_ref = {{"kind", involved.value("kind", "")},
                       {"namespace", m.value("namespace", "")},
                       {"name", m.value("name", "")},
                       {"uid", m.value("uid", "")},
                       {"apiVersion", involved.value("apiVersion", "")},
                       {"resourceVersion", m.value("resourceVersion", "")}};
  if (!field_path.empty()) involved_ref["fieldPath"] = field_path;
  if (m.value("namespace", "").empty()) involved_ref.erase("namespace");
  json event = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata",
       {{"name", name}, {"namespace", ns}, {"uid", new_uid()}, {"creationTimestamp", now}}},
      {"involvedObject", involved_ref},
      {"reason", reason},
      {"message", message},
      {"source", {{"component", component}}},
      {"firstTimestamp", now},
      {"lastTimestamp", now},
      {"count", 1},
      {"type", type},
      {"eventTime", nullptr},
      {"reportingComponent", component},
      {"reportingInstance", ""}};
  if (component == "kubelet") {
    event["source"]["host"] = involved.value("/spec/nodeName"_json_pointer, std::string());
    event["reportingInstance"] = event["source"]["host"];
  }
  if (!store_->get({"/namespaces", "", ns})) return;
  store_->mutate({events.storage_key(), ns, name},
                 [&](const ObjectPtr&) -> std::optional<json> { return event; });
  std::lock_guard lock(events_mu_);
  if (event_names_.size() > 50000) event_names_.clear();
  event_names_[agg] = name;
}

ResourceType Cluster::type_of(const std::string& group, const std::string& kind) const {
  for (const auto& t : registry_.all())
    if (t.group == group && t.kind == kind && t.storage) return t;
  throw ApiError::internal("no resource type for kind " + kind);
}

} // namespace capstan::sandbox
