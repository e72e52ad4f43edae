// A stored JSON value that cannot be read back, named.
#include "store/stored_json.h"

namespace capstan::store {

void throw_damaged_json(std::string_view column, std::string_view key, std::size_t bytes) {
  std::string message(column);
  message += " of ";
  message += key;
  message += " does not parse as JSON (";
  message += std::to_string(bytes);
  message += " bytes stored)";
  throw StoredValueDamaged(message);
}

} // namespace capstan::store
