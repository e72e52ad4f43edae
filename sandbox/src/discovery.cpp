// Legacy discovery and OpenAPI v3 documents generated from the registry and its schemas.
#include "discovery.h"

#include <openssl/sha.h>

#include <cstdio>

namespace capstan::sandbox {

using nlohmann::json;

json version_info() {
  return {{"major", "1"},
          {"minor", "32"},
          {"gitVersion", "v1.32.0-capstan-sandbox"},
          {"gitCommit", "0000000000000000000000000000000000000000"},
          {"gitTreeState", "clean"},
          {"buildDate", "2026-01-01T00:00:00Z"},
          {"goVersion", "go1.23.0"},
          {"compiler", "gc"},
          {"platform", "linux/amd64"}};
}

json api_versions(const std::string& server_address) {
  return {{"kind", "APIVersions"},
          {"versions", {"v1"}},
          {"serverAddressByClientCIDRs",
           {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_address}}}}};
}

namespace {

json group_entry(const std::string& name, const std::vector<std::string>& versions) {
  json g = {{"name", name}, {"versions", json::array()}};
  for (const auto& v : versions)
    g["versions"].push_back({{"groupVersion", name + "/" + v}, {"version", v}});
  g["preferredVersion"] = {{"groupVersion", name + "/" + versions.front()},
                           {"version", versions.front()}};
  return g;
}

std::string short_hash(const std::string& s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  char out[17];
  for (int i = 0; i < 8; ++i) std::snprintf(out + 2 * i, 3, "%02x", md[i]);
  return std::string(out, 16);
}

} // namespace

json api_group_list(const Registry& registry) {
  json out = {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", json::array()}};
  for (const auto& [g, versions] : registry.groups())
    if (!g.empty()) out["groups"].push_back(group_entry(g, versions));
  return out;
}

std::optional<json> api_group(const Registry& registry, const std::string& group) {
  for (const auto& [g, versions] : registry.groups()) {
    if (g != group || g.empty()) continue;
    json out = group_entry(g, versions);
    out["kind"] = "APIGroup";
    out["apiVersion"] = "v1";
    return out;
  }
  return std::nullopt;
}

std::optional<json> api_resource_list(const Registry& registry, const std::string& group,
                                      const std::string& version) {
  json resources = json::array();
  bool found = false;
  for (const auto& t : registry.all()) {
    if (t.group != group || t.version != version) continue;
    found = true;
    json r = {{"name", t.plural},
              {"singularName", t.singular},
              {"namespaced", t.namespaced},
              {"kind", t.kind},
              {"verbs",
               {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}},
              {"storageVersionHash", short_hash(t.qualified()).substr(0, 11)}};
    if (!t.short_names.empty()) r["shortNames"] = t.short_names;
    if (!t.categories.empty()) r["categories"] = t.categories;
    resources.push_back(r);
    if (t.scale_subresource)
      resources.push_back({{"name", t.plural + "/scale"},
                           {"singularName", t.singular},
                           {"namespaced", t.namespaced},
                           {"group", "autoscaling"},
                           {"version", "v1"},
                           {"kind", "Scale"},
                           {"verbs", {"get", "patch", "update"}}});
    if (t.status_subresource)
      resources.push_back({{"name", t.plural + "/status"},
                           {"singularName", t.singular},
                           {"namespaced", t.namespaced},
                           {"kind", t.kind},
                           {"verbs", {"get", "patch", "update"}}});
  }
  if (!found) return std::nullopt;
  return json{{"kind", "APIResourceList"},
              {"apiVersion", "v1"},
              {"groupVersion", group.empty() ? version : group + "/" + version},
              {"resources", resources}};
}

namespace {

std::string op_id_part(const std::string& s) {
  std::string out;
  bool up = true;
  for (char c : s) {
    if (c == '.' || c == '-' || c == '/') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    up = false;
  }
  return out;
}

json query_param(const std::string& name, const std::string& description,
                 const std::string& type = "string") {
  return {{"name", name},
          {"in", "query"},
          {"description", description},
          {"schema", {{"type", type}, {"uniqueItems", true}}}};
}

json write_params(bool patch) {
  json p = json::array(
      {query_param("dryRun", "When present, indicates that modifications should not be persisted."),
       query_param("fieldManager", "fieldManager is a name associated with the actor or entity "
                                   "that is making these changes."),
       query_param("fieldValidation",
                   "fieldValidation instructs the server on how to handle objects in the request "
                   "containing unknown or duplicate fields. Valid values are: Ignore, Warn, "
                   "Strict.")});
  if (patch)
    p.push_back(query_param("force", "Force is going to \"force\" Apply requests.", "boolean"));
  return p;
}

json response(const std::string& ref) {
  json schema = {{"$ref", "#/components/schemas/" + ref}};
  return {{"200",
           {{"description", "OK"},
            {"content",
             {{"application/json", {{"schema", schema}}},
              {"application/yaml", {{"schema", schema}}}}}}}};
}

} // namespace

json openapi_index(const Registry& registry) {
  json paths = json::object();
  for (const auto& [g, versions] : registry.groups()) {
    for (const auto& v : versions) {
      std::string key = g.empty() ? "api/" + v : "apis/" + g + "/" + v;
      auto doc = openapi_document(registry, g, v);
      std::string hash = doc ? short_hash(doc->dump()) : "0";
      paths[key] = {{"serverRelativeURL", "/openapi/v3/" + key + "?hash=" + hash}};
    }
  }
  return {{"paths", paths}};
}

std::optional<json> openapi_document(const Registry& registry, const std::string& group,
                                     const std::string& version) {
  json components = json::object();
  json paths = json::object();
  bool found = false;
  std::string gv_prefix = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  std::string op_gv = op_id_part(group.empty() ? "core" : group) + op_id_part(version);
  for (const auto& t : registry.all()) {
    if (t.group != group || t.version != version) continue;
    found = true;
    json kind_schema = to_openapi(*t.schema, components);
    std::string ref;
    if (!t.schema->name.empty()) {
      ref = t.schema->name;
    } else {
      // Custom resources: named after the group's reversed domain, as the API server does.
      std::string rev;
      std::string g = t.group;
      std::vector<std::string> parts;
      std::size_t start = 0;
      while (true) {
        auto dot = g.find('.', start);
        parts.push_back(g.substr(start, dot - start));
        if (dot == std::string::npos) break;
        start = dot + 1;
      }
      for (auto it = parts.rbegin(); it != parts.rend(); ++it)
        rev += (rev.empty() ? "" : ".") + *it;
      ref = rev + "." + t.version + "." + t.kind;
      components[ref] = kind_schema;
    }
    json gvk = {{"group", t.group}, {"kind", t.kind}, {"version", t.version}};
    components[ref]["x-kubernetes-group-version-kind"] = json::array({gvk});
    std::string list_ref = ref + "List";
    components[list_ref] = {
        {"type", "object"},
        {"properties",
         {{"apiVersion", {{"type", "string"}}},
          {"kind", {{"type", "string"}}},
          {"items", {{"type", "array"}, {"items", {{"$ref", "#/components/schemas/" + ref}}}}},
          {"metadata", {{"type", "object"}}}}},
        {"x-kubernetes-group-version-kind",
         json::array({{{"group", t.group}, {"kind", t.list_kind}, {"version", t.version}}})}};
    std::string base = gv_prefix + (t.namespaced ? "/namespaces/{namespace}/" : "/") + t.plural;
    std::string scope = t.namespaced ? "Namespaced" : "";
    std::string kind_id = op_gv + scope + t.kind;
    auto op = [&](const std::string& verb, const std::string& action, json params,
                  const std::string& out_ref) {
      json o = {{"operationId", verb + kind_id},
                {"x-kubernetes-action", action},
                {"x-kubernetes-group-version-kind", gvk},
                {"responses", response(out_ref)}};
      if (!params.empty()) o["parameters"] = params;
      return o;
    };
    json name_param = {
        {"name", "name"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}};
    json ns_param = {{"name", "namespace"},
                     {"in", "path"},
                     {"required", true},
                     {"schema", {{"type", "string"}}}};
    json common = json::array();
    if (t.namespaced) common.push_back(ns_param);
    json coll = {
        {"get",
         op("list", "list",
            json::array(
                {query_param(
                     "labelSelector",
                     "A selector to restrict the list of returned objects by their labels."),
                 query_param(
                     "fieldSelector",
                     "A selector to restrict the list of returned objects by their fields."),
                 query_param("watch", "Watch for changes to the described resources.", "boolean"),
                 query_param("resourceVersion", "resourceVersion sets a constraint on what "
                                                "resource versions a request may be served from."),
                 query_param("limit",
                             "limit is a maximum number of responses to return for a list call.",
                             "integer"),
                 query_param("continue", "The continue option should be set when retrieving more "
                                         "results from the server.")}),
            list_ref)},
        {"post", op("create", "post", write_params(false), ref)},
        {"delete", op("deleteCollection", "deletecollection", json::array(), ref)}};
    if (!common.empty()) coll["parameters"] = common;
    paths[base] = coll;
    json item_common = common;
    item_common.push_back(name_param);
    json item = {
        {"get", op("read", "get", json::array(), ref)},
        {"put", op("replace", "put", write_params(false), ref)},
        {"patch", op("patch", "patch", write_params(true), ref)},
        {"delete",
         op("delete", "delete",
            json::array(
                {query_param("dryRun",
                             "When present, indicates that modifications should not be persisted."),
                 query_param("gracePeriodSeconds",
                             "The duration in seconds before the object should be deleted.",
                             "integer"),
                 query_param("propagationPolicy",
                             "Whether and how garbage collection will be performed.")}),
            ref)},
        {"parameters", item_common}};
    item["patch"]["requestBody"] = {
        {"content",
         {{"application/apply-patch+yaml", {{"schema", {{"type", "object"}}}}},
          {"application/json-patch+json", {{"schema", {{"type", "object"}}}}},
          {"application/merge-patch+json", {{"schema", {{"type", "object"}}}}},
          {"application/strategic-merge-patch+json", {{"schema", {{"type", "object"}}}}}}},
        {"required", true}};
    paths[base + "/{name}"] = item;
    if (t.status_subresource) {
      json st = item;
      st.erase("delete");
      for (auto& [verb, o] : st.items())
        if (o.is_object() && o.contains("operationId"))
          o["operationId"] = o["operationId"].get<std::string>() + "Status";
      paths[base + "/{name}/status"] = st;
    }
    if (t.scale_subresource) {
      json scale_gvk = {{"group", "autoscaling"}, {"kind", "Scale"}, {"version", "v1"}};
      json sc = item;
      sc.erase("delete");
      for (auto& [verb, o] : sc.items())
        if (o.is_object() && o.contains("operationId")) {
          o["operationId"] = o["operationId"].get<std::string>() + "Scale";
          o["x-kubernetes-group-version-kind"] = scale_gvk;
          o["responses"] = response("io.k8s.api.autoscaling.v1.Scale");
        }
      paths[base + "/{name}/scale"] = sc;
      if (auto s = builtin_schema("autoscaling", "v1", "Scale")) {
        to_openapi(*s, components);
        components["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"] =
            json::array({scale_gvk});
      }
    }
  }
  if (!found) return std::nullopt;
  return json{{"openapi", "3.0.0"},
              {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
              {"paths", paths},
              {"components", {{"schemas", components}}}};
}

} // namespace capstan::sandbox
