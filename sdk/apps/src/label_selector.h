// Kubernetes label selectors (matchLabels, matchExpressions with In, NotIn, Exists and
// DoesNotExist), as the ApplicationSet clusters generator uses them over clusters' labels.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "fields.h"

namespace capstan::apps::detail {

struct LabelRequirement {
  std::string key;
  std::string op; // In, NotIn, Exists, DoesNotExist
  std::vector<std::string> values;
};

// All requirements must hold (matchLabels entries are In with one value). Empty: matches all.
using LabelSelector = std::vector<LabelRequirement>;

// Reads and checks a selector mapping as the Kubernetes API server does (keys are qualified
// names, values label values, operators and their values consistent). Throws Error naming the
// field's file:line:column.
LabelSelector parse_label_selector(const Fields& selector);

bool selector_matches(const LabelSelector& selector,
                      const std::map<std::string, std::string>& labels);

} // namespace capstan::apps::detail
