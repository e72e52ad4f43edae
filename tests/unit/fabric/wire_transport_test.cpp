// The ROUTER/DEALER transport over real loopback sockets: sessions, heartbeats, loss, reconnects
// and garbage.
#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "capstan/testing/testing.h"
#include "capstan/wire/client.h"
#include "capstan/wire/mailbox.h"
#include "capstan/wire/router.h"

namespace capstan::wire {
namespace {

using namespace std::chrono_literals;
using capstan::testing::wait_until;

// What a coordinator's router reported.
struct Recorded {
  std::mutex mutex;
  std::vector<RouterEvent> events;

  void record(RouterEvent&& e) {
    std::lock_guard lock(mutex);
    events.push_back(std::move(e));
  }
  int count(v1::Envelope::BodyCase body) {
    std::lock_guard lock(mutex);
    int n = 0;
    for (const auto& e : events) {
      if (e.kind == RouterEvent::Kind::kMessage && e.envelope.body_case() == body) ++n;
    }
    return n;
  }
  int lost() {
    std::lock_guard lock(mutex);
    int n = 0;
    for (const auto& e : events) n += e.kind == RouterEvent::Kind::kPeerLost ? 1 : 0;
    return n;
  }
};

v1::Envelope welcome_at(const Liveness& liveness) {
  v1::Envelope w;
  w.mutable_welcome()->set_coordinator_id("test");
  w.mutable_welcome()->set_heartbeat_interval_ms(
      static_cast<std::uint32_t>(liveness.interval.count()));
  w.mutable_welcome()->set_heartbeat_misses(liveness.misses);
  return w;
}

// Collects router events; answers every Hello with a Welcome when asked to.
struct Coordinator : Recorded {
  std::unique_ptr<Router> router;
  bool welcome = true;
  Liveness liveness;

  explicit Coordinator(zmq::context_t& ctx, const std::string& bind = "tcp://127.0.0.1:0",
                       Liveness pace = {100ms, 3})
      : liveness(pace) {
    RouterOptions o;
    o.bind = bind;
    o.liveness = liveness;
    router = std::make_unique<Router>(ctx, o, [this](RouterEvent&& e) {
      bool hello = e.kind == RouterEvent::Kind::kMessage && e.envelope.has_hello();
      auto peer = e.peer;
      record(std::move(e));
      if (hello && welcome) {
        router->send(peer, welcome_at(liveness));
      }
    });
  }
  std::vector<v1::Envelope> messages(v1::Envelope::BodyCase body) {
    std::lock_guard lock(mutex);
    std::vector<v1::Envelope> out;
    for (const auto& e : events) {
      if (e.kind == RouterEvent::Kind::kMessage && e.envelope.body_case() == body) {
        out.push_back(e.envelope);
      }
    }
    return out;
  }
  PeerId last_hello_peer() {
    std::lock_guard lock(mutex);
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (it->envelope.has_hello()) return it->peer;
    }
    return {};
  }
};

struct Delegate : ClientHandler {
  std::mutex mutex;
  std::vector<v1::Envelope> received;
  std::atomic<int> welcomes{0}, lost{0}, refused{0};
  v1::Hello hello() override {
    v1::Hello h;
    h.set_name("d1");
    h.set_instance_id("i1");
    h.set_slots(1);
    return h;
  }
  void on_welcome(const v1::Welcome&) override { ++welcomes; }
  void on_message(v1::Envelope&& e) override {
    std::lock_guard lock(mutex);
    received.push_back(std::move(e));
  }
  void on_refused(const v1::Refuse&) override { ++refused; }
  void on_session_lost(const std::string&) override { ++lost; }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return received.size();
  }
};

ClientOptions client_options(const std::string& endpoint) {
  ClientOptions o;
  o.endpoint = endpoint;
  o.liveness = {100ms, 3};
  o.reconnect_min = 50ms;
  o.reconnect_max = 400ms;
  return o;
}

TEST(WireTransport, SessionOpensAndMessagesFlowBothWays) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  Delegate d;
  Client client(ctx, client_options(c.router->endpoint()), d);
  ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));
  EXPECT_TRUE(client.attached());

  v1::Envelope assign;
  assign.mutable_assign()->set_task_id("t1");
  assign.mutable_assign()->set_attempt(1);
  c.router->send(c.last_hello_peer(), assign);
  ASSERT_TRUE(wait_until([&] { return d.count() == 1; }, 5s));
  EXPECT_EQ(d.received[0].assign().task_id(), "t1");

  // Log lines of one attempt, posted in a burst, arrive complete and in order.
  for (int i = 0; i < 500; ++i) {
    v1::Envelope log;
    log.mutable_log()->set_task_id("t1");
    log.mutable_log()->set_attempt(1);
    log.mutable_log()->add_lines()->set_text(std::to_string(i));
    client.send(log);
  }
  v1::Envelope result;
  result.mutable_result()->set_task_id("t1");
  result.mutable_result()->set_attempt(1);
  client.send(result);
  ASSERT_TRUE(wait_until([&] { return c.count(v1::Envelope::kResult) == 1; }, 5s));
  std::vector<std::string> lines;
  for (const auto& m : c.messages(v1::Envelope::kLog)) {
    for (const auto& l : m.log().lines()) lines.push_back(l.text());
  }
  ASSERT_EQ(lines.size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(lines[static_cast<std::size_t>(i)], std::to_string(i));
}

TEST(WireTransport, SilentDelegateIsReportedLost) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  {
    Delegate d;
    Client client(ctx, client_options(c.router->endpoint()), d);
    ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));
    // Heartbeats keep the session open well past the dead-after window.
    std::this_thread::sleep_for(600ms);
    EXPECT_EQ(c.lost(), 0);
  } // destroyed without a Bye: its heartbeats stop
  ASSERT_TRUE(wait_until([&] { return c.lost() == 1; }, 5s));
  EXPECT_EQ(c.router->stats().attached, 0u);
}

TEST(WireTransport, TheSessionKeepsTheCoordinatorsPaceWhateverTheDelegateWasGiven) {
  zmq::context_t ctx;
  {
    // The delegate was told to beat every 2 s; the coordinator loses a peer silent for 300 ms.
    Coordinator c(ctx);
    Delegate d;
    auto o = client_options(c.router->endpoint());
    o.liveness = {2000ms, 3};
    Client client(ctx, o, d);
    ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));
    std::this_thread::sleep_for(1200ms);
    EXPECT_EQ(c.lost(), 0);
    EXPECT_EQ(d.lost, 0);
  }
  {
    // The delegate would give up after 150 ms; the coordinator beats every 400 ms.
    Coordinator c(ctx, "tcp://127.0.0.1:0", {400ms, 3});
    Delegate d;
    auto o = client_options(c.router->endpoint());
    o.liveness = {50ms, 3};
    Client client(ctx, o, d);
    ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(d.lost, 0);
    EXPECT_EQ(d.welcomes, 1);
    EXPECT_EQ(c.lost(), 0);
  }
}

TEST(WireTransport, ByeEndsTheSessionAtOnce) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  Delegate d;
  Client client(ctx, client_options(c.router->endpoint()), d);
  ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));
  client.close("done");
  ASSERT_TRUE(wait_until([&] { return c.lost() == 1; }, 2s));
  std::lock_guard lock(c.mutex);
  EXPECT_NE(c.events.back().reason.find("said bye: done"), std::string::npos);
}

TEST(WireTransport, DelegateReattachesAfterTheCoordinatorRestarts) {
  zmq::context_t ctx;
  auto c = std::make_unique<Coordinator>(ctx);
  std::string endpoint = c->router->endpoint();
  Delegate d;
  Client client(ctx, client_options(endpoint), d);
  ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));
  c.reset();
  ASSERT_TRUE(wait_until([&] { return d.lost >= 1; }, 5s));
  c = std::make_unique<Coordinator>(ctx, endpoint);
  ASSERT_TRUE(wait_until([&] { return d.welcomes == 2; }, 10s));
  EXPECT_TRUE(client.attached());
  EXPECT_GE(c->count(v1::Envelope::kHello), 1);
}

TEST(WireTransport, UnknownPeerIsToldToSayHello) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::rcvtimeo, 3000);
  raw.connect(c.router->endpoint());
  v1::Envelope hb;
  hb.mutable_heartbeat();
  raw.send(zmq::buffer(encode(hb)));
  zmq::message_t reply;
  ASSERT_TRUE(raw.recv(reply));
  Decoded d = decode(reply.to_string_view());
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d.envelope.has_refuse());
  EXPECT_EQ(d.envelope.refuse().code(), v1::Refuse::CODE_UNKNOWN_SESSION);
  EXPECT_EQ(c.count(v1::Envelope::kHeartbeat), 0); // never reached the application
}

TEST(WireTransport, GarbageIsDroppedAndOthersKeepBeingServed) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  Delegate d;
  Client client(ctx, client_options(c.router->endpoint()), d);
  ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));

  zmq::socket_t rogue(ctx, zmq::socket_type::dealer);
  rogue.connect(c.router->endpoint());
  for (int i = 0; i < 200; ++i) {
    rogue.send(zmq::buffer(std::string("\xff\x01garbage") + std::to_string(i)));
  }
  rogue.send(zmq::buffer(std::string("a")), zmq::send_flags::sndmore);
  rogue.send(zmq::buffer(std::string("b")));
  ASSERT_TRUE(wait_until([&] { return c.router->stats().garbage >= 201; }, 5s));

  v1::Envelope ping;
  ping.mutable_cancel()->set_task_id("still-here");
  c.router->send(c.last_hello_peer(), ping);
  ASSERT_TRUE(wait_until([&] { return d.count() == 1; }, 5s));
  EXPECT_TRUE(client.attached());
  EXPECT_EQ(c.lost(), 0);
}

TEST(WireTransport, WrongProtocolVersionIsRefusedWithTheReason) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::rcvtimeo, 3000);
  raw.connect(c.router->endpoint());
  v1::Envelope hello;
  hello.mutable_hello()->set_name("old");
  hello.set_protocol_version(kProtocolVersion + 1);
  raw.send(zmq::buffer(hello.SerializeAsString()));
  zmq::message_t reply;
  ASSERT_TRUE(raw.recv(reply));
  Decoded d = decode(reply.to_string_view());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.envelope.refuse().code(), v1::Refuse::CODE_PROTOCOL_VERSION);
  EXPECT_FALSE(d.envelope.refuse().retry());
  EXPECT_EQ(c.count(v1::Envelope::kHello), 0);
}

// A delegate of its own making: a raw DEALER that says Hello (announcing batches or not) and
// reads whatever comes, batches unpacked.
struct RawDelegate {
  zmq::socket_t socket;
  RawDelegate(zmq::context_t& ctx, const std::string& endpoint)
      : socket(ctx, zmq::socket_type::dealer) {
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::rcvtimeo, 3000);
    socket.connect(endpoint);
  }
  void send(v1::Envelope env) { socket.send(zmq::buffer(encode(std::move(env)))); }
  void send_batch(std::vector<v1::Envelope> entries) {
    v1::Envelope env;
    env.mutable_batch(); // set even when empty
    for (auto& e : entries) *env.mutable_batch()->add_envelopes() = std::move(e);
    send(std::move(env));
  }
  // The next message that is not a heartbeat, decoded (a batch is returned as such).
  std::optional<v1::Envelope> next() {
    while (true) {
      zmq::message_t m;
      if (!socket.recv(m)) return std::nullopt;
      Decoded d = decode(m.to_string_view());
      if (!d.ok()) return std::nullopt;
      if (!d.envelope.has_heartbeat()) return std::move(d.envelope);
    }
  }
  v1::Welcome attach(std::uint32_t batch_limit) {
    v1::Envelope hello;
    hello.mutable_hello()->set_name("raw");
    hello.mutable_hello()->set_slots(1);
    hello.mutable_hello()->set_batch_limit(batch_limit);
    send(hello);
    auto w = next();
    return w && w->has_welcome() ? w->welcome() : v1::Welcome{};
  }
};

v1::Envelope result(const std::string& task, std::uint32_t attempt) {
  v1::Envelope env;
  env.mutable_result()->set_task_id(task);
  env.mutable_result()->set_attempt(attempt);
  return env;
}

TEST(WireTransport, ABatchFromADelegateReachesTheApplicationAsItsEntriesInOrder) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  RawDelegate raw(ctx, c.router->endpoint());
  EXPECT_EQ(raw.attach(kBatchLimit).batch_limit(), kBatchLimit); // the coordinator takes batches
  v1::Envelope accepted, log, beat;
  accepted.mutable_accepted()->set_task_id("t1");
  log.mutable_log()->set_task_id("t1");
  log.mutable_log()->add_lines()->set_text("hello");
  beat.mutable_heartbeat();
  raw.send_batch({accepted, log, beat, result("t1", 1), result("t2", 1)});
  ASSERT_TRUE(wait_until([&] { return c.count(v1::Envelope::kResult) == 2; }, 5s));
  std::vector<std::string> seen;
  {
    std::lock_guard lock(c.mutex);
    for (const auto& e : c.events) {
      if (!e.envelope.has_hello()) seen.push_back(body_name(e.envelope));
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"Accepted", "Log", "Result", "Result"}));
  EXPECT_EQ(c.router->stats().batches_received, 1u);
}

TEST(WireTransport, AMalformedBatchIsDroppedWholeAndTheSessionGoesOn) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  RawDelegate raw(ctx, c.router->endpoint());
  raw.attach(kBatchLimit);
  v1::Envelope hello;
  hello.mutable_hello()->set_name("inside");
  raw.send_batch({result("t1", 1), hello});
  raw.send_batch({});
  ASSERT_TRUE(wait_until([&] { return c.router->stats().garbage >= 2; }, 5s));
  raw.send(result("t2", 1));
  ASSERT_TRUE(wait_until([&] { return c.count(v1::Envelope::kResult) == 1; }, 5s));
  EXPECT_EQ(c.messages(v1::Envelope::kResult)[0].result().task_id(), "t2"); // t1 never applied
  EXPECT_EQ(c.count(v1::Envelope::kHello), 1);
  EXPECT_EQ(c.lost(), 0);
}

TEST(WireTransport, ADelegateThatTakesNoBatchesGetsOneEnvelopePerMessage) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  RawDelegate raw(ctx, c.router->endpoint());
  raw.attach(0); // a release before batches: it never announces a limit
  auto peer = c.last_hello_peer();
  for (int i = 0; i < 100; ++i) {
    v1::Envelope env;
    env.mutable_cancel()->set_task_id("t" + std::to_string(i));
    c.router->send(peer, env);
  }
  for (int i = 0; i < 100; ++i) {
    auto env = raw.next();
    ASSERT_TRUE(env.has_value());
    ASSERT_TRUE(env->has_cancel()) << body_name(*env);
    EXPECT_EQ(env->cancel().task_id(), "t" + std::to_string(i));
  }
  EXPECT_EQ(c.router->stats().batches_sent, 0u);
}

TEST(WireTransport, EverythingQueuedBothWaysArrivesInOrderWhetherBatchedOrNot) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  Delegate d;
  Client client(ctx, client_options(c.router->endpoint()), d);
  ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));
  auto peer = c.last_hello_peer();
  constexpr int kCount = 2000;
  for (int i = 0; i < kCount; ++i) {
    v1::Envelope env;
    env.mutable_cancel()->set_task_id("t" + std::to_string(i));
    c.router->send(peer, env);
    client.send(result("r" + std::to_string(i), 1));
  }
  ASSERT_TRUE(wait_until([&] { return d.count() == kCount; }, 10s));
  ASSERT_TRUE(wait_until([&] { return c.count(v1::Envelope::kResult) == kCount; }, 10s));
  {
    std::lock_guard lock(d.mutex);
    for (int i = 0; i < kCount; ++i) {
      ASSERT_EQ(d.received[static_cast<std::size_t>(i)].cancel().task_id(),
                "t" + std::to_string(i));
    }
  }
  auto results = c.messages(v1::Envelope::kResult);
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(results[static_cast<std::size_t>(i)].result().task_id(), "r" + std::to_string(i));
  }
  EXPECT_TRUE(client.attached());
}

TEST(WireTransport, WhatIsHandedOverAtOnceReachesEachPeerInOrder) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  RawDelegate first(ctx, c.router->endpoint());
  first.attach(kBatchLimit);
  auto first_peer = c.last_hello_peer();
  RawDelegate second(ctx, c.router->endpoint());
  second.attach(0); // takes no batches
  auto second_peer = c.last_hello_peer();
  ASSERT_NE(first_peer, second_peer);
  // More than one Batch's worth for the first, interleaved with the second's, then one more
  // each through send(): nothing is lost, reordered or sent to the wrong peer.
  constexpr int kCount = 600;
  std::vector<Outgoing> out;
  for (int i = 0; i < kCount; ++i) {
    v1::Envelope env;
    env.mutable_cancel()->set_task_id("t" + std::to_string(i));
    out.push_back({i % 3 == 0 ? second_peer : first_peer, std::move(env)});
  }
  c.router->send_all(std::move(out));
  c.router->send_all({}); // nothing to hand over: no effect
  v1::Envelope last;
  last.mutable_cancel()->set_task_id("last");
  c.router->send(first_peer, last);
  c.router->send(second_peer, last);
  auto read = [](RawDelegate& raw, std::size_t expected) {
    std::vector<std::string> ids;
    while (ids.size() < expected) {
      auto env = raw.next();
      if (!env) break;
      if (env->has_batch()) {
        for (const auto& e : env->batch().envelopes()) ids.push_back(e.cancel().task_id());
      } else {
        ids.push_back(env->cancel().task_id());
      }
    }
    return ids;
  };
  std::vector<std::string> want_first, want_second;
  for (int i = 0; i < kCount; ++i) {
    (i % 3 == 0 ? want_second : want_first).push_back("t" + std::to_string(i));
  }
  want_first.emplace_back("last");
  want_second.emplace_back("last");
  EXPECT_EQ(read(first, want_first.size()), want_first);
  EXPECT_EQ(read(second, want_second.size()), want_second);
  EXPECT_GE(c.router->stats().batches_sent, 2u); // 400 envelopes: more than one Batch
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

TEST(WireMailbox, QuietPostsWaitForTheNextPostOrWake) {
  Mailbox<int> box;
  EXPECT_FALSE(readable(box.fd()));
  box.post_quiet(1);
  box.post_quiet(2);
  EXPECT_FALSE(readable(box.fd())); // no wake-up for quiet posts
  EXPECT_FALSE(box.empty());
  box.post(3); // wakes the owner for all three
  EXPECT_TRUE(readable(box.fd()));
  EXPECT_EQ(box.drain(), (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(readable(box.fd()));
  EXPECT_TRUE(box.empty());

  box.wake(); // nothing waits: no wake-up
  EXPECT_FALSE(readable(box.fd()));
  box.post_quiet(4);
  box.wake();
  EXPECT_TRUE(readable(box.fd()));
  EXPECT_EQ(box.drain(), (std::vector<int>{4}));

  // Drained along with a wake-up of its own: the next quiet post is quiet again.
  box.post(5);
  box.post_quiet(6);
  EXPECT_EQ(box.drain(), (std::vector<int>{5, 6}));
  box.post_quiet(7);
  EXPECT_FALSE(readable(box.fd()));
  box.post(8);
  EXPECT_TRUE(readable(box.fd()));
  EXPECT_EQ(box.drain(), (std::vector<int>{7, 8}));
}

TEST(WireMailbox, PostAllWakesOnceAndKeepsTheOrder) {
  Mailbox<int> box;
  box.post_all({});
  EXPECT_FALSE(readable(box.fd())); // nothing posted, nothing to wake for
  box.post_quiet(1);
  box.post_all({2, 3});
  EXPECT_TRUE(readable(box.fd())); // the quiet post leaves with them
  box.post_all({4});
  EXPECT_EQ(box.drain(), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_FALSE(readable(box.fd()));
}

TEST(WireMailbox, AnOwnerThatIsAwakeIsNotWokenAndLooksBeforeItSleeps) {
  Mailbox<int> box;
  box.awake();
  box.post(1); // the owner is awake: no wake-up is written
  EXPECT_FALSE(readable(box.fd()));
  EXPECT_FALSE(box.sleep()); // but it may not sleep past the post
  EXPECT_EQ(box.drain(), (std::vector<int>{1}));
  EXPECT_TRUE(box.sleep()); // nothing waits: it sleeps, and the next post wakes it
  box.post(2);
  EXPECT_TRUE(readable(box.fd()));
  box.awake();
  EXPECT_EQ(box.drain(), (std::vector<int>{2}));

  // Quiet posts while awake do not keep it up; after it sleeps, wake() or a post wakes it.
  box.post_quiet(3);
  EXPECT_TRUE(box.sleep());
  EXPECT_FALSE(readable(box.fd()));
  box.wake();
  EXPECT_TRUE(readable(box.fd()));
  box.awake();
  EXPECT_EQ(box.drain(), (std::vector<int>{3}));
  box.post_quiet(4);
  box.wake(); // awake: wanted now, so it may not sleep
  EXPECT_FALSE(box.sleep());
  EXPECT_EQ(box.drain(), (std::vector<int>{4}));
  EXPECT_TRUE(box.sleep());
}

TEST(WireTransport, EnvelopesSentLaterLeaveWithTheNextSendOrFlushInOrder) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  Delegate d;
  Client client(ctx, client_options(c.router->endpoint()), d);
  ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));
  client.send_later(result("t1", 1));
  client.send_later(result("t2", 1));
  client.send(result("t3", 1));
  ASSERT_TRUE(wait_until([&] { return c.count(v1::Envelope::kResult) == 3; }, 5s));
  client.send_later(result("t4", 1));
  client.flush();
  ASSERT_TRUE(wait_until([&] { return c.count(v1::Envelope::kResult) == 4; }, 5s));
  // Nothing flushes this one: it leaves when the wire's thread wakes for something else (the
  // coordinator's next heartbeat).
  client.send_later(result("t5", 1));
  ASSERT_TRUE(wait_until([&] { return c.count(v1::Envelope::kResult) == 5; }, 5s));
  std::vector<std::string> ids;
  for (const auto& m : c.messages(v1::Envelope::kResult)) ids.push_back(m.result().task_id());
  EXPECT_EQ(ids, (std::vector<std::string>{"t1", "t2", "t3", "t4", "t5"}));
}

TEST(WireTransport, SendersOnManyThreadsWhileMessagesArriveLoseNothingAndKeepTheirOrder) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  Delegate d;
  Client client(ctx, client_options(c.router->endpoint()), d);
  ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));
  auto peer = c.last_hello_peer();
  // Senders put their envelopes on the socket themselves while the client's thread receives:
  // whoever finds the socket taken leaves its envelope to the holder, and what arrives while a
  // sender holds the socket still wakes the client's thread.
  constexpr int kThreads = 6, kEach = 400;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto id = "s" + std::to_string(t) + "-" + std::to_string(i);
        if (i % 5 == 4) {
          client.send_later(result(id, 1));
          if (i % 10 == 9) client.flush();
        } else {
          client.send(result(id, 1));
        }
      }
      client.flush();
    });
  }
  for (int i = 0; i < kEach; ++i) {
    v1::Envelope env;
    env.mutable_cancel()->set_task_id("t" + std::to_string(i));
    c.router->send(peer, env);
  }
  for (auto& s : senders) s.join();
  ASSERT_TRUE(wait_until([&] { return d.count() == kEach; }, 10s)) << d.count();
  ASSERT_TRUE(wait_until([&] { return c.count(v1::Envelope::kResult) == kThreads * kEach; }, 10s))
      << c.count(v1::Envelope::kResult);
  std::vector<int> next(kThreads, 0);
  for (const auto& m : c.messages(v1::Envelope::kResult)) {
    const auto& id = m.result().task_id();
    auto dash = id.find('-');
    int t = std::stoi(id.substr(1, dash - 1));
    EXPECT_EQ(std::stoi(id.substr(dash + 1)), next[static_cast<std::size_t>(t)]++) << id;
  }
  {
    std::lock_guard lock(d.mutex);
    for (int i = 0; i < kEach; ++i) {
      ASSERT_EQ(d.received[static_cast<std::size_t>(i)].cancel().task_id(),
                "t" + std::to_string(i));
    }
  }
  // Receiving goes on after it.
  v1::Envelope last;
  last.mutable_cancel()->set_task_id("last");
  c.router->send(peer, last);
  ASSERT_TRUE(wait_until([&] { return d.count() == kEach + 1; }, 5s));
  EXPECT_TRUE(client.attached());
}

// A router without a thread of its own, driven by a thread of the test as the engine drives
// the coordinator's; `stalled` stands for a long engine batch.
struct DrivenCoordinator : Recorded {
  Liveness liveness{100ms, 3};
  std::unique_ptr<Router> router;
  std::atomic<bool> stalled{false}, stop{false};
  std::thread thread;

  explicit DrivenCoordinator(zmq::context_t& ctx) {
    RouterOptions o;
    o.bind = "tcp://127.0.0.1:0";
    o.liveness = liveness;
    o.own_thread = false;
    router = std::make_unique<Router>(ctx, o, [this](std::vector<RouterEvent>&& batch) {
      for (auto& e : batch) {
        if (e.kind == RouterEvent::Kind::kMessage && e.envelope.has_hello()) {
          router->send(e.peer, welcome_at(liveness));
        }
        record(std::move(e));
      }
    });
    thread = std::thread([this] {
      auto fds = router->wait_fds();
      bool woken = true;
      while (!stop) {
        if (stalled) {
          std::this_thread::sleep_for(5ms);
          continue;
        }
        auto beat = router->service(woken);
        woken = false;
        if (!router->may_wait()) continue;
        auto left =
            std::chrono::ceil<std::chrono::milliseconds>(beat - std::chrono::steady_clock::now());
        pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        int ready = ::poll(p, 2, static_cast<int>(std::clamp<long long>(left.count(), 0, 20)));
        woken = ready > 0 && (p[1].revents & POLLIN) != 0;
      }
    });
  }
  ~DrivenCoordinator() {
    stop = true;
    thread.join();
    router.reset();
  }
};

TEST(WireTransport, ADrivenRouterKeepsItsSessionsAliveWhileItsThreadIsBusyElsewhere) {
  zmq::context_t ctx;
  DrivenCoordinator c(ctx);
  Delegate d;
  Client client(ctx, client_options(c.router->endpoint()), d);
  ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));

  // Ten heartbeat intervals without the driving thread: the delegate keeps hearing from the
  // coordinator, and what it sends meanwhile waits for the thread's return.
  c.stalled = true;
  v1::Envelope result;
  result.mutable_result()->set_task_id("t1");
  result.mutable_result()->set_attempt(1);
  client.send(result);
  std::this_thread::sleep_for(1000ms);
  EXPECT_EQ(d.lost, 0);
  EXPECT_TRUE(client.attached());
  EXPECT_EQ(c.count(v1::Envelope::kResult), 0);
  c.stalled = false;
  ASSERT_TRUE(wait_until([&] { return c.count(v1::Envelope::kResult) == 1; }, 5s));
  // Its heartbeats were waiting unread: the delegate is not taken for silent.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(c.lost(), 0);
  EXPECT_EQ(d.welcomes, 1);
  EXPECT_EQ(d.lost, 0);
}

TEST(WireTransport, ADrivenRouterReportsASilentDelegateLost) {
  zmq::context_t ctx;
  DrivenCoordinator c(ctx);
  {
    Delegate d;
    Client client(ctx, client_options(c.router->endpoint()), d);
    ASSERT_TRUE(wait_until([&] { return d.welcomes == 1; }, 5s));
    std::this_thread::sleep_for(600ms);
    EXPECT_EQ(c.lost(), 0);
  }
  ASSERT_TRUE(wait_until([&] { return c.lost() == 1; }, 5s));
  EXPECT_EQ(c.router->stats().attached, 0u);
}

TEST(WireTransport, BindingATakenAddressFailsClearly) {
  zmq::context_t ctx;
  Coordinator c(ctx);
  RouterOptions o;
  o.bind = c.router->endpoint();
  EXPECT_THROW(Router(ctx, o, [](RouterEvent&&) {}), zmq::error_t);
}

} // namespace
} // namespace capstan::wire
