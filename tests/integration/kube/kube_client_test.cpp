// capstan::kube against a real capstan-sandbox: discovery, verbs, typed errors, watches and
// steady-state waits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "capstan/kube/client.h"
#include "capstan/kube/config.h"
#include "capstan/kube/wait.h"
#include "capstan/kube/watch.h"
#include "capstan/testing/sandbox.h"

namespace capstan::kube {
namespace {

namespace ct = capstan::testing;
using nlohmann::json;
using ::testing::HasSubstr;

json deployment(const std::string& name, const std::string& image, int replicas = 2) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"app", name}}}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec", {{"containers", json::array({{{"name", "app"}, {"image", image}}})}}}}}}}};
}

json config_map(const std::string& name, const std::string& value,
                const std::string& label = "demo") {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"set", label}}}}},
          {"data", {{"key", value}}}};
}

class KubeClientTest : public ::testing::Test {
protected:
  void SetUp() override {
    sandbox_ = std::make_unique<ct::Sandbox>(dir_ / "sandbox");
    client_ = std::make_unique<Client>(load_kubeconfig(sandbox_->kubeconfig()));
  }
  ct::TempDir dir_{"kube-client-test"};
  std::unique_ptr<ct::Sandbox> sandbox_;
  std::unique_ptr<Client> client_;
};

TEST_F(KubeClientTest, ReachesTheServerWithTheKubeconfigsCaAndToken) {
  auto v = client_->server_version();
  EXPECT_TRUE(v.contains("gitVersion")) << v.dump();
  EXPECT_EQ(client_->default_namespace(), "default");
}

TEST_F(KubeClientTest, DiscoveryKnowsKindsAndSaysWhatIsServed) {
  auto d = client_->resource("apps/v1", "Deployment");
  EXPECT_EQ(d.resource, "deployments");
  EXPECT_TRUE(d.namespaced);
  EXPECT_TRUE(d.has_scale);
  EXPECT_TRUE(d.supports("patch"));
  EXPECT_FALSE(client_->resource("v1", "Namespace").namespaced);
  try {
    client_->resource("apps/v1", "Widget");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupportedKind);
    EXPECT_THAT(e.what(), HasSubstr("does not serve kind Widget in apps/v1"));
    EXPECT_THAT(e.what(), HasSubstr("Deployment"));
    EXPECT_THAT(e.what(), HasSubstr("StatefulSet"));
  }
  try {
    client_->resource("extensions/v1beta1", "Deployment");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupportedKind);
    EXPECT_THAT(e.what(), HasSubstr("does not serve apiVersion extensions/v1beta1"));
    EXPECT_THAT(e.what(), HasSubstr("Deployment is served as apps/v1"));
  }
}

TEST_F(KubeClientTest, DiscoveryPicksUpNewCustomResourcesOnAMiss) {
  EXPECT_FALSE(client_->find_resource("example.com/v1", "Widget").has_value());
  json crd = json::parse(R"({
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": true, "storage": true,
                           "schema": {"openAPIV3Schema": {"type": "object",
                             "x-kubernetes-preserve-unknown-fields": true}}}]}})");
  client_->apply(crd);
  ASSERT_TRUE(ct::wait_until([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500)); // past the negative cache
    return client_->find_resource("example.com/v1", "Widget").has_value();
  }));
  client_->apply({{"apiVersion", "example.com/v1"},
                  {"kind", "Widget"},
                  {"metadata", {{"name", "w1"}, {"namespace", "default"}}},
                  {"spec", {{"size", 3}}}});
  EXPECT_EQ(client_->get({"example.com/v1", "Widget", "default", "w1"})["spec"]["size"], 3);
}

TEST_F(KubeClientTest, ServerSideApplyCreatesUpdatesAndReportsConflicts) {
  auto created = client_->apply(config_map("settings", "one"));
  EXPECT_EQ(created["data"]["key"], "one");
  EXPECT_EQ(created["metadata"]["managedFields"][0]["manager"], "capstan");
  auto updated = client_->apply(config_map("settings", "two"));
  EXPECT_EQ(updated["data"]["key"], "two");

  // Another manager that sets the same field conflicts unless it forces.
  ApplyOptions other;
  other.field_manager = "someone-else";
  try {
    client_->apply(config_map("settings", "three"), other);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConflict);
    ASSERT_FALSE(e.causes().empty());
    EXPECT_EQ(e.causes()[0].reason, "FieldManagerConflict");
  }
  other.force = true;
  EXPECT_EQ(client_->apply(config_map("settings", "three"), other)["data"]["key"], "three");

  // A dry run answers with the result and changes nothing.
  ApplyOptions dry;
  dry.dry_run = true;
  dry.force = true;
  EXPECT_EQ(client_->apply(config_map("settings", "four"), dry)["data"]["key"], "four");
  EXPECT_EQ(client_->get({"v1", "ConfigMap", "default", "settings"})["data"]["key"], "three");
  ApplyOptions dry_new;
  dry_new.dry_run = true;
  client_->apply(config_map("ghost", "x"), dry_new);
  EXPECT_FALSE(client_->try_get({"v1", "ConfigMap", "default", "ghost"}).has_value());
}

TEST_F(KubeClientTest, InvalidObjectsComeBackWithTheirCauses) {
  json bad = config_map("Bad_Name", "x");
  try {
    client_->apply(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalid);
    EXPECT_EQ(e.http_status(), 422);
    ASSERT_FALSE(e.causes().empty());
    EXPECT_EQ(e.causes()[0].field, "metadata.name");
  }
  // An unknown field is refused under strict validation (kubectl's default).
  json typo = config_map("typo", "x");
  typo["dta"] = {{"a", "b"}};
  try {
    client_->apply(typo);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBadRequest);
    EXPECT_THAT(e.what(), HasSubstr("dta"));
  }
}

TEST_F(KubeClientTest, ListFollowsPagesAndSelectors) {
  for (int i = 0; i < 7; ++i) client_->apply(config_map("cm-" + std::to_string(i), "v", "a"));
  for (int i = 0; i < 3; ++i) client_->apply(config_map("other-" + std::to_string(i), "v", "b"));
  ListOptions o;
  o.limit = 2;
  o.label_selector = "set=a";
  auto before = client_->stats().requests;
  auto page = client_->list("v1", "ConfigMap", "default", o);
  EXPECT_EQ(page.items.size(), 7u);
  EXPECT_GE(client_->stats().requests - before, 4u); // four pages of at most two
  EXPECT_EQ(page.items[0]["kind"], "ConfigMap");
  EXPECT_FALSE(page.resource_version.empty());
  ListOptions f;
  f.field_selector = "metadata.name=other-1";
  EXPECT_EQ(client_->list("v1", "ConfigMap", "default", f).items.size(), 1u);
  ListOptions notin;
  notin.label_selector = "set notin (a)";
  EXPECT_EQ(client_->list("v1", "ConfigMap", "default", notin).items.size(), 3u);
}

TEST_F(KubeClientTest, PatchDeleteAndNotFound) {
  client_->apply(deployment("web", "nginx:1.25"));
  ObjectRef ref{"apps/v1", "Deployment", "default", "web"};
  client_->patch(ref, PatchType::kMerge, R"({"metadata":{"labels":{"tier":"front"}}})");
  client_->patch(
      ref, PatchType::kStrategicMerge,
      R"({"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.26"}]}}}})");
  client_->patch(ref, PatchType::kJson,
                 R"([{"op":"replace","path":"/metadata/labels/tier","value":"back"}])");
  auto got = client_->get(ref);
  EXPECT_EQ(got["metadata"]["labels"]["tier"], "back");
  EXPECT_EQ(got["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.26");

  EXPECT_TRUE(client_->remove(ref, {Propagation::kForeground, std::nullopt, false, ""}));
  ASSERT_TRUE(ct::wait_until([&] { return !client_->try_get(ref).has_value(); }));
  EXPECT_FALSE(client_->remove(ref));
  try {
    client_->get(ref);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_EQ(e.http_status(), 404);
  }
  // Create twice: AlreadyExists.
  client_->create(config_map("once", "1"));
  try {
    client_->create(config_map("once", "1"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kAlreadyExists);
  }
  // A stale resourceVersion on update: Conflict.
  auto cm = client_->get({"v1", "ConfigMap", "default", "once"});
  auto stale = cm;
  cm["data"]["key"] = "2";
  client_->update(cm);
  stale["data"]["key"] = "3";
  try {
    client_->update(stale);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConflict);
  }
}

TEST_F(KubeClientTest, ScaleSubresource) {
  client_->apply(deployment("web", "nginx:1.25", 1));
  ObjectRef ref{"apps/v1", "Deployment", "default", "web"};
  client_->scale(ref, 4);
  EXPECT_EQ(client_->get_scale(ref)["spec"]["replicas"], 4);
  EXPECT_EQ(client_->get(ref)["spec"]["replicas"], 4);
  client_->apply(config_map("c", "v"));
  try {
    client_->scale({"v1", "ConfigMap", "default", "c"}, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("ConfigMap has no scale subresource"));
  }
}

TEST_F(KubeClientTest, WrongTokenIsUnauthorized) {
  auto config = load_kubeconfig(sandbox_->kubeconfig());
  config.token = "not-the-token";
  Client bad(config);
  try {
    bad.server_version();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnauthorized);
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("not-the-token")));
  }
}

TEST_F(KubeClientTest, UntrustedServerIsAnAuthenticationError) {
  auto config = load_kubeconfig(sandbox_->kubeconfig());
  config.ca_pem = ct::read_file(sandbox_->ca_file()); // a CA
  // ... but from another sandbox: its certificate does not vouch for this server.
  ct::Sandbox other(dir_ / "other", "");
  config.ca_pem = ct::read_file(other.ca_file());
  try {
    Client(config).server_version();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kAuthentication);
    EXPECT_THAT(e.what(), HasSubstr("could not be verified"));
  }
  config.insecure_skip_tls_verify = true;
  EXPECT_TRUE(Client(config).server_version().contains("gitVersion"));
}

TEST_F(KubeClientTest, UnreachableServerIsAConnectivityError) {
  auto config = load_kubeconfig(sandbox_->kubeconfig());
  int port = sandbox_->port();
  sandbox_->stop();
  config.server = "https://127.0.0.1:" + std::to_string(port);
  ClientOptions o;
  o.max_retries = 2;
  o.retry_base = std::chrono::milliseconds(10);
  Client c(config, o);
  try {
    c.server_version();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConnectivity);
    EXPECT_THAT(e.what(), HasSubstr("cannot connect to https://127.0.0.1:"));
  }
  EXPECT_EQ(c.stats().retries, 2u);
}

TEST_F(KubeClientTest, ExecCredentialPluginIsCachedUntilItExpires) {
  auto config = load_kubeconfig(sandbox_->kubeconfig());
  std::string token = config.token;
  config.token.clear();
  auto counter = dir_ / "exec-runs";
  auto script = dir_ / "exec.sh";
  ct::write_file(script, "#!/bin/sh\necho run >> " + counter.string() +
                             "\n[ -n \"$KUBERNETES_EXEC_INFO\" ] || exit 3\n"
                             "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                             "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s\","
                             "\"expirationTimestamp\":\"%s\"}}' \"$TOKEN\" \"$EXPIRES\"\n");
  ct::run({"chmod", "+x", script.string()});
  config.exec = ExecConfig{"client.authentication.k8s.io/v1", script.string(), {}, {}, "", false};
  config.exec->env = {{"TOKEN", token}, {"EXPIRES", "2999-01-01T00:00:00Z"}};
  Client c(config);
  for (int i = 0; i < 5; ++i) c.server_version();
  EXPECT_EQ(ct::read_file(counter), "run\n");

  // An expired credential is fetched again for every request.
  std::filesystem::remove(counter);
  config.exec->env = {{"TOKEN", token}, {"EXPIRES", "2001-01-01T00:00:00+02:00"}};
  Client expiring(config);
  for (int i = 0; i < 3; ++i) expiring.server_version();
  EXPECT_EQ(ct::read_file(counter), "run\nrun\nrun\n");

  // A plugin that fails is an authentication error with its last line.
  config.exec->command = "/bin/sh";
  config.exec->args = {"-c", "echo 'token expired, run login' >&2; exit 4"};
  try {
    Client(config).server_version();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kAuthentication);
    EXPECT_THAT(e.what(), HasSubstr("token expired, run login"));
  }
}

TEST_F(KubeClientTest, TokenFileIsReadForRequests) {
  auto config = load_kubeconfig(sandbox_->kubeconfig());
  ct::write_file(dir_ / "token", config.token + "\n");
  config.token.clear();
  config.token_file = (dir_ / "token").string();
  EXPECT_TRUE(Client(config).server_version().contains("gitVersion"));
}

TEST_F(KubeClientTest, RateLimitHoldsRequestsBack) {
  ClientOptions o;
  o.qps = 20;
  o.burst = 2;
  Client c(load_kubeconfig(sandbox_->kubeconfig()), o);
  for (int i = 0; i < 6; ++i) c.server_version();
  EXPECT_GE(c.stats().throttled, 3u);
  ClientOptions none;
  none.qps = 0;
  Client free(load_kubeconfig(sandbox_->kubeconfig()), none);
  for (int i = 0; i < 6; ++i) free.server_version();
  EXPECT_EQ(free.stats().throttled, 0u);
}

TEST_F(KubeClientTest, CancelledCallsStop) {
  std::atomic<bool> stop{true};
  Client c = client_->with_cancel([&] { return stop.load(); });
  try {
    c.server_version();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCancelled);
  }
}

TEST_F(KubeClientTest, ManyThreadsShareTheClient) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < 10; ++i) {
          client_->apply(config_map("t" + std::to_string(t) + "-" + std::to_string(i), "v"));
        }
      } catch (const std::exception&) {
        ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(client_->list("v1", "ConfigMap", "default", {"set=demo", "", 500, ""}).items.size(),
            80u);
}

TEST_F(KubeClientTest, WatchListsThenStreamsAndResumesAfterARestart) {
  client_->apply(config_map("before", "1"));
  std::mutex m;
  std::vector<std::string> seen;
  int syncs = 0;
  WatchOptions wo;
  wo.namespace_ = "default";
  wo.min_backoff = std::chrono::milliseconds(50);
  WatchHandlers h;
  h.on_sync = [&](const std::vector<json>& items, const std::string&) {
    std::lock_guard lock(m);
    ++syncs;
    for (const auto& i : items) seen.push_back("SYNC " + i["metadata"]["name"].get<std::string>());
  };
  h.on_event = [&](const WatchEvent& e) {
    if (e.type == WatchEventType::kBookmark) return;
    std::lock_guard lock(m);
    seen.push_back(std::string(to_string(e.type)) + " " +
                   e.object["metadata"]["name"].get<std::string>() + " " +
                   e.object["data"].value("key", ""));
  };
  Watch w(*client_, "v1", "ConfigMap", wo, h);
  auto saw = [&](const std::string& s) {
    return ct::wait_until([&] {
      std::lock_guard lock(m);
      return std::find(seen.begin(), seen.end(), s) != seen.end();
    });
  };
  ASSERT_TRUE(saw("SYNC before"));
  client_->apply(config_map("during", "1"));
  ASSERT_TRUE(saw("ADDED during 1"));
  client_->apply(config_map("during", "2"));
  ASSERT_TRUE(saw("MODIFIED during 2"));

  // The server goes away and comes back: the watch reconnects from where it was, so the
  // change made while it was away arrives once and nothing is listed again.
  int port = sandbox_->port();
  sandbox_->stop();
  sandbox_->start(port);
  Client again(load_kubeconfig(sandbox_->kubeconfig()));
  again.remove({"v1", "ConfigMap", "default", "during"});
  ASSERT_TRUE(saw("DELETED during 2"));
  {
    std::lock_guard lock(m);
    EXPECT_EQ(syncs, 1);
  }
  EXPECT_GE(w.connects(), 2);
}

TEST_F(KubeClientTest, WatchFromATooOldVersionListsAgain) {
  sandbox_->stop();
  ct::write_file(sandbox_->data_dir() / "config.yaml",
                 std::string(ct::kFastSandbox) + "watchHistory: 100\n");
  sandbox_->start();
  Client c(load_kubeconfig(sandbox_->kubeconfig()));
  for (int i = 0; i < 110; ++i) c.apply(config_map("cm", std::to_string(i)));
  std::atomic<int> syncs{0};
  std::atomic<int> events{0};
  WatchOptions wo;
  wo.namespace_ = "default";
  wo.resource_version = "1"; // long gone from the server's history
  WatchHandlers h;
  h.on_sync = [&](const std::vector<json>& items, const std::string&) {
    EXPECT_EQ(items.size(), 1u);
    ++syncs;
  };
  h.on_event = [&](const WatchEvent& e) {
    if (e.type != WatchEventType::kBookmark) ++events;
  };
  Watch w(c, "v1", "ConfigMap", wo, h);
  ASSERT_TRUE(ct::wait_until([&] { return syncs.load() == 1; }));
  c.apply(config_map("cm", "new"));
  ASSERT_TRUE(ct::wait_until([&] { return events.load() >= 1; }));
  EXPECT_EQ(w.lists(), 1);
}

TEST_F(KubeClientTest, EventsForAnObject) {
  client_->apply(deployment("web", "nginx:1.25", 1));
  ObjectRef ref{"apps/v1", "Deployment", "default", "web"};
  ASSERT_TRUE(ct::wait_until([&] { return !client_->events_for(client_->get(ref)).empty(); }));
  auto events = client_->events_for(client_->get(ref));
  EXPECT_EQ(events.front()["reason"], "ScalingReplicaSet");
}

// --- steady-state waits ---

struct Lines {
  std::mutex m;
  std::vector<std::string> lines;
  std::function<void(LogLevel, const std::string&)> sink() {
    return [this](LogLevel, const std::string& l) {
      std::lock_guard lock(m);
      lines.push_back(l);
    };
  }
  std::string text() {
    std::lock_guard lock(m);
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

TEST_F(KubeClientTest, WaitsUntilADeploymentHasRolledOutAndShowsItsEvents) {
  auto start = std::chrono::system_clock::now() - std::chrono::seconds(1);
  client_->apply(deployment("web", "nginx:1.25", 3));
  Lines log;
  WaitOptions o;
  o.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  o.log = log.sink();
  o.events_since = start;
  auto r = wait_for_steady_state(*client_, {{"apps/v1", "Deployment", "default", "web"}}, o);
  EXPECT_TRUE(r.ready()) << r.message << "\n" << log.text();
  EXPECT_THAT(log.text(), HasSubstr("deployment \"web\" successfully rolled out"));
  EXPECT_THAT(log.text(), HasSubstr("Event Deployment/web: Normal ScalingReplicaSet"));
  EXPECT_THAT(log.text(), HasSubstr("Event Pod/web-"));
}

TEST_F(KubeClientTest, WaitTimesOutWithThePodsReasons) {
  client_->apply(deployment("web", "nginx:1.25", 2));
  WaitOptions first;
  first.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  ASSERT_TRUE(wait_for_steady_state(*client_, {{"apps/v1", "Deployment", "default", "web"}}, first)
                  .ready());
  client_->apply(deployment("web", "nginx:crashloop", 2));
  Lines log;
  WaitOptions o;
  o.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  o.log = log.sink();
  o.pod_check_every = std::chrono::milliseconds(500);
  auto r = wait_for_steady_state(*client_, {{"apps/v1", "Deployment", "default", "web"}}, o);
  EXPECT_EQ(r.outcome, WaitResult::Outcome::kTimedOut) << r.message;
  ASSERT_EQ(r.workloads.size(), 1u);
  ASSERT_FALSE(r.workloads[0].pod_problems.empty()) << log.text();
  EXPECT_THAT(r.workloads[0].pod_problems[0], HasSubstr("CrashLoopBackOff"));
  EXPECT_THAT(log.text(), HasSubstr("CrashLoopBackOff"));
  EXPECT_THAT(log.text(), HasSubstr("Warning BackOff"));
}

TEST_F(KubeClientTest, WaitFailsWhenTheProgressDeadlinePasses) {
  json d = deployment("slow", "nginx:pullfail", 1);
  // Long enough for the pod to report its pull failure first: condition times are whole
  // seconds, so a 1 s deadline can pass after 0.4 s on a busy machine.
  d["spec"]["progressDeadlineSeconds"] = 3;
  client_->apply(d);
  WaitOptions o;
  o.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto r = wait_for_steady_state(*client_, {{"apps/v1", "Deployment", "default", "slow"}}, o);
  EXPECT_EQ(r.outcome, WaitResult::Outcome::kFailed) << r.message;
  // The workload, kubectl's words, then the condition's reason and message.
  EXPECT_THAT(r.message, HasSubstr("Deployment/default/slow: deployment \"slow\" exceeded its "
                                   "progress deadline (ProgressDeadlineExceeded: ReplicaSet "
                                   "\"slow-"));
  EXPECT_THAT(r.message, HasSubstr("has timed out progressing."));
  EXPECT_EQ(r.failure.reason, "ProgressDeadlineExceeded");
  EXPECT_TRUE(r.failure.deadline_exceeded());
  ASSERT_FALSE(r.workloads[0].pod_problems.empty());
  EXPECT_THAT(r.workloads[0].pod_problems[0],
              ::testing::AnyOf(HasSubstr("ErrImagePull"), HasSubstr("ImagePullBackOff")));
}

// A rollout right after another: event timestamps have whole-second resolution, so only the
// baseline taken before the change tells the first rollout's events from the second's.
TEST_F(KubeClientTest, WaitShowsOnlyTheEventsOfTheCurrentRollout) {
  const ObjectRef web{"apps/v1", "Deployment", "default", "web"};
  auto since = std::chrono::system_clock::now() - std::chrono::seconds(1);
  client_->apply(deployment("web", "nginx:1.25", 2));
  WaitOptions first;
  first.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  ASSERT_TRUE(wait_for_steady_state(*client_, {web}, first).ready());
  auto sets = client_->list("apps/v1", "ReplicaSet", "default").items;
  ASSERT_EQ(sets.size(), 1u);
  std::string old_set = sets[0]["metadata"]["name"];
  // The first rollout's events are all there before the second starts.
  ASSERT_TRUE(ct::wait_until([&] {
    int n = 0;
    for (const auto& e : client_->list("v1", "Event", "default").items) {
      n += e["involvedObject"]["name"].get<std::string>().rfind(old_set + "-", 0) == 0;
    }
    return n >= 2;
  }));

  auto before = std::make_shared<EventBaseline>(EventBaseline::take(*client_, {"default"}));
  EXPECT_TRUE(before->covers("default"));
  EXPECT_FALSE(before->covers("other"));
  client_->apply(deployment("web", "nginx:1.26", 2));
  Lines log;
  WaitOptions o;
  o.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  o.log = log.sink();
  o.events_since = since; // would let the first rollout's events through on its own
  o.events_before = before;
  auto r = wait_for_steady_state(*client_, {web}, o);
  ASSERT_TRUE(r.ready()) << r.message << "\n" << log.text();
  std::string text = log.text();
  EXPECT_THAT(text, HasSubstr("Scaled up replica set web-"));
  EXPECT_THAT(text, HasSubstr("Scaled down replica set " + old_set));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("Scaled up replica set " + old_set))) << text;
  EXPECT_THAT(text, ::testing::Not(HasSubstr("Event ReplicaSet/" + old_set +
                                             ": Normal "
                                             "SuccessfulCreate")))
      << text;
  // The old pods' own start (their stopping belongs to this rollout).
  EXPECT_THAT(text, ::testing::Not(::testing::ContainsRegex(
                        "Event Pod/" + old_set + "-[a-z0-9]+: Normal (Scheduled|Pulled|Started)")))
      << text;
}

TEST_F(KubeClientTest, WaitIsCancellable) {
  client_->apply(deployment("web", "nginx:crashloop", 1));
  std::atomic<bool> cancel{false};
  WaitOptions o;
  o.cancelled = [&] { return cancel.load(); };
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    cancel = true;
  });
  auto r = wait_for_steady_state(*client_, {{"apps/v1", "Deployment", "default", "web"}}, o);
  t.join();
  EXPECT_EQ(r.outcome, WaitResult::Outcome::kCancelled);
}

TEST_F(KubeClientTest, WaitCoversStatefulSetsDaemonSetsAndJobs) {
  json sts = deployment("db", "postgres:16", 2);
  sts["kind"] = "StatefulSet";
  sts["spec"]["serviceName"] = "db";
  json ds = deployment("agent", "agent:1", 1);
  ds["kind"] = "DaemonSet";
  ds["spec"].erase("replicas");
  json job = {{"apiVersion", "batch/v1"},
              {"kind", "Job"},
              {"metadata", {{"name", "migrate"}, {"namespace", "default"}}},
              {"spec",
               {{"template",
                 {{"spec",
                   {{"restartPolicy", "Never"},
                    {"containers", json::array({{{"name", "m"}, {"image", "migrate:1"}}})}}}}}}}};
  for (const auto& o : {sts, ds, job}) client_->apply(o);
  WaitOptions o;
  o.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto r = wait_for_steady_state(*client_,
                                 {ObjectRef::of(sts),
                                  ObjectRef::of(ds),
                                  ObjectRef::of(job),
                                  {"v1", "ConfigMap", "default", "not-a-workload"}},
                                 o);
  EXPECT_TRUE(r.ready()) << r.message;
  EXPECT_EQ(r.workloads.size(), 3u);
}

} // namespace
} // namespace capstan::kube
