// Raw HTTPS against an in-process sandbox: authentication, error Status objects for bad input,
// content negotiation, watches with history expiry, many concurrent watches.
#include "capstan/sandbox/sandbox.h"
#include "capstan/testing/testing.h"

#include <httplib.h>

#include <gtest/gtest.h>

#include <future>

using namespace capstan::sandbox;
using nlohmann::json;
namespace ct = capstan::testing;

namespace {

class HttpTest : public ::testing::Test {
protected:
  void SetUp() override {
    ct::write_file(dir_.path() / "config.yaml", "watchHistory: 100\npodReadyDelay: 10ms\n");
    SandboxOptions o;
    o.data_dir = dir_.path();
    sandbox_ = std::make_unique<Sandbox>(o);
    sandbox_->start();
  }
  void TearDown() override { sandbox_->stop(); }

  std::unique_ptr<httplib::SSLClient> client(const std::string& token) {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", sandbox_->port());
    c->set_ca_cert_path((dir_.path() / "pki" / "ca.crt").c_str());
    c->enable_server_certificate_verification(true);
    if (!token.empty()) c->set_bearer_token_auth(token.c_str());
    c->set_read_timeout(20, 0);
    return c;
  }
  std::unique_ptr<httplib::SSLClient> client() { return client(sandbox_->token()); }

  static json body(const httplib::Result& r) {
    EXPECT_TRUE(r) << "request failed: " << httplib::to_string(r.error());
    if (!r) return json();
    auto j = json::parse(r->body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r->body;
    return j;
  }
  static void expect_status(const httplib::Result& r, int code, const std::string& reason) {
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, code) << r->body;
    json s = body(r);
    EXPECT_EQ(s["kind"], "Status");
    EXPECT_EQ(s["apiVersion"], "v1");
    EXPECT_EQ(s["status"], "Failure");
    EXPECT_EQ(s["code"], code);
    EXPECT_EQ(s["reason"], reason) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  }

  ct::TempDir dir_{"capstan-sandbox-http"};
  std::unique_ptr<Sandbox> sandbox_;
};

const char* kCm = "/api/v1/namespaces/default/configmaps";

} // namespace

TEST_F(HttpTest, TheKubeconfigNamesTheServerCaAndToken) {
  std::string kc = ct::read_file(sandbox_->kubeconfig_path());
  EXPECT_NE(kc.find("server: https://127.0.0.1:" + std::to_string(sandbox_->port())),
            std::string::npos)
      << kc;
  EXPECT_NE(kc.find("certificate-authority-data:"), std::string::npos);
  EXPECT_NE(kc.find("token: " + sandbox_->token()), std::string::npos);
  EXPECT_EQ(ct::read_file(dir_.path() / "port"), std::to_string(sandbox_->port()) + "\n");
  // The client verified the serving certificate against the CA (SAN 127.0.0.1).
  auto r = client()->Get("/version");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(body(r)["major"], "1");
}

TEST_F(HttpTest, MissingOrWrongTokenIsUnauthorized) {
  expect_status(client("")->Get("/api/v1/namespaces"), 401, "Unauthorized");
  expect_status(client("not-the-token")->Get("/api/v1/namespaces"), 401, "Unauthorized");
  expect_status(client(sandbox_->token() + "x")->Get("/apis"), 401, "Unauthorized");
  auto r = client("")->Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpTest, ApplyPatchesAreReadAsJsonOrYaml) {
  auto c = client();
  auto apply = [&](const std::string& name, const std::string& body) {
    return c->Patch(std::string(kCm) + "/" + name + "?fieldManager=t&fieldValidation=Strict", body,
                    "application/apply-patch+yaml");
  };
  // JSON, as client-go and Capstan send it.
  auto r = apply("j", R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"},)"
                      R"("data":{"a":"1","n":"\u00e9"}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(body(r)["data"]["n"], "\u00e9");
  // A YAML flow mapping starts like JSON but is not JSON.
  r = apply("f", "{apiVersion: v1, kind: ConfigMap, metadata: {name: f}, data: {a: '1'}}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(body(r)["data"]["a"], "1");
  // Block YAML.
  r = apply("y", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  a: \"1\"\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  // A JSON body with a duplicate field is refused under strict validation, as a YAML one is.
  r = apply("d", R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"d"},)"
                 R"("data":{"a":"1"},"data":{"b":"2"}})");
  expect_status(r, 400, "BadRequest");
  EXPECT_NE(body(r)["message"].get<std::string>().find("duplicate field \"data\""),
            std::string::npos)
      << r->body;
  expect_status(apply("d", "data:\n  a: '1'\ndata:\n  b: '2'\n"), 400, "BadRequest");
  // Neither JSON nor YAML.
  expect_status(apply("b", "{\"metadata\": [unclosed"), 400, "BadRequest");
}

TEST_F(HttpTest, MalformedBodiesAreBadRequests) {
  auto c = client();
  expect_status(c->Post(kCm, "{\"metadata\": {\"name\": ", "application/json"), 400, "BadRequest");
  expect_status(c->Post(kCm, "[1,2,3]", "application/json"), 400, "BadRequest");
  expect_status(c->Post(kCm, "metadata: [unclosed", "application/yaml"), 400, "BadRequest");
  expect_status(c->Post(kCm, "", "application/json"), 400, "BadRequest");
  expect_status(c->Post(kCm,
                        R"({"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}})",
                        "application/json"),
                400, "BadRequest");
  // Duplicate fields under strict validation.
  auto r =
      c->Post(std::string(kCm) + "?fieldValidation=Strict",
              R"({"metadata":{"name":"d"},"data":{"a":"1"},"data":{"b":"2"}})", "application/json");
  expect_status(r, 400, "BadRequest");
  EXPECT_NE(body(r)["message"].get<std::string>().find("duplicate field \"data\""),
            std::string::npos);
  // Warn: accepted, with a Warning header naming the field.
  r = c->Post(std::string(kCm) + "?fieldValidation=Warn", R"({"metadata":{"name":"w"},"bogus":1})",
              "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_NE(r->get_header_value("Warning").find("unknown field \\\"bogus\\\""), std::string::npos)
      << r->get_header_value("Warning");
  EXPECT_FALSE(body(r).contains("bogus"));
}

TEST_F(HttpTest, WrongContentTypesAreUnsupportedMediaType) {
  auto c = client();
  expect_status(c->Post(kCm, R"({"metadata":{"name":"x"}})", "text/plain"), 415,
                "UnsupportedMediaType");
  c->Post(kCm, R"({"metadata":{"name":"p"}})", "application/json");
  expect_status(c->Patch(std::string(kCm) + "/p", R"({"data":{"a":"b"}})", "application/xml"), 415,
                "UnsupportedMediaType");
}

TEST_F(HttpTest, OversizedBodiesAreRefused) {
  std::string big =
      R"({"metadata":{"name":"big"},"data":{"a":")" + std::string(4 * 1024 * 1024, 'x') + "\"}}";
  auto r = client()->Post(kCm, big, "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 413);
  // Still serving afterwards.
  auto ok = client()->Get(kCm);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpTest, NotFoundAlreadyExistsConflictInvalid) {
  auto c = client();
  auto r = c->Get(std::string(kCm) + "/nope");
  expect_status(r, 404, "NotFound");
  EXPECT_EQ(body(r)["details"]["kind"], "configmaps");
  expect_status(c->Get("/apis/example.com/v1/gadgets"), 404, "NotFound");
  ASSERT_EQ(c->Post(kCm, R"({"metadata":{"name":"dup"}})", "application/json")->status, 201);
  expect_status(c->Post(kCm, R"({"metadata":{"name":"dup"}})", "application/json"), 409,
                "AlreadyExists");
  expect_status(c->Put(std::string(kCm) + "/dup",
                       R"({"metadata":{"name":"dup","resourceVersion":"1"}})", "application/json"),
                409, "Conflict");
  r = c->Post(kCm, R"({"metadata":{"name":"-bad-"}})", "application/json");
  expect_status(r, 422, "Invalid");
  json s = body(r);
  EXPECT_EQ(s["details"]["causes"][0]["field"], "metadata.name");
  EXPECT_EQ(s["details"]["causes"][0]["reason"], "FieldValueInvalid");
  expect_status(c->Post(kCm, R"({"metadata":{}})", "application/json"), 422, "Invalid");
  // Apply needs a field manager.
  expect_status(c->Patch(std::string(kCm) + "/dup", "apiVersion: v1\nkind: ConfigMap\n",
                         "application/apply-patch+yaml"),
                422, "Invalid");
}

TEST_F(HttpTest, TablesForKubectlGet) {
  auto c = client();
  httplib::Headers h = {
      {"Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}};
  auto r = c->Get("/api/v1/namespaces", h);
  json t = body(r);
  EXPECT_EQ(t["kind"], "Table");
  EXPECT_EQ(t["columnDefinitions"][0]["name"], "Name");
  EXPECT_EQ(t["columnDefinitions"][1]["name"], "Status");
  ASSERT_GE(t["rows"].size(), 4u);
  EXPECT_EQ(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

TEST_F(HttpTest, WatchFromExpiredHistoryGetsGoneAndCurrentWatchFollows) {
  auto c = client();
  ASSERT_EQ(
      c->Post(kCm, R"({"metadata":{"name":"w"},"data":{"n":"0"}})", "application/json")->status,
      201);
  auto first =
      body(c->Get(std::string(kCm) + "/w"))["metadata"]["resourceVersion"].get<std::string>();
  for (int i = 1; i <= 150; ++i)
    ASSERT_EQ(c->Patch(std::string(kCm) + "/w", "{\"data\":{\"n\":\"" + std::to_string(i) + "\"}}",
                       "application/merge-patch+json")
                  ->status,
              200);
  auto r = c->Get(std::string(kCm) + "?watch=true&resourceVersion=" + first + "&timeoutSeconds=2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json ev = json::parse(r->body.substr(0, r->body.find('\n')));
  EXPECT_EQ(ev["type"], "ERROR");
  EXPECT_EQ(ev["object"]["code"], 410);
  EXPECT_EQ(ev["object"]["reason"], "Expired");
  // From the current version: the next change arrives as MODIFIED.
  auto rv = body(c->Get(kCm))["metadata"]["resourceVersion"].get<std::string>();
  auto watch = std::async(std::launch::async, [&] {
    return client()->Get(std::string(kCm) + "?watch=1&resourceVersion=" + rv + "&timeoutSeconds=3");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  c->Patch(std::string(kCm) + "/w", R"({"data":{"n":"last"}})", "application/merge-patch+json");
  auto w = watch.get();
  ASSERT_TRUE(w);
  json e = json::parse(w->body.substr(0, w->body.find('\n')));
  EXPECT_EQ(e["type"], "MODIFIED");
  EXPECT_EQ(e["object"]["data"]["n"], "last");
}

TEST_F(HttpTest, ManyWatchesDoNotBlockWriters) {
  std::vector<std::future<httplib::Result>> watches;
  for (int i = 0; i < 40; ++i)
    watches.push_back(std::async(std::launch::async, [&] {
      return client()->Get(std::string(kCm) + "?watch=1&timeoutSeconds=3");
    }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto c = client();
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(
        c->Post(kCm, "{\"metadata\":{\"name\":\"m" + std::to_string(i) + "\"}}", "application/json")
            ->status,
        201);
  int saw_all = 0;
  for (auto& f : watches) {
    auto r = f.get();
    ASSERT_TRUE(r);
    if (r->body.find("\"m19\"") != std::string::npos) ++saw_all;
  }
  EXPECT_EQ(saw_all, 40);
}
