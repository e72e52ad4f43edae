// Table columns and cells per kind, matching the API server's printers.
#include "tables.h"

#include "capstan/sandbox/util.h"

#include <functional>

namespace capstan::sandbox {

using nlohmann::json;

namespace {

struct Column {
  std::string name, type, format, description;
  int priority = 0;
  std::function<json(const json&)> cell;
};

std::string human_duration(long long s) {
  if (s < -1) return "<invalid>";
  if (s < 0) s = 0;
  auto str = [](long long v) { return std::to_string(v); };
  if (s < 120) return str(s) + "s";
  long long m = s / 60;
  if (m < 10) return s % 60 == 0 ? str(m) + "m" : str(m) + "m" + str(s % 60) + "s";
  if (m < 180) return str(m) + "m";
  long long h = s / 3600;
  if (h < 8) return m % 60 == 0 ? str(h) + "h" : str(h) + "h" + str(m % 60) + "m";
  if (h < 48) return str(h) + "h";
  if (h < 192) return h % 24 == 0 ? str(h / 24) + "d" : str(h / 24) + "d" + str(h % 24) + "h";
  if (h < 24 * 365 * 2) return str(h / 24) + "d";
  if (h < 24 * 365 * 8) return str(h / 24 / 365) + "y" + str((h / 24) % 365) + "d";
  return str(h / 24 / 365) + "y";
}

json get(const json& o, const char* ptr, json def = json()) {
  json::json_pointer p(ptr);
  return o.contains(p) ? o[p] : def;
}
long long geti(const json& o, const char* ptr) {
  json v = get(o, ptr, 0);
  return v.is_number() ? v.get<long long>() : 0;
}
std::string gets(const json& o, const char* ptr, const std::string& def = "") {
  json v = get(o, ptr);
  return v.is_string() ? v.get<std::string>() : def;
}

json age(const json& o) {
  return human_age(gets(o, "/metadata/creationTimestamp"));
}
json name(const json& o) {
  return gets(o, "/metadata/name");
}

std::string join(const std::vector<std::string>& v, const std::string& sep = ",") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string containers(const json& o, const char* ptr, const char* field) {
  std::vector<std::string> out;
  json cs = get(o, ptr, json::array());
  if (cs.is_array())
    for (const auto& c : cs) out.push_back(c.value(field, ""));
  return join(out);
}

std::string selector_str(const json& o) {
  json s = get(o, "/spec/selector");
  if (s.is_null()) return "<none>";
  std::string str = LabelSelector::from_object(s).str();
  return str.empty() ? "<none>" : str;
}

std::string map_selector(const json& o) {
  json s = get(o, "/spec/selector");
  if (!s.is_object() || s.empty()) return "<none>";
  std::vector<std::string> out;
  for (auto it = s.begin(); it != s.end(); ++it)
    out.push_back(it.key() + "=" +
                  (it.value().is_string() ? it.value().get<std::string>() : it.value().dump()));
  return join(out);
}

Column col(std::string n, std::string type, std::function<json(const json&)> f, int priority = 0,
           std::string format = "", std::string description = "") {
  return {std::move(n),           std::move(type), std::move(format),
          std::move(description), priority,        std::move(f)};
}

Column name_col() {
  return col("Name", "string", name, 0, "name",
             "Name must be unique within a namespace. Is required when creating resources, "
             "although some resources may allow a client to request the generation of an "
             "appropriate name automatically.");
}
Column age_col() {
  return col("Age", "string", age, 0, "",
             "CreationTimestamp is a timestamp representing the server time when this object "
             "was created.");
}

std::string pod_status(const json& p) {
  if (!gets(p, "/metadata/deletionTimestamp").empty()) return "Terminating";
  std::string reason = gets(p, "/status/reason");
  std::string phase = gets(p, "/status/phase", "Pending");
  std::string out = reason.empty() ? phase : reason;
  json ics = get(p, "/status/initContainerStatuses", json::array());
  for (std::size_t i = 0; i < ics.size(); ++i) {
    const json& s = ics[i];
    if (s.contains("/state/terminated"_json_pointer) &&
        s["state"]["terminated"].value("exitCode", 0) == 0)
      continue;
    if (s.contains("/state/waiting/reason"_json_pointer) &&
        s["state"]["waiting"]["reason"] != "PodInitializing")
      return "Init:" + s["state"]["waiting"]["reason"].get<std::string>();
    return "Init:" + std::to_string(i) + "/" + std::to_string(ics.size());
  }
  json cs = get(p, "/status/containerStatuses", json::array());
  bool running = false;
  for (auto it = cs.rbegin(); it != cs.rend(); ++it) {
    const json& s = *it;
    if (s.contains("/state/waiting/reason"_json_pointer) && s["state"]["waiting"]["reason"] != "")
      out = s["state"]["waiting"]["reason"];
    else if (s.contains("/state/terminated/reason"_json_pointer) &&
             s["state"]["terminated"]["reason"] != "")
      out = s["state"]["terminated"]["reason"];
    else if (s.contains("/state/terminated"_json_pointer))
      out = "ExitCode:" + std::to_string(s["state"]["terminated"].value("exitCode", 0));
    else if (s.value("ready", false) && s.contains("/state/running"_json_pointer))
      running = true;
  }
  if (out == "Completed" && running) out = "Running";
  return out;
}

std::vector<Column> columns_for(const ResourceType& t) {
  const std::string& k = t.kind;
  if (t.custom) {
    std::vector<Column> c{name_col()};
    for (const auto& pc : t.printer_columns) {
      std::string path = pc.json_path;
      std::string type = pc.type;
      c.push_back(col(
          pc.name, pc.type == "date" ? "string" : pc.type,
          [path, type](const json& o) -> json {
            json v = json_path_get(o, path);
            if (type == "date" && v.is_string()) return human_age(v);
            if (v.is_null()) return json();
            if (type == "string" && !v.is_string()) return v.dump();
            return v;
          },
          pc.priority, pc.format, pc.description));
    }
    bool has_age = false;
    for (const auto& pc : t.printer_columns) has_age = has_age || pc.name == "Age";
    if (!has_age) c.push_back(age_col());
    return c;
  }
  if (k == "Pod")
    return {name_col(),
            col(
                "Ready", "string",
                [](const json& p) {
                  json cs = get(p, "/status/containerStatuses", json::array());
                  long long ready = 0;
                  for (const auto& s : cs) ready += s.value("ready", false) ? 1 : 0;
                  long long total = get(p, "/spec/containers", json::array()).size();
                  return std::to_string(ready) + "/" + std::to_string(total);
                },
                0, "", "The aggregate readiness state of this pod for accepting traffic."),
            col(
                "Status", "string", [](const json& p) { return pod_status(p); }, 0, "",
                "The aggregate status of the containers in this pod."),
            col(
                "Restarts", "string",
                [](const json& p) {
                  long long n = 0;
                  for (const auto& s : get(p, "/status/containerStatuses", json::array()))
                    n += s.value("restartCount", 0);
                  return std::to_string(n);
                },
                0, "",
                "The number of times the containers in this pod have been restarted and when the "
                "last container in this pod has restarted."),
            age_col(),
            col(
                "IP", "string", [](const json& p) { return gets(p, "/status/podIP", "<none>"); }, 1,
                "",
                "IP address allocated to the pod. Routable at least within the cluster. Empty if "
                "not yet allocated."),
            col(
                "Node", "string", [](const json& p) { return gets(p, "/spec/nodeName", "<none>"); },
                1, "", "NodeName is a request to schedule this pod onto a specific node."),
            col(
                "Nominated Node", "string", [](const json&) { return "<none>"; }, 1, "",
                "nominatedNodeName is set only when this pod preempts other pods on the node."),
            col(
                "Readiness Gates", "string", [](const json&) { return "<none>"; }, 1, "",
                "If specified, all readiness gates will be evaluated for pod readiness.")};
  if (k == "Deployment")
    return {
        name_col(),
        col(
            "Ready", "string",
            [](const json& d) {
              return std::to_string(geti(d, "/status/readyReplicas")) + "/" +
                     std::to_string(geti(d, "/spec/replicas"));
            },
            0, "", "Number of the pod with ready state"),
        col(
            "Up-to-date", "integer",
            [](const json& d) { return geti(d, "/status/updatedReplicas"); }, 0, "",
            "Total number of non-terminated pods targeted by this deployment that have the desired "
            "template spec."),
        col(
            "Available", "integer",
            [](const json& d) { return geti(d, "/status/availableReplicas"); }, 0, "",
            "Total number of available pods (ready for at least minReadySeconds) targeted by this "
            "deployment."),
        age_col(),
        col(
            "Containers", "string",
            [](const json& d) { return containers(d, "/spec/template/spec/containers", "name"); },
            1, "", "Names of each container in the template."),
        col(
            "Images", "string",
            [](const json& d) { return containers(d, "/spec/template/spec/containers", "image"); },
            1, "", "Images referenced by each container in the template."),
        col("Selector", "string", selector_str, 1, "",
            "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be "
            "the ones affected by this deployment.")};
  if (k == "ReplicaSet")
    return {
        name_col(),
        col(
            "Desired", "integer", [](const json& r) { return geti(r, "/spec/replicas"); }, 0, "",
            "Replicas is the number of desired replicas."),
        col(
            "Current", "integer", [](const json& r) { return geti(r, "/status/replicas"); }, 0, "",
            "Replicas is the most recently observed number of replicas."),
        col(
            "Ready", "integer", [](const json& r) { return geti(r, "/status/readyReplicas"); }, 0,
            "", "The number of ready replicas for this replica set."),
        age_col(),
        col(
            "Containers", "string",
            [](const json& d) { return containers(d, "/spec/template/spec/containers", "name"); },
            1),
        col(
            "Images", "string",
            [](const json& d) { return containers(d, "/spec/template/spec/containers", "image"); },
            1),
        col("Selector", "string", selector_str, 1)};
  if (k == "StatefulSet")
    return {
        name_col(),
        col(
            "Ready", "string",
            [](const json& s) {
              return std::to_string(geti(s, "/status/readyReplicas")) + "/" +
                     std::to_string(geti(s, "/spec/replicas"));
            },
            0, "", "Number of the pod with ready state"),
        age_col(),
        col(
            "Containers", "string",
            [](const json& d) { return containers(d, "/spec/template/spec/containers", "name"); },
            1),
        col(
            "Images", "string",
            [](const json& d) { return containers(d, "/spec/template/spec/containers", "image"); },
            1)};
  if (k == "DaemonSet")
    return {
        name_col(),
        col("Desired", "integer",
            [](const json& d) { return geti(d, "/status/desiredNumberScheduled"); }),
        col("Current", "integer",
            [](const json& d) { return geti(d, "/status/currentNumberScheduled"); }),
        col("Ready", "integer", [](const json& d) { return geti(d, "/status/numberReady"); }),
        col("Up-to-date", "integer",
            [](const json& d) { return geti(d, "/status/updatedNumberScheduled"); }),
        col("Available", "integer",
            [](const json& d) { return geti(d, "/status/numberAvailable"); }),
        col("Node Selector", "string",
            [](const json& d) {
              json ns = get(d, "/spec/template/spec/nodeSelector", json::object());
              std::vector<std::string> out;
              for (auto it = ns.begin(); it != ns.end(); ++it)
                out.push_back(it.key() + "=" + it.value().get<std::string>());
              return out.empty() ? std::string("<none>") : join(out);
            }),
        age_col(),
        col(
            "Containers", "string",
            [](const json& d) { return containers(d, "/spec/template/spec/containers", "name"); },
            1),
        col(
            "Images", "string",
            [](const json& d) { return containers(d, "/spec/template/spec/containers", "image"); },
            1),
        col("Selector", "string", selector_str, 1)};
  if (k == "Job")
    return {
        name_col(),
        col(
            "Status", "string",
            [](const json& j) {
              for (const auto& c : get(j, "/status/conditions", json::array())) {
                if (c.value("status", "") != "True") continue;
                std::string type = c.value("type", "");
                if (type == "Complete") return std::string("Complete");
                if (type == "Failed") return std::string("Failed");
                if (type == "Suspended") return std::string("Suspended");
                if (type == "FailureTarget") return std::string("FailureTarget");
                if (type == "SuccessCriteriaMet") return std::string("SuccessCriteriaMet");
              }
              return std::string("Running");
            },
            0, "", "Status of the job."),
        col(
            "Completions", "string",
            [](const json& j) {
              return std::to_string(geti(j, "/status/succeeded")) + "/" +
                     std::to_string(geti(j, "/spec/completions"));
            },
            0, "", "The number of pods which reached phase Succeeded."),
        col(
            "Duration", "string",
            [](const json& j) {
              auto start = parse_rfc3339(gets(j, "/status/startTime"));
              if (!start) return std::string();
              auto end = parse_rfc3339(gets(j, "/status/completionTime"));
              auto until = end ? *end : std::chrono::system_clock::now();
              return human_duration(
                  std::chrono::duration_cast<std::chrono::seconds>(until - *start).count());
            },
            0, "", "Time required to complete the job."),
        age_col(),
        col(
            "Containers", "string",
            [](const json& d) { return containers(d, "/spec/template/spec/containers", "name"); },
            1),
        col(
            "Images", "string",
            [](const json& d) { return containers(d, "/spec/template/spec/containers", "image"); },
            1),
        col("Selector", "string", selector_str, 1)};
  if (k == "Service")
    return {
        name_col(),
        col(
            "Type", "string", [](const json& s) { return gets(s, "/spec/type", "ClusterIP"); }, 0,
            "", "type determines how the Service is exposed."),
        col(
            "Cluster-IP", "string",
            [](const json& s) { return gets(s, "/spec/clusterIP", "<none>"); }, 0, "",
            "clusterIP is the IP address of the service."),
        col(
            "External-IP", "string",
            [](const json& s) {
              std::string type = gets(s, "/spec/type", "ClusterIP");
              if (type == "ExternalName") return gets(s, "/spec/externalName");
              json ips = get(s, "/spec/externalIPs", json::array());
              std::vector<std::string> out;
              for (const auto& i : ips) out.push_back(i);
              if (type == "LoadBalancer" && out.empty()) return std::string("<pending>");
              return out.empty() ? std::string("<none>") : join(out);
            },
            0, "",
            "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
            "traffic for this service."),
        col(
            "Port(s)", "string",
            [](const json& s) {
              std::vector<std::string> out;
              for (const auto& p : get(s, "/spec/ports", json::array())) {
                std::string e = std::to_string(p.value("port", 0));
                if (p.contains("nodePort")) e += ":" + std::to_string(p.value("nodePort", 0));
                e += "/" + p.value("protocol", std::string("TCP"));
                out.push_back(e);
              }
              return out.empty() ? std::string("<none>") : join(out);
            },
            0, "", "The list of ports that are exposed by this service."),
        age_col(),
        col("Selector", "string", map_selector, 1, "",
            "Route service traffic to pods with label keys and values matching this selector.")};
  if (k == "ConfigMap")
    return {name_col(),
            col(
                "Data", "integer",
                [](const json& c) {
                  return static_cast<long long>(get(c, "/data", json::object()).size() +
                                                get(c, "/binaryData", json::object()).size());
                },
                0, "", "Data contains the configuration data."),
            age_col()};
  if (k == "Secret")
    return {name_col(),
            col(
                "Type", "string", [](const json& s) { return gets(s, "/type", "Opaque"); }, 0, "",
                "Used to facilitate programmatic handling of secret data."),
            col(
                "Data", "integer",
                [](const json& s) {
                  return static_cast<long long>(get(s, "/data", json::object()).size());
                },
                0, "", "Data contains the secret data."),
            age_col()};
  if (k == "Namespace")
    return {name_col(),
            col(
                "Status", "string",
                [](const json& n) { return gets(n, "/status/phase", "Active"); }, 0, "",
                "The status of the namespace"),
            age_col()};
  if (k == "ServiceAccount")
    return {
        name_col(),
        col("Secrets", "string",
            [](const json& s) { return std::to_string(get(s, "/secrets", json::array()).size()); }),
        age_col()};
  if (k == "Node")
    return {name_col(),
            col("Status", "string",
                [](const json& n) {
                  for (const auto& c : get(n, "/status/conditions", json::array()))
                    if (c.value("type", "") == "Ready")
                      return std::string(c.value("status", "") == "True" ? "Ready" : "NotReady");
                  return std::string("Unknown");
                }),
            col("Roles", "string",
                [](const json& n) {
                  std::vector<std::string> roles;
                  json labels = get(n, "/metadata/labels", json::object());
                  for (auto it = labels.begin(); it != labels.end(); ++it)
                    if (it.key().rfind("node-role.kubernetes.io/", 0) == 0)
                      roles.push_back(it.key().substr(24));
                  return roles.empty() ? std::string("<none>") : join(roles);
                }),
            age_col(),
            col("Version", "string",
                [](const json& n) { return gets(n, "/status/nodeInfo/kubeletVersion"); }),
            col(
                "Internal-IP", "string",
                [](const json& n) {
                  for (const auto& a : get(n, "/status/addresses", json::array()))
                    if (a.value("type", "") == "InternalIP")
                      return a.value("address", std::string());
                  return std::string("<none>");
                },
                1),
            col(
                "External-IP", "string", [](const json&) { return "<none>"; }, 1),
            col(
                "OS-Image", "string",
                [](const json& n) { return gets(n, "/status/nodeInfo/osImage"); }, 1),
            col(
                "Kernel-Version", "string",
                [](const json& n) { return gets(n, "/status/nodeInfo/kernelVersion"); }, 1),
            col(
                "Container-Runtime", "string",
                [](const json& n) { return gets(n, "/status/nodeInfo/containerRuntimeVersion"); },
                1)};
  if (k == "Event")
    return {
        col("Last Seen", "string",
            [](const json& e) {
              return human_age(gets(e, "/lastTimestamp", gets(e, "/metadata/creationTimestamp")));
            }),
        col("Type", "string", [](const json& e) { return gets(e, "/type"); }),
        col("Reason", "string", [](const json& e) { return gets(e, "/reason"); }),
        col("Object", "string",
            [](const json& e) {
              std::string kind = gets(e, "/involvedObject/kind");
              for (auto& c : kind)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
              return kind + "/" + gets(e, "/involvedObject/name");
            }),
        col("Message", "string", [](const json& e) { return gets(e, "/message"); }),
        col(
            "Subobject", "string",
            [](const json& e) { return gets(e, "/involvedObject/fieldPath"); }, 1),
        col(
            "Source", "string", [](const json& e) { return gets(e, "/source/component"); }, 1),
        col(
            "First Seen", "string",
            [](const json& e) { return human_age(gets(e, "/firstTimestamp")); }, 1),
        col(
            "Count", "string", [](const json& e) { return std::to_string(geti(e, "/count")); }, 1),
        col("Name", "string", name, 1)};
  if (k == "Ingress")
    return {name_col(),
            col("Class", "string",
                [](const json& i) { return gets(i, "/spec/ingressClassName", "<none>"); }),
            col("Hosts", "string",
                [](const json& i) {
                  std::vector<std::string> hosts;
                  for (const auto& r : get(i, "/spec/rules", json::array()))
                    hosts.push_back(r.value("host", std::string("*")));
                  return hosts.empty() ? std::string("*") : join(hosts);
                }),
            col("Address", "string", [](const json&) { return ""; }),
            col("Ports", "string",
                [](const json& i) {
                  return get(i, "/spec/tls", json::array()).empty() ? "80" : "80, 443";
                }),
            age_col()};
  if (k == "HorizontalPodAutoscaler")
    return {name_col(),
            col("Reference", "string",
                [](const json& h) {
                  return gets(h, "/spec/scaleTargetRef/kind") + "/" +
                         gets(h, "/spec/scaleTargetRef/name");
                }),
            col("Targets", "string", [](const json&) { return "<unknown>"; }),
            col("MinPods", "string",
                [](const json& h) {
                  return std::to_string(get(h, "/spec/minReplicas", 1).get<long long>());
                }),
            col("MaxPods", "integer", [](const json& h) { return geti(h, "/spec/maxReplicas"); }),
            col("Replicas", "integer",
                [](const json& h) { return geti(h, "/status/currentReplicas"); }),
            age_col()};
  if (k == "PodDisruptionBudget")
    return {name_col(),
            col("Min Available", "string",
                [](const json& p) {
                  json v = get(p, "/spec/minAvailable");
                  return v.is_null()     ? std::string("N/A")
                         : v.is_string() ? v.get<std::string>()
                                         : v.dump();
                }),
            col("Max Unavailable", "string",
                [](const json& p) {
                  json v = get(p, "/spec/maxUnavailable");
                  return v.is_null()     ? std::string("N/A")
                         : v.is_string() ? v.get<std::string>()
                                         : v.dump();
                }),
            col("Allowed Disruptions", "integer",
                [](const json& p) { return geti(p, "/status/disruptionsAllowed"); }),
            age_col()};
  if (k == "CustomResourceDefinition")
    return {name_col(), col("Created At", "date",
                            [](const json& c) { return gets(c, "/metadata/creationTimestamp"); })};
  return {name_col(), age_col()};
}

} // namespace

std::string human_age(const std::string& t) {
  auto tp = parse_rfc3339(t);
  if (!tp) return "<unknown>";
  return human_duration(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - *tp)
          .count());
}

json make_table(const ResourceType& t, const std::vector<json>& objects,
                const std::string& include_object, const json& list_meta) {
  auto cols = columns_for(t);
  json defs = json::array();
  for (const auto& c : cols)
    defs.push_back({{"name", c.name},
                    {"type", c.type},
                    {"format", c.format},
                    {"description", c.description},
                    {"priority", c.priority}});
  json rows = json::array();
  for (const auto& o : objects) {
    json cells = json::array();
    for (const auto& c : cols) cells.push_back(c.cell(o));
    json row = {{"cells", cells}};
    if (include_object == "Object") {
      row["object"] = o;
    } else if (include_object != "None") {
      json meta = o.value("metadata", json::object());
      meta.erase("managedFields");
      row["object"] = {
          {"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", meta}};
    }
    rows.push_back(row);
  }
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", list_meta},
          {"columnDefinitions", defs},
          {"rows", rows}};
}

} // namespace capstan::sandbox
