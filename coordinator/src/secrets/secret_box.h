// Secrets at rest: values sealed with XChaCha20-Poly1305 under a key kept in the coordinator's
// data dir (generated on first start, file mode 0600), and a masker that hides secret values in
// text before it is stored or served.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capstan::secrets {

class SecretBox {
public:
  // Loads <data_dir>/secrets.key, creating it on first start. Throws std::runtime_error naming
  // the file when it cannot be read or created, or has the wrong size.
  explicit SecretBox(const std::filesystem::path& data_dir);

  // nonce || ciphertext, base64; `context` (the secret's identifier) is bound to it, so a sealed
  // value copied to another secret does not open.
  std::string seal(std::string_view plaintext, std::string_view context) const;
  // nullopt when the value was not sealed by this key for this context.
  std::optional<std::string> open(std::string_view sealed, std::string_view context) const;
  // A keyed digest (hex) to tell whether a value changed without keeping it.
  std::string digest(std::string_view plaintext) const;

  const std::filesystem::path& key_file() const { return key_file_; }

private:
  std::filesystem::path key_file_;
  std::string key_; // 32 bytes
};

// Replaces every occurrence of any of the values with "**********".
class Masker {
public:
  Masker() = default;
  explicit Masker(std::vector<std::string> values);
  std::string mask(std::string text) const;
  bool empty() const { return values_.empty(); }
  void add(const std::string& value);

private:
  std::vector<std::string> values_; // longest first, so a secret containing another goes whole
};

inline constexpr std::string_view kMask = "**********";

} // namespace capstan::secrets
