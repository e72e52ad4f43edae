// Envelope framing: size limit, Protobuf parsing and version check, without exceptions.
#include "capstan/wire/codec.h"

namespace capstan::wire {

namespace {

// Checks a Batch's entries; an empty string when they are all fine.
std::string check_batch(const v1::Batch& batch, std::uint32_t limit) {
  if (limit < 2) return "a batch from a peer that was told this side takes none";
  if (batch.envelopes_size() == 0) return "an empty batch";
  if (static_cast<std::uint32_t>(batch.envelopes_size()) > limit) {
    return "a batch of " + std::to_string(batch.envelopes_size()) + " entries (the limit is " +
           std::to_string(limit) + ")";
  }
  for (int i = 0; i < batch.envelopes_size(); ++i) {
    const auto& entry = batch.envelopes(i);
    if (entry.body_case() == v1::Envelope::BODY_NOT_SET) {
      return "batch entry " + std::to_string(i + 1) +
             " carries nothing (or a body this version does not know)";
    }
    if (!batchable(entry)) {
      return "batch entry " + std::to_string(i + 1) + " is a " + body_name(entry) +
             ", which never travels in a batch";
    }
  }
  return {};
}

} // namespace

Decoded decode(std::string_view bytes, std::size_t max_bytes, std::uint32_t batch_limit) {
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
  if (out.envelope.has_batch()) {
    auto why = check_batch(out.envelope.batch(), batch_limit);
    if (!why.empty()) {
      out.error = DecodeError::kBadBatch;
      out.message = "refused " + why + "; none of its entries was applied";
      out.envelope.Clear();
    }
  }
  return out;
}

std::string encode(v1::Envelope envelope) {
  return encode_in_place(envelope);
}

std::string encode_in_place(v1::Envelope& envelope) {
  envelope.set_protocol_version(kProtocolVersion);
  return envelope.SerializeAsString();
}

bool batchable(const v1::Envelope& envelope) {
  switch (envelope.body_case()) {
  case v1::Envelope::kHello:
  case v1::Envelope::kWelcome:
  case v1::Envelope::kRefuse:
  case v1::Envelope::kBye:
  case v1::Envelope::kBatch:
  case v1::Envelope::BODY_NOT_SET:
    return false;
  default:
    return true;
  }
}

std::vector<Encoded> encode_all(std::vector<v1::Envelope>& envelopes, std::uint32_t limit) {
  std::vector<Encoded> out;
  const std::size_t n = envelopes.size();
  std::size_t i = 0;
  while (i < n) {
    std::size_t end = i;
    if (limit >= 2) {
      std::size_t bytes = 0;
      while (end < n && end - i < limit && batchable(envelopes[end])) {
        bytes += envelopes[end].ByteSizeLong();
        if (end > i && bytes > kBatchBytes) break;
        ++end;
      }
    }
    if (end - i < 2) {
      out.push_back({encode_in_place(envelopes[i]), 1});
      ++i;
      continue;
    }
    v1::Envelope batch;
    auto* entries = batch.mutable_batch()->mutable_envelopes();
    entries->Reserve(static_cast<int>(end - i));
    for (; i < end; ++i) {
      envelopes[i].clear_protocol_version();
      entries->Add(std::move(envelopes[i]));
    }
    out.push_back({encode_in_place(batch), static_cast<std::uint32_t>(entries->size())});
  }
  return out;
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
  case v1::Envelope::kBatch:
    return "Batch";
  case v1::Envelope::BODY_NOT_SET:
    break;
  }
  return "(none)";
}

} // namespace capstan::wire
