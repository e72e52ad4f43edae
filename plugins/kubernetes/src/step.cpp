// The common parts of the Kubernetes steps.
#include "step.h"

#include <capstan/yaml/yaml.h>

#include "errors.h"

namespace capstan::plugins::kubernetes {

using nlohmann::json;

kube::Client ClientPool::get(const StageContext& stage) {
  std::lock_guard lock(mutex_);
  auto it = clients_.find(stage.cluster_key);
  if (it != clients_.end()) return it->second;
  kube::Client c = guarded([&] { return kube::Client(stage.cluster, options_); });
  clients_.emplace(stage.cluster_key, c);
  return c;
}

Step::Step(const sdk::StepContext& c, ClientPool& clients, git::RepoCache& repos,
           const PluginSettings& settings)
    : ctx(c), stage(StageContext::parse(c)),
      client(clients.get(stage).with_cancel([&c] { return c.cancelled(); })),
      applier(client, c, settings.apply_concurrency),
      releases(client, stage.namespace_, stage.release_name), fetcher(repos, stage, c),
      started(std::chrono::system_clock::now()), settings_(settings) {}

void Step::section(const std::string& title) const {
  ctx.info("");
  ctx.info("== " + title + " ==");
}

Rendered Step::render(const RenderSpec& spec) {
  section("Fetch and render manifests");
  Rendered r = render_stage(stage, fetcher, ctx, spec);
  for (const auto& f : r.files) ctx.info("Rendered " + f.path);
  if (r.resources.empty()) throw invalid("the manifests hold no objects to apply");
  applier.check_kinds(r.resources);
  return r;
}

void Step::log_manifests(const std::vector<manifest::Resource>& resources) const {
  constexpr std::size_t kMaxBytes = 256 * 1024;
  std::string yaml = to_yaml_masked(resources);
  ctx.info("Manifests:");
  if (yaml.size() > kMaxBytes) {
    ctx.info(yaml.substr(0, kMaxBytes));
    ctx.info("... (" + std::to_string(yaml.size() - kMaxBytes) + " more bytes not shown)");
    return;
  }
  ctx.info(yaml);
}

std::optional<std::chrono::steady_clock::time_point> Step::deadline() const {
  auto now = std::chrono::steady_clock::now();
  auto left = ctx.remaining();
  if (!left) return now + settings_.default_timeout;
  auto margin = std::min<std::chrono::milliseconds>(std::chrono::seconds(2), *left / 10);
  return now + *left - margin;
}

kube::ObjectRef Step::ref(const manifest::Resource& r) const {
  return {r.api_version(), r.kind(), r.namespace_(), r.name()};
}

kube::ObjectRef Step::ref(const manifest::ResourceId& id) {
  return {applier.api_version_of(id.kind), id.kind, id.namespace_, id.name};
}

void Step::before_changes(const std::vector<kube::ObjectRef>& objects) {
  std::set<std::string> namespaces;
  for (const auto& o : objects) {
    if (!kube::is_rollout_kind(o.kind)) continue;
    namespaces.insert(o.namespace_.empty() ? client.default_namespace() : o.namespace_);
  }
  if (namespaces.empty()) return;
  try {
    if (!events_before_) events_before_ = std::make_shared<kube::EventBaseline>();
    events_before_->extend(client, namespaces);
  } catch (const kube::Error& e) {
    if (e.is(kube::ErrorKind::kCancelled)) throw sdk::Cancelled();
  }
}

void Step::before_changes(const std::vector<manifest::Resource>& resources) {
  std::vector<kube::ObjectRef> refs;
  refs.reserve(resources.size());
  for (const auto& r : resources) refs.push_back(ref(r));
  before_changes(refs);
}

void Step::wait_for_steady_state(const std::vector<kube::ObjectRef>& workloads) const {
  if (workloads.empty()) {
    ctx.info("No workloads to wait for");
    return;
  }
  section("Wait for steady state");
  std::string names;
  for (const auto& w : workloads) names += (names.empty() ? "" : ", ") + w.str();
  ctx.info("Waiting for " + names);
  kube::WaitOptions o;
  o.deadline = deadline();
  o.cancelled = [this] { return ctx.cancelled(); };
  o.events_since = started - std::chrono::seconds(1);
  o.events_before = events_before_;
  o.log = [this](kube::LogLevel level, const std::string& line) {
    ctx.log(level == kube::LogLevel::kInfo   ? CAPSTAN_LOG_INFO
            : level == kube::LogLevel::kWarn ? CAPSTAN_LOG_WARN
                                             : CAPSTAN_LOG_ERROR,
            line);
  };
  auto r = guarded([&] { return kube::wait_for_steady_state(client, workloads, o); });
  using O = kube::WaitResult::Outcome;
  if (r.outcome == O::kReady) {
    ctx.info("Steady state reached");
    return;
  }
  if (r.outcome == O::kCancelled) throw sdk::Cancelled("cancelled while waiting for steady state");
  std::string reasons;
  for (const auto& w : r.workloads) {
    for (const auto& p : w.pod_problems) {
      ctx.error(p);
      if (reasons.empty()) reasons = p;
    }
  }
  std::string message = r.message + (reasons.empty() ? "" : " (" + reasons + ")");
  ctx.error(message);
  bool timeout = r.outcome == O::kTimedOut || r.failure.deadline_exceeded();
  throw sdk::StepError(timeout ? plugin::v1::ERROR_TYPE_TIMEOUT : plugin::v1::ERROR_TYPE_UNKNOWN,
                       message);
}

int spec_int(const json& v, const std::string& field) {
  if (v.is_number_integer()) return v.get<int>();
  if (v.is_string()) {
    try {
      std::size_t used = 0;
      int n = std::stoi(v.get<std::string>(), &used);
      if (used == v.get<std::string>().size()) return n;
    } catch (...) {
    }
  }
  throw invalid(field + " must be a whole number, not " + v.dump());
}

bool spec_bool(const json& spec, const char* key, bool fallback) {
  auto it = spec.find(key);
  if (it == spec.end() || it->is_null()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) {
    if (*it == "true") return true;
    if (*it == "false") return false;
  }
  throw invalid(std::string(key) + " must be true or false, not " + it->dump());
}

} // namespace capstan::plugins::kubernetes
