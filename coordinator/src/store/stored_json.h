// Reading back the JSON a store column holds, so that a value damaged on disk (a bad restore, a
// hand edit, a disk fault) is named by where it is and why it cannot be read, never quoted.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace capstan::store {

// A stored value that cannot be read back. Its message names the table.column and the row and
// says why, without any byte of the stored text (which may hold what a user entered).
class StoredValueDamaged : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_damaged_json(std::string_view column, std::string_view key,
                                     std::size_t bytes);

// The JSON in `column` ("executions.state") of the row `key` (an execution id, "pipeline/deploy
// version 3", ...; or a callable returning it, called only on failure). Throws
// StoredValueDamaged when the text does not parse.
template <typename Key>
nlohmann::json stored_json(std::string_view text, std::string_view column, const Key& key) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    if constexpr (std::is_invocable_v<const Key&>) {
      throw_damaged_json(column, key(), text.size());
    } else {
      throw_damaged_json(column, key, text.size());
    }
  }
  return j;
}

} // namespace capstan::store
