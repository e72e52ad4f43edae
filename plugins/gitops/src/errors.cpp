// Library errors to step failures.
#include "errors.h"

#include <capstan/apps/application.h>
#include <capstan/configedit/configedit.h>
#include <capstan/git/error.h>
#include <capstan/scm/provider.h>
#include <capstan/sdk/plugin.h>
#include <capstan/yaml/yaml.h>

namespace capstan::plugins::gitops {

namespace {

using plugin::v1::ErrorType;

ErrorType git_type(git::ErrorKind k) {
  switch (k) {
  case git::ErrorKind::kAuthentication:
    return plugin::v1::ERROR_TYPE_AUTHENTICATION;
  case git::ErrorKind::kConnectivity:
    return plugin::v1::ERROR_TYPE_CONNECTIVITY;
  case git::ErrorKind::kTimeout:
    return plugin::v1::ERROR_TYPE_TIMEOUT;
  case git::ErrorKind::kInvalidInput:
    return plugin::v1::ERROR_TYPE_INVALID_INPUT;
  default:
    return plugin::v1::ERROR_TYPE_UNKNOWN;
  }
}

ErrorType scm_type(scm::ErrorKind k) {
  switch (k) {
  case scm::ErrorKind::kAuthentication:
    return plugin::v1::ERROR_TYPE_AUTHENTICATION;
  case scm::ErrorKind::kConnectivity:
    return plugin::v1::ERROR_TYPE_CONNECTIVITY;
  case scm::ErrorKind::kTimeout:
    return plugin::v1::ERROR_TYPE_TIMEOUT;
  case scm::ErrorKind::kValidation:
  case scm::ErrorKind::kInvalidInput:
    return plugin::v1::ERROR_TYPE_INVALID_INPUT;
  default:
    return plugin::v1::ERROR_TYPE_UNKNOWN;
  }
}

} // namespace

std::string scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (s.size() < 3) continue;
    for (auto pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos)) {
      text.replace(pos, s.size(), "**********");
    }
  }
  return text;
}

void translate_errors(const std::string& what, const std::vector<std::string>& secrets,
                      const std::function<void()>& f) {
  auto fail = [&](ErrorType type, const std::string& message) {
    throw sdk::StepError(type, scrub(what + ": " + message, secrets));
  };
  try {
    f();
  } catch (const sdk::StepError&) {
    throw;
  } catch (const sdk::Cancelled&) {
    throw;
  } catch (const git::Error& e) {
    if (e.kind() == git::ErrorKind::kCancelled) throw sdk::Cancelled(what + ": cancelled");
    fail(git_type(e.kind()), std::string(e.what()) + " (" + git::to_string(e.kind()) + ")");
  } catch (const scm::Error& e) {
    if (e.kind() == scm::ErrorKind::kCancelled) throw sdk::Cancelled(what + ": cancelled");
    fail(scm_type(e.kind()), std::string(e.what()) + " (" + scm::to_string(e.kind()) + ")");
  } catch (const configedit::Error& e) {
    fail(plugin::v1::ERROR_TYPE_INVALID_INPUT, e.what());
  } catch (const yaml::Error& e) {
    fail(plugin::v1::ERROR_TYPE_INVALID_INPUT, e.what());
  } catch (const apps::Error& e) {
    fail(plugin::v1::ERROR_TYPE_INVALID_INPUT, e.what());
  } catch (const std::exception& e) {
    fail(plugin::v1::ERROR_TYPE_UNKNOWN, e.what());
  }
}

} // namespace capstan::plugins::gitops
