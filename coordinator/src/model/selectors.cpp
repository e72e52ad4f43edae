// Delegate selectors: parsing and precedence.
#include "model/selectors.h"

#include <set>

#include "capstan/expression/expression.h"

namespace capstan::model {

std::vector<std::string> parse_delegate_selectors(const nlohmann::json& body,
                                                  const std::string& pointer, Checker& check) {
  std::vector<std::string> out;
  const auto* list = check.array(body, pointer, "delegateSelectors", false);
  if (list == nullptr) return out;
  auto at = yaml::pointer_append(pointer, "delegateSelectors");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < list->size(); ++i) {
    auto item_at = yaml::pointer_append(at, i);
    const auto& item = (*list)[i];
    if (!item.is_string()) {
      check.error(item_at,
                  std::string("a delegate selector is a tag (a string), not ") + type_name(item));
      continue;
    }
    auto tag = item.get<std::string>();
    if (tag.empty() || tag.find_first_of(" \t\r\n,") != std::string::npos) {
      check.error(item_at, "invalid delegate selector '" + tag +
                               "': a tag is a non-empty word without spaces or commas");
      continue;
    }
    if (expression::has_expression(tag)) {
      check.error(item_at, "delegate selectors are literal tags; expressions such as '" + tag +
                               "' are not supported in them");
      continue;
    }
    if (!seen.insert(tag).second) {
      check.error(item_at, "delegate selector '" + tag + "' is listed twice");
      continue;
    }
    out.push_back(std::move(tag));
  }
  return out;
}

std::vector<std::string>
effective_selectors(std::initializer_list<const std::vector<std::string>*> nearest_first) {
  for (const auto* level : nearest_first) {
    if (level != nullptr && !level->empty()) return *level;
  }
  return {};
}

} // namespace capstan::model
