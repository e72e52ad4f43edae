// Envelope framing: one Protobuf Envelope per ZeroMQ message, bounded in size and versioned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "capstan/wire/v1/wire.pb.h"

namespace capstan::wire {

namespace v1 = ::capstan::wire::v1;

// The protocol this build speaks. A peer with another version is refused with a message
// naming both.
inline constexpr std::uint32_t kProtocolVersion = 1;
// Larger messages are refused by the decoder and dropped by the socket (ZMQ_MAXMSGSIZE).
inline constexpr std::size_t kDefaultMaxMessageBytes = 16u * 1024 * 1024;

enum class DecodeError {
  kNone,
  kEmpty,
  kTooLarge,
  kMalformed,    // not a Protobuf Envelope
  kWrongVersion, // a well-formed Envelope of another protocol version
  kNoBody,       // an Envelope that carries nothing
};

// The outcome of decoding untrusted bytes. Decoding never throws.
struct Decoded {
  DecodeError error = DecodeError::kNone;
  std::string message;          // why, when error != kNone
  std::uint32_t peer_version{}; // the version the peer claimed (kWrongVersion)
  v1::Envelope envelope;        // valid when ok()
  bool ok() const { return error == DecodeError::kNone; }
};

Decoded decode(std::string_view bytes, std::size_t max_bytes = kDefaultMaxMessageBytes);
// Stamps protocol_version and serializes.
std::string encode(v1::Envelope envelope);

// "Hello", "Assign", ... for logs and errors.
const char* body_name(const v1::Envelope& envelope);

} // namespace capstan::wire
