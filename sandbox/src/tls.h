// The sandbox's certificate authority, serving certificate and bearer token, created on first
// start in the data directory and reused afterwards.
#pragma once

#include <filesystem>
#include <string>

namespace capstan::sandbox {

struct Credentials {
  std::filesystem::path ca_cert, server_cert, server_key;
  std::string ca_pem;
  std::string token;
};

// Creates DIR/pki/{ca.crt,ca.key,server.crt,server.key} and DIR/token when missing; throws
// std::runtime_error on OpenSSL or file errors.
Credentials ensure_credentials(const std::filesystem::path& data_dir);

} // namespace capstan::sandbox
