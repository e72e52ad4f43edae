#include <gtest/gtest.h>

#include "capstan/kube/health.h"
#include "capstan/kube/rollout_status.h"

namespace capstan::kube {
namespace {

using nlohmann::json;

json deployment(int spec, int replicas, int updated, int available, int generation = 2,
                int observed = 2) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", "web"}, {"generation", generation}}},
          {"spec", {{"replicas", spec}}},
          {"status",
           {{"observedGeneration", observed},
            {"replicas", replicas},
            {"updatedReplicas", updated},
            {"availableReplicas", available}}}};
}

TEST(Health, DeploymentStages) {
  auto h = assess_health(deployment(3, 3, 1, 1));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, HealthStatus::kProgressing);
  EXPECT_EQ(h->message,
            "Waiting for rollout to finish: 1 out of 3 new replicas have been updated...");
  EXPECT_EQ(assess_health(deployment(3, 4, 3, 3))->message,
            "Waiting for rollout to finish: 1 old replicas are pending termination...");
  EXPECT_EQ(assess_health(deployment(3, 3, 3, 2))->message,
            "Waiting for rollout to finish: 2 of 3 updated replicas are available...");
  EXPECT_EQ(assess_health(deployment(3, 3, 3, 3))->status, HealthStatus::kHealthy);
  EXPECT_EQ(assess_health(deployment(3, 3, 3, 3, 3, 2))->status, HealthStatus::kProgressing);

  auto stuck = deployment(3, 3, 1, 1);
  stuck["status"]["conditions"] = {
      {{"type", "Progressing"}, {"status", "False"}, {"reason", "ProgressDeadlineExceeded"}}};
  EXPECT_EQ(assess_health(stuck)->status, HealthStatus::kDegraded);
  EXPECT_EQ(assess_health(stuck)->message, "Deployment \"web\" exceeded its progress deadline");

  auto paused = deployment(3, 3, 1, 1);
  paused["spec"]["paused"] = true;
  EXPECT_EQ(assess_health(paused)->status, HealthStatus::kSuspended);
}

TEST(Health, PodReasons) {
  json crash = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "p"}}},
                {"spec", {{"restartPolicy", "Always"}}},
                {"status",
                 {{"phase", "Running"},
                  {"containerStatuses",
                   {{{"name", "app"},
                     {"state",
                      {{"waiting",
                        {{"reason", "CrashLoopBackOff"},
                         {"message", "back-off 10s restarting failed container"}}}}}}}}}}};
  auto h = assess_health(crash);
  EXPECT_EQ(h->status, HealthStatus::kDegraded);
  EXPECT_EQ(h->message, "back-off 10s restarting failed container");

  // The same pod as a hook (restartPolicy Never) is only Progressing.
  crash["spec"]["restartPolicy"] = "Never";
  EXPECT_EQ(assess_health(crash)->status, HealthStatus::kProgressing);

  json ready = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"spec", json::object()},
      {"status",
       {{"phase", "Running"}, {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
  EXPECT_EQ(assess_health(ready)->status, HealthStatus::kHealthy);

  json failed = {{"apiVersion", "v1"},
                 {"kind", "Pod"},
                 {"metadata", {{"name", "p"}}},
                 {"status",
                  {{"phase", "Failed"},
                   {"containerStatuses",
                    {{{"name", "app"}, {"state", {{"terminated", {{"exitCode", 3}}}}}}}}}}};
  EXPECT_EQ(assess_health(failed)->message, "container \"app\" failed with exit code 3");
}

TEST(Health, JobServicePvcHpaAndNoHealth) {
  json job = {{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"status", json::object()}};
  EXPECT_EQ(assess_health(job)->status, HealthStatus::kProgressing);
  job["status"]["conditions"] = {
      {{"type", "Failed"}, {"status", "True"}, {"message", "BackoffLimitExceeded"}}};
  EXPECT_EQ(assess_health(job)->status, HealthStatus::kDegraded);
  job["status"]["conditions"] = {{{"type", "Complete"}, {"status", "True"}}};
  EXPECT_EQ(assess_health(job)->status, HealthStatus::kHealthy);

  json svc = {{"apiVersion", "v1"}, {"kind", "Service"}, {"spec", {{"type", "LoadBalancer"}}}};
  EXPECT_EQ(assess_health(svc)->status, HealthStatus::kProgressing);
  svc["status"]["loadBalancer"]["ingress"] = {{{"ip", "10.0.0.1"}}};
  EXPECT_EQ(assess_health(svc)->status, HealthStatus::kHealthy);
  svc = {{"apiVersion", "v1"}, {"kind", "Service"}, {"spec", {{"type", "ClusterIP"}}}};
  EXPECT_EQ(assess_health(svc)->status, HealthStatus::kHealthy);

  json pvc = {
      {"apiVersion", "v1"}, {"kind", "PersistentVolumeClaim"}, {"status", {{"phase", "Lost"}}}};
  EXPECT_EQ(assess_health(pvc)->status, HealthStatus::kDegraded);

  json hpa = {{"apiVersion", "autoscaling/v2"},
              {"kind", "HorizontalPodAutoscaler"},
              {"status",
               {{"conditions",
                 {{{"type", "ScalingActive"},
                   {"reason", "FailedGetResourceMetric"},
                   {"message", "no metrics"}}}}}}};
  EXPECT_EQ(assess_health(hpa)->status, HealthStatus::kDegraded);

  json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "c"}}}};
  EXPECT_FALSE(assess_health(cm).has_value());

  json deleting = cm;
  deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  EXPECT_EQ(assess_health(deleting)->status, HealthStatus::kProgressing);
}

TEST(Health, OrderOfWorseness) {
  EXPECT_TRUE(is_worse(HealthStatus::kDegraded, HealthStatus::kProgressing));
  EXPECT_TRUE(is_worse(HealthStatus::kMissing, HealthStatus::kProgressing));
  EXPECT_TRUE(is_worse(HealthStatus::kProgressing, HealthStatus::kSuspended));
  EXPECT_FALSE(is_worse(HealthStatus::kHealthy, HealthStatus::kSuspended));
  EXPECT_EQ(parse_health_status("Degraded"), HealthStatus::kDegraded);
  EXPECT_FALSE(parse_health_status("Fine"));
}

TEST(RolloutStatus, DeploymentLikeKubectl) {
  auto s = rollout_status(deployment(3, 3, 1, 1));
  EXPECT_EQ(s.state, RolloutStatus::State::kInProgress);
  EXPECT_EQ(s.message,
            "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been "
            "updated...");
  EXPECT_TRUE(rollout_status(deployment(3, 3, 3, 3)).done());
  EXPECT_EQ(rollout_status(deployment(3, 3, 3, 3)).message,
            "deployment \"web\" successfully rolled out");
  EXPECT_EQ(rollout_status(deployment(3, 3, 3, 3, 4, 3)).message,
            "Waiting for deployment spec update to be observed...");
  auto stuck = deployment(3, 3, 1, 1);
  stuck["status"]["conditions"] = {
      {{"type", "Progressing"}, {"reason", "ProgressDeadlineExceeded"}}};
  EXPECT_TRUE(rollout_status(stuck).failed());
}

TEST(RolloutStatus, StatefulSetDaemonSetJob) {
  json sts = {{"kind", "StatefulSet"},
              {"metadata", {{"name", "db"}, {"generation", 1}}},
              {"spec", {{"replicas", 3}, {"updateStrategy", {{"type", "RollingUpdate"}}}}},
              {"status",
               {{"observedGeneration", 1},
                {"readyReplicas", 2},
                {"updatedReplicas", 3},
                {"currentReplicas", 3},
                {"updateRevision", "db-2"},
                {"currentRevision", "db-1"}}}};
  EXPECT_EQ(rollout_status(sts).message, "Waiting for 1 pods to be ready...");
  sts["status"]["readyReplicas"] = 3;
  EXPECT_EQ(rollout_status(sts).message,
            "waiting for statefulset rolling update to complete 3 pods at revision db-2...");
  sts["status"]["currentRevision"] = "db-2";
  EXPECT_TRUE(rollout_status(sts).done());
  sts["spec"]["updateStrategy"]["type"] = "OnDelete";
  EXPECT_TRUE(rollout_status(sts).failed());

  json ds = {{"kind", "DaemonSet"},
             {"metadata", {{"name", "agent"}, {"generation", 1}}},
             {"status",
              {{"observedGeneration", 1},
               {"desiredNumberScheduled", 3},
               {"updatedNumberScheduled", 3},
               {"numberAvailable", 1}}}};
  EXPECT_EQ(rollout_status(ds).message,
            "Waiting for daemon set \"agent\" rollout to finish: 1 of 3 updated pods are "
            "available...");

  json job = {{"kind", "Job"}, {"metadata", {{"name", "migrate"}}}, {"status", json::object()}};
  EXPECT_FALSE(rollout_status(job).done());
  job["status"]["conditions"] = {
      {{"type", "Failed"}, {"status", "True"}, {"reason", "BackoffLimitExceeded"}}};
  EXPECT_TRUE(rollout_status(job).failed());
  EXPECT_TRUE(is_rollout_kind("StatefulSet"));
  EXPECT_FALSE(is_rollout_kind("Service"));
}

} // namespace
} // namespace capstan::kube
