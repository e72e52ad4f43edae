// Sealing secret values, and masking them in text.
#include "secrets/secret_box.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace capstan::secrets {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kKeyBytes = crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;

void init_sodium() {
  static const int ok = sodium_init();
  if (ok < 0) throw std::runtime_error("libsodium could not be initialised");
}

std::string to_base64(const unsigned char* data, std::size_t len) {
  std::string out(sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, len, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::optional<std::string> from_base64(std::string_view text) {
  std::string out(text.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

} // namespace

SecretBox::SecretBox(const fs::path& data_dir) : key_file_(data_dir / "secrets.key") {
  init_sodium();
  fs::create_directories(data_dir);
  int fd = ::open(key_file_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    std::string key(kKeyBytes, '\0');
    crypto_aead_xchacha20poly1305_ietf_keygen(reinterpret_cast<unsigned char*>(key.data()));
    std::string encoded = to_base64(reinterpret_cast<const unsigned char*>(key.data()), key.size());
    encoded += "\n";
    bool ok = ::write(fd, encoded.data(), encoded.size()) == static_cast<ssize_t>(encoded.size());
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    sodium_memzero(key.data(), key.size());
    if (!ok) {
      fs::remove(key_file_);
      throw std::runtime_error("cannot write " + key_file_.string());
    }
  } else if (errno != EEXIST) {
    throw std::runtime_error("cannot create " + key_file_.string() + ": " + std::strerror(errno));
  }
  fs::permissions(key_file_, fs::perms::owner_read | fs::perms::owner_write,
                  fs::perm_options::replace);
  std::ifstream in(key_file_);
  std::string line;
  std::getline(in, line);
  auto key = from_base64(line);
  if (!key || key->size() != kKeyBytes) {
    throw std::runtime_error(key_file_.string() +
                             " is not a secrets key (expected 32 bytes in base64); restore it "
                             "from a backup, or remove it and re-apply every secret");
  }
  key_ = std::move(*key);
}

std::string SecretBox::seal(std::string_view plaintext, std::string_view context) const {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(nonce, kNonceBytes);
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + kNonceBytes, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
      plaintext.size(), reinterpret_cast<const unsigned char*>(context.data()), context.size(),
      nullptr, nonce, reinterpret_cast<const unsigned char*>(key_.data()));
  return to_base64(nonce, kNonceBytes + static_cast<std::size_t>(len));
}

std::optional<std::string> SecretBox::open(std::string_view sealed,
                                           std::string_view context) const {
  auto raw = from_base64(sealed);
  if (!raw || raw->size() < kNonceBytes + kTagBytes) return std::nullopt;
  const auto* nonce = reinterpret_cast<const unsigned char*>(raw->data());
  std::string out(raw->size() - kNonceBytes - kTagBytes, '\0');
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &len, nullptr, nonce + kNonceBytes,
          raw->size() - kNonceBytes, reinterpret_cast<const unsigned char*>(context.data()),
          context.size(), nonce, reinterpret_cast<const unsigned char*>(key_.data())) != 0) {
    return std::nullopt;
  }
  out.resize(static_cast<std::size_t>(len));
  return out;
}

std::string SecretBox::digest(std::string_view plaintext) const {
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(plaintext.data()),
                     plaintext.size(), reinterpret_cast<const unsigned char*>(key_.data()),
                     key_.size());
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, out, sizeof out);
  return hex;
}

Masker::Masker(std::vector<std::string> values) {
  for (auto& v : values) add(v);
}

void Masker::add(const std::string& value) {
  // Values shorter than three characters would mask ordinary text everywhere (GitLab refuses to
  // mask short values for the same reason); they are not worth hiding and cannot be hidden.
  if (value.size() < 3) return;
  if (std::find(values_.begin(), values_.end(), value) != values_.end()) return;
  values_.push_back(value);
  std::stable_sort(values_.begin(), values_.end(),
                   [](const auto& a, const auto& b) { return a.size() > b.size(); });
  // A multi-line secret (a key, a kubeconfig) is also masked line by line, since logs arrive
  // one line at a time.
  if (value.find('\n') != std::string::npos) {
    std::istringstream in(value);
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (line.size() >= 8) add(line);
    }
  }
}

std::string Masker::mask(std::string text) const {
  for (const auto& v : values_) {
    for (auto pos = text.find(v); pos != std::string::npos;
         pos = text.find(v, pos + kMask.size())) {
      text.replace(pos, v.size(), kMask);
    }
  }
  return text;
}

} // namespace capstan::secrets
