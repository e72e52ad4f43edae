// Delegate selectors: the tags a step asks of the delegate that runs it, declared at pipeline,
// stage, step group or step level; the nearest level that declares any wins.
#pragma once

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>
#include <vector>

#include "model/problem.h"

namespace capstan::model {

// Reads `delegateSelectors` of the mapping at `pointer` (absent: empty). Each entry is a
// non-empty tag without expressions; duplicates are refused.
std::vector<std::string> parse_delegate_selectors(const nlohmann::json& body,
                                                  const std::string& pointer, Checker& check);

// The selectors in force, nearest level first (step, step group, stage, pipeline; null levels
// are skipped): the first level that declares any wins, the others are not merged in, as in
// Harness.
std::vector<std::string>
effective_selectors(std::initializer_list<const std::vector<std::string>*> nearest_first);

} // namespace capstan::model
