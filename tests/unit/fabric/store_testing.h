// What the store's tests share: a single number read through the store's writer.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "store/store.h"

namespace capstan::store {

// The first column of the first row of `sql`.
inline std::int64_t count(Store& s, const std::string& sql) {
  auto& q = s.writer().prepare(sql);
  EXPECT_TRUE(q.step());
  auto n = q.int64(0);
  q.reset();
  return n;
}

} // namespace capstan::store
