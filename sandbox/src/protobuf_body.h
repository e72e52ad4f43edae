// Request bodies in the Kubernetes protobuf encoding ("k8s\0" + runtime.Unknown), as client-go's
// typed clients send them (kubectl create configmap|secret|namespace|serviceaccount).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace capstan::sandbox {

constexpr const char* kProtobufMediaType = "application/vnd.kubernetes.protobuf";

// The object as JSON; throws ApiError (400 for a malformed body, 415 for a kind whose protobuf
// form the sandbox does not read).
nlohmann::json decode_protobuf_object(const std::string& body);

} // namespace capstan::sandbox
