// An execution's stages and steps as one value of its row, for executions small enough that
// rows of their own (and their updates) would cost more than rewriting them all at each change.
#pragma once

#include <string>
#include <string_view>

#include "store/records.h"

namespace capstan::store {

// Stages and steps larger than this, encoded, get rows of their own in stage_executions and
// step_executions: a row of a table without rowid that is longer than about 1,000 bytes spills
// to overflow pages, and every change of a step would rewrite all of them.
inline constexpr std::size_t kFoldedChildrenBytes = 640;

// A JSON column's text. An execution's JSON columns are mostly empty, and those skip the
// serialiser, whose set-up (a locale look-up, a buffer) costs more than their two characters.
std::string column_text(const nlohmann::json& j);

// Appends the encoding of e.stages and e.steps to `out` (cleared first). Every field is kept as
// stored in the tables, JSON as its text.
void encode_children(const ExecutionRecord& e, std::string& out);

// Fills e.stages and e.steps from an encoding, stages by index and steps by (stage, step) as the
// tables' queries order them. Throws StoredValueDamaged (store/stored_json.h) naming the execution,
// and the stage or step, when the value is not an encoding this release reads or a JSON value in
// it does not parse.
void decode_children(std::string_view data, ExecutionRecord& e);

} // namespace capstan::store
