// The GitOps agent at scale: N applications of one ConfigMap each, from one Git repository, on
// one reconciler against one capstan-sandbox. Measures the time until every application is
// Synced and Healthy and the agent's resident memory, against `kubectl apply --server-side` of
// the same objects in one call (measured in the same run); then drift -> healed latency.
#include <capstan/apps/reconciler.h>
#include <capstan/kube/config.h>
#include <capstan/testing/git_servers.h>
#include <capstan/testing/sandbox.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "scale.h"

namespace ct = capstan::testing;
using Clock = std::chrono::steady_clock;
using capstan::apps::SyncStatus;

namespace {

long rss_kib() {
  return capstan::bench::rss_of().rss_kib;
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

} // namespace

int main(int argc, char** argv) {
  int count = 1000;
  int drift_rounds = 20;
  bool baseline = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-baseline")
      baseline = false;
    else if (i + 1 == argc)
      break;
    else if (a == "--apps")
      count = std::stoi(argv[++i]);
    else if (a == "--drift")
      drift_rounds = std::stoi(argv[++i]);
  }
  ct::TempDir root("capstan-apps-bench");
  const ct::FileSet files = capstan::bench::configmap_files(count);
  auto bare = ct::make_remote(root.path(), "release.git", {files});

  // Baseline: the same objects with one kubectl apply --server-side (one process, no Git, no
  // comparison), on its own sandbox.
  double baseline_ms = 0;
  if (baseline) {
    try {
      baseline_ms = capstan::bench::kubectl_baseline_ms(files, root.path());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
  }

  ct::Sandbox sandbox(root / "sandbox");
  sandbox.kubectl({"create", "namespace", "bench"});
  capstan::kube::ClientOptions co;
  co.qps = 0; // no client-side rate limit: the agent's own pace is what is measured
  capstan::kube::Client client(capstan::kube::load_kubeconfig(sandbox.kubeconfig()), co);
  capstan::apps::ReconcilerOptions options;
  options.work_dir = root / "agent";
  options.poll_interval = std::chrono::milliseconds(3000);
  options.workers = 4;
  long rss_before = rss_kib();
  capstan::apps::Reconciler reconciler(client, options);
  std::string url = "file://" + bare.string();
  for (int i = 0; i < count; ++i) {
    capstan::apps::Application app;
    app.name = capstan::bench::app_name(i);
    app.source.repo_url = url;
    app.source.path = "apps/" + capstan::bench::app_name(i);
    app.source.target_revision = "main";
    app.destination.server = "https://kubernetes.default.svc";
    app.destination.namespace_ = "bench";
    app.sync_policy.automated = true;
    app.sync_policy.self_heal = true;
    reconciler.upsert(app);
  }
  auto t = Clock::now();
  reconciler.start();
  long peak = 0;
  while (true) {
    auto statuses = reconciler.statuses();
    int done = static_cast<int>(std::count_if(statuses.begin(), statuses.end(), [](const auto& s) {
      return s.sync == SyncStatus::kSynced && s.health == capstan::kube::HealthStatus::kHealthy;
    }));
    peak = std::max(peak, rss_kib());
    if (done == count) break;
    if (ms_since(t) > 600'000) {
      std::fprintf(stderr, "only %d of %d applications synced after 600 s\n", done, count);
      return 1;
    }
    // Reading every status copies them all under the reconciler's lock (the time is printed
    // below): at thousands of applications, looking every 20 ms would slow what is measured.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::max(20, count / 25)));
  }
  double all_synced_ms = ms_since(t);
  long rss_after = rss_kib();
  auto t_read = Clock::now();
  const std::size_t read = reconciler.statuses().size();
  const double read_ms = ms_since(t_read);

  // Drift -> healed: change one application's ConfigMap behind the agent's back and time until
  // it holds Git's value again.
  std::vector<double> heal;
  for (int round = 0; round < drift_rounds; ++round) {
    std::string name = capstan::bench::app_name((round * 37) % count);
    capstan::kube::ObjectRef ref{"v1", "ConfigMap", "bench", name};
    auto t0 = Clock::now();
    client.patch(ref, capstan::kube::PatchType::kMerge, R"({"data":{"value":"drifted"}})");
    while (client.get(ref)["data"].value("value", "") != "v1") {
      if (ms_since(t0) > 30'000) {
        std::fprintf(stderr, "%s was not healed within 30 s\n", name.c_str());
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    heal.push_back(ms_since(t0));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100)); // past the self-heal backoff
  }
  reconciler.stop();
  std::sort(heal.begin(), heal.end());
  auto pct = [&](double p) {
    return heal.empty()
               ? 0.0
               : heal[std::min(heal.size() - 1, static_cast<std::size_t>(p * heal.size()))];
  };
  std::printf("applications: %d (one ConfigMap each, one repository, one sandbox)\n", count);
  if (baseline) {
    std::printf("baseline kubectl apply --server-side -R (one call): %.0f ms\n", baseline_ms);
    std::printf("agent: all Synced+Healthy in %.0f ms (%.2fx the baseline's time)\n", all_synced_ms,
                all_synced_ms / baseline_ms);
  } else {
    std::printf("agent: all Synced+Healthy in %.0f ms (no baseline run)\n", all_synced_ms);
  }
  std::printf("agent RSS: %.1f MiB before, %.1f MiB after, peak %.1f MiB\n", rss_before / 1024.0,
              rss_after / 1024.0, peak / 1024.0);
  std::printf("reading all %zu statuses once: %.1f ms\n", read, read_ms);
  std::printf("drift -> healed over %zu rounds: p50 %.0f ms, p95 %.0f ms, max %.0f ms\n",
              heal.size(), pct(0.5), pct(0.95), heal.empty() ? 0.0 : heal.back());
  return 0;
}
