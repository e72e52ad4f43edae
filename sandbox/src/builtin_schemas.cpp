// Hand-written structural schemas of the built-in kinds the sandbox serves. Field names, list
// types, map keys and patch strategies follow the upstream API types (k8s.io/api); sub-structures
// that are passed through untouched (probes, affinity, security contexts, volume sources) are
// open, so valid manifests are never refused for fields described only coarsely here.
#include "capstan/sandbox/schema.h"

#include <mutex>

namespace capstan::sandbox {

namespace {

using Props = std::vector<std::pair<std::string, SchemaPtr>>;

SchemaPtr leaf(SchemaType t, std::string format = {}) {
  auto s = std::make_shared<Schema>();
  s->type = t;
  s->format = std::move(format);
  return s;
}
SchemaPtr str() {
  return leaf(SchemaType::kString);
}
SchemaPtr i32() {
  return leaf(SchemaType::kInteger, "int32");
}
SchemaPtr i64() {
  return leaf(SchemaType::kInteger, "int64");
}
SchemaPtr boolean() {
  return leaf(SchemaType::kBoolean);
}
SchemaPtr ios() {
  return leaf(SchemaType::kIntOrString);
}
SchemaPtr qty() {
  return leaf(SchemaType::kQuantity);
}
SchemaPtr timestamp() {
  return leaf(SchemaType::kString, "date-time");
}
SchemaPtr bytes() {
  return leaf(SchemaType::kString, "byte");
}

SchemaPtr obj(std::string name, const Props& props, std::vector<std::string> required = {},
              bool atomic = false) {
  auto s = std::make_shared<Schema>();
  s->type = SchemaType::kObject;
  s->name = std::move(name);
  for (const auto& [k, v] : props) s->properties[k] = v;
  s->required = std::move(required);
  s->atomic = atomic;
  return s;
}
// An object whose fields are accepted as given (described coarsely on purpose).
SchemaPtr open(std::string name = {}, const Props& props = {}) {
  auto s = std::make_shared<Schema>();
  s->type = SchemaType::kObject;
  s->name = std::move(name);
  for (const auto& [k, v] : props) s->properties[k] = v;
  s->preserve_unknown = true;
  return s;
}
SchemaPtr map_of(SchemaPtr v) {
  auto s = std::make_shared<Schema>();
  s->type = SchemaType::kMap;
  s->items = std::move(v);
  return s;
}
SchemaPtr strmap() {
  return map_of(str());
}
SchemaPtr atomic_strmap() {
  auto s = std::make_shared<Schema>(*strmap());
  s->atomic = true;
  return s;
}
SchemaPtr atomic_list(SchemaPtr item) {
  auto s = std::make_shared<Schema>();
  s->type = SchemaType::kList;
  s->items = std::move(item);
  s->list_type = "atomic";
  return s;
}
SchemaPtr set_list(SchemaPtr item, bool merge_patch = false) {
  auto s = std::make_shared<Schema>();
  s->type = SchemaType::kList;
  s->items = std::move(item);
  s->list_type = "set";
  if (merge_patch) s->patch_strategy = "merge";
  return s;
}
// An associative list: SSA keys by keys; strategic merge patch merges by merge_key.
SchemaPtr keyed_list(SchemaPtr item, std::vector<std::string> keys, std::string merge_key,
                     std::string strategy = "merge") {
  auto s = std::make_shared<Schema>();
  s->type = SchemaType::kList;
  s->items = std::move(item);
  s->list_type = "map";
  s->list_map_keys = std::move(keys);
  s->patch_merge_key = std::move(merge_key);
  s->patch_strategy = std::move(strategy);
  return s;
}
SchemaPtr with_key_default(SchemaPtr s, const std::string& key, nlohmann::json value) {
  auto copy = std::make_shared<Schema>(*s);
  copy->list_key_defaults[key] = std::move(value);
  return copy;
}
SchemaPtr with_strategy(SchemaPtr s, std::string strategy) {
  auto copy = std::make_shared<Schema>(*s);
  copy->patch_strategy = std::move(strategy);
  return copy;
}

struct Builtins {
  SchemaPtr meta, selector, pod_template, pod_spec;
  std::map<std::string, SchemaPtr> kinds; // "group/version/Kind"
};

SchemaPtr top(const std::string& name, const Builtins& b, Props props) {
  props.push_back({"apiVersion", str()});
  props.push_back({"kind", str()});
  props.push_back({"metadata", b.meta});
  return obj(name, props);
}

Builtins build() {
  Builtins b;
  auto owner_ref = obj("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
                       {{"apiVersion", str()},
                        {"kind", str()},
                        {"name", str()},
                        {"uid", str()},
                        {"controller", boolean()},
                        {"blockOwnerDeletion", boolean()}},
                       {"apiVersion", "kind", "name", "uid"}, true);
  auto managed = obj("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
                     {{"manager", str()},
                      {"operation", str()},
                      {"apiVersion", str()},
                      {"time", timestamp()},
                      {"fieldsType", str()},
                      {"fieldsV1", open("io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1")},
                      {"subresource", str()}});
  b.meta = obj("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
               {{"name", str()},
                {"generateName", str()},
                {"namespace", str()},
                {"selfLink", str()},
                {"uid", str()},
                {"resourceVersion", str()},
                {"generation", i64()},
                {"creationTimestamp", timestamp()},
                {"deletionTimestamp", timestamp()},
                {"deletionGracePeriodSeconds", i64()},
                {"labels", strmap()},
                {"annotations", strmap()},
                {"ownerReferences", keyed_list(owner_ref, {"uid"}, "uid")},
                {"finalizers", set_list(str(), true)},
                {"managedFields", atomic_list(managed)}});
  auto requirement = obj("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
                         {{"key", str()}, {"operator", str()}, {"values", atomic_list(str())}},
                         {"key", "operator"});
  b.selector =
      obj("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
          {{"matchLabels", strmap()}, {"matchExpressions", atomic_list(requirement)}}, {}, true);

  auto env_var = obj(
      "io.k8s.api.core.v1.EnvVar",
      {{"name", str()}, {"value", str()}, {"valueFrom", open("io.k8s.api.core.v1.EnvVarSource")}},
      {"name"});
  auto container_port = obj("io.k8s.api.core.v1.ContainerPort",
                            {{"containerPort", i32()},
                             {"hostIP", str()},
                             {"hostPort", i32()},
                             {"name", str()},
                             {"protocol", str()}},
                            {"containerPort"});
  auto resources = obj(
      "io.k8s.api.core.v1.ResourceRequirements",
      {{"limits", map_of(qty())}, {"requests", map_of(qty())}, {"claims", atomic_list(open())}});
  auto volume_mount =
      open("io.k8s.api.core.v1.VolumeMount",
           {{"name", str()}, {"mountPath", str()}, {"readOnly", boolean()}, {"subPath", str()}});
  auto probe = open("io.k8s.api.core.v1.Probe");
  auto container = obj(
      "io.k8s.api.core.v1.Container",
      {{"name", str()},
       {"image", str()},
       {"command", atomic_list(str())},
       {"args", atomic_list(str())},
       {"workingDir", str()},
       {"ports",
        with_key_default(keyed_list(container_port, {"containerPort", "protocol"}, "containerPort"),
                         "protocol", "TCP")},
       {"envFrom", atomic_list(open("io.k8s.api.core.v1.EnvFromSource"))},
       {"env", keyed_list(env_var, {"name"}, "name")},
       {"resources", resources},
       {"resizePolicy", atomic_list(open())},
       {"restartPolicy", str()},
       {"volumeMounts", keyed_list(volume_mount, {"mountPath"}, "mountPath")},
       {"volumeDevices", keyed_list(open(), {"devicePath"}, "devicePath")},
       {"livenessProbe", probe},
       {"readinessProbe", probe},
       {"startupProbe", probe},
       {"lifecycle", open("io.k8s.api.core.v1.Lifecycle")},
       {"terminationMessagePath", str()},
       {"terminationMessagePolicy", str()},
       {"imagePullPolicy", str()},
       {"securityContext", open("io.k8s.api.core.v1.SecurityContext")},
       {"stdin", boolean()},
       {"stdinOnce", boolean()},
       {"tty", boolean()}},
      {"name"});
  auto volume = open("io.k8s.api.core.v1.Volume", {{"name", str()}});
  auto toleration = obj("io.k8s.api.core.v1.Toleration", {{"key", str()},
                                                          {"operator", str()},
                                                          {"value", str()},
                                                          {"effect", str()},
                                                          {"tolerationSeconds", i64()}});
  auto local_ref = obj("io.k8s.api.core.v1.LocalObjectReference", {{"name", str()}}, {}, true);
  b.pod_spec = obj("io.k8s.api.core.v1.PodSpec",
                   {{"volumes", keyed_list(volume, {"name"}, "name", "merge,retainKeys")},
                    {"initContainers", keyed_list(container, {"name"}, "name")},
                    {"containers", keyed_list(container, {"name"}, "name")},
                    {"ephemeralContainers", keyed_list(open(), {"name"}, "name")},
                    {"restartPolicy", str()},
                    {"terminationGracePeriodSeconds", i64()},
                    {"activeDeadlineSeconds", i64()},
                    {"dnsPolicy", str()},
                    {"nodeSelector", strmap()},
                    {"serviceAccountName", str()},
                    {"serviceAccount", str()},
                    {"automountServiceAccountToken", boolean()},
                    {"nodeName", str()},
                    {"hostNetwork", boolean()},
                    {"hostPID", boolean()},
                    {"hostIPC", boolean()},
                    {"hostUsers", boolean()},
                    {"shareProcessNamespace", boolean()},
                    {"securityContext", open("io.k8s.api.core.v1.PodSecurityContext")},
                    {"imagePullSecrets", keyed_list(local_ref, {"name"}, "name")},
                    {"hostname", str()},
                    {"subdomain", str()},
                    {"affinity", open("io.k8s.api.core.v1.Affinity")},
                    {"schedulerName", str()},
                    {"tolerations", atomic_list(toleration)},
                    {"hostAliases", keyed_list(open(), {"ip"}, "ip")},
                    {"priorityClassName", str()},
                    {"priority", i32()},
                    {"dnsConfig", open("io.k8s.api.core.v1.PodDNSConfig")},
                    {"readinessGates", atomic_list(open())},
                    {"runtimeClassName", str()},
                    {"enableServiceLinks", boolean()},
                    {"preemptionPolicy", str()},
                    {"overhead", map_of(qty())},
                    {"topologySpreadConstraints",
                     keyed_list(open(), {"topologyKey", "whenUnsatisfiable"}, "topologyKey")},
                    {"setHostnameAsFQDN", boolean()},
                    {"os", open()},
                    {"schedulingGates", keyed_list(open(), {"name"}, "name")},
                    {"resourceClaims", keyed_list(open(), {"name"}, "name", "merge,retainKeys")},
                    {"resources", resources}},
                   {"containers"});
  auto template_meta = b.meta;
  b.pod_template = obj("io.k8s.api.core.v1.PodTemplateSpec",
                       {{"metadata", template_meta}, {"spec", b.pod_spec}});
  auto condition = open("io.k8s.apimachinery.pkg.apis.meta.v1.Condition");
  auto open_status = [](const std::string& name) { return open(name); };
  auto conditions = [&](SchemaPtr c) { return keyed_list(c, {"type"}, "type"); };

  // core/v1
  b.kinds["/v1/Namespace"] =
      top("io.k8s.api.core.v1.Namespace", b,
          {{"spec", obj("io.k8s.api.core.v1.NamespaceSpec", {{"finalizers", atomic_list(str())}})},
           {"status", open_status("io.k8s.api.core.v1.NamespaceStatus")}});
  b.kinds["/v1/ConfigMap"] =
      top("io.k8s.api.core.v1.ConfigMap", b,
          {{"data", strmap()}, {"binaryData", map_of(bytes())}, {"immutable", boolean()}});
  b.kinds["/v1/Secret"] = top("io.k8s.api.core.v1.Secret", b,
                              {{"data", map_of(bytes())},
                               {"stringData", strmap()},
                               {"type", str()},
                               {"immutable", boolean()}});
  auto service_port = obj("io.k8s.api.core.v1.ServicePort",
                          {{"name", str()},
                           {"protocol", str()},
                           {"appProtocol", str()},
                           {"port", i32()},
                           {"targetPort", ios()},
                           {"nodePort", i32()}},
                          {"port"});
  b.kinds["/v1/Service"] =
      top("io.k8s.api.core.v1.Service", b,
          {{"spec",
            obj("io.k8s.api.core.v1.ServiceSpec",
                {{"ports", with_key_default(keyed_list(service_port, {"port", "protocol"}, "port"),
                                            "protocol", "TCP")},
                 {"selector", atomic_strmap()},
                 {"clusterIP", str()},
                 {"clusterIPs", atomic_list(str())},
                 {"type", str()},
                 {"externalIPs", atomic_list(str())},
                 {"sessionAffinity", str()},
                 {"loadBalancerIP", str()},
                 {"loadBalancerSourceRanges", atomic_list(str())},
                 {"externalName", str()},
                 {"externalTrafficPolicy", str()},
                 {"healthCheckNodePort", i32()},
                 {"publishNotReadyAddresses", boolean()},
                 {"sessionAffinityConfig", open()},
                 {"ipFamilies", atomic_list(str())},
                 {"ipFamilyPolicy", str()},
                 {"allocateLoadBalancerNodePorts", boolean()},
                 {"loadBalancerClass", str()},
                 {"internalTrafficPolicy", str()},
                 {"trafficDistribution", str()}})},
           {"status", open_status("io.k8s.api.core.v1.ServiceStatus")}});
  b.kinds["/v1/ServiceAccount"] = top("io.k8s.api.core.v1.ServiceAccount", b,
                                      {{"secrets", keyed_list(open(), {"name"}, "name")},
                                       {"imagePullSecrets", atomic_list(local_ref)},
                                       {"automountServiceAccountToken", boolean()}});
  b.kinds["/v1/Pod"] =
      top("io.k8s.api.core.v1.Pod", b,
          {{"spec", b.pod_spec}, {"status", open_status("io.k8s.api.core.v1.PodStatus")}});
  auto obj_ref = open("io.k8s.api.core.v1.ObjectReference");
  b.kinds["/v1/Event"] = top("io.k8s.api.core.v1.Event", b,
                             {{"involvedObject", obj_ref},
                              {"reason", str()},
                              {"message", str()},
                              {"source", open()},
                              {"firstTimestamp", timestamp()},
                              {"lastTimestamp", timestamp()},
                              {"count", i32()},
                              {"type", str()},
                              {"eventTime", str()},
                              {"series", open()},
                              {"action", str()},
                              {"related", obj_ref},
                              {"reportingComponent", str()},
                              {"reportingInstance", str()}});
  b.kinds["/v1/Node"] = top("io.k8s.api.core.v1.Node", b,
                            {{"spec", open("io.k8s.api.core.v1.NodeSpec")},
                             {"status", open_status("io.k8s.api.core.v1.NodeStatus")}});

  // apps/v1
  auto rolling = obj("io.k8s.api.apps.v1.RollingUpdateDeployment",
                     {{"maxSurge", ios()}, {"maxUnavailable", ios()}});
  auto strategy =
      obj("io.k8s.api.apps.v1.DeploymentStrategy", {{"type", str()}, {"rollingUpdate", rolling}});
  auto deploy_condition =
      obj("io.k8s.api.apps.v1.DeploymentCondition", {{"type", str()},
                                                     {"status", str()},
                                                     {"lastUpdateTime", timestamp()},
                                                     {"lastTransitionTime", timestamp()},
                                                     {"reason", str()},
                                                     {"message", str()}});
  b.kinds["apps/v1/Deployment"] =
      top("io.k8s.api.apps.v1.Deployment", b,
          {{"spec", obj("io.k8s.api.apps.v1.DeploymentSpec",
                        {{"replicas", i32()},
                         {"selector", b.selector},
                         {"template", b.pod_template},
                         {"strategy", with_strategy(strategy, "retainKeys")},
                         {"minReadySeconds", i32()},
                         {"revisionHistoryLimit", i32()},
                         {"paused", boolean()},
                         {"progressDeadlineSeconds", i32()}},
                        {"selector", "template"})},
           {"status", obj("io.k8s.api.apps.v1.DeploymentStatus",
                          {{"observedGeneration", i64()},
                           {"replicas", i32()},
                           {"updatedReplicas", i32()},
                           {"readyReplicas", i32()},
                           {"availableReplicas", i32()},
                           {"unavailableReplicas", i32()},
                           {"terminatingReplicas", i32()},
                           {"conditions", conditions(deploy_condition)},
                           {"collisionCount", i32()}})}});
  auto rs_status = open("io.k8s.api.apps.v1.ReplicaSetStatus");
  b.kinds["apps/v1/ReplicaSet"] = top("io.k8s.api.apps.v1.ReplicaSet", b,
                                      {{"spec", obj("io.k8s.api.apps.v1.ReplicaSetSpec",
                                                    {{"replicas", i32()},
                                                     {"minReadySeconds", i32()},
                                                     {"selector", b.selector},
                                                     {"template", b.pod_template}},
                                                    {"selector"})},
                                       {"status", rs_status}});
  auto sts_strategy = open("io.k8s.api.apps.v1.StatefulSetUpdateStrategy");
  b.kinds["apps/v1/StatefulSet"] =
      top("io.k8s.api.apps.v1.StatefulSet", b,
          {{"spec", obj("io.k8s.api.apps.v1.StatefulSetSpec",
                        {{"replicas", i32()},
                         {"selector", b.selector},
                         {"template", b.pod_template},
                         {"volumeClaimTemplates", atomic_list(open())},
                         {"serviceName", str()},
                         {"podManagementPolicy", str()},
                         {"updateStrategy", sts_strategy},
                         {"revisionHistoryLimit", i32()},
                         {"minReadySeconds", i32()},
                         {"persistentVolumeClaimRetentionPolicy", open()},
                         {"ordinals", open()}},
                        {"selector", "template"})},
           {"status", open_status("io.k8s.api.apps.v1.StatefulSetStatus")}});
  b.kinds["apps/v1/DaemonSet"] =
      top("io.k8s.api.apps.v1.DaemonSet", b,
          {{"spec", obj("io.k8s.api.apps.v1.DaemonSetSpec",
                        {{"selector", b.selector},
                         {"template", b.pod_template},
                         {"updateStrategy", open("io.k8s.api.apps.v1.DaemonSetUpdateStrategy")},
                         {"minReadySeconds", i32()},
                         {"revisionHistoryLimit", i32()}},
                        {"selector", "template"})},
           {"status", open_status("io.k8s.api.apps.v1.DaemonSetStatus")}});

  // batch/v1
  b.kinds["batch/v1/Job"] = top("io.k8s.api.batch.v1.Job", b,
                                {{"spec", obj("io.k8s.api.batch.v1.JobSpec",
                                              {{"parallelism", i32()},
                                               {"completions", i32()},
                                               {"activeDeadlineSeconds", i64()},
                                               {"podFailurePolicy", open()},
                                               {"successPolicy", open()},
                                               {"backoffLimit", i32()},
                                               {"backoffLimitPerIndex", i32()},
                                               {"maxFailedIndexes", i32()},
                                               {"selector", b.selector},
                                               {"manualSelector", boolean()},
                                               {"template", b.pod_template},
                                               {"ttlSecondsAfterFinished", i32()},
                                               {"completionMode", str()},
                                               {"suspend", boolean()},
                                               {"podReplacementPolicy", str()},
                                               {"managedBy", str()}},
                                              {"template"})},
                                 {"status", open_status("io.k8s.api.batch.v1.JobStatus")}});

  // networking.k8s.io/v1, autoscaling/v2, policy/v1
  b.kinds["networking.k8s.io/v1/Ingress"] =
      top("io.k8s.api.networking.v1.Ingress", b,
          {{"spec", obj("io.k8s.api.networking.v1.IngressSpec",
                        {{"ingressClassName", str()},
                         {"defaultBackend", open()},
                         {"tls", atomic_list(open())},
                         {"rules", atomic_list(open("io.k8s.api.networking.v1.IngressRule"))}})},
           {"status", open_status("io.k8s.api.networking.v1.IngressStatus")}});
  b.kinds["autoscaling/v2/HorizontalPodAutoscaler"] =
      top("io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler", b,
          {{"spec",
            obj("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
                {{"scaleTargetRef", open("io.k8s.api.autoscaling.v2.CrossVersionObjectReference")},
                 {"minReplicas", i32()},
                 {"maxReplicas", i32()},
                 {"metrics", atomic_list(open())},
                 {"behavior", open()}},
                {"scaleTargetRef", "maxReplicas"})},
           {"status", open_status("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus")}});
  b.kinds["autoscaling/v1/Scale"] =
      top("io.k8s.api.autoscaling.v1.Scale", b,
          {{"spec", obj("io.k8s.api.autoscaling.v1.ScaleSpec", {{"replicas", i32()}})},
           {"status", obj("io.k8s.api.autoscaling.v1.ScaleStatus",
                          {{"replicas", i32()}, {"selector", str()}})}});
  b.kinds["policy/v1/PodDisruptionBudget"] =
      top("io.k8s.api.policy.v1.PodDisruptionBudget", b,
          {{"spec", obj("io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
                        {{"minAvailable", ios()},
                         {"maxUnavailable", ios()},
                         {"selector", with_strategy(b.selector, "replace")},
                         {"unhealthyPodEvictionPolicy", str()}})},
           {"status", open_status("io.k8s.api.policy.v1.PodDisruptionBudgetStatus")}});

  // apiextensions.k8s.io/v1: the version schemas are JSON Schema documents, kept open.
  auto crd_version = obj("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
                         "CustomResourceDefinitionVersion",
                         {{"name", str()},
                          {"served", boolean()},
                          {"storage", boolean()},
                          {"deprecated", boolean()},
                          {"deprecationWarning", str()},
                          {"schema", open()},
                          {"subresources", open()},
                          {"additionalPrinterColumns", atomic_list(open())},
                          {"selectableFields", atomic_list(open())}},
                         {"name", "served", "storage"});
  b.kinds["apiextensions.k8s.io/v1/CustomResourceDefinition"] =
      top("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition", b,
          {{"spec", obj("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
                        "CustomResourceDefinitionSpec",
                        {{"group", str()},
                         {"names", obj("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
                                       "CustomResourceDefinitionNames",
                                       {{"plural", str()},
                                        {"singular", str()},
                                        {"shortNames", atomic_list(str())},
                                        {"kind", str()},
                                        {"listKind", str()},
                                        {"categories", atomic_list(str())}},
                                       {"plural", "kind"})},
                         {"scope", str()},
                         {"versions", atomic_list(crd_version)},
                         {"conversion", open()},
                         {"preserveUnknownFields", boolean()}},
                        {"group", "names", "scope", "versions"})},
           {"status", open_status("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
                                  "CustomResourceDefinitionStatus")}});
  return b;
}

const Builtins& builtins() {
  static const Builtins b = build();
  return b;
}

} // namespace

SchemaPtr builtin_schema(const std::string& group, const std::string& version,
                         const std::string& kind) {
  const auto& k = builtins().kinds;
  auto it = k.find(group + "/" + version + "/" + kind);
  return it == k.end() ? nullptr : it->second;
}

SchemaPtr object_meta_schema() {
  return builtins().meta;
}

} // namespace capstan::sandbox
