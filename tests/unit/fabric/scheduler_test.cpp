// The scheduler: eligibility by step type and selectors, least-loaded placement, slots, the
// queue; and delegate selectors in the pipeline model with their precedence.
#include <gtest/gtest.h>

#include <set>

#include "engine/scheduler.h"
#include "model/object.h"
#include "model/pipeline.h"
#include "model/selectors.h"

namespace capstan::engine {
namespace {

Session& add(Scheduler& s, const std::string& name, std::vector<std::string> tags, int slots,
             std::vector<std::string> types = {"ShellScript"}) {
  bool fresh = false;
  auto& session = s.session("instance-" + name, &fresh);
  EXPECT_TRUE(fresh);
  session.name = name;
  session.tags = std::move(tags);
  session.slots = slots;
  for (const auto& t : types) {
    wire::v1::StepTypeAd ad;
    ad.set_type(t);
    ad.set_retry_safe(t == "Apply");
    session.types[t] = ad;
  }
  s.bind(session, "peer-" + name);
  return session;
}

TEST(Scheduler, PicksTheLeastLoadedDelegateThatMatchesEverySelector) {
  Scheduler s;
  auto& a = add(s, "a", {"eu", "prod"}, 2);
  auto& b = add(s, "b", {"eu"}, 4);
  add(s, "c", {"us", "prod"}, 8);
  auto p = s.place({"ShellScript", {"eu", "prod"}});
  ASSERT_EQ(p.verdict, Placement::Verdict::kPlaced);
  EXPECT_EQ(p.session, &a);
  // Both have eu: the least loaded (b, 0 of 4) wins once a has a task (1 of 2).
  s.occupy(a, "t1", 1);
  EXPECT_EQ(s.place({"ShellScript", {"eu"}}).session, &b);
  // A delegate's name is a tag.
  EXPECT_EQ(s.place({"ShellScript", {"a"}}).session, &a);
  // Full: busy, not unmatched.
  s.occupy(a, "t2", 1);
  auto busy = s.place({"ShellScript", {"eu", "prod"}});
  EXPECT_EQ(busy.verdict, Placement::Verdict::kBusy);
  auto why = s.waiting_reason({"ShellScript", {"eu", "prod"}}, busy.verdict);
  EXPECT_NE(why.find("waiting for a free slot"), std::string::npos) << why;
  EXPECT_TRUE(s.release("instance-a", "t1", 1));
  EXPECT_FALSE(s.release("instance-a", "t1", 1));
  EXPECT_EQ(s.place({"ShellScript", {"eu", "prod"}}).session, &a);
}

TEST(Scheduler, SaysWhyNothingMatches) {
  Scheduler s;
  add(s, "a", {"eu"}, 1);
  auto none = s.place({"ShellScript", {"mars"}});
  EXPECT_EQ(none.verdict, Placement::Verdict::kUnmatched);
  auto why = s.waiting_reason({"ShellScript", {"mars"}}, none.verdict);
  EXPECT_NE(why.find("no connected delegate matches delegate selectors [mars]"), std::string::npos)
      << why;
  EXPECT_NE(why.find("a (ShellScript; tags: eu)"), std::string::npos) << why;
  auto untyped = s.place({"K8sApply", {}});
  EXPECT_EQ(untyped.verdict, Placement::Verdict::kUnmatched);
  EXPECT_NE(s.waiting_reason({"K8sApply", {}}, untyped.verdict)
                .find("no connected delegate can run step type 'K8sApply'"),
            std::string::npos);
}

TEST(Scheduler, DrainingDelegatesTakeNothingAndDetachReturnsTheSession) {
  Scheduler s;
  auto& a = add(s, "a", {}, 4, {"ShellScript", "Apply"});
  a.draining = true;
  EXPECT_EQ(s.place({"ShellScript", {}}).verdict, Placement::Verdict::kBusy);
  EXPECT_FALSE(s.any_free_slot());
  EXPECT_TRUE(s.retry_safe("Apply"));
  EXPECT_FALSE(s.retry_safe("ShellScript"));
  auto gone = s.detach("peer-a");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->name, "a");
  EXPECT_EQ(s.by_peer("peer-a"), nullptr);
  EXPECT_TRUE(s.retry_safe("Apply")) << "what a plugin declared outlives its delegate";
}

QueuedTask queued(const std::string& execution, std::vector<std::string> selectors = {}) {
  QueuedTask t;
  t.execution = execution;
  t.needs = {"ShellScript", std::move(selectors)};
  return t;
}

// One scheduling pass as the engine makes it: each task offered goes to the delegate place()
// picks, except the `locked` ones (waiting for a repository). Returns "execution@delegate" in
// the order placed; `offered` counts the tasks looked at.
std::vector<std::string> run_pass(Scheduler& s, const std::set<std::string>& locked = {},
                                  int* offered = nullptr) {
  std::vector<std::string> placed;
  s.pass([&](QueuedTask& t) {
    if (offered != nullptr) ++*offered;
    if (locked.count(t.execution)) return Scheduler::Offer::kSkip;
    auto p = s.place(t.needs);
    if (p.verdict != Placement::Verdict::kPlaced) return Scheduler::Offer::kNoSlot;
    s.occupy(*p.session, t.execution, 1);
    placed.push_back(t.execution + "@" + p.session->name);
    return Scheduler::Offer::kDone;
  });
  return placed;
}

std::vector<std::string> waiting(Scheduler& s) {
  auto q = s.take_queue();
  std::vector<std::string> out;
  for (const auto& t : q) out.push_back(t.execution);
  s.restore_queue(std::move(q));
  return out;
}

using Names = std::vector<std::string>;

TEST(Scheduler, QueueKeepsOrderAcrossTakeAndRestore) {
  Scheduler s;
  s.enqueue(queued("e1"));
  s.enqueue(queued("e2", {"eu"}));
  auto q = s.take_queue();
  s.enqueue(queued("e3")); // queued while the caller holds the queue
  q.pop_front();
  s.restore_queue(std::move(q));
  EXPECT_EQ(s.queued(), 2u);
  EXPECT_EQ(waiting(s), (Names{"e2", "e3"}));
}

TEST(Scheduler, TwoKeysInterleavedArePlacedOldestFirstWhenSlotsFree) {
  Scheduler s;
  auto& d = add(s, "d", {"eu", "gpu"}, 3);
  for (const auto& t : {"x1", "x2", "x3"}) s.occupy(d, t, 1);
  s.enqueue(queued("e1", {"eu"}));
  s.enqueue(queued("e2", {"gpu"}));
  s.enqueue(queued("e3", {"eu"}));
  s.enqueue(queued("e4", {"gpu"}));
  s.enqueue(queued("e5", {"eu"}));
  EXPECT_TRUE(run_pass(s).empty()); // every slot taken
  s.release("instance-d", "x1", 1);
  EXPECT_EQ(run_pass(s), (Names{"e1@d"}));
  s.release("instance-d", "x2", 1);
  s.release("instance-d", "x3", 1);
  EXPECT_EQ(run_pass(s), (Names{"e2@d", "e3@d"}));
  EXPECT_EQ(waiting(s), (Names{"e4", "e5"}));
  EXPECT_EQ(s.queued(), 2u);
}

TEST(Scheduler, ABacklogForABusyDelegateIsLookedAtOncePerPassAndPlacedWhenItFreesASlot) {
  Scheduler s;
  auto& a = add(s, "a", {"prod"}, 1);
  add(s, "b", {"dev"}, 4); // idle, but no queued task can use it
  s.occupy(a, "x", 1);
  for (int i = 0; i < 100; ++i) s.enqueue(queued("e" + std::to_string(i), {"prod"}));
  int offered = 0;
  EXPECT_TRUE(run_pass(s, {}, &offered).empty());
  EXPECT_EQ(offered, 1); // the key's head: the others of its key cannot be placed either
  s.release("instance-a", "x", 1);
  offered = 0;
  EXPECT_EQ(run_pass(s, {}, &offered), (Names{"e0@a"}));
  EXPECT_EQ(offered, 2);
  EXPECT_EQ(s.queued(), 99u);
  EXPECT_EQ(waiting(s).front(), "e1");
}

TEST(Scheduler, ATaskWaitingForALockDoesNotHoldUpLaterTasksOfItsKey) {
  Scheduler s;
  add(s, "a", {}, 2);
  s.enqueue(queued("e1"));
  s.enqueue(queued("e2"));
  s.enqueue(queued("e3"));
  EXPECT_EQ(run_pass(s, {"e1"}), (Names{"e2@a", "e3@a"}));
  EXPECT_EQ(waiting(s), (Names{"e1"}));
  s.release("instance-a", "e2", 1);
  EXPECT_EQ(run_pass(s), (Names{"e1@a"}));
  EXPECT_EQ(s.queued(), 0u);
}

TEST(Scheduler, ATaskQueuedForAKeyNoDelegateMatchesIsPlacedWhenOneConnects) {
  Scheduler s;
  add(s, "a", {"eu"}, 1);
  s.enqueue(queued("e1", {"gpu"}));
  s.enqueue(queued("e2", {"eu"}));
  EXPECT_EQ(run_pass(s), (Names{"e2@a"}));
  EXPECT_EQ(s.place(queued("", {"gpu"}).needs).verdict, Placement::Verdict::kUnmatched);
  add(s, "g", {"gpu"}, 1);
  EXPECT_EQ(run_pass(s), (Names{"e1@g"}));
  EXPECT_EQ(s.queued(), 0u);
}

TEST(Scheduler, TasksQueuedDuringAPassWaitForTheNextAfterTheOlderOnes) {
  Scheduler s;
  add(s, "a", {}, 4);
  s.enqueue(queued("e1"));
  s.enqueue(queued("e2", {"a"}));
  bool once = true;
  s.pass([&](QueuedTask& t) {
    if (t.execution == "e1") {
      if (once) s.enqueue(queued("e3")); // as a step that fails at once moves its run on
      once = false;
      return Scheduler::Offer::kDone;
    }
    return Scheduler::Offer::kNoSlot;
  });
  EXPECT_EQ(waiting(s), (Names{"e2", "e3"}));
  EXPECT_EQ(run_pass(s), (Names{"e2@a", "e3@a"}));
}

const char* kSelectors = R"(pipeline:
  identifier: sel
  name: sel
  delegateSelectors: [prod]
  stages:
    - stage:
        identifier: one
        name: one
        type: Custom
        delegateSelectors: [eu]
        spec:
          execution:
            steps:
              - step:
                  type: ShellScript
                  identifier: a
                  name: a
                  delegateSelectors: [gpu, eu]
                  spec: {}
              - step:
                  type: ShellScript
                  identifier: b
                  name: b
                  spec: {}
    - stage:
        identifier: two
        name: two
        type: Custom
        spec:
          execution:
            steps:
              - step:
                  type: ShellScript
                  identifier: c
                  name: c
                  spec: {}
)";

TEST(DelegateSelectors, NearestLevelWinsAndSurvivesTheStoredForm) {
  auto objects = model::parse_objects({{"sel.yaml", kSelectors}});
  auto p = model::pipeline_from_json(objects.at(0).model);
  const auto& one = p.stages.at(0);
  const auto& two = p.stages.at(1);
  using V = std::vector<std::string>;
  EXPECT_EQ(model::effective_selectors(
                {&one.steps[0].delegate_selectors, &one.delegate_selectors, &p.delegate_selectors}),
            (V{"gpu", "eu"}));
  EXPECT_EQ(model::effective_selectors({&one.steps[1].delegate_selectors, nullptr,
                                        &one.delegate_selectors, &p.delegate_selectors}),
            (V{"eu"}));
  EXPECT_EQ(model::effective_selectors(
                {&two.steps[0].delegate_selectors, &two.delegate_selectors, &p.delegate_selectors}),
            (V{"prod"}));
}

TEST(DelegateSelectors, BadSelectorsAreNamedWithTheirPlace) {
  std::string yaml = kSelectors;
  yaml.replace(yaml.find("[gpu, eu]"), 9, "[gpu, gpu, '<+pipeline.name>', 'a b', 3]");
  try {
    model::parse_objects({{"sel.yaml", yaml}});
    FAIL() << "accepted bad selectors";
  } catch (const model::ValidationError& e) {
    std::string all;
    for (const auto& pr : e.problems()) all += pr.text() + "\n";
    EXPECT_NE(all.find("sel.yaml:18:"), std::string::npos) << all;
    EXPECT_NE(all.find("'gpu' is listed twice"), std::string::npos) << all;
    EXPECT_NE(all.find("expressions such as"), std::string::npos) << all;
    EXPECT_NE(all.find("invalid delegate selector 'a b'"), std::string::npos) << all;
    EXPECT_NE(all.find("a tag (a string), not"), std::string::npos) << all;
  }
}

} // namespace
} // namespace capstan::engine
