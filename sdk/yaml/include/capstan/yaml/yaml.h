// YAML documents as JSON values, with the source position of every node kept for error messages.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace capstan::yaml {

struct Mark {
  int line = 0;   // 1-based; 0 when unknown
  int column = 0; // 1-based
  bool known() const { return line > 0; }
};

// Where each node of a document came from, keyed by RFC 6901 JSON pointer ("" is the root,
// "/spec/containers/0/image" a leaf).
class SourceMap {
public:
  SourceMap() = default;
  explicit SourceMap(std::string file) : file_(std::move(file)) {}

  void set(std::string pointer, Mark mark) { marks_[std::move(pointer)] = mark; }
  // The node's position, or that of its nearest ancestor that has one.
  Mark find(std::string_view pointer) const;
  const std::string& file() const { return file_; }
  // "file:line:column" for the node (or "file" when nothing is known).
  std::string locate(std::string_view pointer) const;

private:
  std::string file_;
  std::unordered_map<std::string, Mark> marks_;
};

struct Document {
  nlohmann::json value; // null for an empty document
  SourceMap where;
  Mark start; // the document's first line
};

// A YAML syntax or structure error; what() reads "file:line:column: message".
class Error : public std::runtime_error {
public:
  Error(std::string file, Mark mark, std::string message);
  const std::string& file() const { return file_; }
  Mark mark() const { return mark_; }
  const std::string& message() const { return message_; }

private:
  std::string file_;
  Mark mark_;
  std::string message_;
};

struct LoadOptions {
  std::size_t max_nodes = 2'000'000; // after alias expansion (guards "billion laughs")
  int max_depth = 512;
};

// Every document of a multi-document stream, empty documents included as null values.
// Scalars are typed by the YAML 1.2 core schema (quoted scalars are always strings); duplicate
// keys, non-scalar keys and documents past the limits are errors naming file, line and column.
std::vector<Document> load_all(std::string_view text, const std::string& file = "<input>",
                               const LoadOptions& options = {});
// Exactly one document (an empty stream yields a null value); more than one is an error.
Document load(std::string_view text, const std::string& file = "<input>",
              const LoadOptions& options = {});

// Block-style YAML as kubectl prints it; strings that would read back as another type, or that
// need it, are quoted, so load(dump(v)).value == v.
std::string dump(const nlohmann::json& value);
// Documents separated by "---".
std::string dump_all(const std::vector<nlohmann::json>& values);

// JSON pointer helpers shared by everything that reports positions.
std::string pointer_escape(std::string_view token);
std::string pointer_append(std::string_view base, std::string_view token);
std::string pointer_append(std::string_view base, std::size_t index);

} // namespace capstan::yaml
