// The GitOps agent through the whole stack, as a user runs it: capstan-sandbox, a coordinator
// and a delegate with the bundled plugins (processes on loopback), and a real Git remote.
// Commit -> synced: from the release repo's main branch moving on the remote to the sandbox
// Deployment running the new image (every replica updated and available), over N commits, for
// three ways of learning of the commit: the delegate's polling alone (the baseline), a GitHub
// push webhook posted to the coordinator, and a PR pipeline whose MergePR step moved the branch;
// then the seed's flow: a PR pipeline setting imageTag in a cluster's config.json, read by an
// ApplicationSet's git files generator that sets the image of the application it generates.
// Then drift -> healed: the Deployment scaled behind the agent's back, until Git's replica count
// is back.
// With --scale N: N applications of one ConfigMap each, applied through the coordinator's API,
// on one delegate: the time until the coordinator shows all Synced and Healthy, and the
// delegate's and the coordinator's resident memory, against one kubectl apply --server-side.
// With --fetch-among N: a FetchLinkedApps step on a cluster of a few applications among N
// others, against the same step before the N existed.
#include <capstan/kube/client.h>
#include <capstan/kube/config.h>
#include <capstan/testing/apps_fixtures.h>
#include <capstan/testing/git_servers.h>
#include <capstan/testing/sandbox.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "scale.h"
#include "stack.h"

namespace ct = capstan::testing;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

constexpr int kReplicas = 2;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string deployment(const std::string& image) {
  return ct::deployment_yaml("web", image, kReplicas);
}

std::string image_of(int n) {
  return "registry.example/web:v" + std::to_string(n);
}

// The head of `main` in a bare repository, read from its files as git writes them (a loose ref,
// else packed-refs): cheap enough to poll every millisecond.
std::string main_head(const fs::path& bare) {
  std::string loose = ct::read_file(bare / "refs" / "heads" / "main");
  if (!loose.empty()) return loose.substr(0, 40);
  std::string packed = ct::read_file(bare / "packed-refs");
  auto at = packed.find(" refs/heads/main\n");
  return at == std::string::npos || at < 40 ? "" : packed.substr(at - 40, 40);
}

// Notes the moment main moves on the remote, whoever moves it (a push, a MergePR step).
class RefWatch {
public:
  explicit RefWatch(fs::path bare) : bare_(std::move(bare)), last_(main_head(bare_)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~RefWatch() {
    stop_ = true;
    thread_.join();
  }
  // The time main first differed from `from`, if it has.
  std::optional<Clock::time_point> moved_from(const std::string& from) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (last_ == from) return std::nullopt;
    return changed_at_;
  }
  std::string head() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_;
  }

private:
  void loop() {
    while (!stop_) {
      std::string h = main_head(bare_);
      auto now = Clock::now();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!h.empty() && h != last_) {
          last_ = h;
          changed_at_ = now;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  fs::path bare_;
  std::mutex mutex_;
  std::string last_;
  Clock::time_point changed_at_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Percentiles {
  double p50 = 0, p95 = 0, max = 0;
};

Percentiles percentiles(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
  };
  return {at(0.5), at(0.95), v.back()};
}

// Small deterministic pauses between rounds, so commits land at every phase of the poll.
int pause_ms(int round) {
  return 200 + (round * 379) % 1000;
}

std::string config_json(int n) {
  return "{\n  \"imageTag\": \"v" + std::to_string(n) + "\"\n}\n";
}

// A GitOps service whose release-repo file is `path`, and its PR pipeline: UpdateReleaseRepo
// sets `key` to the runtime input `input`, MergePR merges it.
std::string service_and_pipeline(const std::string& service, const std::string& path,
                                 const std::string& pipeline, const std::string& key,
                                 const std::string& input) {
  return "---\n" + ct::release_repo_service_yaml(service, path) + R"(---
pipeline:
  identifier: )" +
         pipeline + R"(
  name: )" +
         pipeline + R"(
  variables:
    - name: )" +
         input + R"(
      type: String
      value: <+input>
  stages:
    - stage:
        identifier: deploy
        name: deploy
        type: Deployment
        spec:
          deploymentType: Kubernetes
          gitOpsEnabled: true
          service:
            serviceRef: )" +
         service + R"(
          environment:
            environmentRef: bench
            deployToAll: true
          execution:
            steps:
              - step:
                  type: UpdateReleaseRepo
                  name: Update
                  identifier: update
                  timeout: 2m
                  spec:
                    variables:
                      - name: )" +
         key + R"(
                        type: String
                        value: <+pipeline.variables.)" +
         input + R"(>
              - step:
                  type: MergePR
                  name: Merge
                  identifier: merge
                  timeout: 2m
                  spec:
                    deleteSourceBranch: true
)";
}

// The environment, the sandbox's connector and its GitOps cluster "bench".
std::string cluster_yaml(const std::string& kubeconfig) {
  return ct::gitops_cluster_yaml(kubeconfig, "bench", "bench");
}

std::string objects_yaml(const std::string& kubeconfig, const std::string& url) {
  return cluster_yaml(kubeconfig) + "---\n" + ct::release_repo_connector_yaml(url) +
         service_and_pipeline("web", "apps/web/deployment.yaml", "web_pr",
                              "spec.template.spec.containers[0].image", "image") +
         "---\n" +
         ct::application_yaml("web", url, "apps/web", "bench", "web",
                              "    automated: {prune: true, selfHeal: true}\n"
                              "    syncOptions: [CreateNamespace=true]\n") +
         service_and_pipeline("web_set", "cluster-config/<+cluster.name>/config.json", "set_pr",
                              "imageTag", "imageTag") +
         R"(---
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web-set
spec:
  generators:
    - git:
        repoURL: )" +
         url + R"(
        revision: main
        files:
          - path: cluster-config/*/config.json
  template:
    metadata:
      name: 'web-set-{{path.basename}}'
    spec:
      project: default
      source:
        repoURL: )" +
         url + R"(
        targetRevision: main
        path: sets/web
        kustomize:
          images: ['registry.example/web:{{imageTag}}']
      destination:
        name: '{{path.basename}}'
        namespace: web-set
      syncPolicy:
        automated: {prune: true, selfHeal: true}
        syncOptions: [CreateNamespace=true]
)";
}

std::string scale_app_yaml(int i, const std::string& url) {
  const std::string name = capstan::bench::app_name(i);
  return ct::application_yaml(name, url, "apps/" + name, "bench", "bench",
                              "    automated: {prune: true, selfHeal: true}\n");
}

// A second GitOps cluster `linked` on the same sandbox with `count` applications of its own
// (manually synced: they stay as they are), and a pipeline whose GitOps stage on that cluster
// runs FetchLinkedApps.
std::string linked_yaml(int count, const std::string& url) {
  std::string out = "environment:\n  identifier: linked\n  name: linked\n  type: PreProduction\n"
                    "---\ngitopsCluster:\n  identifier: linked\n  name: linked\n"
                    "  connectorRef: sandbox_api\n  environments: [linked]\n---\n" +
                    ct::release_repo_connector_yaml(url) + "---\n" +
                    ct::release_repo_service_yaml("linked_svc", "apps/app-00000/cm.yaml") + R"(---
pipeline:
  identifier: fetch_linked
  name: fetch_linked
  stages:
    - stage:
        identifier: fetch
        name: fetch
        type: Deployment
        spec:
          deploymentType: Kubernetes
          gitOpsEnabled: true
          service:
            serviceRef: linked_svc
          environment:
            environmentRef: linked
            deployToAll: true
          execution:
            steps:
              - step:
                  type: FetchLinkedApps
                  name: Fetch Linked Apps
                  identifier: fetch
                  timeout: 2m
                  spec: {}
)";
  for (int i = 0; i < count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "linked-%02d", i);
    out +=
        "---\n" + ct::application_yaml(name, url, "apps/" + capstan::bench::app_name(i), "linked",
                                       "linked", "    syncOptions: [CreateNamespace=true]\n");
  }
  return out;
}

// Runs the fetch_linked pipeline `runs` times; the milliseconds from its start to its end, each.
std::vector<double> fetch_linked_ms(ct::Stack& stack, int runs, std::size_t linked) {
  std::vector<double> out;
  for (int i = 0; i < runs; ++i) {
    auto t = Clock::now();
    auto started = stack.post("/api/v1/pipelines/fetch_linked/executions", json::object());
    if (stack.last_status() / 100 != 2) throw std::runtime_error("run: " + started.dump());
    auto e = stack.wait_for_end(started["id"]);
    out.push_back(ms_between(t, Clock::now()));
    const json step = e["stages"][0]["steps"][0];
    if (e["status"] != "Succeeded" ||
        step["outputs"].value("appCount", "") != std::to_string(linked)) {
      throw std::runtime_error("FetchLinkedApps did not find the " + std::to_string(linked) +
                               " linked applications: " + e.dump().substr(0, 2000));
    }
  }
  return out;
}

// FetchLinkedApps of a GitOps cluster with a few applications, before and after `count` other
// applications exist (on a cluster no delegate may reconcile: they only sit in the store, and
// the machine's load stays the step's). The pipeline's start to end, against the same before.
void run_fetch_among(int count, int batch) {
  constexpr int kLinked = 10;
  constexpr int kRuns = 9;
  ct::TempDir root("capstan-stack-fetch");
  auto bare =
      ct::make_remote(root / "srv", "release.git", {capstan::bench::configmap_files(kLinked)});
  const std::string url = "file://" + bare.string();
  ct::Sandbox sandbox(root / "sandbox");
  fs::create_directories(root / "stack");
  ct::Stack stack(root / "stack");
  stack.start_coordinator();
  stack.start_delegate("agent", {ct::plugin_dir()}, 2);
  if (!stack.wait_for_delegates(1)) throw std::runtime_error("the delegate did not connect");
  auto applied = stack.apply_text("linked.yaml",
                                  cluster_yaml(sandbox.kubeconfig().string()) +
                                      "---\ngitopsCluster:\n  identifier: parked\n  name: parked\n"
                                      "  connectorRef: sandbox_api\n  environments: [bench]\n"
                                      "  agentIdentifier: no-such-agent\n---\n" +
                                      linked_yaml(kLinked, url));
  if (stack.last_status() != 200) throw std::runtime_error("apply: " + applied.dump());
  const auto alone = percentiles(fetch_linked_ms(stack, kRuns, kLinked));
  for (int first = 0; first < count; first += batch) {
    std::string text;
    for (int i = first; i < std::min(count, first + batch); ++i) {
      text += "---\n" + ct::application_yaml(capstan::bench::app_name(i), url,
                                             "apps/" + capstan::bench::app_name(i % kLinked),
                                             "parked", "bench", "    syncOptions: []\n");
    }
    auto r = stack.apply_text("apps-" + std::to_string(first) + ".yaml", text);
    if (stack.last_status() != 200) throw std::runtime_error("apply: " + r.dump().substr(0, 2000));
  }
  const auto among = percentiles(fetch_linked_ms(stack, kRuns, kLinked));
  std::printf("fetch-among: a pipeline of one FetchLinkedApps on a cluster of %d applications, "
              "start to end (%d runs each): p50 %.0f ms (max %.0f) alone (baseline), p50 %.0f ms "
              "(max %.0f) among %d other applications: %.2fx\n",
              kLinked, kRuns, alone.p50, alone.max, among.p50, among.max, count,
              among.p50 / alone.p50);
  std::fflush(stdout);
}

double mib(long kib) {
  return kib / 1024.0;
}

// N applications of one ConfigMap each through the whole stack, on one delegate.
void run_scale(int count, int batch, int poll_ms, int slots, int read_ms_every, bool baseline) {
  ct::TempDir root("capstan-stack-scale");
  const ct::FileSet files = capstan::bench::configmap_files(count);
  auto bare = ct::make_remote(root / "srv", "release.git", {files});
  const std::string url = "file://" + bare.string();
  double baseline_ms = baseline ? capstan::bench::kubectl_baseline_ms(files, root.path()) : 0;

  ct::Sandbox sandbox(root / "sandbox");
  sandbox.kubectl({"create", "namespace", "bench"});
  fs::create_directories(root / "stack");
  ct::Stack stack(root / "stack");
  stack.start_coordinator();
  ct::write_file(root / "delegate.yaml",
                 "plugins:\n  gitops:\n    pollIntervalMs: " + std::to_string(poll_ms) + "\n");
  auto& delegate = stack.start_delegate("agent", {ct::plugin_dir()}, slots,
                                        {"--config", (root / "delegate.yaml").string()});
  if (!stack.wait_for_delegates(1)) throw std::runtime_error("the delegate did not connect");
  stack.apply_text("cluster.yaml", cluster_yaml(sandbox.kubeconfig().string()));
  if (stack.last_status() != 200) throw std::runtime_error("apply of the cluster failed");
  const pid_t delegate_pid = delegate.child().pid();
  const pid_t coordinator_pid = stack.coordinator().child().pid();
  const auto delegate_before = capstan::bench::rss_of(delegate_pid);
  const auto coordinator_before = capstan::bench::rss_of(coordinator_pid);

  // What `capstan apply` sends: files in POST /api/v1/apply, `batch` applications a request.
  auto t0 = Clock::now();
  std::vector<double> apply_ms;
  for (int first = 0; first < count; first += batch) {
    std::string text;
    for (int i = first; i < std::min(count, first + batch); ++i) {
      text += "---\n" + scale_app_yaml(i, url);
    }
    auto t = Clock::now();
    auto r = stack.apply_text("apps-" + std::to_string(first) + ".yaml", text);
    if (stack.last_status() != 200) throw std::runtime_error("apply: " + r.dump().substr(0, 2000));
    apply_ms.push_back(ms_between(t, Clock::now()));
  }
  const double applied_ms = ms_between(t0, Clock::now());

  capstan::bench::Rss delegate_peak, coordinator_peak;
  std::vector<double> read_ms;
  int done = 0;
  while (true) {
    auto tr = Clock::now();
    auto all = stack.get("/api/v1/apps");
    read_ms.push_back(ms_between(tr, Clock::now()));
    done = 0;
    for (const auto& a : all["items"]) {
      const json s = a.value("status", json::object());
      done += s.value("sync", json::object()).value("status", "") == "Synced" &&
              s.value("health", json::object()).value("status", "") == "Healthy";
    }
    auto d = capstan::bench::rss_of(delegate_pid);
    auto c = capstan::bench::rss_of(coordinator_pid);
    delegate_peak.rss_kib = std::max(delegate_peak.rss_kib, d.rss_kib);
    coordinator_peak.rss_kib = std::max(coordinator_peak.rss_kib, c.rss_kib);
    if (done == count) break;
    if (ms_between(t0, Clock::now()) > 900'000) {
      throw std::runtime_error("only " + std::to_string(done) + " of " + std::to_string(count) +
                               " applications Synced and Healthy after 900 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(read_ms_every));
  }
  const double all_ms = ms_between(t0, Clock::now());
  const auto delegate_after = capstan::bench::rss_of(delegate_pid);
  const auto coordinator_after = capstan::bench::rss_of(coordinator_pid);
  auto reads = percentiles(read_ms);
  // One page of 500, as a client paging through them reads it.
  std::vector<double> page_ms;
  std::size_t page_items = 0;
  for (int i = 0; i < 5; ++i) {
    auto tp = Clock::now();
    page_items = stack.get("/api/v1/apps?limit=500")["items"].size();
    page_ms.push_back(ms_between(tp, Clock::now()));
  }
  auto pages = percentiles(page_ms);

  std::printf("scale: %d applications of one ConfigMap each, one repository, ONE delegate (%d "
              "slots, %d ms polling), one sandbox; applied in %zu request(s) of up to %d\n",
              count, slots, poll_ms, apply_ms.size(), batch);
  if (baseline) {
    std::printf("  baseline kubectl apply --server-side -R (one call): %.0f ms\n", baseline_ms);
  }
  std::printf("  POST /api/v1/apply took %.0f ms in all:", applied_ms);
  for (double ms : apply_ms) std::printf(" %.0f", ms);
  std::printf(" ms\n");
  std::printf("  apply -> GET /api/v1/apps shows all Synced+Healthy: %.0f ms", all_ms);
  if (baseline) std::printf(" (%.2fx the baseline)", all_ms / baseline_ms);
  std::printf("\n  GET /api/v1/apps (%zu reads, %d ms apart): p50 %.0f ms, max %.0f ms\n",
              read_ms.size(), read_ms_every, reads.p50, reads.max);
  std::printf("  GET /api/v1/apps?limit=500 (5 reads, %zu items each): p50 %.0f ms, max %.0f ms\n",
              page_items, pages.p50, pages.max);
  std::printf("  delegate RSS: %.1f MiB before, %.1f MiB after, VmHWM %.1f MiB\n",
              mib(delegate_before.rss_kib), mib(delegate_after.rss_kib),
              mib(delegate_after.hwm_kib));
  std::printf("  coordinator RSS: %.1f MiB before, %.1f MiB after, VmHWM %.1f MiB\n",
              mib(coordinator_before.rss_kib), mib(coordinator_after.rss_kib),
              mib(coordinator_after.hwm_kib));
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  int commits = 20;
  int drift_rounds = 20;
  int poll_ms = 3000;
  std::vector<int> scale;
  std::vector<int> fetch_among;
  int batch = 1000;
  int slots = 2;
  int read_every = 0; // ms between reads of GET /api/v1/apps; 0: N/25 (at least 20)
  bool baseline = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-baseline")
      baseline = false;
    else if (i + 1 == argc)
      break;
    else if (a == "--scale")
      scale.push_back(std::stoi(argv[++i]));
    else if (a == "--fetch-among")
      fetch_among.push_back(std::stoi(argv[++i]));
    else if (a == "--batch")
      batch = std::max(1, std::stoi(argv[++i]));
    else if (a == "--read-ms")
      read_every = std::stoi(argv[++i]);
    else if (a == "--slots")
      slots = std::stoi(argv[++i]);
    else if (a == "--commits")
      commits = std::stoi(argv[++i]);
    else if (a == "--drift")
      drift_rounds = std::stoi(argv[++i]);
    else if (a == "--poll-ms")
      poll_ms = std::stoi(argv[++i]);
  }
  try {
    if (!fetch_among.empty()) {
      for (int n : fetch_among) run_fetch_among(n, batch);
      return 0;
    }
    if (!scale.empty()) {
      for (int n : scale) {
        run_scale(n, batch, poll_ms, slots, read_every > 0 ? read_every : std::max(20, n / 25),
                  baseline);
      }
      return 0;
    }
    ct::TempDir root("capstan-stack-bench");
    int version = 0;
    auto bare =
        ct::make_remote(root / "srv", "release.git",
                        {{{"apps/web/deployment.yaml", deployment(image_of(version))},
                          {"sets/web/kustomization.yaml", "resources:\n  - deployment.yaml\n"},
                          {"sets/web/deployment.yaml", deployment("registry.example/web")},
                          {"cluster-config/bench/config.json", config_json(version)}}});
    const std::string url = "file://" + bare.string();
    ct::git({"clone", "-q", bare.string(), (root / "work").string()});

    ct::Sandbox sandbox(root / "sandbox");
    fs::create_directories(root / "stack");
    ct::Stack stack(root / "stack");
    stack.start_coordinator();
    ct::write_file(root / "delegate.yaml",
                   "plugins:\n  gitops:\n    pollIntervalMs: " + std::to_string(poll_ms) + "\n");
    stack.start_delegate("agent", {ct::plugin_dir()}, 2,
                         {"--config", (root / "delegate.yaml").string()});
    if (!stack.wait_for_delegates(1)) throw std::runtime_error("the delegate did not connect");
    auto objects = stack.apply_text("bench.yaml", objects_yaml(sandbox.kubeconfig().string(), url));
    if (stack.last_status() != 200) throw std::runtime_error("apply: " + objects.dump());

    capstan::kube::ClientOptions co;
    co.qps = 0;
    capstan::kube::Client client(capstan::kube::load_kubeconfig(sandbox.kubeconfig()), co);
    const capstan::kube::ObjectRef web{"apps/v1", "Deployment", "web", "web"};
    // The Deployment the ApplicationSet's application manages.
    const capstan::kube::ObjectRef web_set{"apps/v1", "Deployment", "web-set", "web"};
    // Whether the Deployment runs `image`; notes when its spec first named it (the agent's
    // apply) in `applied`.
    auto rolled_out = [&](const capstan::kube::ObjectRef& ref, const std::string& image,
                          std::optional<Clock::time_point>& applied) {
      json d;
      try {
        d = client.get(ref);
      } catch (const std::exception&) {
        return false; // not created yet
      }
      const json& spec = d["spec"];
      const json status = d.value("status", json::object());
      const int want = spec.value("replicas", 1);
      if (spec["template"]["spec"]["containers"][0].value("image", "") != image) return false;
      if (!applied) applied = Clock::now();
      return status.value("observedGeneration", 0) >= d["metadata"].value("generation", 0) &&
             status.value("updatedReplicas", 0) == want &&
             status.value("availableReplicas", 0) == want && status.value("replicas", 0) == want;
    };
    std::optional<Clock::time_point> applied;
    auto wait_rolled_out = [&](const capstan::kube::ObjectRef& ref, const std::string& image,
                               std::chrono::seconds limit) {
      auto deadline = Clock::now() + limit;
      applied.reset();
      while (!rolled_out(ref, image, applied)) {
        if (Clock::now() > deadline) {
          throw std::runtime_error("the Deployment did not run " + image + " within " +
                                   std::to_string(limit.count()) + " s\ndelegate log:\n" +
                                   ct::read_file(root / "stack" / "delegate-agent.log"));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      return Clock::now();
    };
    wait_rolled_out(web, image_of(version), std::chrono::seconds(120));
    wait_rolled_out(web_set, image_of(version), std::chrono::seconds(120));

    RefWatch watch(bare);
    httplib::Client hook(stack.api());
    auto push = [&](int v) {
      ct::write_file(root / "work" / "apps" / "web" / "deployment.yaml", deployment(image_of(v)));
      ct::git({"commit", "-q", "-am", "web " + image_of(v)}, root / "work");
      ct::git({"push", "-q", "origin", "HEAD:main"}, root / "work");
      return ct::git({"rev-parse", "HEAD"}, root / "work");
    };
    auto webhook = [&](const std::string& sha) {
      json body = {{"ref", "refs/heads/main"},
                   {"after", sha},
                   {"repository", {{"clone_url", url}, {"default_branch", "main"}}}};
      auto r = hook.Post("/api/v1/webhooks/git", {{"X-GitHub-Event", "push"}}, body.dump(),
                         "application/json");
      if (!r || r->status != 200) {
        throw std::runtime_error("webhook: " + (r ? r->body : httplib::to_string(r.error())));
      }
    };
    auto run_pipeline = [&](const std::string& pipeline, const json& variables) {
      auto run =
          stack.post("/api/v1/pipelines/" + pipeline + "/executions", {{"variables", variables}});
      if (stack.last_status() / 100 != 2) throw std::runtime_error("run: " + run.dump());
      return run["id"].get<std::string>();
    };

    struct Mode {
      const char* name;
      const char* how;
      std::vector<double> synced;
      std::vector<double> applied;
    };
    std::vector<Mode> modes = {
        {"polling", "git push; the delegate's ls-remote poll finds it (baseline)", {}, {}},
        {"webhook", "git push, then a GitHub push webhook to the coordinator", {}, {}},
        {"merge-pr", "PR pipeline: UpdateReleaseRepo, MergePR (no push webhook)", {}, {}},
        {"appset-pr",
         "PR pipeline setting imageTag in config.json; the ApplicationSet regenerates the "
         "application",
         {},
         {}},
    };
    for (auto& mode : modes) {
      const std::string name = mode.name;
      for (int round = 0; round < commits; ++round) {
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(round)));
        const std::string before = watch.head();
        const int v = ++version;
        std::string execution;
        if (name == "merge-pr") {
          execution = run_pipeline("web_pr", {{"image", image_of(v)}});
        } else if (name == "appset-pr") {
          execution = run_pipeline("set_pr", {{"imageTag", "v" + std::to_string(v)}});
        } else {
          std::string sha = push(v);
          if (name == "webhook") webhook(sha);
        }
        auto done = wait_rolled_out(name == "appset-pr" ? web_set : web, image_of(v),
                                    std::chrono::seconds(60));
        auto moved = watch.moved_from(before);
        if (!moved) throw std::runtime_error("main did not move on the remote");
        mode.synced.push_back(ms_between(*moved, done));
        mode.applied.push_back(ms_between(*moved, applied.value_or(done)));
        if (!execution.empty()) {
          auto e = stack.wait_for_end(execution);
          if (e["status"] != "Succeeded") throw std::runtime_error("pipeline: " + e.dump());
        }
        if (execution.empty()) continue;
        // Keep the work clone on main's head for the pushes of a later run.
        ct::git({"pull", "-q", "--ff-only", "origin", "main"}, root / "work");
      }
    }

    // Drift -> healed: scale the Deployment through the API (what kubectl scale does) and time
    // until the agent has put Git's replica count back.
    std::vector<double> heal;
    for (int round = 0; round < drift_rounds; ++round) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1100)); // past the self-heal pace
      auto t0 = Clock::now();
      client.patch(web, capstan::kube::PatchType::kMerge, R"({"spec":{"replicas":5}})");
      while (client.get(web)["spec"].value("replicas", 0) != kReplicas) {
        if (ms_between(t0, Clock::now()) > 30'000) {
          throw std::runtime_error("the scaled Deployment was not healed within 30 s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      heal.push_back(ms_between(t0, Clock::now()));
    }

    std::printf("commit -> synced: main moved on the remote -> the sandbox Deployment runs the "
                "new image (%d replicas updated and available); %d commits per mode; delegate "
                "polls every %d ms\n",
                kReplicas, commits, poll_ms);
    const double base = percentiles(modes[0].synced).p50;
    for (const auto& m : modes) {
      auto p = percentiles(m.synced);
      auto a = percentiles(m.applied);
      std::printf("  %-9s p50 %5.0f ms  p95 %5.0f ms  max %5.0f ms  (%.2fx the polling p50); "
                  "applied p50 %.0f ms  p95 %.0f ms  %s\n",
                  m.name, p.p50, p.p95, p.max, base > 0 ? p.p50 / base : 0.0, a.p50, a.p95, m.how);
    }
    auto h = percentiles(heal);
    std::printf("drift -> healed (spec.replicas %d -> 5 -> %d) over %zu rounds: p50 %.0f ms, p95 "
                "%.0f ms, max %.0f ms\n",
                kReplicas, kReplicas, heal.size(), h.p50, h.p95, h.max);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stack_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
