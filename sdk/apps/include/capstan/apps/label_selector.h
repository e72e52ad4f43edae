// Kubernetes label selectors as the GitOps applications use them (ApplicationSet selectors,
// `capstan apps list -l`): the shared ones of capstan::labels, under the names apps code uses.
#pragma once

#include <capstan/labels/label_selector.h>

namespace capstan::apps {

using labels::label_key_problem;
using labels::label_value_problem;
using labels::LabelRequirement;
using labels::LabelSelector;

} // namespace capstan::apps
