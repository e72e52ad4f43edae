// ManifestError's message layout.
#include "capstan/manifest/error.h"

namespace capstan::manifest {

ManifestError::ManifestError(std::string file, int line, int column, std::string message)
    : std::runtime_error(file + (line > 0 ? ":" + std::to_string(line) : std::string()) +
                         (line > 0 && column > 0 ? ":" + std::to_string(column) : std::string()) +
                         (file.empty() ? "" : ": ") + message),
      file_(std::move(file)), line_(line), column_(column), message_(std::move(message)) {}

ManifestError::ManifestError(std::string message)
    : std::runtime_error(message), message_(std::move(message)) {}

} // namespace capstan::manifest
