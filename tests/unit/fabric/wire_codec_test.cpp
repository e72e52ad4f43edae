// Envelope framing: round trips of every message, and garbage that must come back as an error.
#include <gtest/gtest.h>

#include <random>

#include "capstan/plugin/v1/plugin.pb.h"
#include "capstan/wire/codec.h"

namespace capstan::wire {
namespace {

TEST(WireCodec, HelloRoundTripKeepsEveryField) {
  v1::Envelope env;
  auto* h = env.mutable_hello();
  h->set_instance_id("abc");
  h->set_name("edge-1");
  h->add_tags("eu");
  h->add_tags("gpu");
  auto* t = h->add_step_types();
  t->set_type("ShellScript");
  t->set_plugin("shell");
  t->set_plugin_version("1.2.3");
  t->set_retry_safe(true);
  h->set_slots(8);
  h->set_token("secret-token");
  auto* r = h->add_running();
  r->set_task_id("t1");
  r->set_attempt(2);
  Decoded d = decode(encode(env));
  ASSERT_TRUE(d.ok()) << d.message;
  EXPECT_EQ(d.envelope.protocol_version(), kProtocolVersion);
  const auto& back = d.envelope.hello();
  EXPECT_EQ(back.name(), "edge-1");
  EXPECT_EQ(back.tags_size(), 2);
  EXPECT_EQ(back.step_types(0).plugin_version(), "1.2.3");
  EXPECT_TRUE(back.step_types(0).retry_safe());
  EXPECT_EQ(back.slots(), 8u);
  EXPECT_EQ(back.token(), "secret-token");
  EXPECT_EQ(back.running(0).attempt(), 2u);
}

TEST(WireCodec, AssignCarriesAStepRequestAndFencing) {
  plugin::v1::StepRequest req;
  req.set_step_type("ShellScript");
  req.set_spec_json(R"({"shell":"Bash"})");
  req.set_timeout_ms(60000);
  v1::Envelope env;
  env.mutable_assign()->set_task_id("exec-0");
  env.mutable_assign()->set_attempt(3);
  env.mutable_assign()->set_step_request(req.SerializeAsString());
  Decoded d = decode(encode(env));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.envelope.assign().attempt(), 3u);
  plugin::v1::StepRequest back;
  ASSERT_TRUE(back.ParseFromString(d.envelope.assign().step_request()));
  EXPECT_EQ(back.spec_json(), R"({"shell":"Bash"})");
  EXPECT_EQ(back.timeout_ms(), 60000u);
}

TEST(WireCodec, ResultAndLogRoundTrip) {
  plugin::v1::StepResult res;
  res.set_status(plugin::v1::StepResult::STATUS_FAILED);
  res.set_error_type(plugin::v1::ERROR_TYPE_TIMEOUT);
  v1::Envelope env;
  auto* r = env.mutable_result();
  r->set_task_id("t");
  r->set_attempt(1);
  r->set_step_result(res.SerializeAsString());
  (*r->mutable_outputs())["version"] = "1.0.3";
  Decoded d = decode(encode(env));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.envelope.result().outputs().at("version"), "1.0.3");
  plugin::v1::StepResult back;
  ASSERT_TRUE(back.ParseFromString(d.envelope.result().step_result()));
  EXPECT_EQ(back.error_type(), plugin::v1::ERROR_TYPE_TIMEOUT);

  v1::Envelope log;
  log.mutable_log()->set_task_id("t");
  for (int i = 0; i < 3; ++i) log.mutable_log()->add_lines()->set_text("line " + std::to_string(i));
  Decoded l = decode(encode(log));
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l.envelope.log().lines_size(), 3);
  EXPECT_EQ(l.envelope.log().lines(2).text(), "line 2");
  EXPECT_STREQ(body_name(l.envelope), "Log");
}

TEST(WireCodec, EmptyMessageIsAnError) {
  EXPECT_EQ(decode("").error, DecodeError::kEmpty);
}

TEST(WireCodec, OversizedMessageIsRefusedBeforeParsing) {
  v1::Envelope env;
  env.mutable_bye()->set_reason(std::string(2000, 'x'));
  Decoded d = decode(encode(env), 1000);
  EXPECT_EQ(d.error, DecodeError::kTooLarge);
  EXPECT_NE(d.message.find("exceeds the limit of 1000 bytes"), std::string::npos);
}

TEST(WireCodec, WrongProtocolVersionNamesBothVersions) {
  v1::Envelope env;
  env.mutable_heartbeat();
  env.set_protocol_version(kProtocolVersion + 6);
  Decoded d = decode(env.SerializeAsString());
  EXPECT_EQ(d.error, DecodeError::kWrongVersion);
  EXPECT_EQ(d.peer_version, kProtocolVersion + 6);
  EXPECT_NE(d.message.find(std::to_string(kProtocolVersion + 6)), std::string::npos);
}

TEST(WireCodec, EnvelopeWithoutBodyIsAnError) {
  v1::Envelope env;
  env.set_protocol_version(kProtocolVersion);
  EXPECT_EQ(decode(env.SerializeAsString()).error, DecodeError::kNoBody);
}

TEST(WireCodec, RandomGarbageNeverDecodesAsAMessageAndNeverThrows) {
  std::mt19937 rng(42);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(1 + rng() % 64, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    Decoded d;
    ASSERT_NO_THROW(d = decode(bytes));
    if (d.ok()) ++accepted;
  }
  // A random buffer passes only if it happens to be a valid v1 envelope with a body; that is
  // vanishingly rare, and such a message is then judged on its content like any other.
  EXPECT_LT(accepted, 20);
}

TEST(WireCodec, TruncatedMessageIsMalformed) {
  v1::Envelope env;
  env.mutable_hello()->set_name(std::string(300, 'n'));
  std::string bytes = encode(env);
  Decoded d = decode(std::string_view(bytes).substr(0, bytes.size() / 2));
  EXPECT_EQ(d.error, DecodeError::kMalformed);
}

v1::Envelope cancel(const std::string& task, std::uint32_t attempt) {
  v1::Envelope env;
  env.mutable_cancel()->set_task_id(task);
  env.mutable_cancel()->set_attempt(attempt);
  return env;
}

std::string batch_of(std::vector<v1::Envelope> entries) {
  v1::Envelope env;
  env.mutable_batch(); // set even when empty
  for (auto& e : entries) *env.mutable_batch()->add_envelopes() = std::move(e);
  return encode(env);
}

TEST(WireCodec, EnvelopesReadyTogetherTravelInOneBatchInOrder) {
  std::vector<v1::Envelope> out;
  for (int i = 0; i < 5; ++i) out.push_back(cancel("t" + std::to_string(i), 1));
  auto messages = encode_all(out, kBatchLimit);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].entries, 5u);
  Decoded d = decode(messages[0].bytes);
  ASSERT_TRUE(d.ok()) << d.message;
  ASSERT_TRUE(d.envelope.has_batch());
  EXPECT_STREQ(body_name(d.envelope), "Batch");
  ASSERT_EQ(d.envelope.batch().envelopes_size(), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(d.envelope.batch().envelopes(i).cancel().task_id(), "t" + std::to_string(i));
  }
}

TEST(WireCodec, APeerThatTakesNoBatchesGetsOneEnvelopePerMessage) {
  std::vector<v1::Envelope> out;
  for (int i = 0; i < 3; ++i) out.push_back(cancel("t" + std::to_string(i), 1));
  auto messages = encode_all(out, 0);
  ASSERT_EQ(messages.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    Decoded d = decode(messages[static_cast<std::size_t>(i)].bytes);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d.envelope.cancel().task_id(), "t" + std::to_string(i));
  }
}

TEST(WireCodec, BatchesKeepToTheLimitTheSizeAndSessionControl) {
  std::vector<v1::Envelope> out;
  for (int i = 0; i < 5; ++i) out.push_back(cancel("t" + std::to_string(i), 1));
  v1::Envelope bye;
  bye.mutable_bye()->set_reason("done");
  out.push_back(bye);
  out.push_back(cancel("t5", 1));
  auto messages = encode_all(out, 2);
  // [t0 t1] [t2 t3] [t4] [bye] [t5]: a Bye never travels in a batch, and order is kept.
  ASSERT_EQ(messages.size(), 5u);
  EXPECT_EQ(messages[0].entries, 2u);
  EXPECT_EQ(messages[1].entries, 2u);
  EXPECT_EQ(messages[2].entries, 1u);
  EXPECT_TRUE(decode(messages[3].bytes).envelope.has_bye());
  EXPECT_EQ(decode(messages[4].bytes).envelope.cancel().task_id(), "t5");

  std::vector<v1::Envelope> big;
  for (int i = 0; i < 6; ++i) {
    auto e = cancel("big" + std::to_string(i), 1);
    e.mutable_cancel()->set_reason(std::string(kBatchBytes / 3, 'r'));
    big.push_back(std::move(e));
  }
  auto sized = encode_all(big, kBatchLimit);
  ASSERT_GE(sized.size(), 3u);
  std::uint32_t entries = 0;
  for (const auto& m : sized) {
    EXPECT_LE(m.bytes.size(), kBatchBytes + 1024);
    entries += m.entries;
  }
  EXPECT_EQ(entries, 6u);
}

TEST(WireCodec, AMalformedBatchIsRefusedWholeWithTheReason) {
  Decoded empty = decode(batch_of({}));
  EXPECT_EQ(empty.error, DecodeError::kBadBatch);
  EXPECT_NE(empty.message.find("an empty batch"), std::string::npos) << empty.message;

  v1::Envelope hello;
  hello.mutable_hello()->set_name("sneaky");
  Decoded control = decode(batch_of({cancel("a", 1), hello}));
  EXPECT_EQ(control.error, DecodeError::kBadBatch);
  EXPECT_NE(control.message.find("batch entry 2 is a Hello"), std::string::npos) << control.message;
  EXPECT_FALSE(control.envelope.has_batch()); // nothing of it is handed on

  v1::Envelope inner;
  *inner.mutable_batch()->add_envelopes() = cancel("a", 1);
  Decoded nested = decode(batch_of({cancel("b", 1), inner}));
  EXPECT_EQ(nested.error, DecodeError::kBadBatch);
  EXPECT_NE(nested.message.find("is a Batch"), std::string::npos) << nested.message;

  Decoded blank = decode(batch_of({cancel("c", 1), v1::Envelope{}}));
  EXPECT_EQ(blank.error, DecodeError::kBadBatch);
  EXPECT_NE(blank.message.find("batch entry 2 carries nothing"), std::string::npos);

  std::vector<v1::Envelope> many;
  for (int i = 0; i < 5; ++i) many.push_back(cancel("m", 1));
  Decoded too_long = decode(batch_of(many), kDefaultMaxMessageBytes, 4);
  EXPECT_EQ(too_long.error, DecodeError::kBadBatch);
  EXPECT_NE(too_long.message.find("the limit is 4"), std::string::npos) << too_long.message;
}

TEST(WireCodec, GarbageInsideABatchNeverThrows) {
  std::mt19937 rng(7);
  std::string good = batch_of({cancel("a", 1), cancel("b", 2)});
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = good;
    for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    Decoded d;
    ASSERT_NO_THROW(d = decode(bytes));
    if (d.ok() && d.envelope.has_batch()) {
      for (const auto& e : d.envelope.batch().envelopes()) EXPECT_TRUE(batchable(e));
    }
  }
}

} // namespace
} // namespace capstan::wire
