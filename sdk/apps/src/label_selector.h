// The object form of Kubernetes label selectors (matchLabels, matchExpressions with In, NotIn,
// Exists and DoesNotExist), as the ApplicationSet clusters generator reads it from a document.
#pragma once

#include "capstan/apps/label_selector.h"
#include "fields.h"

namespace capstan::apps::detail {

// Reads and checks a selector mapping as the Kubernetes API server does (keys are qualified
// names, values label values, operators and their values consistent; matchLabels entries are
// In with one value). Throws Error naming the field's file:line:column. With `check_values`
// false any text is a value, as Argo CD's generator post selector takes them (a server URL).
LabelSelector parse_label_selector(const Fields& selector, bool check_values = true);

} // namespace capstan::apps::detail
