// Standard base64 (RFC 4648 with padding), shared by the template functions and the secrets.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace capstan::manifest {

std::string base64_encode(std::string_view in);
std::optional<std::string> base64_decode(std::string_view in);

} // namespace capstan::manifest
