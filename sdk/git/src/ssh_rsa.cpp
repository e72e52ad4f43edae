// RSA user authentication with SHA-2 signatures on top of libssh2 1.10 (see ssh_rsa.h).
#include "ssh_rsa.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <cstdint>
#include <cstring>

#include "capstan/git/error.h"

namespace capstan::git::detail {

namespace {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using BnPtr = std::unique_ptr<BIGNUM, decltype(&BN_clear_free)>;

BnPtr bn(BIGNUM* b) {
  return {b, &BN_clear_free};
}

// Reader of SSH wire encoding (RFC 4251 §5): uint32, string, mpint.
class Wire {
public:
  Wire(const unsigned char* p, std::size_t n) : p_(p), n_(n) {}
  bool u32(std::uint32_t& v) {
    if (n_ < 4) return false;
    v = (std::uint32_t{p_[0]} << 24) | (std::uint32_t{p_[1]} << 16) | (std::uint32_t{p_[2]} << 8) |
        std::uint32_t{p_[3]};
    p_ += 4;
    n_ -= 4;
    return true;
  }
  bool str(std::string& out) {
    std::uint32_t len = 0;
    if (!u32(len) || len > n_) return false;
    out.assign(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    n_ -= len;
    return true;
  }
  BnPtr mpint() {
    std::string s;
    if (!str(s)) return bn(nullptr);
    return bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()),
                        static_cast<int>(s.size()), nullptr));
  }

private:
  const unsigned char* p_;
  std::size_t n_;
};

void put_u32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void put_str(std::string& out, const std::string& s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

void put_mpint(std::string& out, const BIGNUM* b) {
  std::string bytes(static_cast<std::size_t>(BN_num_bytes(b)), '\0');
  BN_bn2bin(b, reinterpret_cast<unsigned char*>(bytes.data()));
  if (!bytes.empty() && (static_cast<unsigned char>(bytes[0]) & 0x80U) != 0)
    bytes.insert(0, 1, '\0');
  put_str(out, bytes);
}

std::string base64_decode(const std::string& text) {
  std::string out(text.size(), '\0');
  EVP_ENCODE_CTX* ctx = EVP_ENCODE_CTX_new();
  if (ctx == nullptr) return {};
  EVP_DecodeInit(ctx);
  int len = 0;
  int total = 0;
  bool ok = EVP_DecodeUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                             reinterpret_cast<const unsigned char*>(text.data()),
                             static_cast<int>(text.size())) >= 0;
  total = len;
  if (ok) {
    ok = EVP_DecodeFinal(ctx, reinterpret_cast<unsigned char*>(out.data()) + total, &len) == 1;
    total += len;
  }
  EVP_ENCODE_CTX_free(ctx);
  if (!ok) return {};
  out.resize(static_cast<std::size_t>(total));
  return out;
}

// The base64 body between "-----BEGIN <label>-----" and "-----END <label>-----".
std::string pem_body(const std::string& text, const std::string& label) {
  const std::string begin = "-----BEGIN " + label + "-----";
  const std::string end = "-----END " + label + "-----";
  std::size_t b = text.find(begin);
  std::size_t e = text.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b) return {};
  return text.substr(b + begin.size(), e - b - begin.size());
}

PkeyPtr rsa_from_components(const BIGNUM* n, const BIGNUM* e, const BIGNUM* d, const BIGNUM* p,
                            const BIGNUM* q, const BIGNUM* iqmp) {
  PkeyPtr none(nullptr, &EVP_PKEY_free);
  BN_CTX* ctx = BN_CTX_new();
  BnPtr p1 = bn(BN_dup(p)), q1 = bn(BN_dup(q)), dmp1 = bn(BN_new()), dmq1 = bn(BN_new());
  bool ok = ctx != nullptr && p1 && q1 && dmp1 && dmq1 && BN_sub_word(p1.get(), 1) == 1 &&
            BN_sub_word(q1.get(), 1) == 1 && BN_mod(dmp1.get(), d, p1.get(), ctx) == 1 &&
            BN_mod(dmq1.get(), d, q1.get(), ctx) == 1;
  BN_CTX_free(ctx);
  if (!ok) return none;
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (bld == nullptr) return none;
  ok = OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
       OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1 &&
       OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) == 1 &&
       OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) == 1 &&
       OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) == 1 &&
       OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dmp1.get()) == 1 &&
       OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dmq1.get()) == 1 &&
       OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, iqmp) == 1;
  OSSL_PARAM* params = ok ? OSSL_PARAM_BLD_to_param(bld) : nullptr;
  OSSL_PARAM_BLD_free(bld);
  if (params == nullptr) return none;
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* pctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  ok = pctx != nullptr && EVP_PKEY_fromdata_init(pctx) == 1 &&
       EVP_PKEY_fromdata(pctx, &key, EVP_PKEY_KEYPAIR, params) == 1;
  EVP_PKEY_CTX_free(pctx);
  OSSL_PARAM_free(params);
  if (!ok) return none;
  return PkeyPtr(key, &EVP_PKEY_free);
}

const char* kConvert =
    "convert it once with `ssh-keygen -p -m PEM -f KEYFILE` (keeps the passphrase, PEM format) "
    "or use an ed25519/ecdsa key";

// "openssh-key-v1" (PROTOCOL.key). nullptr when the key is not RSA.
PkeyPtr load_openssh(const std::string& text) {
  PkeyPtr none(nullptr, &EVP_PKEY_free);
  const std::string raw = base64_decode(pem_body(text, "OPENSSH PRIVATE KEY"));
  static const char kMagic[] = "openssh-key-v1";
  if (raw.size() < sizeof kMagic || std::memcmp(raw.data(), kMagic, sizeof kMagic) != 0) {
    throw Error(ErrorKind::kInvalidInput, "the SSH private key is not a valid OpenSSH key");
  }
  Wire w(reinterpret_cast<const unsigned char*>(raw.data()) + sizeof kMagic,
         raw.size() - sizeof kMagic);
  std::string cipher, kdf, kdf_options, public_blob, private_section;
  std::uint32_t count = 0;
  if (!w.str(cipher) || !w.str(kdf) || !w.str(kdf_options) || !w.u32(count) || count != 1 ||
      !w.str(public_blob) || !w.str(private_section)) {
    throw Error(ErrorKind::kInvalidInput, "the SSH private key is not a valid OpenSSH key");
  }
  Wire pub(reinterpret_cast<const unsigned char*>(public_blob.data()), public_blob.size());
  std::string type;
  if (!pub.str(type) || type != "ssh-rsa") return none;
  if (cipher != "none") {
    throw Error(ErrorKind::kInvalidInput,
                "the SSH key is an RSA key in OpenSSH format protected by a passphrase (cipher " +
                    cipher +
                    "): RSA keys are signed with SHA-2 by Capstan itself, which reads "
                    "passphrase-protected RSA keys only in PEM or PKCS#8 format; " +
                    kConvert);
  }
  Wire priv(reinterpret_cast<const unsigned char*>(private_section.data()), private_section.size());
  std::uint32_t check1 = 0, check2 = 0;
  std::string ptype;
  if (!priv.u32(check1) || !priv.u32(check2) || check1 != check2 || !priv.str(ptype) ||
      ptype != "ssh-rsa") {
    throw Error(ErrorKind::kInvalidInput, "the SSH private key is not a valid OpenSSH RSA key");
  }
  BnPtr n = priv.mpint(), e = priv.mpint(), d = priv.mpint(), iqmp = priv.mpint(), p = priv.mpint(),
        q = priv.mpint();
  if (!n || !e || !d || !iqmp || !p || !q) {
    throw Error(ErrorKind::kInvalidInput, "the SSH private key is not a valid OpenSSH RSA key");
  }
  PkeyPtr key = rsa_from_components(n.get(), e.get(), d.get(), p.get(), q.get(), iqmp.get());
  if (!key) {
    throw Error(ErrorKind::kInvalidInput, "the SSH private key is not a valid OpenSSH RSA key");
  }
  return key;
}

int pem_passphrase(char* buf, int size, int /*rwflag*/, void* payload) {
  const auto* pass = static_cast<const std::string*>(payload);
  if (pass->empty() || static_cast<int>(pass->size()) > size) return -1; // never prompt
  std::memcpy(buf, pass->data(), pass->size());
  return static_cast<int>(pass->size());
}

// PEM "RSA PRIVATE KEY" (PKCS#1, maybe encrypted) or PKCS#8 ("PRIVATE KEY", "ENCRYPTED PRIVATE
// KEY"). nullptr when the key is not RSA.
PkeyPtr load_pem(const std::string& text, const std::string& passphrase, bool known_rsa) {
  PkeyPtr none(nullptr, &EVP_PKEY_free);
  BIO* bio = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
  if (bio == nullptr) return none;
  std::string pass = passphrase;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, pem_passphrase, &pass);
  BIO_free(bio);
  if (key == nullptr) {
    const bool encrypted = text.find("ENCRYPTED") != std::string::npos;
    if (!known_rsa && !encrypted) return none; // not ours to judge: libssh2 reports it
    if (encrypted) {
      throw Error(ErrorKind::kAuthentication,
                  passphrase.empty() ? "the SSH key is protected by a passphrase and none is set"
                                     : "the SSH key's passphrase is wrong");
    }
    throw Error(ErrorKind::kInvalidInput, "the SSH private key is not a valid RSA key");
  }
  PkeyPtr owned(key, &EVP_PKEY_free);
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) return none;
  return owned;
}

} // namespace

struct RsaSshKey::Impl {
  PkeyPtr key{nullptr, &EVP_PKEY_free};
};

RsaSshKey::RsaSshKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RsaSshKey::~RsaSshKey() = default;

std::unique_ptr<RsaSshKey> RsaSshKey::load(const std::string& text, const std::string& passphrase) {
  PkeyPtr key(nullptr, &EVP_PKEY_free);
  if (text.find("-----BEGIN OPENSSH PRIVATE KEY-----") != std::string::npos) {
    key = load_openssh(text);
  } else if (text.find("-----BEGIN RSA PRIVATE KEY-----") != std::string::npos) {
    key = load_pem(text, passphrase, true);
  } else if (text.find("-----BEGIN PRIVATE KEY-----") != std::string::npos ||
             text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string::npos) {
    key = load_pem(text, passphrase, false);
  }
  if (!key) return nullptr;
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  if (EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
      EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
    BN_free(n);
    BN_free(e);
    throw Error(ErrorKind::kInvalidInput, "the SSH private key is not a valid RSA key");
  }
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(key);
  std::unique_ptr<RsaSshKey> out(new RsaSshKey(std::move(impl)));
  put_str(out->blob_, kAlgorithm);
  put_mpint(out->blob_, e);
  put_mpint(out->blob_, n);
  BN_free(n);
  BN_free(e);
  return out;
}

std::string RsaSshKey::sign(const unsigned char* data, std::size_t size) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return {};
  std::string sig;
  std::size_t len = 0;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha512(), nullptr, impl_->key.get()) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, data, size) == 1) {
    sig.resize(len);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, data, size) == 1) {
      sig.resize(len);
    } else {
      sig.clear();
    }
  }
  EVP_MD_CTX_free(ctx);
  return sig;
}

} // namespace capstan::git::detail
