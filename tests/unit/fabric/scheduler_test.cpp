// The scheduler: eligibility by step type and selectors, least-loaded placement, slots, the
// queue; and delegate selectors in the pipeline model with their precedence.
#include <gtest/gtest.h>

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
  EXPECT_NE(busy.reason.find("waiting for a free slot"), std::string::npos) << busy.reason;
  EXPECT_TRUE(s.release("instance-a", "t1", 1));
  EXPECT_FALSE(s.release("instance-a", "t1", 1));
  EXPECT_EQ(s.place({"ShellScript", {"eu", "prod"}}).session, &a);
}

TEST(Scheduler, SaysWhyNothingMatches) {
  Scheduler s;
  add(s, "a", {"eu"}, 1);
  auto none = s.place({"ShellScript", {"mars"}});
  EXPECT_EQ(none.verdict, Placement::Verdict::kUnmatched);
  EXPECT_NE(none.reason.find("no connected delegate matches delegate selectors [mars]"),
            std::string::npos)
      << none.reason;
  EXPECT_NE(none.reason.find("a (ShellScript; tags: eu)"), std::string::npos) << none.reason;
  auto untyped = s.place({"K8sApply", {}});
  EXPECT_EQ(untyped.verdict, Placement::Verdict::kUnmatched);
  EXPECT_NE(untyped.reason.find("no connected delegate can run step type 'K8sApply'"),
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

TEST(Scheduler, QueueKeepsOrderAcrossTakeAndRestore) {
  Scheduler s;
  s.enqueue({"e1", 0, 1, {}, false});
  s.enqueue({"e2", 0, 2, {}, false});
  auto q = s.take_queue();
  s.enqueue({"e3", 0, 3, {}, false}); // queued while the caller holds the queue
  q.pop_front();
  s.restore_queue(std::move(q));
  auto all = s.take_queue();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].execution, "e2");
  EXPECT_EQ(all[1].execution, "e3");
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
