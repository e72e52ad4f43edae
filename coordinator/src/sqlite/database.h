// A thin SQLite layer: connections with cached prepared statements, typed binds, transactions.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace capstan::sqlite {

class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class Database;

// A prepared statement, reset on every bind-run cycle. Borrowed from the Database's cache: it
// lives as long as the connection. A parameter not bound since the last reset is NULL when the
// statement runs, as if sqlite3_clear_bindings had run at the reset; only the statements that
// leave one unbound pay for it (the engine's binds all of them, thousands of times a second).
class Statement {
public:
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Resets: the start of every use. Parameters left unbound after it run as NULL.
  Statement& reset();
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, std::uint32_t value) {
    return bind(index, static_cast<std::int64_t>(value));
  }
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, const std::string& value) {
    return bind(index, std::string_view(value));
  }
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind_null(int index);
  // Binds bytes as a BLOB (copied into the statement's buffer for the parameter).
  Statement& bind_blob(int index, std::string_view value);
  Statement& bind(int index, const std::optional<std::int64_t>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }

  // Steps once: true while a row is available.
  bool step();
  // Runs to completion (for writes).
  void run();

  std::int64_t int64(int column) const;
  double real(int column) const;
  std::string text(int column) const;
  // A BLOB's (or text's) bytes, valid until the next step or reset; empty for NULL.
  std::string_view blob(int column) const;
  bool is_null(int column) const;

private:
  static std::uint64_t bit(int index) {
    return index >= 1 && index <= 64 ? std::uint64_t{1} << (index - 1) : 0;
  }
  void mark_bound(int index) { bound_ |= bit(index); }
  // Bound to something other than its kept text (see kept_).
  void mark_not_kept(int index) { kept_ &= ~bit(index); }
  // Binds NULL to the parameters not bound since the last reset.
  void null_unbound();

  // Texts up to this size are bound from a buffer the statement keeps per parameter.
  static constexpr std::size_t kKeptText = 16 * 1024;

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::vector<std::string> texts_; // the last text bound to each parameter, read by SQLite
  int parameters_ = 0;             // sqlite3_bind_parameter_count
  std::uint64_t all_ = 0;   // a bit per parameter (statements with more are cleared at reset)
  std::uint64_t bound_ = 0; // parameters bound since the last reset
  // Parameters (the first 64) that SQLite holds bound to their kept text: SQLite keeps bindings
  // across resets, so binding the same text again is skipped (an execution's rows rebind mostly
  // unchanged texts: names, types, statuses).
  std::uint64_t kept_ = 0;
  bool stepping_ = false; // stepped since the last reset
};

class Database {
public:
  // Opens (creating) the file; WAL, foreign keys, a busy timeout. read_only opens an existing
  // database for queries only. Through the VFS of wal_writes.h: while this process has the file
  // open, no other process can open it.
  explicit Database(const std::filesystem::path& file, bool read_only = false);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // The cached statement for this SQL text, reset and ready to bind.
  Statement& prepare(std::string_view sql);
  // Runs one or more statements without results (schema, pragmas).
  void exec(std::string_view sql);
  std::int64_t last_insert_rowid() const;
  int changes() const;
  sqlite3* handle() const { return db_; }

private:
  // Looked up by the SQL text as given (no copy of it per call): the engine prepares the same
  // few statements thousands of times a second.
  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Statement>, TextHash, std::equal_to<>> cache_;
  // The same statements by the address of the text last given for them: callers pass string
  // literals, so a statement is found without hashing its text, only comparing it (the address
  // of a temporary string may come back with another text).
  struct Seen {
    const std::string* text; // cache_'s key
    Statement* statement;
  };
  std::unordered_map<const char*, Seen> by_address_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when destroyed without commit().
class Transaction {
public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

private:
  Database& db_;
  bool done_ = false;
};

} // namespace capstan::sqlite
