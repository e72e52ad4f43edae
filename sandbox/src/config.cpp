// Reads DIR/config.yaml: delays, simulated nodes and failure rules.
#include "capstan/sandbox/config.h"

#include "capstan/yaml/yaml.h"

#include <fnmatch.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace capstan::sandbox {

namespace {

std::chrono::milliseconds parse_duration(const nlohmann::json& v, const std::string& where) {
  if (v.is_number_integer()) return std::chrono::milliseconds(v.get<long long>());
  if (v.is_string()) {
    std::string s = v;
    try {
      std::size_t used = 0;
      double n = std::stod(s, &used);
      std::string unit = s.substr(used);
      if (unit == "ms") return std::chrono::milliseconds(static_cast<long long>(n));
      if (unit == "s") return std::chrono::milliseconds(static_cast<long long>(n * 1000));
      if (unit == "m") return std::chrono::milliseconds(static_cast<long long>(n * 60000));
      if (unit.empty()) return std::chrono::milliseconds(static_cast<long long>(n));
    } catch (const std::exception&) {
    }
  }
  throw std::runtime_error(where + ": expected a duration such as 200ms, 2s or 1m, got " +
                           v.dump());
}

FailureMode parse_mode(const std::string& s, const std::string& where) {
  if (s == "CrashLoopBackOff") return FailureMode::kCrashLoop;
  if (s == "ErrImagePull" || s == "ImagePullBackOff") return FailureMode::kPullFail;
  if (s == "Unready") return FailureMode::kUnready;
  if (s == "Error") return FailureMode::kExitError;
  throw std::runtime_error(where + ": unknown failure \"" + s +
                           "\" (one of CrashLoopBackOff, ErrImagePull, Unready, Error)");
}

} // namespace

SandboxConfig SandboxConfig::load(const std::filesystem::path& data_dir) {
  SandboxConfig c;
  c.failure_rules = {
      {"*:crashloop", FailureMode::kCrashLoop, 1, "back-off restarting failed container"},
      {"*:pullfail", FailureMode::kPullFail, 0, "image can't be pulled"}};
  auto file = data_dir / "config.yaml";
  std::ifstream in(file);
  if (!in) return c;
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = yaml::load(ss.str(), file.string());
  const auto& v = doc.value;
  if (v.is_null()) return c;
  auto at = [&](const std::string& ptr) { return doc.where.locate(ptr); };
  if (!v.is_object()) throw std::runtime_error(at("") + ": the sandbox config must be a mapping");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& k = it.key();
    std::string where = at("/" + k);
    if (k == "podReadyDelay")
      c.pod_ready_delay = parse_duration(it.value(), where);
    else if (k == "podReadyJitter")
      c.pod_ready_jitter = parse_duration(it.value(), where);
    else if (k == "podTerminationDelay")
      c.pod_termination_delay = parse_duration(it.value(), where);
    else if (k == "jobDuration")
      c.job_duration = parse_duration(it.value(), where);
    else if (k == "crashBackoff")
      c.crash_backoff = parse_duration(it.value(), where);
    else if (k == "nodes") {
      if (!it.value().is_number_integer() || it.value().get<int>() < 1 ||
          it.value().get<int>() > 100)
        throw std::runtime_error(where + ": nodes must be an integer from 1 to 100");
      c.nodes = it.value();
    } else if (k == "watchHistory") {
      if (!it.value().is_number_integer() || it.value().get<long long>() < 100)
        throw std::runtime_error(where + ": watchHistory must be an integer of at least 100");
      c.watch_history = it.value().get<std::size_t>();
    } else if (k == "failureRules") {
      if (!it.value().is_array()) throw std::runtime_error(where + ": failureRules must be a list");
      std::vector<FailureRule> rules;
      for (std::size_t i = 0; i < it.value().size(); ++i) {
        const auto& r = it.value()[i];
        std::string rw = at("/failureRules/" + std::to_string(i));
        if (!r.is_object() || !r.contains("image") || !r["image"].is_string() ||
            !r.contains("reason") || !r["reason"].is_string())
          throw std::runtime_error(rw + ": a failure rule needs image (a glob) and reason");
        FailureRule fr;
        fr.image = r["image"];
        fr.mode = parse_mode(r["reason"], rw);
        fr.exit_code = r.value("exitCode", 1);
        fr.message = r.value("message", "");
        rules.push_back(fr);
      }
      c.failure_rules = std::move(rules);
    } else {
      throw std::runtime_error(where + ": unknown setting \"" + k +
                               "\" (known: podReadyDelay, podReadyJitter, podTerminationDelay, "
                               "jobDuration, crashBackoff, nodes, watchHistory, failureRules)");
    }
  }
  return c;
}

const FailureRule* SandboxConfig::match(const std::string& image) const {
  for (const auto& r : failure_rules)
    if (fnmatch(r.image.c_str(), image.c_str(), 0) == 0) return &r;
  return nullptr;
}

} // namespace capstan::sandbox
