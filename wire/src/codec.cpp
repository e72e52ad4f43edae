// Envelope framing: size limit, Protobuf parsing and version check, without exceptions.
#include "capstan/wire/codec.h"

namespace capstan::wire {

Decoded decode(std::string_view bytes, std::size_t max_bytes) {
  Decoded out;
  if (bytes.empty()) {
    out.error = DecodeError::kEmpty;
    out.message = "empty message";
    return out;
  }
  if (bytes.size() > max_bytes) {
    out.error = DecodeError::kTooLarge;
    out.message = "message of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                  std::to_string(max_bytes) + " bytes";
    return out;
  }
  if (bytes.size() > static_cast<std::size_t>(INT32_MAX) ||
      !out.envelope.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    out.error = DecodeError::kMalformed;
    out.message = "not a Capstan wire envelope (" + std::to_string(bytes.size()) + " bytes)";
    out.envelope.Clear();
    return out;
  }
  if (out.envelope.protocol_version() != kProtocolVersion) {
    out.error = DecodeError::kWrongVersion;
    out.peer_version = out.envelope.protocol_version();
    out.message = "peer speaks wire protocol " + std::to_string(out.peer_version) +
                  ", this side speaks " + std::to_string(kProtocolVersion);
    out.envelope.Clear();
    return out;
  }
  if (out.envelope.body_case() == v1::Envelope::BODY_NOT_SET) {
    out.error = DecodeError::kNoBody;
    out.message = "envelope without a body (or with a body this version does not know)";
    return out;
  }
  return out;
}

std::string encode(v1::Envelope envelope) {
  envelope.set_protocol_version(kProtocolVersion);
  return envelope.SerializeAsString();
}

const char* body_name(const v1::Envelope& envelope) {
  switch (envelope.body_case()) {
  case v1::Envelope::kHello:
    return "Hello";
  case v1::Envelope::kWelcome:
    return "Welcome";
  case v1::Envelope::kRefuse:
    return "Refuse";
  case v1::Envelope::kHeartbeat:
    return "Heartbeat";
  case v1::Envelope::kAssign:
    return "Assign";
  case v1::Envelope::kAccepted:
    return "Accepted";
  case v1::Envelope::kLog:
    return "Log";
  case v1::Envelope::kResult:
    return "Result";
  case v1::Envelope::kCancel:
    return "Cancel";
  case v1::Envelope::kBye:
    return "Bye";
  case v1::Envelope::kResultAck:
    return "ResultAck";
  case v1::Envelope::kLogAck:
    return "LogAck";
  case v1::Envelope::kAppAssign:
    return "AppAssign";
  case v1::Envelope::kAppUnassign:
    return "AppUnassign";
  case v1::Envelope::kAppStatus:
    return "AppStatus";
  case v1::Envelope::kAppOperation:
    return "AppOperation";
  case v1::Envelope::kAppOperationResult:
    return "AppOperationResult";
  case v1::Envelope::kAppDeleted:
    return "AppDeleted";
  case v1::Envelope::BODY_NOT_SET:
    break;
  }
  return "(none)";
}

} // namespace capstan::wire
