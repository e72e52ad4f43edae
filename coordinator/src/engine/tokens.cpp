// Delegate tokens: creation, verification by hash, revocation.
#include "engine/tokens.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <unistd.h>

#include <regex>
#include <stdexcept>

namespace capstan::engine {

namespace {

std::string hex(const unsigned char* data, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 15]);
  }
  return out;
}

} // namespace

Tokens::Tokens(store::Store& store) : store_(store) {}

void Tokens::load() {
  by_hash_.clear();
  for (const auto& t : store_.tokens()) {
    if (t.revoked_at == 0) by_hash_[t.hash] = t.name;
  }
}

std::string Tokens::hash(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return hex(digest, sizeof digest);
}

std::optional<std::string> Tokens::verify(const std::string& token) const {
  if (token.empty() || token.size() > 256) return std::nullopt;
  auto it = by_hash_.find(hash(token));
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

std::string Tokens::create(const std::string& name, std::int64_t now) {
  static const std::regex valid("[A-Za-z0-9][A-Za-z0-9_.-]{0,62}");
  if (!std::regex_match(name, valid)) {
    throw std::invalid_argument("invalid token name '" + name +
                                "': use letters, digits, '_', '.' or '-' (at most 63, starting "
                                "with a letter or digit)");
  }
  for (const auto& t : store_.tokens()) {
    if (t.name == name) {
      throw std::invalid_argument(
          "a token named '" + name + "' already exists" +
          (t.revoked_at ? " (revoked; names are not reused)" : "; revoke it or pick another name"));
    }
  }
  unsigned char secret[24];
  if (RAND_bytes(secret, sizeof secret) != 1) {
    throw std::runtime_error("no randomness available for a delegate token");
  }
  std::string token = "cdt_" + hex(secret, sizeof secret);
  store::TokenRecord r;
  r.name = name;
  r.hash = hash(token);
  r.created_at = now;
  store_.put_token(r);
  by_hash_[r.hash] = name;
  return token;
}

bool Tokens::revoke(const std::string& name, std::int64_t now) {
  for (auto it = by_hash_.begin(); it != by_hash_.end(); ++it) {
    if (it->second == name) {
      store_.revoke_token(name, now);
      by_hash_.erase(it);
      return true;
    }
  }
  return false;
}

} // namespace capstan::engine

namespace capstan::engine {

void Tokens::save(const std::filesystem::path& file, const std::string& token) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + file.string());
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::fchmod(fd, 0600);
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + file.string());
}

} // namespace capstan::engine
