// Kubernetes label selectors.
#include "label_selector.h"

#include <algorithm>
#include <cctype>

namespace capstan::apps::detail {

namespace {

bool alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// Why `s` is not a label name part or label value (both: at most 63 characters, alphanumerics,
// '-', '_' and '.', starting and ending with an alphanumeric); "" when it is one.
std::string name_fault(const std::string& s) {
  if (s.size() > 63) return "must be no more than 63 characters";
  bool chars = std::all_of(s.begin(), s.end(),
                           [](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
  if (!chars || !alnum(s.front()) || !alnum(s.back())) {
    return "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
           "with an alphanumeric character";
  }
  return "";
}

// Why `key` is not a qualified label key ([prefix/]name, the prefix a DNS subdomain).
std::string key_fault(const std::string& key) {
  if (key.empty()) return "a label key must not be empty";
  std::string name = key;
  auto slash = key.find('/');
  if (slash != std::string::npos) {
    std::string prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    bool ok = !prefix.empty() && prefix.size() <= 253 && alnum(prefix.front()) &&
              alnum(prefix.back()) && std::all_of(prefix.begin(), prefix.end(), [](char c) {
                return (std::islower(static_cast<unsigned char>(c)) != 0) ||
                       std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.';
              });
    if (!ok) {
      return "label key '" + key +
             "': its prefix must be a lower-case DNS subdomain (such as example.com)";
    }
  }
  if (name.empty()) return "label key '" + key + "': the name part must not be empty";
  if (auto why = name_fault(name); !why.empty()) {
    return "label key '" + key + "': the name part " + why;
  }
  return "";
}

std::string value_fault(const std::string& value) {
  if (value.empty()) return "";
  if (auto why = name_fault(value); !why.empty()) return "label value '" + value + "' " + why;
  return "";
}

} // namespace

LabelSelector parse_label_selector(const Fields& selector) {
  selector.only({"matchLabels", "matchExpressions"});
  LabelSelector out;
  Fields labels = selector.object("matchLabels");
  if (labels.value().is_object()) {
    for (const auto& [key, _] : labels.value().items()) {
      if (auto why = key_fault(key); !why.empty()) {
        labels.fail(key, labels.display() + ": " + why);
      }
      std::string value = labels.string(key);
      if (auto why = value_fault(value); !why.empty()) {
        labels.fail(key, labels.display() + "." + key + ": " + why);
      }
      out.push_back({key, "In", {value}});
    }
  }
  for (const Fields& e : selector.objects("matchExpressions")) {
    e.only({"key", "operator", "values"});
    LabelRequirement r;
    r.key = e.required_string("key");
    if (auto why = key_fault(r.key); !why.empty()) e.fail("key", e.display() + ".key: " + why);
    r.op = e.required_string("operator");
    if (r.op != "In" && r.op != "NotIn" && r.op != "Exists" && r.op != "DoesNotExist") {
      e.fail("operator", e.display() + ".operator '" + r.op +
                             "' is not a label selector operator (In, NotIn, Exists, "
                             "DoesNotExist)");
    }
    r.values = e.strings("values");
    const bool set_op = r.op == "In" || r.op == "NotIn";
    if (set_op && r.values.empty()) {
      std::string msg = e.display() + ".values must list at least one value for operator " + r.op;
      if (e.has("values")) e.fail("values", msg);
      e.fail_here(msg);
    }
    if (!set_op && !r.values.empty()) {
      e.fail("values", e.display() + ".values must be empty for operator " + r.op);
    }
    for (const auto& v : r.values) {
      if (auto why = value_fault(v); !why.empty())
        e.fail("values", e.display() + ".values: " + why);
    }
    out.push_back(std::move(r));
  }
  return out;
}

bool selector_matches(const LabelSelector& selector,
                      const std::map<std::string, std::string>& labels) {
  for (const auto& r : selector) {
    auto it = labels.find(r.key);
    const bool has = it != labels.end();
    const bool listed =
        has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    if (r.op == "In" && !listed) return false;
    if (r.op == "NotIn" && listed) return false; // a missing label is not in the set
    if (r.op == "Exists" && !has) return false;
    if (r.op == "DoesNotExist" && has) return false;
  }
  return true;
}

} // namespace capstan::apps::detail
