// Standard base64 (RFC 4648 with padding), as Kubernetes uses it for Secret data and kubeconfig
// *-data fields.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace capstan::kube {

std::string base64_encode(std::string_view in);
// nullopt when `in` is not base64; line breaks (\r, \n) are ignored, as Go's decoder does.
std::optional<std::string> base64_decode(std::string_view in);

} // namespace capstan::kube
