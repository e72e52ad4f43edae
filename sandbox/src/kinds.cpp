// Defaults and validation of the built-in kinds and of custom resources.
#include "kinds.h"

#include "capstan/sandbox/util.h"

#include <atomic>
#include <regex>
#include <set>

namespace capstan::sandbox {

using nlohmann::json;

namespace {

void set_default(json& o, const char* key, const json& value) {
  if (!o.contains(key) || o[key].is_null()) o[key] = value;
}

std::string image_tag(const std::string& image) {
  auto at = image.find('@');
  if (at != std::string::npos) return "@";
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return "";
  return image.substr(colon + 1);
}

void default_container(json& c) {
  if (!c.is_object()) return;
  set_default(c, "terminationMessagePath", "/dev/termination-log");
  set_default(c, "terminationMessagePolicy", "File");
  set_default(c, "resources", json::object());
  if (!c.contains("imagePullPolicy") && c.contains("image") && c["image"].is_string()) {
    std::string tag = image_tag(c["image"]);
    c["imagePullPolicy"] = (tag.empty() || tag == "latest") ? "Always" : "IfNotPresent";
  }
  if (c.contains("ports") && c["ports"].is_array())
    for (auto& p : c["ports"])
      if (p.is_object()) set_default(p, "protocol", "TCP");
  if (c.contains("env") && c["env"].is_array())
    for (auto& e : c["env"])
      if (e.is_object() && e.contains("valueFrom") && e["valueFrom"].is_object() &&
          e["valueFrom"].contains("fieldRef") && e["valueFrom"]["fieldRef"].is_object())
        set_default(e["valueFrom"]["fieldRef"], "apiVersion", "v1");
}

void default_pod_spec(json& spec, bool is_pod, const char* restart_default = "Always") {
  if (!spec.is_object()) return;
  if (restart_default) set_default(spec, "restartPolicy", restart_default);
  set_default(spec, "terminationGracePeriodSeconds", 30);
  set_default(spec, "dnsPolicy", "ClusterFirst");
  set_default(spec, "securityContext", json::object());
  set_default(spec, "schedulerName", "default-scheduler");
  for (const char* list : {"containers", "initContainers"})
    if (spec.contains(list) && spec[list].is_array())
      for (auto& c : spec[list]) default_container(c);
  if (is_pod) {
    set_default(spec, "serviceAccountName", "default");
    set_default(spec, "serviceAccount", spec["serviceAccountName"]);
    set_default(spec, "enableServiceLinks", true);
    set_default(spec, "preemptionPolicy", "PreemptLowerPriority");
    set_default(spec, "priority", 0);
    if (!spec.contains("tolerations")) {
      spec["tolerations"] = json::array({{{"key", "node.kubernetes.io/not-ready"},
                                          {"operator", "Exists"},
                                          {"effect", "NoExecute"},
                                          {"tolerationSeconds", 300}},
                                         {{"key", "node.kubernetes.io/unreachable"},
                                          {"operator", "Exists"},
                                          {"effect", "NoExecute"},
                                          {"tolerationSeconds", 300}}});
    }
  }
}

json& ensure(json& o, const char* key) {
  if (!o.contains(key) || !o[key].is_object()) o[key] = json::object();
  return o[key];
}

void default_template(json& spec, const char* restart_default = "Always") {
  if (!spec.contains("template") || !spec["template"].is_object()) return;
  auto& tmpl = spec["template"];
  if (tmpl.contains("metadata") && tmpl["metadata"].is_object())
    set_default(tmpl["metadata"], "creationTimestamp", nullptr);
  if (tmpl.contains("spec")) default_pod_spec(tmpl["spec"], false, restart_default);
}

std::atomic<unsigned> next_ip{10};
std::atomic<unsigned> next_node_port{30000};

} // namespace

void apply_defaults(const ResourceType& t, json& o) {
  if (!o.is_object()) return;
  if (t.custom) return;
  const std::string& k = t.kind;
  if (k == "Deployment" || k == "ReplicaSet" || k == "StatefulSet" || k == "DaemonSet" ||
      k == "Job") {
    json& spec = ensure(o, "spec");
    if (k != "DaemonSet" && k != "Job") set_default(spec, "replicas", 1);
    if (k == "Deployment") {
      json& strategy = ensure(spec, "strategy");
      set_default(strategy, "type", "RollingUpdate");
      if (strategy["type"] == "RollingUpdate") {
        json& ru = ensure(strategy, "rollingUpdate");
        set_default(ru, "maxSurge", "25%");
        set_default(ru, "maxUnavailable", "25%");
      }
      set_default(spec, "revisionHistoryLimit", 10);
      set_default(spec, "progressDeadlineSeconds", 600);
    }
    if (k == "StatefulSet") {
      set_default(spec, "podManagementPolicy", "OrderedReady");
      json& us = ensure(spec, "updateStrategy");
      set_default(us, "type", "RollingUpdate");
      if (us["type"] == "RollingUpdate") set_default(ensure(us, "rollingUpdate"), "partition", 0);
      set_default(spec, "revisionHistoryLimit", 10);
      json& pvc = ensure(spec, "persistentVolumeClaimRetentionPolicy");
      set_default(pvc, "whenDeleted", "Retain");
      set_default(pvc, "whenScaled", "Retain");
    }
    if (k == "DaemonSet") {
      json& us = ensure(spec, "updateStrategy");
      set_default(us, "type", "RollingUpdate");
      if (us["type"] == "RollingUpdate") {
        json& ru = ensure(us, "rollingUpdate");
        set_default(ru, "maxUnavailable", 1);
        set_default(ru, "maxSurge", 0);
      }
      set_default(spec, "revisionHistoryLimit", 10);
    }
    if (k == "Job") {
      set_default(spec, "parallelism", 1);
      set_default(spec, "completions", 1);
      set_default(spec, "backoffLimit", 6);
      set_default(spec, "completionMode", "NonIndexed");
      set_default(spec, "suspend", false);
      set_default(spec, "podReplacementPolicy", "TerminatingOrFailed");
      default_template(spec, nullptr);
    } else {
      default_template(spec);
    }
  } else if (k == "Pod") {
    if (o.contains("spec")) default_pod_spec(o["spec"], true);
  } else if (k == "Service") {
    json& spec = ensure(o, "spec");
    set_default(spec, "type", "ClusterIP");
    if (spec["type"] != "ExternalName") {
      set_default(spec, "sessionAffinity", "None");
      set_default(spec, "ipFamilies", json::array({"IPv4"}));
      set_default(spec, "ipFamilyPolicy", "SingleStack");
      set_default(spec, "internalTrafficPolicy", "Cluster");
    }
    if (spec["type"] == "NodePort" || spec["type"] == "LoadBalancer")
      set_default(spec, "externalTrafficPolicy", "Cluster");
    if (spec.contains("ports") && spec["ports"].is_array())
      for (auto& p : spec["ports"]) {
        if (!p.is_object()) continue;
        set_default(p, "protocol", "TCP");
        if (p.contains("port")) set_default(p, "targetPort", p["port"]);
      }
  } else if (k == "Secret") {
    set_default(o, "type", "Opaque");
    if (o.contains("stringData") && o["stringData"].is_object()) {
      json& data = ensure(o, "data");
      for (auto it = o["stringData"].begin(); it != o["stringData"].end(); ++it)
        if (it.value().is_string()) data[it.key()] = base64_encode(it.value());
      o.erase("stringData");
    }
  } else if (k == "Namespace") {
    json& labels = ensure(ensure(o, "metadata"), "labels");
    labels["kubernetes.io/metadata.name"] = o["metadata"].value("name", "");
  }
}

void prepare_new(const ResourceType& t, json& o) {
  if (t.custom) return;
  if (t.kind == "Service") {
    json& spec = ensure(o, "spec");
    std::string type = spec.value("type", "ClusterIP");
    if (type != "ExternalName" && (!spec.contains("clusterIP") || spec["clusterIP"] == "")) {
      unsigned n = next_ip++;
      spec["clusterIP"] =
          "10.96." + std::to_string((n / 250) % 250) + "." + std::to_string(n % 250 + 1);
    }
    if (spec.contains("clusterIP"))
      set_default(spec, "clusterIPs", json::array({spec["clusterIP"]}));
    if ((type == "NodePort" || type == "LoadBalancer") && spec.contains("ports"))
      for (auto& p : spec["ports"])
        if (p.is_object() && !p.contains("nodePort"))
          p["nodePort"] = 30000 + (next_node_port++ % 2768);
    o["status"] = {{"loadBalancer", json::object()}};
  } else if (t.kind == "Namespace") {
    o["spec"] = {{"finalizers", {"kubernetes"}}};
    o["status"] = {{"phase", "Active"}};
  } else if (t.kind == "Pod") {
    o["status"] = {{"phase", "Pending"}, {"qosClass", "BestEffort"}};
  } else if (t.status_subresource && t.kind != "Node" && t.kind != "Event") {
    o.erase("status");
    if (t.kind == "Deployment" || t.kind == "ReplicaSet" || t.kind == "StatefulSet" ||
        t.kind == "DaemonSet" || t.kind == "Job")
      o["status"] = json::object();
  }
}

bool tracks_generation(const ResourceType& t) {
  if (t.custom) return true;
  static const std::set<std::string> kinds = {"Deployment",
                                              "ReplicaSet",
                                              "StatefulSet",
                                              "DaemonSet",
                                              "Job",
                                              "Ingress",
                                              "HorizontalPodAutoscaler",
                                              "PodDisruptionBudget",
                                              "CustomResourceDefinition"};
  return kinds.count(t.kind) > 0;
}

namespace {

struct Problems {
  std::vector<StatusCause> list;
  void invalid(const std::string& field, const json& value, const std::string& why) {
    std::string v = value.is_string() ? "\"" + value.get<std::string>() + "\"" : value.dump();
    list.push_back({"FieldValueInvalid", "Invalid value: " + v + ": " + why, field});
  }
  void required(const std::string& field, const std::string& why = "") {
    list.push_back(
        {"FieldValueRequired", why.empty() ? "Required value" : "Required value: " + why, field});
  }
  void unsupported(const std::string& field, const json& value, const std::string& supported) {
    std::string v = value.is_string() ? "\"" + value.get<std::string>() + "\"" : value.dump();
    list.push_back({"FieldValueNotSupported",
                    "Unsupported value: " + v + ": supported values: " + supported, field});
  }
  void immutable(const std::string& field, const json& value,
                 const std::string& why = "field is immutable") {
    std::string v = value.is_string() ? "\"" + value.get<std::string>() + "\"" : value.dump();
    list.push_back({"FieldValueInvalid", "Invalid value: " + v + ": " + why, field});
  }
};

void validate_meta(const ResourceType& t, const json& o, Problems& p) {
  const json meta = o.value("metadata", json::object());
  std::string name = meta.value("name", "");
  std::string err;
  if (t.kind == "Namespace")
    err = check_dns1123_label(name);
  else if (t.kind == "Service")
    err = check_dns1035_label(name);
  else if (t.kind == "CustomResourceDefinition")
    err = "";
  else
    err = check_dns1123_subdomain(name);
  if (name.empty())
    p.required("metadata.name", "name or generateName is required");
  else if (!err.empty())
    p.invalid("metadata.name", name, err);
  if (meta.contains("labels") && meta["labels"].is_object())
    for (auto it = meta["labels"].begin(); it != meta["labels"].end(); ++it) {
      std::string ke = check_label_key(it.key());
      if (!ke.empty()) p.invalid("metadata.labels", it.key(), ke);
      if (it.value().is_string()) {
        std::string ve = check_label_value(it.value());
        if (!ve.empty()) p.invalid("metadata.labels", it.value(), ve);
      }
    }
  if (meta.contains("annotations") && meta["annotations"].is_object()) {
    std::size_t total = 0;
    for (auto it = meta["annotations"].begin(); it != meta["annotations"].end(); ++it) {
      std::string ke = check_label_key(it.key());
      if (!ke.empty()) p.invalid("metadata.annotations", it.key(), ke);
      total +=
          it.key().size() + (it.value().is_string() ? it.value().get<std::string>().size() : 0);
    }
    if (total > 262144)
      p.list.push_back({"FieldValueTooLong", "Too long: must have at most 262144 bytes",
                        "metadata.annotations"});
  }
}

void validate_containers(const json& spec, const std::string& path, Problems& p) {
  if (!spec.is_object()) {
    p.required(path);
    return;
  }
  const json containers = spec.value("containers", json::array());
  if (!containers.is_array() || containers.empty()) {
    p.required(path + ".containers");
    return;
  }
  std::set<std::string> names;
  for (const char* list : {"initContainers", "containers"}) {
    const json cs = spec.value(list, json::array());
    if (!cs.is_array()) continue;
    for (std::size_t i = 0; i < cs.size(); ++i) {
      std::string cp = path + "." + list + "[" + std::to_string(i) + "]";
      const json& c = cs[i];
      std::string name = c.value("name", "");
      if (name.empty())
        p.required(cp + ".name");
      else if (auto e = check_dns1123_label(name); !e.empty())
        p.invalid(cp + ".name", name, e);
      else if (!names.insert(name).second)
        p.list.push_back(
            {"FieldValueDuplicate", "Duplicate value: \"" + name + "\"", cp + ".name"});
      if (c.value("image", "").empty()) p.required(cp + ".image");
      const json ports = c.value("ports", json::array());
      if (ports.is_array())
        for (std::size_t j = 0; j < ports.size(); ++j) {
          const json& port = ports[j];
          long long n = port.value("containerPort", 0LL);
          if (n < 1 || n > 65535)
            p.invalid(cp + ".ports[" + std::to_string(j) + "].containerPort",
                      port.value("containerPort", json(0)),
                      "must be between 1 and 65535, inclusive");
        }
      const json env = c.value("env", json::array());
      if (env.is_array())
        for (std::size_t j = 0; j < env.size(); ++j)
          if (env[j].value("name", "").empty())
            p.required(cp + ".env[" + std::to_string(j) + "].name");
    }
  }
  std::string rp = spec.value("restartPolicy", "Always");
  if (rp != "Always" && rp != "OnFailure" && rp != "Never")
    p.unsupported(path + ".restartPolicy", rp, "\"Always\", \"OnFailure\", \"Never\"");
}

void validate_workload(const ResourceType& t, const json& o, const json* old, Problems& p) {
  const json spec = o.value("spec", json::object());
  const json selector = spec.value("selector", json());
  bool job = t.kind == "Job";
  if (!job) {
    if (!selector.is_object() || (selector.value("matchLabels", json::object()).empty() &&
                                  selector.value("matchExpressions", json::array()).empty())) {
      if (selector.is_object() || !selector.is_null())
        p.invalid("spec.selector", selector.is_null() ? json::object() : selector,
                  "empty selector is invalid for deployment");
      else
        p.required("spec.selector");
    }
  }
  const json tmpl = spec.value("template", json());
  if (!tmpl.is_object()) {
    p.required("spec.template");
  } else {
    json labels = tmpl.value("/metadata/labels"_json_pointer, json::object());
    if (!job && selector.is_object() && !LabelSelector::from_object(selector).empty() &&
        !LabelSelector::from_object(selector).matches(labels))
      p.invalid("spec.template.metadata.labels", labels,
                "`selector` does not match template `labels`");
    validate_containers(tmpl.value("spec", json()), "spec.template.spec", p);
    if (job) {
      std::string rp = tmpl.value("/spec/restartPolicy"_json_pointer, std::string());
      if (rp != "OnFailure" && rp != "Never")
        p.unsupported("spec.template.spec.restartPolicy", rp, "\"OnFailure\", \"Never\"");
    }
  }
  if (spec.contains("replicas") && spec["replicas"].is_number_integer() &&
      spec["replicas"].get<long long>() < 0)
    p.invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0");
  if (t.kind == "Deployment") {
    const json strategy = spec.value("strategy", json::object());
    std::string type = strategy.value("type", "RollingUpdate");
    if (type != "RollingUpdate" && type != "Recreate")
      p.unsupported("spec.strategy.type", type, "\"Recreate\", \"RollingUpdate\"");
    if (type == "Recreate" && strategy.contains("rollingUpdate") &&
        !strategy["rollingUpdate"].is_null())
      p.list.push_back({"FieldValueForbidden",
                        "Forbidden: may not be specified when strategy `type` is 'Recreate'",
                        "spec.strategy.rollingUpdate"});
    if (type == "RollingUpdate") {
      const json ru = strategy.value("rollingUpdate", json::object());
      auto zero = [](const json& v) { return v.is_null() || v == 0 || v == "0%" || v == "0"; };
      if (zero(ru.value("maxSurge", json())) && zero(ru.value("maxUnavailable", json())))
        p.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.value("maxUnavailable", json(0)),
                  "may not be 0 when `maxSurge` is 0");
      for (const char* f : {"maxSurge", "maxUnavailable"}) {
        const json v = ru.value(f, json());
        if (v.is_string()) {
          static const std::regex pct("[0-9]+%");
          if (!std::regex_match(v.get<std::string>(), pct))
            p.invalid(std::string("spec.strategy.rollingUpdate.") + f, v,
                      "a valid percent string must be a numeric string followed by an ending '%' "
                      "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
        } else if (v.is_number_integer() && v.get<long long>() < 0) {
          p.invalid(std::string("spec.strategy.rollingUpdate.") + f, v,
                    "must be greater than or equal to 0");
        }
      }
    }
  }
  if (old && !job) {
    json old_sel = old->value("/spec/selector"_json_pointer, json());
    if (old_sel != selector)
      p.immutable("spec.selector", selector.is_null() ? json::object() : selector);
  }
  if (old && job) {
    json old_tmpl = old->value("/spec/template"_json_pointer, json());
    if (old_tmpl != tmpl) p.immutable("spec.template", json("..."));
  }
}

void validate_service(const json& o, const json* old, Problems& p) {
  const json spec = o.value("spec", json::object());
  std::string type = spec.value("type", "ClusterIP");
  if (type != "ClusterIP" && type != "NodePort" && type != "LoadBalancer" && type != "ExternalName")
    p.unsupported("spec.type", type,
                  "\"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"");
  const json ports = spec.value("ports", json::array());
  bool headless = spec.value("clusterIP", "") == "None";
  if (type != "ExternalName" && !headless && (!ports.is_array() || ports.empty()))
    p.required("spec.ports");
  if (ports.is_array()) {
    std::set<std::string> names;
    for (std::size_t i = 0; i < ports.size(); ++i) {
      std::string pp = "spec.ports[" + std::to_string(i) + "]";
      long long port = ports[i].value("port", 0LL);
      if (port < 1 || port > 65535)
        p.invalid(pp + ".port", ports[i].value("port", json(0)),
                  "must be between 1 and 65535, inclusive");
      std::string name = ports[i].value("name", "");
      if (ports.size() > 1 && name.empty()) p.required(pp + ".name");
      if (!name.empty() && !names.insert(name).second)
        p.list.push_back(
            {"FieldValueDuplicate", "Duplicate value: \"" + name + "\"", pp + ".name"});
      std::string proto = ports[i].value("protocol", "TCP");
      if (proto != "TCP" && proto != "UDP" && proto != "SCTP")
        p.unsupported(pp + ".protocol", proto, "\"SCTP\", \"TCP\", \"UDP\"");
    }
  }
  if (type == "ExternalName" && spec.value("externalName", "").empty())
    p.required("spec.externalName");
  if (old) {
    std::string before = old->value("/spec/clusterIP"_json_pointer, std::string());
    std::string after = spec.value("clusterIP", "");
    if (!before.empty() && !after.empty() && before != after)
      p.immutable("spec.clusterIP", after, "field is immutable");
  }
}

void validate_required(const Schema& s, const json& v, const std::string& path, Problems& p) {
  if (s.type == SchemaType::kObject && v.is_object()) {
    for (const auto& r : s.required)
      if (!v.contains(r)) p.required(path.empty() ? r : path + "." + r);
    for (auto it = v.begin(); it != v.end(); ++it)
      if (const Schema* c = s.property(it.key()); c && it.key() != "metadata")
        validate_required(*c, it.value(), path.empty() ? it.key() : path + "." + it.key(), p);
    if (!s.enum_values.empty()) return;
  } else if (s.type == SchemaType::kList && v.is_array() && s.items) {
    for (std::size_t i = 0; i < v.size(); ++i)
      validate_required(*s.items, v[i], path + "[" + std::to_string(i) + "]", p);
  } else if (s.type == SchemaType::kMap && v.is_object() && s.items) {
    for (auto it = v.begin(); it != v.end(); ++it)
      validate_required(*s.items, it.value(), path + "." + it.key(), p);
  } else if (v.is_string() && !s.enum_values.empty()) {
    if (std::find(s.enum_values.begin(), s.enum_values.end(), v.get<std::string>()) ==
        s.enum_values.end()) {
      std::string sup;
      for (const auto& e : s.enum_values) sup += (sup.empty() ? "" : ", ") + ("\"" + e + "\"");
      p.unsupported(path, v, sup);
    }
  }
}

} // namespace

std::vector<StatusCause> validate_object(const ResourceType& t, const json& o, const json* old) {
  Problems p;
  validate_meta(t, o, p);
  const std::string& k = t.kind;
  if (t.custom) {
    if (t.schema) validate_required(*t.schema, o, "", p);
    return p.list;
  }
  if (k == "Deployment" || k == "ReplicaSet" || k == "StatefulSet" || k == "DaemonSet" ||
      k == "Job")
    validate_workload(t, o, old, p);
  else if (k == "Pod")
    validate_containers(o.value("spec", json()), "spec", p);
  else if (k == "Service")
    validate_service(o, old, p);
  else if (k == "ConfigMap" || k == "Secret") {
    static const std::regex key_re("[-._a-zA-Z0-9]+");
    for (const char* f : {"data", "binaryData"}) {
      const json d = o.value(f, json::object());
      if (!d.is_object()) continue;
      for (auto it = d.begin(); it != d.end(); ++it) {
        if (!std::regex_match(it.key(), key_re) || it.key().size() > 253)
          p.invalid(std::string(f) + "[" + it.key() + "]", it.key(),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
                    "is '[-._a-zA-Z0-9]+')");
        if (k == "Secret" && it.value().is_string() && !base64_decode(it.value()))
          p.invalid(std::string(f) + "[" + it.key() + "]", "<secret contents redacted>",
                    "illegal base64 data");
      }
    }
    if (old && old->value("immutable", false)) {
      if (old->value("data", json()) != o.value("data", json()) ||
          old->value("binaryData", json()) != o.value("binaryData", json()))
        p.list.push_back({"FieldValueForbidden",
                          "Forbidden: field is immutable when `immutable` is set", "data"});
    }
  } else if (k == "HorizontalPodAutoscaler") {
    const json spec = o.value("spec", json::object());
    if (!spec.contains("scaleTargetRef")) p.required("spec.scaleTargetRef");
    if (spec.value("maxReplicas", 0) < 1)
      p.invalid("spec.maxReplicas", spec.value("maxReplicas", json(0)),
                "must be greater than or equal to 1");
  } else if (k == "Ingress") {
    // Rules and backends are passed through as given.
  }
  return p.list;
}

} // namespace capstan::sandbox
