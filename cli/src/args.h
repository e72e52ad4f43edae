// Command-line parsing for the capstan CLI: flags anywhere, --flag=value or --flag value.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace capstan::cli {

// A usage mistake: exit code 2 with the message and a pointer to --help.
class UsageError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct Flag {
  std::string name;       // "--step"
  std::string short_name; // "-s" or ""
  bool takes_value = false;
  bool repeatable = false;
};

class Args {
public:
  // Parses argv against the flags; unknown flags and missing values are UsageErrors. "--" ends
  // the flags.
  Args(const std::vector<std::string>& argv, const std::vector<Flag>& flags);

  const std::vector<std::string>& positional() const { return positional_; }
  bool has(const std::string& name) const;
  std::optional<std::string> value(const std::string& name) const;
  std::string value_or(const std::string& name, const std::string& fallback) const;
  std::vector<std::string> values(const std::string& name) const;

private:
  std::vector<std::string> positional_;
  std::map<std::string, std::vector<std::string>> values_;
};

} // namespace capstan::cli
