// Failures of the Kubernetes client, manifests and Git turned into step errors whose type
// failure strategies match on.
#pragma once

#include <capstan/git/error.h>
#include <capstan/kube/error.h>
#include <capstan/manifest/error.h>
#include <capstan/sdk/plugin.h>

#include <string>

namespace capstan::plugins::kubernetes {

// Connectivity, Authentication, Authorization, Timeout, InvalidInput or Unknown.
plugin::v1::ErrorType error_type(kube::ErrorKind kind);
plugin::v1::ErrorType error_type(git::ErrorKind kind);

// Throws the step error for `e` (sdk::Cancelled for a cancellation); `where` prefixes the
// message ("deployment.yaml:12: ").
[[noreturn]] void fail(const kube::Error& e, const std::string& where = {});

inline sdk::StepError invalid(const std::string& message) {
  return sdk::StepError(plugin::v1::ERROR_TYPE_INVALID_INPUT, message);
}

// Runs `body`, turning the libraries' exceptions into step errors.
template <class F> auto guarded(F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const kube::Error& e) {
    fail(e);
  } catch (const manifest::ManifestError& e) {
    throw invalid(e.what());
  } catch (const git::Error& e) {
    if (e.kind() == git::ErrorKind::kCancelled) throw sdk::Cancelled();
    throw sdk::StepError(error_type(e.kind()), e.what());
  }
}

} // namespace capstan::plugins::kubernetes
