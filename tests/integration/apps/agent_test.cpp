// The GitOps agent end to end: a real coordinator, two delegates hosting the gitops plugin's
// reconciler, capstan-sandbox and a real Git remote. Applications applied with the API are
// assigned to one delegate, reconciled to Synced/Healthy, and move when their delegate dies.
#include <gtest/gtest.h>

#include <signal.h>

#include <capstan/testing/git_servers.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <iostream>

#include "gitops_stack_test.h"

namespace {

namespace fs = std::filesystem;
using namespace capstan::testing;
using nlohmann::json;

constexpr const char* kSecret = "s3cret-hook";

std::string hmac_sha256_hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 15];
  }
  return out;
}

class AgentTest : public GitOpsStackTest {
protected:
  AgentTest() : GitOpsStackTest("capstan-agent") {}
  void SetUp() override {
    sandbox_ = std::make_unique<Sandbox>(dir_ / "sandbox");
    capstan::testing::write_file(dir_ / "webhook-secret", std::string(kSecret) + "\n");
    stack_.coordinator_flags = {"--webhook-secret-file", (dir_ / "webhook-secret").string()};
    GitOpsStackTest::SetUp();
  }
  static std::string app_yaml(const std::string& name, const std::string& url,
                              const std::string& destination = "name: sandbox") {
    return "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: " + name +
           "\nspec:\n  project: default\n  source:\n    repoURL: " + url +
           "\n    targetRevision: main\n    path: apps/demo\n  destination:\n    " + destination +
           "\n    namespace: demo\n  syncPolicy:\n    automated: {prune: true, selfHeal: true}\n"
           "    syncOptions: [CreateNamespace=true]\n";
  }
  std::string kubectl(std::vector<std::string> args) {
    auto r = sandbox_->kubectl(std::move(args));
    EXPECT_TRUE(r.status.success()) << r.err;
    return r.out;
  }
};

TEST_F(AgentTest, ApplicationIsSyncedAndMovesWhenItsDelegateDies) {
  ReleaseRemote remote({{"apps/demo/settings.yaml", configmap_yaml("settings", "one")},
                        {"apps/demo/web.yaml", deployment_yaml("web", "nginx:1.25")}});
  auto& east = delegate("east");
  auto& west = delegate("west");
  ASSERT_TRUE(stack_.wait_for_delegates(2));
  auto applied =
      stack_.apply_text("apps.yaml", cluster_yaml() + "---\n" + app_yaml("demo", remote.url()));
  ASSERT_EQ(stack_.last_status(), 200) << applied.dump(2);

  const std::string first = remote.head();
  json a;
  ASSERT_TRUE(
      wait_until([&] { return synced_healthy(a = app("demo"), first); }, std::chrono::seconds(60)))
      << a.dump(2);
  EXPECT_EQ(kubectl({"get", "configmap", "settings", "-n", "demo", "-o", "jsonpath={.data.value}"}),
            "one");
  const std::string owner = a["assignment"]["delegate"];
  const auto epoch = a["assignment"]["epoch"].get<std::uint64_t>();
  ASSERT_TRUE(owner == "east" || owner == "west") << a.dump(2);
  EXPECT_EQ(a["kind"], "Application");
  EXPECT_EQ(a["spec"]["destination"]["name"], "sandbox");

  // The owner dies: the application moves to the other delegate and is reconciled there.
  auto& dead = owner == "east" ? east : west;
  const std::string other = owner == "east" ? "west" : "east";
  dead.child().signal(SIGKILL);
  dead.child().wait_for(std::chrono::seconds(10));
  ASSERT_TRUE(wait_until(
      [&] {
        a = app("demo");
        return a["assignment"]["delegate"] == other;
      },
      std::chrono::seconds(20)))
      << a.dump(2);
  EXPECT_GT(a["assignment"]["epoch"].get<std::uint64_t>(), epoch);

  const std::string second =
      remote.commit({{"apps/demo/settings.yaml", configmap_yaml("settings", "two")}});
  ASSERT_TRUE(
      wait_until([&] { return synced_healthy(a = app("demo"), second); }, std::chrono::seconds(60)))
      << a.dump(2);
  EXPECT_EQ(kubectl({"get", "configmap", "settings", "-n", "demo", "-o", "jsonpath={.data.value}"}),
            "two");
  // The status shown is the new holder's.
  EXPECT_EQ(a["assignment"]["delegate"], other);
}

TEST_F(AgentTest, FrozenDelegateLosesItsApplicationsBeforeAnotherTakesThem) {
  ReleaseRemote remote({{"apps/demo/settings.yaml", configmap_yaml("settings", "one")}});
  auto& east = delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  stack_.apply_text("apps.yaml", cluster_yaml() + "---\n" + app_yaml("demo", remote.url()));
  ASSERT_EQ(stack_.last_status(), 200);
  json a;
  ASSERT_TRUE(wait_until([&] { return synced_healthy(a = app("demo"), remote.head()); },
                         std::chrono::seconds(60)))
      << a.dump(2);
  ASSERT_EQ(a["assignment"]["delegate"], "east");
  delegate("west");
  ASSERT_TRUE(stack_.wait_for_delegates(2));

  // A delegate that stops answering (a partition, a paused VM) is cut off; when it comes back
  // it has stopped reconciling and the application stays where it moved.
  east.child().signal(SIGSTOP);
  ASSERT_TRUE(wait_until([&] { return app("demo")["assignment"]["delegate"] == "west"; },
                         std::chrono::seconds(20)));
  east.child().signal(SIGCONT);
  ASSERT_TRUE(wait_until(
      [&] { return east.log().find("stopped reconciling 1 application(s)") != std::string::npos; },
      std::chrono::seconds(20)))
      << east.log();
  ASSERT_TRUE(stack_.wait_for_delegates(2));
  const std::string next =
      remote.commit({{"apps/demo/settings.yaml", configmap_yaml("settings", "two")}});
  ASSERT_TRUE(
      wait_until([&] { return synced_healthy(a = app("demo"), next); }, std::chrono::seconds(60)))
      << a.dump(2);
  EXPECT_EQ(a["assignment"]["delegate"], "west");
  EXPECT_EQ(east.log().find("application demo: reconciled here (epoch 2)"), std::string::npos);
}

TEST_F(AgentTest, CliSyncsDiffsShowsHistoryAndRollsBack) {
  ReleaseRemote remote({{"apps/demo/settings.yaml", configmap_yaml("settings", "one")}});
  delegate("east");
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  std::string manual = app_yaml("demo", remote.url());
  manual = manual.substr(0, manual.find("  syncPolicy:")) +
           "  syncPolicy:\n    syncOptions: [CreateNamespace=true]\n";
  stack_.apply_text("apps.yaml", cluster_yaml() + "---\n" + manual);
  ASSERT_EQ(stack_.last_status(), 200);
  const std::string first = remote.head();
  json a;
  // Without automated sync it stays OutOfSync: the ConfigMap is missing.
  ASSERT_TRUE(wait_until(
      [&] {
        a = app("demo");
        return a["status"].value("sync", json::object()).value("status", "") == "OutOfSync";
      },
      std::chrono::seconds(60)))
      << a.dump(2);
  auto diff = stack_.cli({"apps", "diff", "demo"});
  EXPECT_EQ(diff.status.exit_code, 1) << diff.out << diff.err;
  EXPECT_NE(diff.out.find("ConfigMap demo/settings: missing from the cluster"), std::string::npos)
      << diff.out;

  auto sync = stack_.cli({"apps", "sync", "demo"});
  ASSERT_TRUE(sync.status.success()) << sync.out << sync.err;
  EXPECT_NE(sync.out.find("Sync Succeeded at " + first.substr(0, 12) + " on delegate east"),
            std::string::npos)
      << sync.out;
  ASSERT_TRUE(
      wait_until([&] { return synced_healthy(a = app("demo"), first); }, std::chrono::seconds(30)))
      << a.dump(2);

  const std::string second =
      remote.commit({{"apps/demo/settings.yaml", configmap_yaml("settings", "two")}});
  auto refresh = stack_.cli({"apps", "refresh", "demo"});
  ASSERT_TRUE(refresh.status.success()) << refresh.err;
  ASSERT_TRUE(wait_until(
      [&] {
        a = app("demo");
        return a["status"]["sync"].value("revision", "") == second;
      },
      std::chrono::seconds(30)))
      << a.dump(2);
  EXPECT_EQ(a["status"]["sync"]["status"], "OutOfSync");
  diff = stack_.cli({"apps", "diff", "demo"});
  EXPECT_NE(diff.out.find("/data/value"), std::string::npos) << diff.out;
  ASSERT_TRUE(stack_.cli({"apps", "sync", "demo"}).status.success());
  EXPECT_EQ(kubectl({"get", "configmap", "settings", "-n", "demo", "-o", "jsonpath={.data.value}"}),
            "two");

  ASSERT_TRUE(
      wait_until([&] { return app("demo")["status"].value("history", json::array()).size() == 2; },
                 std::chrono::seconds(30)));
  auto history = stack_.cli({"apps", "history", "demo", "-o", "json"});
  ASSERT_TRUE(history.status.success()) << history.err;
  auto entries = json::parse(history.out);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0]["revision"], first);
  EXPECT_EQ(entries[0]["initiatedBy"], "alice");
  auto rollback = stack_.cli({"apps", "rollback", "demo", entries[0]["id"].dump()});
  ASSERT_TRUE(rollback.status.success()) << rollback.out << rollback.err;
  EXPECT_EQ(kubectl({"get", "configmap", "settings", "-n", "demo", "-o", "jsonpath={.data.value}"}),
            "one");
  auto list = stack_.cli({"apps", "list"});
  EXPECT_NE(list.out.find("demo"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("east"), std::string::npos) << list.out;
  // Bad requests are refused with a reason.
  auto unknown = stack_.cli({"apps", "sync", "nope"});
  EXPECT_FALSE(unknown.status.success());
  EXPECT_NE(unknown.err.find("application 'nope' not found"), std::string::npos) << unknown.err;
  auto bad = stack_.post("/api/v1/apps/demo/sync", {{"prune", "yes"}});
  EXPECT_EQ(stack_.last_status(), 400) << bad.dump();
}

TEST_F(AgentTest, PushWebhooksRefreshTheirApplicationsAtOnce) {
  ReleaseRemote remote({{"apps/demo/settings.yaml", configmap_yaml("settings", "one")}});
  // Polling every 10 minutes: only the webhook can bring the new commit in within the test.
  capstan::testing::write_file(dir_ / "slow.yaml",
                               "plugins:\n  gitops:\n    pollIntervalMs: 600000\n");
  auto& d = stack_.start_delegate("slow", {capstan::testing::plugin_dir()}, 1,
                                  {"--config", (dir_ / "slow.yaml").string()});
  delegates_.push_back(&d);
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  stack_.apply_text("apps.yaml", cluster_yaml() + "---\n" + app_yaml("demo", remote.url()));
  json a;
  ASSERT_TRUE(wait_until([&] { return synced_healthy(a = app("demo"), remote.head()); },
                         std::chrono::seconds(60)))
      << a.dump(2);

  httplib::Client hook(stack_.api()); // no API token: webhooks carry their own proof
  auto post = [&](const httplib::Headers& headers, const json& body) {
    auto r = hook.Post("/api/v1/webhooks/git", headers, body.dump(), "application/json");
    EXPECT_TRUE(r) << "webhook request failed";
    return r ? std::make_pair(r->status, json::parse(r->body, nullptr, false))
             : std::make_pair(0, json());
  };
  // GitHub: a ping is acknowledged; a push with a wrong signature is refused.
  auto ping = post({{"X-GitHub-Event", "ping"},
                    {"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex(kSecret, "{}")}},
                   json::object());
  EXPECT_EQ(ping.first, 200) << ping.second.dump();
  const std::string second =
      remote.commit({{"apps/demo/settings.yaml", configmap_yaml("settings", "two")}});
  json push = {{"ref", "refs/heads/main"},
               {"after", second},
               {"repository",
                {{"clone_url", remote.url() + "/"},
                 {"html_url", "https://example.invalid/org/release"},
                 {"default_branch", "main"}}}};
  auto forged = post({{"X-GitHub-Event", "push"}, {"X-Hub-Signature-256", "sha256=00"}}, push);
  EXPECT_EQ(forged.first, 401) << forged.second.dump();
  // GitLab: a push to another branch concerns no application.
  json other = {{"object_kind", "push"},
                {"ref", "refs/heads/feature"},
                {"after", second},
                {"project", {{"git_http_url", remote.url()}, {"default_branch", "main"}}}};
  auto lab = post({{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", kSecret}}, other);
  EXPECT_EQ(lab.first, 200) << lab.second.dump();
  EXPECT_EQ(lab.second["refreshed"], json::array()) << lab.second.dump();
  auto bad_token = post({{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", "nope"}}, other);
  EXPECT_EQ(bad_token.first, 401);

  const std::string text = push.dump();
  auto r = hook.Post("/api/v1/webhooks/git",
                     {{"X-GitHub-Event", "push"},
                      {"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex(kSecret, text)}},
                     text, "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["refreshed"], json::array({"demo"})) << r->body;
  ASSERT_TRUE(
      wait_until([&] { return synced_healthy(a = app("demo"), second); }, std::chrono::seconds(30)))
      << a.dump(2);
  EXPECT_EQ(kubectl({"get", "configmap", "settings", "-n", "demo", "-o", "jsonpath={.data.value}"}),
            "two");
}

TEST_F(AgentTest, InvalidApplicationsAreRefusedWithFileAndLine) {
  ReleaseRemote remote({{"apps/demo/settings.yaml", configmap_yaml("settings", "one")}});
  stack_.apply_text("cluster.yaml", cluster_yaml());
  ASSERT_EQ(stack_.last_status(), 200);
  // An unknown field, with its place.
  auto r = stack_.apply_text("bad.yaml", app_yaml("demo", remote.url()) + "  sourcez: {}\n");
  EXPECT_EQ(stack_.last_status(), 422);
  EXPECT_NE(r.dump().find("bad.yaml:"), std::string::npos) << r.dump(2);
  EXPECT_NE(r.dump().find("sourcez"), std::string::npos) << r.dump(2);
  // A destination that is not a registered GitOps cluster.
  r = stack_.apply_text("dest.yaml", app_yaml("demo", remote.url(), "name: nowhere"));
  EXPECT_EQ(stack_.last_status(), 422);
  EXPECT_NE(r.dump().find("dest.yaml:"), std::string::npos) << r.dump(2);
  EXPECT_NE(r.dump().find("nowhere"), std::string::npos) << r.dump(2);
  // Another kind under argoproj.io is refused, not ignored.
  r = stack_.apply_text("kind.yaml", "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\n"
                                     "metadata: {name: x}\n");
  EXPECT_EQ(stack_.last_status(), 422);
  EXPECT_NE(r.dump().find("AppProject"), std::string::npos) << r.dump(2);
  EXPECT_EQ(stack_.get("/api/v1/apps")["items"].size(), 0u);
}

TEST_F(AgentTest, ApplicationWithoutAnEligibleDelegateSaysWhy) {
  ReleaseRemote remote({{"apps/demo/settings.yaml", configmap_yaml("settings", "one")}});
  // A delegate whose plugins have no reconciler (only the shell plugin's folder is empty of
  // gitops): here, a delegate with no plugins at all.
  stack_.start_delegate("bare", {dir_ / "no-plugins"});
  ASSERT_TRUE(stack_.wait_for_delegates(1));
  stack_.apply_text("apps.yaml", cluster_yaml() + "---\n" + app_yaml("demo", remote.url()));
  ASSERT_EQ(stack_.last_status(), 200);
  json a;
  ASSERT_TRUE(wait_until(
      [&] {
        a = app("demo");
        return a["assignment"].value("message", "").find("no connected delegate") !=
               std::string::npos;
      },
      std::chrono::seconds(20)))
      << a.dump(2);
  EXPECT_EQ(a["assignment"]["delegate"], "");
  // A delegate with the gitops plugin arrives: it gets the application.
  delegate("gitops");
  ASSERT_TRUE(wait_until([&] { return synced_healthy(a = app("demo"), remote.head()); },
                         std::chrono::seconds(60)))
      << a.dump(2);
  EXPECT_EQ(a["assignment"]["delegate"], "gitops");
  EXPECT_FALSE(a["assignment"].contains("message"));
}

TEST_F(AgentTest, ListsApplicationsInPagesByProjectAndByLabel) {
  std::string text = cluster_yaml();
  std::vector<std::string> all, team;
  for (int i = 0; i < 7; ++i) {
    const std::string name = "app-" + std::to_string(i);
    std::string doc = app_yaml(name, "https://git.example/release.git");
    if (i % 2 == 1) {
      doc.replace(doc.find("project: default"), 16, "project: team");
      team.push_back(name);
    }
    // tier=web for 0, 3 and 6 (db for the others); app-4 alone is a canary.
    doc.replace(doc.find("\nspec:\n"), 7,
                std::string("\n  labels:\n    tier: ") + (i % 3 == 0 ? "web" : "db") +
                    (i == 4 ? "\n    canary: \"true\"" : "") + "\nspec:\n");
    text += "---\n" + doc;
    all.push_back(name);
  }
  stack_.apply_text("apps.yaml", text);
  ASSERT_EQ(stack_.last_status(), 200);
  auto names = [](const json& page) {
    std::vector<std::string> out;
    for (const auto& a : page["items"]) out.push_back(a["metadata"]["name"]);
    return out;
  };
  // Unpaged (streamed): every application, in name order, without a continue token.
  json whole = stack_.get("/api/v1/apps");
  ASSERT_EQ(stack_.last_status(), 200) << whole.dump();
  EXPECT_EQ(names(whole), all);
  EXPECT_FALSE(whole["metadata"].contains("continue"));
  EXPECT_EQ(whole["items"][0]["spec"]["source"]["path"], "apps/demo");
  // Pages of 3 following metadata.continue: 3, 3, 1, nothing twice, nothing left out.
  auto walk = [&](const std::string& query, std::vector<std::size_t>& sizes) {
    std::vector<std::string> seen;
    std::string token;
    for (int guard = 0; guard < 20; ++guard) {
      json page = stack_.get("/api/v1/apps?" + query + (token.empty() ? "" : "&continue=" + token));
      EXPECT_EQ(stack_.last_status(), 200) << page.dump();
      sizes.push_back(page["items"].size());
      for (auto& n : names(page)) seen.push_back(n);
      token = page["metadata"].value("continue", "");
      if (token.empty()) break;
    }
    return seen;
  };
  std::vector<std::size_t> sizes;
  EXPECT_EQ(walk("limit=3", sizes), all);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 1}));
  // Argo CD's `projects` filter, with and without pages.
  sizes.clear();
  EXPECT_EQ(walk("limit=2&projects=team", sizes), team);
  EXPECT_EQ(sizes.front(), 2U);
  EXPECT_EQ(names(stack_.get("/api/v1/apps?projects=team")), team);
  EXPECT_EQ(names(stack_.get("/api/v1/apps?projects=team,default")), all);
  EXPECT_EQ(names(stack_.get("/api/v1/apps?projects=team&projects=default")), all);
  EXPECT_TRUE(stack_.get("/api/v1/apps?projects=none")["items"].empty());
  // Argo CD's `selector` (Kubernetes label selectors), alone, with projects, and in pages.
  using Names = std::vector<std::string>;
  auto selected = [&](const std::string& selector, const std::string& more = "") {
    json page =
        stack_.get(httplib::append_query_params("/api/v1/apps", {{"selector", selector}}) + more);
    EXPECT_EQ(stack_.last_status(), 200) << page.dump();
    return names(page);
  };
  EXPECT_EQ(selected("tier=web"), (Names{"app-0", "app-3", "app-6"}));
  EXPECT_EQ(selected("tier!=web"), (Names{"app-1", "app-2", "app-4", "app-5"}));
  EXPECT_EQ(selected("tier in (db),!canary"), (Names{"app-1", "app-2", "app-5"}));
  EXPECT_EQ(selected("canary"), (Names{"app-4"}));
  EXPECT_EQ(selected("canary notin (true)"),
            (Names{"app-0", "app-1", "app-2", "app-3", "app-5", "app-6"}));
  EXPECT_EQ(selected("tier=web", "&projects=team"), (Names{"app-3"}));
  EXPECT_EQ(selected("tier=db", "&projects=team,default&limit=2").size(), 2U);
  sizes.clear();
  EXPECT_EQ(walk("limit=1&projects=team&selector=tier%3Ddb", sizes), (Names{"app-1", "app-5"}));
  EXPECT_LE(*std::max_element(sizes.begin(), sizes.end()), 1U);
  sizes.clear();
  EXPECT_EQ(walk("limit=2&selector=tier%21%3Dweb", sizes),
            (Names{"app-1", "app-2", "app-4", "app-5"}));
  EXPECT_EQ(sizes.front(), 2U);
  // A malformed selector is refused, naming where and why.
  json malformed = stack_.get("/api/v1/apps?selector=tier%20in%20db");
  EXPECT_EQ(stack_.last_status(), 400) << malformed.dump();
  EXPECT_NE(malformed["error"]["message"].get<std::string>().find(
                "'tier in db' at character 9: expected '(' after 'in', found 'db'"),
            std::string::npos)
      << malformed.dump();
  stack_.get("/api/v1/apps?selector=tier%3Dweb&selector=canary");
  EXPECT_EQ(stack_.last_status(), 400);
  // The CLI takes them as argocd app list does: -p (repeated or a comma list) and -l.
  auto listed = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"apps", "list", "-o", "json"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = stack_.cli(argv);
    EXPECT_TRUE(r.status.success()) << r.out << r.err;
    Names out;
    for (const auto& a : json::parse(r.out)) out.push_back(a["metadata"]["name"]);
    return out;
  };
  EXPECT_EQ(listed({"-p", "team", "-l", "tier=db"}), (Names{"app-1", "app-5"}));
  EXPECT_EQ(listed({"--project", "team", "--project", "default", "--selector", "!canary,tier=db"}),
            (Names{"app-1", "app-2", "app-5"}));
  EXPECT_EQ(listed({"-p", "team,default", "-l", "canary"}), (Names{"app-4"}));
  EXPECT_EQ(listed({"-p", "team"}), team);
  auto table = stack_.cli({"apps", "list", "-l", "tier=web", "-p", "team"});
  EXPECT_TRUE(table.status.success()) << table.err;
  EXPECT_NE(table.out.find("app-3"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("app-0"), std::string::npos) << table.out;
  EXPECT_NE(stack_.cli({"apps", "list", "-l", "tier=none"}).out.find("No applications match"),
            std::string::npos);
  auto refused_cli = stack_.cli({"apps", "list", "-l", "tier in db"});
  EXPECT_FALSE(refused_cli.status.success());
  EXPECT_NE(refused_cli.err.find("at character 9: expected '(' after 'in'"), std::string::npos)
      << refused_cli.err;
  EXPECT_FALSE(stack_.cli({"apps", "get", "app-0", "-l", "tier=web"}).status.success());
  // What the API did not hand out is refused, naming the parameter.
  json bad = stack_.get("/api/v1/apps?limit=3&continue=not-a-token");
  EXPECT_EQ(stack_.last_status(), 400);
  EXPECT_NE(bad["error"]["message"].get<std::string>().find("continue"), std::string::npos);
  stack_.get("/api/v1/apps?limit=5001");
  EXPECT_EQ(stack_.last_status(), 400);
  // The cluster they all name cannot go while they do; each is named with where it does.
  json refused = stack_.del("/api/v1/objects/gitopsCluster/sandbox");
  EXPECT_EQ(stack_.last_status(), 409) << refused.dump();
  EXPECT_EQ(refused["error"]["code"], "Referenced");
  EXPECT_NE(refused["error"]["message"].get<std::string>().find(
                "application 'app-0', application 'app-1'"),
            std::string::npos)
      << refused.dump();
  EXPECT_EQ(refused["error"]["details"].size(), 7U) << refused.dump();
  EXPECT_NE(refused["error"]["details"][0]["location"].get<std::string>().find("apps.yaml:"),
            std::string::npos)
      << refused.dump();
  stack_.del("/api/v1/objects/application/app-0");
  EXPECT_EQ(stack_.last_status(), 200);
  EXPECT_EQ(names(stack_.get("/api/v1/apps?limit=1"))[0], "app-1");
}

} // namespace
