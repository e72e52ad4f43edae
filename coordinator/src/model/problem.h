// Validation problems: what is wrong with an applied document, and where (file:line:column).
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "capstan/yaml/yaml.h"

namespace capstan::model {

struct Problem {
  std::string location; // "file:line:column"
  std::string message;
  std::string text() const { return location.empty() ? message : location + ": " + message; }
};

// Thrown at the control-plane boundary when documents do not validate; carries every problem.
class ValidationError : public std::runtime_error {
public:
  explicit ValidationError(std::vector<Problem> problems);
  const std::vector<Problem>& problems() const { return problems_; }

private:
  std::vector<Problem> problems_;
};

// Reads fields of a document while recording problems with their positions.
class Checker {
public:
  Checker(const yaml::SourceMap& where, std::vector<Problem>& problems)
      : where_(where), problems_(problems) {}

  void error(const std::string& pointer, std::string message);
  std::string locate(const std::string& pointer) const { return where_.locate(pointer); }

  // The member `key` of the object at `pointer`; nullptr (with a problem when required)
  // when missing or null.
  const nlohmann::json* member(const nlohmann::json& object, const std::string& pointer,
                               const std::string& key, bool required);
  // A required/optional string member; "" when absent or wrong (a problem is recorded).
  std::string string(const nlohmann::json& object, const std::string& pointer,
                     const std::string& key, bool required);
  // Object/array members: nullptr when absent or of the wrong type (with a problem).
  const nlohmann::json* object(const nlohmann::json& object, const std::string& pointer,
                               const std::string& key, bool required);
  const nlohmann::json* array(const nlohmann::json& object, const std::string& pointer,
                              const std::string& key, bool required);
  // Flags members not in `known`, and members in `later` as not supported yet.
  void only(const nlohmann::json& object, const std::string& pointer,
            const std::vector<std::string>& known, const std::vector<std::string>& later = {});
  // Harness identifiers: a letter or '_' then letters, digits or '_', at most 128 (secrets may
  // also use '-').
  bool identifier(const std::string& value, const std::string& pointer, bool allow_dash = false);
  // A boolean member (YAML true/false, or the strings "true"/"false" as Harness UIs write them);
  // nullopt when absent or wrong (a problem is recorded).
  std::optional<bool> boolean(const nlohmann::json& object, const std::string& pointer,
                              const std::string& key);
  // A list of strings; empty when absent or wrong (a problem is recorded).
  std::vector<std::string> strings(const nlohmann::json& object, const std::string& pointer,
                                   const std::string& key, bool required);
  // A member that must be one of `allowed`; "" when absent or wrong (a problem is recorded).
  std::string one_of(const nlohmann::json& object, const std::string& pointer,
                     const std::string& key, const std::vector<std::string>& allowed,
                     bool required);
  // A Harness duration member ("10m", "1h 30m"); nullopt when absent or wrong.
  std::optional<std::chrono::milliseconds> duration(const nlohmann::json& object,
                                                    const std::string& pointer,
                                                    const std::string& key, bool required);

  std::size_t count() const { return problems_.size(); }

private:
  const yaml::SourceMap& where_;
  std::vector<Problem>& problems_;
};

const char* type_name(const nlohmann::json& value);

// A reference to another object as Harness writes it: "id", "org.id" or "account.id" (scopes
// are accepted for compatibility; Capstan has one scope). Returns the identifier.
std::string strip_scope(const std::string& ref);
// "a, b and c" for messages.
std::string join_names(const std::vector<std::string>& names);

} // namespace capstan::model
