// The release history record kept in the cluster.
#include <gtest/gtest.h>

#include "capstan/manifest/error.h"
#include "capstan/manifest/release_history.h"
#include "capstan/yaml/yaml.h"

namespace {

using namespace capstan::manifest;
using nlohmann::json;

TEST(ReleaseHistory, NumbersIncrementAndNewestComesFirst) {
  ReleaseHistory h;
  EXPECT_EQ(h.latest(), nullptr);
  Release& first = h.create_release({{"Deployment", "app", "web", false}});
  EXPECT_EQ(first.number, 1);
  EXPECT_EQ(first.status, ReleaseStatus::InProgress);
  first.status = ReleaseStatus::Succeeded;
  Release& second = h.create_release({{"ConfigMap", "cfg-2", "web", true}});
  EXPECT_EQ(second.number, 2);
  second.status = ReleaseStatus::Failed;
  EXPECT_EQ(h.latest()->number, 2);
  EXPECT_EQ(h.last_successful()->number, 1);
  EXPECT_EQ(h.previous_rollback_eligible(2)->number, 1);
  EXPECT_EQ(h.previous_rollback_eligible(1), nullptr);
  EXPECT_EQ(h.find(1)->number, 1);
}

TEST(ReleaseHistory, RoundTripsThroughYamlAndObjects) {
  ReleaseHistory h;
  Release& r1 = h.create_release({{"ConfigMap", "cfg-1", "web", true}});
  r1.status = ReleaseStatus::Succeeded;
  Release& r2 =
      h.create_release({{"Deployment", "app", "web", false}, {"Namespace", "web", "", false}});
  r2.status = ReleaseStatus::Succeeded;
  r2.managed_workload = ResourceId{"Deployment", "app", "web", false};
  r2.managed_workload_revision = "4";
  r2.managed_workloads.push_back({{"Deployment", "app", "web", false}, "4"});
  r2.bg_environment = "blue";

  std::string text = h.to_yaml();
  json doc = capstan::yaml::load(text).value;
  EXPECT_EQ(doc["version"], "v1");
  EXPECT_EQ(doc["releases"][0]["number"], 2);
  EXPECT_EQ(doc["releases"][0]["status"], "Succeeded");
  EXPECT_EQ(
      doc["releases"][0]["managedWorkload"],
      json::parse(R"({"kind":"Deployment","name":"app","namespace":"web","versioned":false})"));
  EXPECT_EQ(doc["releases"][1]["resources"][0]["versioned"], true);

  ReleaseHistory back = ReleaseHistory::parse(text, "test");
  EXPECT_EQ(back.to_yaml(), text);

  json cm = h.to_object("release-ab12", "web");
  EXPECT_EQ(cm["kind"], "ConfigMap");
  EXPECT_EQ(cm["metadata"]["name"], "release-ab12");
  EXPECT_EQ(cm["data"]["releaseHistory"], text);
  EXPECT_EQ(ReleaseHistory::from_object(cm).to_yaml(), text);
  json secret = h.to_object("release-ab12", "web", true);
  EXPECT_EQ(secret["kind"], "Secret");
  EXPECT_NE(secret["data"]["releaseHistory"], text); // base64
  EXPECT_EQ(ReleaseHistory::from_object(secret).to_yaml(), text);
  EXPECT_TRUE(ReleaseHistory::from_object({{"kind", "ConfigMap"}}).empty());
}

TEST(ReleaseHistory, ReadsHarnessWrittenHistory) {
  // As Harness stores it: newest first, older statuses included.
  const char* text = R"(version: v1
releases:
- number: 3
  status: Failed
  resources:
  - kind: Deployment
    name: nginx-deployment
    namespace: default
    versioned: false
- number: 2
  status: Succeeded
  resources:
  - kind: Secret
    name: sample-2
    namespace: default
    versioned: true
  managedWorkload:
    kind: Deployment
    name: nginx-deployment
    namespace: default
    versioned: false
  managedWorkloadRevision: 2
- number: 1
  status: Succeeded
)";
  ReleaseHistory h = ReleaseHistory::parse(text, "ConfigMap default/release-x");
  ASSERT_EQ(h.releases().size(), 3u);
  EXPECT_EQ(h.latest()->status, ReleaseStatus::Failed);
  EXPECT_EQ(h.last_successful()->managed_workload_revision, "2");
  EXPECT_TRUE(h.last_successful()->resources[0].versioned);
  h.cleanup();
  ASSERT_EQ(h.releases().size(), 1u); // the failed one and those before the last success go
  EXPECT_EQ(h.latest()->number, 2);
  EXPECT_EQ(h.create_release({}).number, 3);
}

TEST(ReleaseHistory, BadRecordsNameWhereAndWhy) {
  try {
    ReleaseHistory::parse("version: v1\nreleases:\n- number: 1\n  status: Exploded\n", "cm/x");
    FAIL();
  } catch (const ManifestError& e) {
    EXPECT_STREQ(
        e.what(),
        "cm/x:4:11: release history: unknown status \"Exploded\" (InProgress, Succeeded or "
        "Failed)");
  }
  EXPECT_THROW(ReleaseHistory::parse("releases: 3\n", "cm/x"), ManifestError);
  EXPECT_THROW(ReleaseHistory::parse("releases:\n- status: Succeeded\n", "cm/x"), ManifestError);
  EXPECT_THROW(ReleaseHistory::from_object(json::parse(
                   R"({"kind":"Secret","metadata":{"name":"r"},"data":{"releaseHistory":"!!"}})")),
               ManifestError);
}

TEST(ReleaseHistory, CleanupKeepsALimit) {
  ReleaseHistory h;
  for (int i = 0; i < 10; ++i) h.create_release({}).status = ReleaseStatus::Succeeded;
  h.cleanup(3);
  EXPECT_EQ(h.releases().size(), 1u); // only the last success survives Harness's rule
  ReleaseHistory g;
  for (int i = 0; i < 10; ++i) g.create_release({});
  g.cleanup(3);
  EXPECT_EQ(g.releases().size(), 3u);
  EXPECT_EQ(g.latest()->number, 10);
}

} // namespace
