// Applies N mixed objects (Deployments, Services, ConfigMaps) to a fresh capstan-sandbox with
// the kubernetes plugin's K8sApply step (loaded by the delegate's real plugin host), against
// `kubectl apply --server-side -f DIR` on another fresh sandbox in the same run. Reports wall
// time, the API requests each sandbox served (its /metrics counter), and the CPU time the
// client (kubectl, or this process running the plugin) and the sandbox used meanwhile.
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "capstan/delegate/plugin_host.h"
#include "capstan/testing/sandbox.h"
#include "capstan/testing/task_recorder.h"
#include "capstan/testing/testing.h"

namespace ct = capstan::testing;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

bool phases = false; // --phases: print when each part of the step began

struct Result {
  std::string name;
  double seconds = 0;
  long long requests = 0;
  double client_cpu = 0;  // s: this process and its waited-for children (kubectl)
  double sandbox_cpu = 0; // s
  bool ok = true;
};

double seconds_of(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

// CPU seconds (user + system) of this process plus the children it has waited for.
double own_cpu() {
  rusage self{};
  rusage children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  return seconds_of(self.ru_utime) + seconds_of(self.ru_stime) + seconds_of(children.ru_utime) +
         seconds_of(children.ru_stime);
}

// CPU seconds (user + system) of a running process, from /proc/PID/stat.
double process_cpu(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')'); // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields;
  std::string field;
  for (std::size_t i = close + 2; i <= stat.size(); ++i) {
    if (i == stat.size() || stat[i] == ' ') {
      fields.push_back(field);
      field.clear();
    } else {
      field += stat[i];
    }
  }
  // Fields after the name start at 3 (state); utime and stime are fields 14 and 15.
  if (fields.size() < 13) return 0;
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

Result measure(const std::string& name, ct::Sandbox& s, const std::function<bool()>& work) {
  Result r;
  r.name = name;
  long long before = s.requests();
  double cpu0 = own_cpu();
  double sandbox0 = process_cpu(s.pid());
  auto t0 = Clock::now();
  r.ok = work();
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.client_cpu = own_cpu() - cpu0;
  r.sandbox_cpu = process_cpu(s.pid()) - sandbox0;
  r.requests = s.requests() - before;
  std::printf("%-58s %7.2f s %6lld requests  CPU: client %5.2f s, sandbox %5.2f s%s\n",
              r.name.c_str(), r.seconds, r.requests, r.client_cpu, r.sandbox_cpu,
              r.ok ? "" : "  FAILED");
  std::fflush(stdout);
  return r;
}

// The stage context a coordinator sends: a Local store holding the objects, the sandbox's
// kubeconfig as a K8sCluster connector.
json context(const std::filesystem::path& app, const ct::Sandbox& s) {
  json service = {
      {"identifier", "bench"},
      {"name", "bench"},
      {"baseDir", app.string()},
      {"serviceDefinition",
       {{"type", "Kubernetes"},
        {"spec",
         {{"manifests",
           json::array({{{"manifest",
                          {{"identifier", "objects"},
                           {"type", "K8sManifest"},
                           {"spec",
                            {{"store",
                              {{"type", "Local"}, {"spec", {{"paths", {"objects"}}}}}}}}}}}})}}}}}};
  json connector = {
      {"identifier", "sandbox"},
      {"type", "K8sCluster"},
      {"credential", {{"type", "Kubeconfig"}, {"kubeconfigPath", s.kubeconfig().string()}}}};
  return {{"pipeline", {{"identifier", "bench"}, {"executionId", "bench-1"}, {"sequenceId", 1}}},
          {"stage", {{"identifier", "apply"}, {"name", "apply"}, {"type", "Deployment"}}},
          {"service", service},
          {"infrastructure",
           {{"identifier", "sandbox"},
            {"type", "KubernetesDirect"},
            {"spec",
             {{"connectorRef", "sandbox"}, {"namespace", "default"}, {"releaseName", "bench"}}}}},
          {"connectors", {{"sandbox", connector}}}};
}

bool k8s_apply(capstan::delegate::PluginHost& host, const std::filesystem::path& app,
               const std::filesystem::path& work, const ct::Sandbox& s, const json& spec) {
  capstan::plugin::v1::StepRequest r;
  r.set_execution_id("bench-1");
  r.set_task_id("bench-1-apply");
  r.set_attempt(1);
  r.set_step_type("K8sApply");
  r.set_step_identifier("apply");
  r.set_step_name("K8sApply");
  r.set_spec_json(spec.dump());
  r.set_timeout_ms(30 * 60 * 1000);
  std::filesystem::create_directories(work);
  r.set_work_dir(work.string());
  r.set_context_json(context(app, s).dump());
  ct::Recorder rec;
  auto callbacks = rec.callbacks();
  if (phases) {
    // Each section of the step's log with the time it started at.
    auto t0 = Clock::now();
    callbacks.log = [log = callbacks.log, t0](capstan_log_level level, std::string_view line) {
      if (line.rfind("== ", 0) == 0) {
        std::printf("    %6.2f s  %.*s\n", std::chrono::duration<double>(Clock::now() - t0).count(),
                    static_cast<int>(line.size()), line.data());
      }
      log(level, line);
    };
  }
  auto result = host.execute(r, callbacks);
  if (result.status() != capstan::plugin::v1::StepResult::STATUS_SUCCEEDED) {
    std::fprintf(stderr, "K8sApply failed: %s\n%s\n", result.message().c_str(),
                 rec.all_text().substr(0, 4000).c_str());
    return false;
  }
  return true;
}

} // namespace

int main(int argc, char** argv) {
  int n = 500;
  bool with_wait = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--objects") == 0 && i + 1 < argc) {
      n = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--with-wait") == 0) {
      with_wait = true;
    } else if (std::strcmp(argv[i], "--phases") == 0) {
      phases = true;
    } else {
      std::fprintf(stderr, "usage: kube_bench [--objects N] [--with-wait] [--phases]\n");
      return 2;
    }
  }
  ct::TempDir root("kube-bench");
  auto app = root.path() / "app";
  for (int i = 0; i < n; ++i) {
    ct::write_file(app / "objects" / ("obj-" + std::to_string(i) + ".yaml"),
                   ct::bench_object_yaml(i, "kube"));
  }
  std::printf("%d objects (40%% ConfigMaps, 30%% Deployments, 30%% Services), one per file; "
              "each scenario on a fresh capstan-sandbox\n",
              n);

  // The plugin as a delegate loads it by default, and the same plugin with the client-side
  // rate limit configured as it was by default before (delegate setting qps: 100, burst: 200).
  capstan::delegate::PluginHost host(json::object(), root.path() / "plugin-state", "bench");
  host.load({ct::plugin_dir()});
  capstan::delegate::PluginHost limited(json{{"kubernetes", {{"qps", 100}, {"burst", 200}}}},
                                        root.path() / "plugin-state-limited", "bench");
  limited.load({ct::plugin_dir()});
  std::vector<Result> results;
  int sandboxes = 0;
  auto fresh = [&] {
    return std::make_unique<ct::Sandbox>(root.path() / ("sandbox-" + std::to_string(++sandboxes)),
                                         "");
  };
  {
    auto s = fresh();
    results.push_back(measure("baseline: kubectl apply --server-side -f DIR", *s, [&] {
      auto r = s->kubectl({"apply", "--server-side", "-f", (app / "objects").string()},
                          std::nullopt, std::chrono::minutes(30));
      if (!r.status.success()) std::fprintf(stderr, "%s\n", r.err.substr(0, 4000).c_str());
      return r.status.success();
    }));
  }
  // Each K8sApply scenario: its own fresh sandbox and work folder.
  auto k8s = [&](const std::string& name, capstan::delegate::PluginHost& h, const json& spec) {
    auto s = fresh();
    auto work = root.path() / ("work-" + std::to_string(sandboxes));
    results.push_back(measure(name, *s, [&] { return k8s_apply(h, app, work, *s, spec); }));
  };
  const json dry_run = {{"filePaths", {"objects"}}, {"skipSteadyStateCheck", true}};
  const json apply_only = {
      {"filePaths", {"objects"}}, {"skipDryRun", true}, {"skipSteadyStateCheck", true}};
  k8s("K8sApply (dry run, apply; skipSteadyStateCheck)", host, dry_run);
  k8s("K8sApply (skipDryRun, skipSteadyStateCheck)", host, apply_only);
  // At 100 requests per second after a burst of 200, the limiter alone sets a floor of about
  // 3 s on 500 applies and 8 s on a dry run plus apply.
  k8s("K8sApply (dry run, apply), qps 100 burst 200", limited, dry_run);
  k8s("K8sApply (skipDryRun), qps 100 burst 200", limited, apply_only);
  if (with_wait) k8s("K8sApply (dry run, apply, steady state)", host, {{"filePaths", {"objects"}}});
  const Result& base = results[0];
  for (std::size_t i = 1; i < results.size(); ++i) {
    std::printf("%-58s %6.1fx faster than the baseline, %.2f of its requests\n",
                results[i].name.c_str(), base.seconds / results[i].seconds,
                static_cast<double>(results[i].requests) / static_cast<double>(base.requests));
  }
  for (const auto& r : results) {
    if (!r.ok) return 1;
  }
  return 0;
}
