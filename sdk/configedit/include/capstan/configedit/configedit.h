// Format-preserving edits of JSON and YAML configuration files, as a release-repo update does:
// `a.b.c = v` creates nested keys, `containers[0].image = v` edits an existing list item. Only the
// text of the changed node (or the inserted lines) changes; key order, indentation, comments,
// quoting style and line endings elsewhere stay byte-for-byte as they were.
//
// Value typing: a value given as a string is written as a string, except that when it replaces
// a number, boolean or null and reads as one of those ("5", "true", "null"), it keeps the old
// node's type, so `replicas: 3` set to "5" stays a number while `tag: "1"` set to "2" stays a
// string. Values given as JSON numbers/booleans/objects/arrays are written as such.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace capstan::configedit {

enum class Format { kJson, kYaml };

// By extension: .json → JSON; .yaml/.yml → YAML; anything else throws Error.
Format format_for(const std::string& file_name);

struct Edit {
  // Dot-separated keys with [N] list indexes: "a.b.c", "spec.containers[0].image".
  // A key holding dots or brackets is written in brackets and quotes: `annotations["a.b/c"]`.
  std::string path;
  nlohmann::json value; // a string is typed as described above; blank strings are skipped
};

struct Result {
  std::string text;
  std::vector<std::string> applied; // paths changed or created
  std::vector<std::string> skipped; // paths with blank values
  bool changed = false;             // text differs from the input
};

// Malformed input, an impossible edit (index out of range, a key under a scalar) or an invalid
// path; what() reads "file:line:column: message" when a position is known, else "file: message".
class Error : public std::runtime_error {
public:
  Error(const std::string& file, int line, int column, const std::string& message);
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  int column() const { return column_; }

private:
  std::string file_;
  int line_ = 0;
  int column_ = 0;
};

// Applies every edit in order to `text` and returns the new text; nothing is returned (the
// caller writes nothing) when any edit fails. file_name is used in messages.
Result apply(std::string_view text, Format format, const std::vector<Edit>& edits,
             const std::string& file_name = "<input>");

// A path split into keys (strings) and indexes (numbers).
struct PathToken {
  std::string key;
  long index = -1; // >= 0 for a list index
  bool is_index() const { return index >= 0; }
};
std::vector<PathToken> parse_path(const std::string& path); // throws Error (file "<path>")

} // namespace capstan::configedit
