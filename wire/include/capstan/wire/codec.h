// Envelope framing: one Protobuf Envelope per ZeroMQ message, bounded in size and versioned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "capstan/wire/v1/wire.pb.h"

namespace capstan::wire {

namespace v1 = ::capstan::wire::v1;

// The protocol this build speaks. A peer with another version is refused with a message
// naming both.
inline constexpr std::uint32_t kProtocolVersion = 1;
// Larger messages are refused by the decoder and dropped by the socket (ZMQ_MAXMSGSIZE).
inline constexpr std::size_t kDefaultMaxMessageBytes = 16u * 1024 * 1024;
// What this build announces as its batch_limit (Hello, Welcome): the most envelopes it takes in
// one Batch. A received batch with more entries than that is refused.
inline constexpr std::uint32_t kBatchLimit = 256;
// A batch this side sends stops growing at about this many bytes (well under the message limit,
// so one batch never holds the socket long).
inline constexpr std::size_t kBatchBytes = 256u * 1024;

enum class DecodeError {
  kNone,
  kEmpty,
  kTooLarge,
  kMalformed,    // not a Protobuf Envelope
  kWrongVersion, // a well-formed Envelope of another protocol version
  kNoBody,       // an Envelope that carries nothing
  kBadBatch,     // a Batch that is empty, too long, or holds an entry it may not hold
};

// The outcome of decoding untrusted bytes. Decoding never throws.
struct Decoded {
  DecodeError error = DecodeError::kNone;
  std::string message;          // why, when error != kNone
  std::uint32_t peer_version{}; // the version the peer claimed (kWrongVersion)
  v1::Envelope envelope;        // valid when ok(); a Batch's entries are checked already
  bool ok() const { return error == DecodeError::kNone; }
};

Decoded decode(std::string_view bytes, std::size_t max_bytes = kDefaultMaxMessageBytes,
               std::uint32_t batch_limit = kBatchLimit);
// Stamps protocol_version and serializes.
std::string encode(v1::Envelope envelope);
// The same without a copy: stamps `envelope` itself.
std::string encode_in_place(v1::Envelope& envelope);

// Whether an envelope may travel inside a Batch (not session control, not a Batch).
bool batchable(const v1::Envelope& envelope);

// Groups envelopes for one peer into messages: runs of batchable envelopes become Batches of at
// most `limit` entries and about kBatchBytes each; a lone envelope, session control, and
// everything when limit < 2 (a peer that takes no batches) stay single. Order is kept. The
// envelopes are moved from.
struct Encoded {
  std::string bytes;        // one ZeroMQ message
  std::uint32_t entries{1}; // envelopes in it (more than one: a Batch)
};
std::vector<Encoded> encode_all(std::vector<v1::Envelope>& envelopes, std::uint32_t limit);

// "Hello", "Assign", ... for logs and errors.
const char* body_name(const v1::Envelope& envelope);

} // namespace capstan::wire
