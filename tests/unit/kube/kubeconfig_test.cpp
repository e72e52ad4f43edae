// kubeconfig and in-cluster configuration as kubectl reads them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include "capstan/kube/base64.h"
#include "capstan/kube/config.h"
#include "capstan/kube/error.h"
#include "capstan/testing/testing.h"

namespace capstan::kube {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::write_file;

constexpr const char* kConfig = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://dev.example.com:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmRldgotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==
- name: prod-cluster
  cluster:
    server: https://prod.example.com
    certificate-authority: certs/prod-ca.crt
    tls-server-name: api.prod.internal
- name: lab
  cluster:
    server: https://10.0.0.1:6443
    insecure-skip-tls-verify: true
users:
- name: dev-user
  user:
    token: s3cret-token
- name: prod-user
  user:
    client-certificate: certs/client.crt
    client-key-data: a2V5LWRhdGE=
- name: sa
  user:
    tokenFile: sa.token
- name: cloud
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: gke-gcloud-auth-plugin
      args: [--flag, value]
      env:
      - {name: CLOUDSDK_CORE_PROJECT, value: acme}
      installHint: install it with gcloud components install
      provideClusterInfo: true
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user, namespace: team-a}
- name: prod
  context: {cluster: prod-cluster, user: prod-user}
- name: lab
  context: {cluster: lab, user: sa}
- name: cloud
  context: {cluster: lab, user: cloud}
- name: broken
  context: {cluster: nowhere, user: dev-user}
)";

class KubeconfigTest : public ::testing::Test {
protected:
  KubeconfigTest() {
    write_file(dir_ / "config", kConfig);
    write_file(dir_ / "certs/prod-ca.crt", "PROD CA PEM");
    write_file(dir_ / "certs/client.crt", "CLIENT CERT PEM");
  }
  TempDir dir_{"kubeconfig-test"};
};

TEST_F(KubeconfigTest, CurrentContextWithInlineCaAndToken) {
  auto c = load_kubeconfig(dir_ / "config");
  EXPECT_EQ(c.context, "dev");
  EXPECT_EQ(c.server, "https://dev.example.com:6443"); // trailing slash dropped
  EXPECT_EQ(c.ca_pem, "-----BEGIN CERTIFICATE-----\ndev\n-----END CERTIFICATE-----\n");
  EXPECT_EQ(c.token, "s3cret-token");
  EXPECT_EQ(c.namespace_, "team-a");
  EXPECT_FALSE(c.insecure_skip_tls_verify);
}

TEST_F(KubeconfigTest, FilesResolveNextToTheKubeconfig) {
  auto c = load_kubeconfig(dir_ / "config", "prod");
  EXPECT_EQ(c.ca_pem, "PROD CA PEM");
  EXPECT_EQ(c.client_cert_pem, "CLIENT CERT PEM");
  EXPECT_EQ(c.client_key_pem, "key-data");
  EXPECT_EQ(c.tls_server_name, "api.prod.internal");
  EXPECT_TRUE(c.namespace_.empty());
}

TEST_F(KubeconfigTest, InsecureAndTokenFile) {
  auto c = load_kubeconfig(dir_ / "config", "lab");
  EXPECT_TRUE(c.insecure_skip_tls_verify);
  EXPECT_EQ(c.token_file, (dir_ / "sa.token").string());
}

TEST_F(KubeconfigTest, ExecPlugin) {
  auto c = load_kubeconfig(dir_ / "config", "cloud");
  ASSERT_TRUE(c.exec.has_value());
  EXPECT_EQ(c.exec->command, "gke-gcloud-auth-plugin");
  EXPECT_EQ(c.exec->api_version, "client.authentication.k8s.io/v1");
  EXPECT_EQ(c.exec->args, (std::vector<std::string>{"--flag", "value"}));
  ASSERT_EQ(c.exec->env.size(), 1u);
  EXPECT_EQ(c.exec->env[0].first, "CLOUDSDK_CORE_PROJECT");
  EXPECT_TRUE(c.exec->provide_cluster_info);
}

void expect_config_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected a configuration error containing: " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfiguration);
    EXPECT_THAT(e.what(), HasSubstr(needle));
  }
}

TEST_F(KubeconfigTest, ErrorsNameWhatIsWrong) {
  expect_config_error([&] { load_kubeconfig(dir_ / "config", "staging"); },
                      "no context named 'staging' (contexts: dev, prod, lab, cloud, broken)");
  expect_config_error([&] { load_kubeconfig(dir_ / "config", "broken"); },
                      "names cluster 'nowhere', which is not defined");
  expect_config_error([&] { load_kubeconfig(dir_ / "missing"); }, "cannot read kubeconfig");
  expect_config_error([] { parse_kubeconfig("clusters: [unclosed"); }, "invalid kubeconfig");
  expect_config_error(
      [] {
        parse_kubeconfig("current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
                         "clusters: [{name: c, cluster: {server: ftp://x}}]\n");
      },
      "is not an http(s) URL");
  expect_config_error(
      [] {
        parse_kubeconfig("current-context: a\ncontexts: [{name: a, context: {cluster: c, user: "
                         "u}}]\nclusters: [{name: c, cluster: {server: https://x}}]\n"
                         "users: [{name: u, user: {auth-provider: {name: gcp}}}]\n");
      },
      "auth-provider plugins are not supported");
  expect_config_error(
      [] {
        parse_kubeconfig("contexts: [{name: a, context: {cluster: c}}]\n"
                         "clusters: [{name: c, cluster: {server: https://x}}]\n");
      },
      "no context given and no current-context set");
}

// YAML types `namespace: 2024` as a number; kubectl reads it into a string field as written.
// A mapping where text belongs is not text.
TEST_F(KubeconfigTest, ScalarsAreReadAsTheirText) {
  auto c =
      parse_kubeconfig("current-context: a\n"
                       "contexts: [{name: a, context: {cluster: c, user: u, namespace: 2024}}]\n"
                       "clusters: [{name: c, cluster: {server: 'https://k:6443'}}]\n"
                       "users: [{name: u, user: {token: 12345, username: {x: y}}}]\n");
  EXPECT_EQ(c.namespace_, "2024");
  EXPECT_EQ(c.token, "12345");
  EXPECT_EQ(c.username, "");
}

TEST_F(KubeconfigTest, SecretsStayOutOfErrors) {
  // A user whose certificate file is missing: the message names the file, never the token.
  write_file(dir_ / "leaky",
             "current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
             "clusters: [{name: c, cluster: {server: https://x}}]\n"
             "users: [{name: u, user: {token: TOPSECRET, client-certificate: nope.crt, "
             "client-key: nope.key}}]\n");
  try {
    load_kubeconfig(dir_ / "leaky");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("nope.crt"));
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("TOPSECRET")));
  }
}

TEST_F(KubeconfigTest, KubeconfigEnvironmentListMergesFirstWins) {
  write_file(dir_ / "second",
             "current-context: other\nclusters: [{name: dev-cluster, cluster: {server: "
             "https://shadowed}}, {name: extra, cluster: {server: https://extra:1}}]\n"
             "users: [{name: extra-user, user: {token: t2}}]\n"
             "contexts: [{name: extra, context: {cluster: extra, user: extra-user}}]\n");
  std::string list = (dir_ / "config").string() + ":" + (dir_ / "absent").string() + ":" +
                     (dir_ / "second").string();
  ::setenv("KUBECONFIG", list.c_str(), 1);
  auto dev = load_default_kubeconfig();
  EXPECT_EQ(dev.context, "dev"); // the first file's current-context wins
  EXPECT_EQ(dev.server, "https://dev.example.com:6443");
  auto extra = load_default_kubeconfig("extra");
  EXPECT_EQ(extra.server, "https://extra:1");
  EXPECT_EQ(extra.token, "t2");
  auto prod = load_default_kubeconfig("prod");
  EXPECT_EQ(prod.ca_pem, "PROD CA PEM"); // relative paths still resolve next to their file
  ::unsetenv("KUBECONFIG");
}

TEST_F(KubeconfigTest, InCluster) {
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  expect_config_error([&] { in_cluster_config(dir_ / "sa"); }, "not running in a Kubernetes pod");
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  expect_config_error([&] { in_cluster_config(dir_ / "sa"); }, "no service account token");
  write_file(dir_ / "sa/token", "tok\n");
  write_file(dir_ / "sa/ca.crt", "CA");
  write_file(dir_ / "sa/namespace", "capstan\n");
  auto c = in_cluster_config(dir_ / "sa");
  EXPECT_EQ(c.server, "https://10.96.0.1:443");
  EXPECT_EQ(c.token_file, (dir_ / "sa/token").string());
  EXPECT_EQ(c.ca_pem, "CA");
  EXPECT_EQ(c.namespace_, "capstan");
  ::setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  EXPECT_EQ(in_cluster_config(dir_ / "sa").server, "https://[fd00::1]:443");
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
}

TEST(Base64Test, RoundTripsAndIgnoresLineBreaks) {
  EXPECT_EQ(base64_encode("hello"), "aGVsbG8=");
  EXPECT_EQ(base64_decode("aGVs\nbG8=").value_or("?"), "hello");
  EXPECT_FALSE(base64_decode("a*==").has_value());
}

TEST(ErrorTest, StatusObjectsBecomeTypedErrors) {
  auto e = error_from_response(
      422,
      R"({"kind":"Status","status":"Failure","reason":"Invalid","message":"Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1","details":{"causes":[{"reason":"FieldValueInvalid","message":"Invalid value: -1","field":"spec.replicas"}]},"code":422})",
      "apply Deployment/default/web");
  EXPECT_EQ(e.kind(), ErrorKind::kInvalid);
  EXPECT_EQ(e.http_status(), 422);
  ASSERT_EQ(e.causes().size(), 1u);
  EXPECT_EQ(e.causes()[0].field, "spec.replicas");
  EXPECT_THAT(e.what(), HasSubstr("apply Deployment/default/web: Deployment.apps \"web\" is "
                                  "invalid"));
  EXPECT_EQ(error_from_response(409, R"({"kind":"Status","reason":"AlreadyExists"})", "x").kind(),
            ErrorKind::kAlreadyExists);
  EXPECT_EQ(error_from_response(409, R"({"kind":"Status","reason":"Conflict"})", "x").kind(),
            ErrorKind::kConflict);
  auto html = error_from_response(502, "<html>Bad Gateway</html>", "GET /api");
  EXPECT_EQ(html.kind(), ErrorKind::kServerError);
  EXPECT_THAT(html.what(), HasSubstr("HTTP 502: <html>Bad Gateway</html>"));
  EXPECT_TRUE(is_retryable(html));
  EXPECT_FALSE(is_retryable(e));
}

} // namespace
} // namespace capstan::kube
