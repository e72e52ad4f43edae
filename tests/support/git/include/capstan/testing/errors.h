// Catching the exception a test expects, to assert on its kind and message.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <utility>

namespace capstan::testing {

// The exception of type E that f throws; a test failure (and a default E) when it throws none.
template <typename E, typename... Default>
E error_of(const std::function<void()>& f, Default&&... fallback) {
  try {
    f();
  } catch (const E& e) {
    return e;
  }
  ADD_FAILURE() << "expected an exception, none was thrown";
  return E(std::forward<Default>(fallback)...);
}

} // namespace capstan::testing
