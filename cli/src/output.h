// How the CLI prints: aligned tables, JSON/YAML documents, durations and times, colours on a TTY.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace capstan::cli {

enum class Format { kTable, kWide, kJson, kYaml };
// From -o: "", "wide", "json", "yaml"; anything else is a UsageError.
Format parse_format(const std::string& text);

// Prints a value as JSON or YAML (for -o json|yaml).
void print_document(const nlohmann::json& value, Format format);

// kubectl-style: upper-case headers, columns separated by three spaces.
class Table {
public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print() const;
  bool empty() const { return rows_.empty(); }

private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

bool stdout_is_terminal();
// "\033[32mSucceeded\033[0m" on a terminal, the bare status otherwise.
std::string colour_status(const std::string& status);
// "1.2s", "3m05s", "1h02m"; "-" for null.
std::string format_duration_ms(const nlohmann::json& ms);
// Local time "2026-01-31 14:05:09"; "-" for null or 0.
std::string format_time(const nlohmann::json& unix_ms);
// "5s", "3m", "2h", "4d" since the time; "-" for null.
std::string format_age(const nlohmann::json& unix_ms);
std::string join(const std::vector<std::string>& items, const std::string& sep);
// A field of an API object as text: "" when absent or null, strings as they are, anything else
// as JSON.
std::string field_text(const nlohmann::json& object, const char* key);
// A commit id cut to its first 12 characters.
std::string short_sha(const std::string& sha);

// The rows of a list the coordinator marked `unreadable` (a stored value damaged on disk, named
// by where it is, never quoted): `mark` each row while the table is built, `report` after it is
// printed, on stderr, so the list itself stays what the command lists.
class Unreadable {
public:
  // What a row is, one and more: "execution", "executions".
  Unreadable(std::string one, std::string more) : one_(std::move(one)), more_(std::move(more)) {}
  // The row's reason, "" when it was read whole.
  std::string mark(const nlohmann::json& row);
  // How many rows, why each (unless the rows show it), and where the way out is documented.
  void report(bool reasons = true) const;

private:
  std::string one_, more_;
  std::vector<std::string> why_;
};

} // namespace capstan::cli
