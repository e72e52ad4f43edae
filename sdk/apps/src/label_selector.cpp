// The object form of Kubernetes label selectors (matchLabels, matchExpressions) as documents
// write it, read into the shared selector of capstan::labels.
#include "label_selector.h"

namespace capstan::apps {

namespace detail {

LabelSelector parse_label_selector(const Fields& selector, bool check_values) {
  selector.only({"matchLabels", "matchExpressions"});
  std::vector<LabelRequirement> out;
  Fields labels = selector.object("matchLabels");
  if (labels.value().is_object()) {
    for (const auto& [key, _] : labels.value().items()) {
      if (auto why = label_key_problem(key); !why.empty()) {
        labels.fail(key, labels.display() + ": " + why);
      }
      std::string value = labels.string(key);
      if (auto why = check_values ? label_value_problem(value) : ""; !why.empty()) {
        labels.fail(key, labels.display() + "." + key + ": " + why);
      }
      out.push_back({key, LabelRequirement::Op::kIn, {value}});
    }
  }
  for (const Fields& e : selector.objects("matchExpressions")) {
    e.only({"key", "operator", "values"});
    LabelRequirement r;
    r.key = e.required_string("key");
    if (auto why = label_key_problem(r.key); !why.empty()) {
      e.fail("key", e.display() + ".key: " + why);
    }
    const std::string op = e.required_string("operator");
    if (op == "In") {
      r.op = LabelRequirement::Op::kIn;
    } else if (op == "NotIn") {
      r.op = LabelRequirement::Op::kNotIn;
    } else if (op == "Exists") {
      r.op = LabelRequirement::Op::kExists;
    } else if (op == "DoesNotExist") {
      r.op = LabelRequirement::Op::kDoesNotExist;
    } else {
      e.fail("operator", e.display() + ".operator '" + op +
                             "' is not a label selector operator (In, NotIn, Exists, "
                             "DoesNotExist)");
    }
    r.values = e.strings("values");
    const bool set_op = op == "In" || op == "NotIn";
    if (set_op && r.values.empty()) {
      std::string msg = e.display() + ".values must list at least one value for operator " + op;
      if (e.has("values")) e.fail("values", msg);
      e.fail_here(msg);
    }
    if (!set_op && !r.values.empty()) {
      e.fail("values", e.display() + ".values must be empty for operator " + op);
    }
    for (const auto& v : r.values) {
      if (auto why = check_values ? label_value_problem(v) : ""; !why.empty()) {
        e.fail("values", e.display() + ".values: " + why);
      }
    }
    out.push_back(std::move(r));
  }
  return LabelSelector(std::move(out));
}

} // namespace detail

} // namespace capstan::apps
