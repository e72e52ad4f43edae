// The client's transport against small real HTTP(S) servers on loopback: retries with
// Retry-After, which requests are repeated, keep-alive reuse, client certificates.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "capstan/kube/client.h"
#include "capstan/testing/testing.h"

namespace capstan::kube {
namespace {

namespace ct = capstan::testing;
using ::testing::HasSubstr;

// A server on a free loopback port, served from a thread until the test ends.
template <class S> class Running {
public:
  explicit Running(std::unique_ptr<S> s) : server_(std::move(s)) {
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    ct::wait_until([this] { return server_->is_running(); }, std::chrono::seconds(10));
  }
  ~Running() {
    server_->stop();
    thread_.join();
  }
  S& operator*() { return *server_; }
  int port() const { return port_; }

private:
  std::unique_ptr<S> server_;
  int port_ = 0;
  std::thread thread_;
};

ClusterConfig plain(int port) {
  ClusterConfig c;
  c.server = "http://127.0.0.1:" + std::to_string(port);
  c.token = "tok";
  return c;
}

ClientOptions fast_retries() {
  ClientOptions o;
  o.retry_base = std::chrono::milliseconds(5);
  o.retry_max = std::chrono::milliseconds(20);
  return o;
}

constexpr const char* kVersion = R"({"major":"1","minor":"30","gitVersion":"v1.30.0"})";

TEST(KubeTransportTest, TooManyRequestsIsRetriedAfterTheServersDelay) {
  std::atomic<int> calls{0};
  auto server = std::make_unique<httplib::Server>();
  server->Get("/version", [&](const httplib::Request& req, httplib::Response& res) {
    EXPECT_EQ(req.get_header_value("Authorization"), "Bearer tok");
    if (calls++ < 2) {
      res.status = 429;
      res.set_header("Retry-After", "0");
      res.set_content(R"({"kind":"Status","reason":"TooManyRequests","code":429})",
                      "application/json");
      return;
    }
    res.set_content(kVersion, "application/json");
  });
  Running<httplib::Server> s(std::move(server));
  Client c(plain(s.port()), fast_retries());
  EXPECT_EQ(c.server_version()["gitVersion"], "v1.30.0");
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(c.stats().retries, 2u);
}

TEST(KubeTransportTest, RetriesRunOutIntoATypedError) {
  auto server = std::make_unique<httplib::Server>();
  server->Get("/version", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_content(
        R"({"kind":"Status","reason":"ServiceUnavailable","message":"etcd is down","code":503})",
        "application/json");
  });
  Running<httplib::Server> s(std::move(server));
  auto o = fast_retries();
  o.max_retries = 3;
  Client c(plain(s.port()), o);
  try {
    c.server_version();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kServiceUnavailable);
    EXPECT_THAT(e.what(), HasSubstr("etcd is down"));
  }
  EXPECT_EQ(c.stats().requests, 4u);
}

TEST(KubeTransportTest, ACreateThatFailedOnTheServerIsNotRepeated) {
  std::atomic<int> posts{0};
  auto server = std::make_unique<httplib::Server>();
  server->Post("/api/v1/namespaces/default/configmaps", [&](const httplib::Request&,
                                                            httplib::Response& res) {
    ++posts;
    res.status = 500;
    res.set_content(R"({"kind":"Status","reason":"InternalError","code":500})", "application/json");
  });
  server->Get("/api/v1", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"kind":"APIResourceList","groupVersion":"v1","resources":[
      {"name":"configmaps","namespaced":true,"kind":"ConfigMap","verbs":["create","get"]}]})",
                    "application/json");
  });
  Running<httplib::Server> s(std::move(server));
  Client c(plain(s.port()), fast_retries());
  nlohmann::json cm = {{"apiVersion", "v1"},
                       {"kind", "ConfigMap"},
                       {"metadata", {{"name", "x"}, {"namespace", "default"}}}};
  EXPECT_THROW(c.create(cm), Error);
  EXPECT_EQ(posts.load(), 1);
}

TEST(KubeTransportTest, RequestsReuseKeepAliveConnections) {
  std::mutex m;
  std::set<int> ports;
  auto server = std::make_unique<httplib::Server>();
  server->set_keep_alive_max_count(1000);
  server->Get("/version", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(m);
    ports.insert(req.remote_port);
    res.set_content(kVersion, "application/json");
  });
  Running<httplib::Server> s(std::move(server));
  Client c(plain(s.port()));
  for (int i = 0; i < 50; ++i) c.server_version();
  std::lock_guard lock(m);
  EXPECT_EQ(ports.size(), 1u) << "each request opened its own connection";
}

// Certificates made with the real openssl CLI: a CA, a server certificate for 127.0.0.1 and a
// client certificate, as a cluster with client-certificate users has them.
struct Pki {
  ct::TempDir dir{"kube-pki"};
  std::string path(const std::string& f) const { return (dir.path() / f).string(); }
  bool make() {
    auto sh = [&](const std::string& cmd) {
      return ct::run({"sh", "-c", cmd}, {}, std::chrono::seconds(60), dir.path().string())
          .status.success();
    };
    return sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
              "-keyout ca.key -out ca.crt -subj /CN=test-ca") &&
           sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
              "server.key -out server.csr -subj /CN=127.0.0.1") &&
           sh("printf 'subjectAltName=IP:127.0.0.1' > san.ext && openssl x509 -req -in "
              "server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext "
              "-out server.crt") &&
           sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
              "client.key -out client.csr -subj /CN=deployer/O=system:masters") &&
           sh("openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
              "-days 1 -out client.crt");
  }
};

TEST(KubeTransportTest, ClientCertificatesAuthenticate) {
  Pki pki;
  if (!pki.make()) GTEST_SKIP() << "openssl could not make test certificates";
  auto server = std::make_unique<httplib::SSLServer>(
      pki.path("server.crt").c_str(), pki.path("server.key").c_str(), pki.path("ca.crt").c_str());
  server->Get("/version", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(kVersion, "application/json");
  });
  Running<httplib::SSLServer> s(std::move(server));
  ClusterConfig c;
  c.server = "https://127.0.0.1:" + std::to_string(s.port());
  c.ca_pem = ct::read_file(pki.path("ca.crt"));
  c.client_cert_pem = ct::read_file(pki.path("client.crt"));
  c.client_key_pem = ct::read_file(pki.path("client.key"));
  EXPECT_EQ(Client(c).server_version()["gitVersion"], "v1.30.0");

  // Without the certificate the TLS handshake is refused.
  ClusterConfig anonymous = c;
  anonymous.client_cert_pem.clear();
  anonymous.client_key_pem.clear();
  auto o = fast_retries();
  o.max_retries = 0;
  EXPECT_THROW(Client(anonymous, o).server_version(), Error);

  // tls-server-name: connect to 127.0.0.1 but check the certificate against another name.
  ClusterConfig renamed = c;
  renamed.tls_server_name = "kubernetes.default.svc";
  try {
    Client(renamed, o).server_version();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kAuthentication) << e.what();
  }
}

} // namespace
} // namespace capstan::kube
