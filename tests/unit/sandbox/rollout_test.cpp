// The Deployment controller's arithmetic against upstream's documented rules and examples.
#include "capstan/sandbox/rollout.h"

#include <gtest/gtest.h>

namespace rollout = capstan::sandbox::rollout;
using nlohmann::json;

TEST(Rollout, PercentagesRoundSurgeUpAndUnavailableDown) {
  // 10 replicas, 25%: maxSurge ceil(2.5) = 3, maxUnavailable floor(2.5) = 2.
  auto f = rollout::fenceposts("25%", "25%", 10);
  EXPECT_EQ(f.max_surge, 3);
  EXPECT_EQ(f.max_unavailable, 2);
  // 3 replicas: surge ceil(0.75) = 1, unavailable floor(0.75) = 0.
  f = rollout::fenceposts("25%", "25%", 3);
  EXPECT_EQ(f.max_surge, 1);
  EXPECT_EQ(f.max_unavailable, 0);
}

TEST(Rollout, BothZeroBecomesOneUnavailable) {
  auto f = rollout::fenceposts(0, "0%", 5);
  EXPECT_EQ(f.max_surge, 0);
  EXPECT_EQ(f.max_unavailable, 1);
  f = rollout::fenceposts("10%", "10%", 1); // ceil(0.1)=1 surge, floor(0.1)=0 unavailable
  EXPECT_EQ(f.max_surge, 1);
  EXPECT_EQ(f.max_unavailable, 0);
}

TEST(Rollout, UnavailableIsCappedAtDesired) {
  auto f = rollout::fenceposts(0, 10, 3);
  EXPECT_EQ(f.max_unavailable, 3);
}

TEST(Rollout, IntegersAndMalformedValues) {
  EXPECT_EQ(rollout::resolve(json(2), 10, true), 2);
  EXPECT_EQ(rollout::resolve(json("50%"), 5, true), 3);
  EXPECT_EQ(rollout::resolve(json("50%"), 5, false), 2);
  EXPECT_THROW(rollout::resolve(json("abc%"), 5, true), std::invalid_argument);
  EXPECT_THROW(rollout::resolve(json::array(), 5, true), std::invalid_argument);
}

TEST(Rollout, NewReplicaSetGrowsWithinSurge) {
  auto f = rollout::fenceposts("25%", "25%", 10); // surge 3
  // Start of a rollout: 10 old pods, the new set may grow to 3 (13 pods at most).
  EXPECT_EQ(rollout::new_rs_replicas(10, f, 10, 0), 3);
  // Already at the cap: no growth.
  EXPECT_EQ(rollout::new_rs_replicas(10, f, 13, 3), 3);
  // Old scaled down to 5: total 8, room for 5 more, but never above desired.
  EXPECT_EQ(rollout::new_rs_replicas(10, f, 8, 3), 8);
  EXPECT_EQ(rollout::new_rs_replicas(10, f, 10, 9), 10);
}

TEST(Rollout, OldReplicaSetsScaleDownKeepingMinimumAvailability) {
  auto f = rollout::fenceposts("25%", "25%", 10); // surge 3, unavailable 2 -> min available 8
  // 10 old available, 3 new not yet available: may remove 13 - 8 - 3 = 2 old pods.
  auto out = rollout::scale_down_old(10, f, {{10, 10}}, {3, 0});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], 8);
  // New pods available: 8 old + 3 new available = 11 > 8, scale old down by 3.
  out = rollout::scale_down_old(10, f, {{8, 8}}, {3, 3});
  EXPECT_EQ(out[0], 5);
}

TEST(Rollout, UnhealthyOldReplicasGoFirstOldestSetFirst) {
  auto f = rollout::fenceposts(0, 1, 4); // min available 3
  // Two old sets: the oldest has 2 replicas of which 0 available, the next 2 available.
  auto out = rollout::scale_down_old(4, f, {{2, 0}, {2, 2}}, {0, 0});
  // Unhealthy replicas may all go (max scale-down 4-3-0 = 1 caps it at 1 first).
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[1], 2);
}

TEST(Rollout, NothingToScaleWhenNoOldPods) {
  auto f = rollout::fenceposts("25%", "25%", 4);
  auto out = rollout::scale_down_old(4, f, {{0, 0}}, {4, 4});
  EXPECT_EQ(out[0], 0);
}
