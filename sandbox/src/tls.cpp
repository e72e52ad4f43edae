// Certificate authority and serving certificate (EC P-256, SANs localhost and 127.0.0.1).
#include "tls.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace capstan::sandbox {

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("sandbox credentials: " + what);
}

Pkey new_key() {
  EVP_PKEY* k = EVP_EC_gen("P-256");
  if (!k) fail("cannot generate an EC key");
  return Pkey(k);
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) fail(std::string("cannot build extension ") + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

Cert make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca,
               long days) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("capstan-sandbox"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* iss = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(iss));
  if (ca) {
    add_ext(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    add_ext(cert.get(), iss, NID_subject_key_identifier, "hash");
  } else {
    add_ext(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(cert.get(), iss, NID_ext_key_usage, "serverAuth");
    add_ext(cert.get(), iss, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    add_ext(cert.get(), iss, NID_authority_key_identifier, "keyid:always");
  }
  if (!X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256())) fail("cannot sign");
  return cert;
}

std::string pem_cert(X509* c) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, c);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

std::string pem_key(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

void write_private(const std::filesystem::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::trunc);
  if (!out) fail("cannot write " + p.string());
  out << content;
  out.close();
  ::chmod(p.c_str(), 0600);
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

Credentials ensure_credentials(const std::filesystem::path& data_dir) {
  Credentials c;
  auto pki = data_dir / "pki";
  std::filesystem::create_directories(pki);
  ::chmod(pki.c_str(), 0700);
  c.ca_cert = pki / "ca.crt";
  c.server_cert = pki / "server.crt";
  c.server_key = pki / "server.key";
  auto token_file = data_dir / "token";
  if (!std::filesystem::exists(c.ca_cert) || !std::filesystem::exists(c.server_cert) ||
      !std::filesystem::exists(c.server_key)) {
    Pkey ca_key = new_key();
    Cert ca = make_cert(ca_key.get(), "capstan-sandbox-ca", nullptr, nullptr, true, 3650);
    Pkey srv_key = new_key();
    Cert srv = make_cert(srv_key.get(), "capstan-sandbox", ca.get(), ca_key.get(), false, 3650);
    write_private(pki / "ca.key", pem_key(ca_key.get()));
    write_private(c.ca_cert, pem_cert(ca.get()));
    write_private(c.server_key, pem_key(srv_key.get()));
    write_private(c.server_cert, pem_cert(srv.get()));
  }
  c.ca_pem = read(c.ca_cert);
  if (std::filesystem::exists(token_file)) {
    c.token = read(token_file);
    while (!c.token.empty() && (c.token.back() == '\n' || c.token.back() == '\r'))
      c.token.pop_back();
  }
  if (c.token.empty()) {
    unsigned char b[32];
    RAND_bytes(b, sizeof b);
    static const char* hex = "0123456789abcdef";
    for (unsigned char x : b) {
      c.token += hex[x >> 4];
      c.token += hex[x & 15];
    }
    write_private(token_file, c.token + "\n");
  }
  return c;
}

} // namespace capstan::sandbox
