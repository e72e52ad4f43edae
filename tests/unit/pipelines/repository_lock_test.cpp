// The key that serialises Update Release Repo and Revert PR steps per release repository: one
// repository written several ways gives one key; different repositories give different keys.
#include <gtest/gtest.h>

#include "engine/gitops.h"

namespace capstan::engine {
namespace {

TEST(RepositoryLockKey, OneRepositoryWrittenSeveralWaysIsOneKey) {
  const std::string key = "https://github.com/Org/Release";
  for (const char* url : {"https://github.com/Org/Release", "https://github.com/Org/Release.git",
                          "https://github.com/Org/Release/", "HTTPS://GitHub.COM/Org/Release.git",
                          "https://bot:s3cret@github.com/Org/Release.git"}) {
    EXPECT_EQ(repository_lock_key(url), key) << url;
  }
  EXPECT_EQ(repository_lock_key("git@github.com:Org/Release.git"), "ssh://github.com/Org/Release");
  EXPECT_EQ(repository_lock_key("ssh://git@GitHub.com/Org/Release"),
            "ssh://github.com/Org/Release");
  EXPECT_EQ(repository_lock_key("/srv/git/release.git"), "file:///srv/git/release");
  EXPECT_EQ(repository_lock_key("file:///srv/git/release.git"), "file:///srv/git/release");
  // The path keeps its case (servers may tell Org/Release from org/release); no secret stays.
  EXPECT_NE(repository_lock_key("https://github.com/org/release"), key);
  EXPECT_EQ(repository_lock_key("https://bot:s3cret@github.com/Org/Release").find("s3cret"),
            std::string::npos);
}

} // namespace
} // namespace capstan::engine
