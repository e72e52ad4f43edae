// RSA keys for SSH user authentication with SHA-2 signatures (RFC 8332).
//
// libssh2 1.10 (Debian 12) signs RSA user authentication only as "ssh-rsa" (SHA-1), which
// OpenSSH 8.8 and later refuse by default ("signature algorithm ssh-rsa not in
// PubkeyAcceptedAlgorithms"). libgit2's custom-signature credential lets the caller sign: the
// key is offered under the algorithm name "rsa-sha2-512" and signed here with OpenSSL.
#pragma once

#include <memory>
#include <string>

namespace capstan::git::detail {

class RsaSshKey {
public:
  // nullptr when `text` is not an RSA private key (other key types keep libssh2's own path).
  // Throws Error kAuthentication for a wrong or missing passphrase, kInvalidInput for an RSA
  // key that cannot be read (e.g. passphrase-protected OpenSSH-format keys; see docs/git.md).
  static std::unique_ptr<RsaSshKey> load(const std::string& text, const std::string& passphrase);
  ~RsaSshKey();
  RsaSshKey(const RsaSshKey&) = delete;
  RsaSshKey& operator=(const RsaSshKey&) = delete;

  // The public key blob as sent in SSH_MSG_USERAUTH_REQUEST: string "rsa-sha2-512", mpint e,
  // mpint n. libssh2 takes the algorithm name it sends from the blob's first string.
  const std::string& public_blob() const { return blob_; }
  // RSASSA-PKCS1-v1_5 with SHA-512 over `data`; empty on failure.
  std::string sign(const unsigned char* data, std::size_t size) const;

  static constexpr const char* kAlgorithm = "rsa-sha2-512";

private:
  struct Impl;
  explicit RsaSshKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string blob_;
};

} // namespace capstan::git::detail
