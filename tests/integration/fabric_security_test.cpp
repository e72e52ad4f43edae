// The wire's security with real processes: CurveZMQ keys made on first start, tokens in Hello,
// and a rogue peer (garbage, wrong keys, oversized and unauthenticated messages) that must not
// disturb the coordinator or the delegates it serves.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <zmq.hpp>

#include "capstan/plugin/v1/plugin.pb.h"
#include "capstan/wire/codec.h"
#include "capstan/wire/router.h"
#include "stack.h"

namespace capstan::testing {
namespace {

using nlohmann::json;
namespace v1 = wire::v1;

const char* kQuick = R"(pipeline:
  identifier: quick
  name: quick
  stages:
    - stage:
        identifier: s
        name: S
        type: Custom
        spec:
          execution:
            steps:
              - step:
                  type: ShellScript
                  identifier: hi
                  name: hi
                  spec:
                    shell: Bash
                    source:
                      type: Inline
                      spec:
                        script: echo served
)";

int port_of(const std::string& endpoint) {
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

std::string first_line(const std::filesystem::path& file) {
  auto text = read_file(file);
  return text.substr(0, text.find('\n'));
}

// A DEALER speaking to the coordinator as a delegate would, with the given server key.
std::unique_ptr<zmq::socket_t> dealer(zmq::context_t& ctx, const std::string& endpoint,
                                      const std::string& server_key) {
  auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
  s->set(zmq::sockopt::linger, 0);
  if (!server_key.empty()) {
    auto keys = wire::generate_curve_keys();
    s->set(zmq::sockopt::curve_serverkey, server_key);
    s->set(zmq::sockopt::curve_publickey, keys.public_key);
    s->set(zmq::sockopt::curve_secretkey, keys.secret_key);
  }
  s->connect(endpoint);
  return s;
}

std::optional<v1::Envelope> receive(zmq::socket_t& s, std::chrono::milliseconds wait) {
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    zmq::poll(&item, 1, std::chrono::milliseconds(50));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t m;
    if (!s.recv(m, zmq::recv_flags::dontwait)) continue;
    auto d = wire::decode(m.to_string_view());
    if (!d.ok()) continue;
    if (d.envelope.has_heartbeat()) continue;
    return d.envelope;
  }
  return std::nullopt;
}

void send(zmq::socket_t& s, const std::string& bytes) {
  s.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
}

std::string hello(const std::string& token) {
  v1::Envelope env;
  auto* h = env.mutable_hello();
  h->set_instance_id("rogue-instance");
  h->set_name("rogue");
  h->set_slots(4);
  h->set_token(token);
  return wire::encode(env);
}

TEST(FabricSecurity, KeysAndTokenAreCreatedOnFirstStartReadableByTheOwnerOnly) {
  TempDir dir("capstan-security");
  Stack stack(dir.path());
  stack.start_coordinator();
  auto data = dir / "coordinator";
  for (const char* f : {"wire.key", "wire.pub", "delegate-token", "api-token"}) {
    auto perms = std::filesystem::status(data / f).permissions();
    EXPECT_EQ(perms & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << f;
  }
  auto info = json::parse(read_file(data / "coordinator.json"));
  auto pub = first_line(data / "wire.pub");
  EXPECT_TRUE(wire::valid_curve_key(pub));
  EXPECT_EQ(info["wirePublicKey"], pub);
  EXPECT_EQ(read_file(data / "coordinator.json").find(first_line(data / "wire.key")),
            std::string::npos);
  // A restart keeps the keypair and the token.
  auto token = read_file(data / "delegate-token");
  stack.kill_coordinator();
  stack.start_coordinator();
  EXPECT_EQ(first_line(data / "wire.pub"), pub);
  EXPECT_EQ(read_file(data / "delegate-token"), token);
  stack.start_delegate("alpha");
  EXPECT_TRUE(stack.wait_for_delegates(1));
  // A delegate given another key cannot attach.
  auto other = wire::generate_curve_keys();
  write_file(dir / "other.pub", other.public_key + "\n");
  auto& wrong = stack.start_delegate("wrongkey", {plugin_dir()}, 1,
                                     {"--coordinator-key-file", (dir / "other.pub").string()});
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(stack.connected_delegates(), 1) << wrong.log();
}

TEST(FabricSecurity, ARoguePeerNeverDisturbsTheCoordinatorForOthers) {
  TempDir dir("capstan-security");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("alpha");
  ASSERT_TRUE(stack.wait_for_delegates(1));
  write_file(dir / "quick.yaml", kQuick);
  stack.apply_file(dir / "quick.yaml");
  ASSERT_EQ(stack.last_status(), 200);
  auto key = first_line(dir / "coordinator" / "wire.pub");
  zmq::context_t ctx(1);

  // Raw TCP garbage.
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port_of(stack.wire())));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::string junk(4096 * (i + 1), '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    [[maybe_unused]] auto n = ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    if (i % 2 == 0) ::close(fd); // the odd ones stay open, half-spoken
  }

  // The wrong server key, and no key at all: the handshake fails, nothing is answered.
  auto wrong = dealer(ctx, stack.wire(), wire::generate_curve_keys().public_key);
  send(*wrong, hello(first_line(dir / "coordinator" / "delegate-token")));
  auto plain = dealer(ctx, stack.wire(), "");
  send(*plain, hello(first_line(dir / "coordinator" / "delegate-token")));

  // The right key but no valid token: a refusal and nothing else.
  auto rogue = dealer(ctx, stack.wire(), key);
  send(*rogue, hello(""));
  auto r1 = receive(*rogue, std::chrono::seconds(5));
  ASSERT_TRUE(r1 && r1->has_refuse());
  EXPECT_EQ(r1->refuse().code(), v1::Refuse::CODE_UNAUTHENTICATED);
  send(*rogue, hello("cdt_0123456789abcdef0123456789abcdef0123456789abcdef"));
  auto r2 = receive(*rogue, std::chrono::seconds(5));
  ASSERT_TRUE(r2 && r2->has_refuse());
  EXPECT_EQ(r2->refuse().code(), v1::Refuse::CODE_UNAUTHENTICATED);
  // Messages without a session, garbage envelopes, a flood.
  v1::Envelope result;
  result.mutable_result()->set_task_id("x-0");
  result.mutable_result()->set_attempt(1);
  send(*rogue, wire::encode(result));
  auto r3 = receive(*rogue, std::chrono::seconds(5));
  ASSERT_TRUE(r3 && r3->has_refuse());
  EXPECT_EQ(r3->refuse().code(), v1::Refuse::CODE_UNKNOWN_SESSION);
  for (int i = 0; i < 3000; ++i) {
    std::string junk(64 + i % 512, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    send(*rogue, junk);
  }

  // Others are served meanwhile.
  auto run = stack.post("/api/v1/pipelines/quick/executions", json::object());
  ASSERT_EQ(stack.last_status(), 201) << run.dump();
  auto e = stack.wait_for_end(run["id"]);
  EXPECT_EQ(e["status"], "Succeeded") << e.dump(2);

  // Oversized: the connection is dropped by the transport before the bytes are buffered.
  std::string huge(17u * 1024 * 1024, 'x');
  auto big = dealer(ctx, stack.wire(), key);
  send(*big, huge);
  EXPECT_FALSE(receive(*wrong, std::chrono::milliseconds(500)).has_value());
  EXPECT_FALSE(receive(*plain, std::chrono::milliseconds(100)).has_value());

  auto again = stack.post("/api/v1/pipelines/quick/executions", json::object());
  EXPECT_EQ(stack.wait_for_end(again["id"])["status"], "Succeeded");
  EXPECT_TRUE(stack.coordinator().child().running());
  EXPECT_EQ(stack.connected_delegates(), 1);

  httplib::Client http(stack.api());
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("capstan_wire_garbage_total"), std::string::npos);
  EXPECT_EQ(metrics->body.find("capstan_wire_garbage_total 0\n"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("capstan_tasks_succeeded_total 2\n"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("capstan_delegates_connected 1\n"), std::string::npos);
}

// Everything a raw peer receives within `wait`, batches unpacked, heartbeats left out.
std::vector<v1::Envelope> receive_all(zmq::socket_t& s, std::chrono::milliseconds wait,
                                      std::size_t enough) {
  std::vector<v1::Envelope> out;
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (out.size() < enough && std::chrono::steady_clock::now() < deadline) {
    auto env = receive(s, std::chrono::milliseconds(100));
    if (!env) continue;
    if (!env->has_batch()) {
      out.push_back(std::move(*env));
      continue;
    }
    for (auto& e : *env->mutable_batch()->mutable_envelopes()) out.push_back(std::move(e));
  }
  return out;
}

v1::Envelope result_of(const v1::Assign& assign, std::uint32_t attempt,
                       plugin::v1::StepResult::Status status) {
  plugin::v1::StepResult r;
  r.set_status(status);
  if (status == plugin::v1::StepResult::STATUS_FAILED) r.set_message("from a stale attempt");
  v1::Envelope env;
  env.mutable_result()->set_task_id(assign.task_id());
  env.mutable_result()->set_attempt(attempt);
  env.mutable_result()->set_step_result(r.SerializeAsString());
  return env;
}

std::string batch_of(std::vector<v1::Envelope> entries) {
  v1::Envelope env;
  env.mutable_batch(); // set even when empty
  for (auto& e : entries) *env.mutable_batch()->add_envelopes() = std::move(e);
  return wire::encode(env);
}

TEST(FabricSecurity, ABatchIsAppliedEntryByEntryAndAMalformedOneNotAtAll) {
  TempDir dir("capstan-security");
  Stack stack(dir.path());
  stack.start_coordinator();
  zmq::context_t ctx(1);
  auto peer = dealer(ctx, stack.wire(), first_line(dir / "coordinator" / "wire.pub"));
  v1::Envelope hi;
  auto* h = hi.mutable_hello();
  h->set_instance_id("batching-instance");
  h->set_name("batching");
  h->set_slots(4);
  h->set_token(first_line(dir / "coordinator" / "delegate-token"));
  h->set_batch_limit(wire::kBatchLimit);
  auto* ad = h->add_step_types();
  ad->set_type("ShellScript");
  ad->set_plugin("shell");
  ad->set_plugin_version("1.0.0");
  send(*peer, wire::encode(hi));
  auto welcome = receive(*peer, std::chrono::seconds(5));
  ASSERT_TRUE(welcome && welcome->has_welcome());
  EXPECT_EQ(welcome->welcome().batch_limit(), wire::kBatchLimit);

  write_file(dir / "quick.yaml", kQuick);
  stack.apply_file(dir / "quick.yaml");
  ASSERT_EQ(stack.last_status(), 200);
  std::string first = stack.post("/api/v1/pipelines/quick/executions", json::object())["id"];
  std::string second = stack.post("/api/v1/pipelines/quick/executions", json::object())["id"];
  std::map<std::string, v1::Assign> assigns; // by task id
  for (auto& env : receive_all(*peer, std::chrono::seconds(10), 2)) {
    if (env.has_assign()) assigns[env.assign().task_id()] = env.assign();
  }
  ASSERT_EQ(assigns.size(), 2u);
  const auto& a = assigns.begin()->second;
  const auto& b = std::next(assigns.begin())->second;

  // A batch with an entry that may not be batched: none of it is applied, not even a's result.
  v1::Envelope nested_hello = hi;
  send(*peer, batch_of({result_of(a, a.attempt(), plugin::v1::StepResult::STATUS_SUCCEEDED),
                        nested_hello}));
  // A stale attempt's failure and the current attempt's success in one batch: the first is
  // ignored, the second applied.
  send(*peer, batch_of({result_of(b, b.attempt() - 1, plugin::v1::StepResult::STATUS_FAILED),
                        result_of(b, b.attempt(), plugin::v1::StepResult::STATUS_SUCCEEDED)}));
  std::set<std::uint32_t> acked; // both results are acknowledged, the stale one too
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (acked.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    for (const auto& env : receive_all(*peer, std::chrono::milliseconds(200), 1)) {
      if (!env.has_result_ack()) continue;
      EXPECT_EQ(env.result_ack().task_id(), b.task_id());
      acked.insert(env.result_ack().attempt());
    }
  }
  EXPECT_EQ(acked, (std::set<std::uint32_t>{b.attempt() - 1, b.attempt()}));
  auto done = [&](const std::string& id) {
    return stack.get("/api/v1/executions/" + id)["status"].get<std::string>();
  };
  std::map<std::string, std::string> status;
  for (const auto& id : {first, second}) status[id] = done(id);
  // One execution (b's) succeeded; a's is still out on the peer.
  ASSERT_EQ(std::count_if(status.begin(), status.end(),
                          [](const auto& s) { return s.second == "Succeeded"; }),
            1)
      << json(status).dump();

  send(*peer, wire::encode(result_of(a, a.attempt(), plugin::v1::StepResult::STATUS_SUCCEEDED)));
  EXPECT_EQ(stack.wait_for_end(first)["status"], "Succeeded");
  EXPECT_EQ(stack.wait_for_end(second)["status"], "Succeeded");
  EXPECT_TRUE(stack.coordinator().child().running());
}

TEST(FabricSecurity, DelegateServesMetrics) {
  TempDir dir("capstan-security");
  Stack stack(dir.path());
  stack.start_coordinator();
  stack.start_delegate("alpha", {plugin_dir()}, 3, {"--metrics-port", "0"});
  ASSERT_TRUE(stack.wait_for_delegates(1));
  ASSERT_TRUE(
      wait_until([&] { return !read_file(dir / "delegate-alpha" / "metrics-port").empty(); }));
  int port = std::stoi(read_file(dir / "delegate-alpha" / "metrics-port"));
  write_file(dir / "quick.yaml", kQuick);
  stack.apply_file(dir / "quick.yaml");
  auto run = stack.post("/api/v1/pipelines/quick/executions", json::object());
  ASSERT_EQ(stack.wait_for_end(run["id"])["status"], "Succeeded");
  httplib::Client http("127.0.0.1", port);
  auto m = http.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_NE(m->body.find("capstan_delegate_tasks_succeeded_total 1\n"), std::string::npos)
      << m->body;
  EXPECT_NE(m->body.find("capstan_delegate_slots 3\n"), std::string::npos);
  EXPECT_NE(m->body.find("capstan_delegate_connected 1\n"), std::string::npos);
  EXPECT_NE(m->body.find("capstan_delegate_task_duration_seconds_count 1\n"), std::string::npos);
  // A shell step is not declared prompt: it ran on a worker.
  EXPECT_NE(m->body.find("capstan_delegate_tasks_inline_total 0\n"), std::string::npos);
  EXPECT_NE(m->body.find("capstan_delegate_prompt_types_demoted_total 0\n"), std::string::npos);
  EXPECT_EQ(http.Get("/other")->status, 404);
}

} // namespace
} // namespace capstan::testing
