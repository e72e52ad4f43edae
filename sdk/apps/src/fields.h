// Typed reads of document fields with errors naming the field's file:line:column.
#pragma once

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>
#include <string_view>

#include "capstan/apps/application.h"
#include "capstan/yaml/yaml.h"

namespace capstan::apps::detail {

// One mapping of a document and where it sits (a JSON pointer into the document).
class Fields {
public:
  Fields(const nlohmann::json& value, const yaml::SourceMap& where, std::string pointer,
         std::string display);

  const nlohmann::json& value() const { return value_; }
  const std::string& pointer() const { return pointer_; }
  const std::string& display() const { return display_; } // "spec.source.path"
  bool has(std::string_view key) const;

  // Keys not in `known` are an error naming the first one.
  void only(std::initializer_list<std::string_view> known) const;
  std::string string(std::string_view key, const std::string& fallback = "") const;
  std::string required_string(std::string_view key) const;
  bool boolean(std::string_view key, bool fallback) const;
  long long integer(std::string_view key, long long fallback) const;
  // A child mapping ({} when absent).
  Fields object(std::string_view key) const;
  // Elements of a child list (empty when absent).
  std::vector<Fields> objects(std::string_view key) const;
  std::vector<std::string> strings(std::string_view key) const;
  std::map<std::string, std::string> string_map(std::string_view key) const;

  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  [[noreturn]] void fail_here(const std::string& message) const;
  std::string locate(std::string_view key) const;

private:
  const nlohmann::json& child(std::string_view key) const;
  std::string child_display(std::string_view key) const;

  const nlohmann::json& value_;
  const yaml::SourceMap& where_;
  std::string pointer_;
  std::string display_;
};

} // namespace capstan::apps::detail
