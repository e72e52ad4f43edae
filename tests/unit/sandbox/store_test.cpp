// The object store: resourceVersion across restarts, watches and their history window.
#include "capstan/sandbox/store.h"
#include "capstan/testing/testing.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

using namespace capstan::sandbox;
using nlohmann::json;

namespace {
json object(const std::string& name, int v) {
  return {{"metadata", {{"name", name}, {"namespace", "ns"}}},
          {"data", {{"v", std::to_string(v)}}}};
}
ObjectPtr put(Store& s, const std::string& name, int v) {
  return s.mutate({"/configmaps", "ns", name},
                  [&](const ObjectPtr&) { return std::optional<json>(object(name, v)); });
}
} // namespace

TEST(Store, ResourceVersionIsGlobalMonotonicAndSurvivesReopen) {
  capstan::testing::TempDir dir;
  std::int64_t last = 0;
  {
    Store s(dir.path() / "state.db");
    auto a = put(s, "a", 1);
    auto b = put(s, "b", 1);
    EXPECT_LT(std::stoll((*a)["metadata"]["resourceVersion"].get<std::string>()),
              std::stoll((*b)["metadata"]["resourceVersion"].get<std::string>()));
    last = s.resource_version();
  }
  Store s(dir.path() / "state.db");
  EXPECT_EQ(s.resource_version(), last);
  ASSERT_NE(s.get({"/configmaps", "ns", "a"}), nullptr);
  auto c = put(s, "c", 1);
  EXPECT_GT(std::stoll((*c)["metadata"]["resourceVersion"].get<std::string>()), last);
}

TEST(Store, UnchangedWritesKeepTheResourceVersion) {
  capstan::testing::TempDir dir;
  Store s(dir.path() / "state.db");
  put(s, "a", 1);
  auto rv = s.resource_version();
  put(s, "a", 1);
  EXPECT_EQ(s.resource_version(), rv);
}

TEST(Store, WatchReplaysHistoryThenFollows) {
  capstan::testing::TempDir dir;
  Store s(dir.path() / "state.db");
  put(s, "a", 1);
  auto from = s.resource_version();
  put(s, "a", 2);
  auto w = s.watch("/configmaps", "ns", from, nullptr);
  ASSERT_NE(w, nullptr);
  s.mutate({"/configmaps", "ns", "a"}, [](const ObjectPtr&) { return std::optional<json>(); });
  std::vector<Change> got;
  capstan::testing::wait_until([&] {
    for (auto& c : w->next(std::chrono::milliseconds(50))) got.push_back(c);
    return got.size() >= 2;
  });
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].type, "MODIFIED");
  EXPECT_EQ((*got[0].object)["data"]["v"], "2");
  EXPECT_EQ(got[1].type, "DELETED");
}

TEST(Store, WatchFromBeforeTheHistoryWindowIsGone) {
  capstan::testing::TempDir dir;
  Store s(dir.path() / "state.db", 100);
  put(s, "a", 0);
  auto old = s.resource_version();
  for (int i = 1; i <= 150; ++i) put(s, "a", i);
  EXPECT_EQ(s.watch("/configmaps", "ns", old, nullptr), nullptr);
  EXPECT_NE(s.watch("/configmaps", "ns", s.resource_version() - 10, nullptr), nullptr);
}

TEST(Store, ASlowWatcherIsClosedInsteadOfBlockingWriters) {
  capstan::testing::TempDir dir;
  Store s(dir.path() / "state.db", 1000, 50);
  auto w = s.watch("/configmaps", "ns", s.resource_version(), nullptr);
  // Never read: the watcher's queue fills and it is closed; writes keep going.
  for (int i = 0; i < 60; ++i)
    s.mutate({"/configmaps", "ns", "a"},
             [&](const ObjectPtr&) { return std::optional<json>(object("a", i)); });
  EXPECT_TRUE(w->closed());
}

TEST(Store, OptimisticWritesRacingOnOneObjectLoseNoUpdate) {
  capstan::testing::TempDir dir;
  Store s(dir.path() / "state.db");
  put(s, "counter", 0);
  auto w = s.watch("/configmaps", "ns", s.resource_version(), nullptr);
  ASSERT_NE(w, nullptr);
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  std::atomic<int> runs{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        s.mutate_optimistic({"/configmaps", "ns", "counter"},
                            [&](const ObjectPtr& current) -> std::optional<json> {
                              ++runs;
                              json next = *current;
                              int v = std::stoi(next["data"]["v"].get<std::string>());
                              std::this_thread::yield(); // widen the window for a race
                              next["data"]["v"] = std::to_string(v + 1);
                              return next;
                            });
      }
    });
  }
  for (auto& t : threads) t.join();
  // Every increment landed on the value the one before it left.
  auto final = s.get({"/configmaps", "ns", "counter"});
  EXPECT_EQ((*final)["data"]["v"], std::to_string(kThreads * kEach));
  EXPECT_GE(runs.load(), kThreads * kEach);
  // One event per write, in resourceVersion order, each one more than the last.
  std::vector<Change> got;
  capstan::testing::wait_until([&] {
    for (auto& c : w->next(std::chrono::milliseconds(50))) got.push_back(c);
    return got.size() >= static_cast<std::size_t>(kThreads * kEach);
  });
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kThreads * kEach));
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ((*got[i].object)["data"]["v"], std::to_string(i + 1));
    if (i > 0) {
      EXPECT_EQ(got[i].rv, got[i - 1].rv + 1);
    }
  }
}

TEST(Store, AnOptimisticWriteThatThrowsChangesNothing) {
  capstan::testing::TempDir dir;
  Store s(dir.path() / "state.db");
  put(s, "a", 1);
  auto rv = s.resource_version();
  EXPECT_THROW(s.mutate_optimistic({"/configmaps", "ns", "a"},
                                   [](const ObjectPtr&) -> std::optional<json> {
                                     throw std::runtime_error("refused");
                                   }),
               std::runtime_error);
  EXPECT_EQ(s.resource_version(), rv);
  EXPECT_EQ((*s.get({"/configmaps", "ns", "a"}))["data"]["v"], "1");
}
