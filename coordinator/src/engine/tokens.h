// Delegate tokens: the credential a delegate presents in its Hello. Only a SHA-256 of each token
// is stored; the token itself is shown once, when it is created. Engine thread only.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "store/store.h"

namespace capstan::engine {

class Tokens {
public:
  explicit Tokens(store::Store& store);

  // Loads the valid tokens from the store.
  void load();
  // The name of the valid token `token` is, if any.
  std::optional<std::string> verify(const std::string& token) const;
  // A new token named `name` (a valid identifier, unused): returns the token. Throws
  // std::invalid_argument with a message for a bad or taken name.
  std::string create(const std::string& name, std::int64_t now);
  // False when no valid token has that name.
  bool revoke(const std::string& name, std::int64_t now);
  bool empty() const { return by_hash_.empty(); }

  static std::string hash(const std::string& token);
  // Writes a token to a file only the owner can read (mode 0600).
  static void save(const std::filesystem::path& file, const std::string& token);

private:
  store::Store& store_;
  std::map<std::string, std::string> by_hash_; // hash -> name, valid tokens only
};

} // namespace capstan::engine
