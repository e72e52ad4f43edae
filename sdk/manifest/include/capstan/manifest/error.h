// The error every manifest operation throws: where (file, line, column) and why.
#pragma once

#include <stdexcept>
#include <string>

namespace capstan::manifest {

// what() reads "file:line:column: message"; the column (or line) is left out when unknown (0).
class ManifestError : public std::runtime_error {
public:
  ManifestError(std::string file, int line, int column, std::string message);
  explicit ManifestError(std::string message); // not tied to a file
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& message() const { return message_; }

private:
  std::string file_;
  int line_ = 0;
  int column_ = 0;
  std::string message_;
};

} // namespace capstan::manifest
