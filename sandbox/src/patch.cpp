// JSON merge patch, JSON patch and strategic merge patch.
#include "capstan/sandbox/patch.h"

#include "capstan/sandbox/api_error.h"

#include <algorithm>
#include <set>

namespace capstan::sandbox {

using nlohmann::json;

json apply_merge_patch(const json& target, const json& patch) {
  if (!patch.is_object()) return patch;
  json result = target.is_object() ? target : json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) {
      result.erase(it.key());
    } else {
      result[it.key()] =
          apply_merge_patch(result.contains(it.key()) ? result[it.key()] : json(), it.value());
    }
  }
  return result;
}

namespace {

[[noreturn]] void patch_error(const std::string& message) {
  throw ApiError(422, "Invalid",
                 "the server rejected our request due to an error in our request: " + message);
}

json::json_pointer to_pointer(const json& op, const char* field) {
  if (!op.contains(field) || !op[field].is_string())
    patch_error(std::string("json patch operation is missing \"") + field + "\"");
  try {
    return json::json_pointer(op[field].get<std::string>());
  } catch (const json::exception& e) {
    patch_error(std::string("invalid JSON pointer in \"") + field + "\": " + e.what());
  }
}

void add_at(json& doc, const json::json_pointer& ptr, json value, bool replace) {
  if (ptr.empty()) {
    doc = std::move(value);
    return;
  }
  json::json_pointer parent = ptr.parent_pointer();
  std::string last = ptr.back();
  if (!doc.contains(parent)) patch_error("doc is missing path: \"" + parent.to_string() + "\"");
  json& container = doc[parent];
  if (container.is_array()) {
    std::size_t index;
    if (last == "-") {
      if (replace) patch_error("replace operation does not apply: \"-\" names no element");
      container.push_back(std::move(value));
      return;
    }
    try {
      std::size_t used = 0;
      index = std::stoul(last, &used);
      if (used != last.size()) throw std::invalid_argument(last);
    } catch (const std::exception&) {
      patch_error("invalid array index \"" + last + "\" in \"" + ptr.to_string() + "\"");
    }
    if (replace) {
      if (index >= container.size())
        patch_error("replace operation does not apply: doc is missing key: " + ptr.to_string());
      container[index] = std::move(value);
    } else {
      if (index > container.size())
        patch_error("add operation does not apply: index out of bounds: " + ptr.to_string());
      container.insert(container.begin() + static_cast<std::ptrdiff_t>(index), std::move(value));
    }
  } else if (container.is_object()) {
    if (replace && !container.contains(last))
      patch_error("replace operation does not apply: doc is missing key: " + ptr.to_string());
    container[last] = std::move(value);
  } else {
    patch_error("doc is missing path: \"" + ptr.to_string() + "\"");
  }
}

json remove_at(json& doc, const json::json_pointer& ptr, const char* op) {
  if (ptr.empty() || !doc.contains(ptr))
    patch_error(std::string(op) + " operation does not apply: doc is missing path: \"" +
                ptr.to_string() + "\"");
  json removed = doc[ptr];
  json& container = doc[ptr.parent_pointer()];
  if (container.is_array())
    container.erase(std::stoul(ptr.back()));
  else
    container.erase(ptr.back());
  return removed;
}

} // namespace

json apply_json_patch(const json& target, const json& patch) {
  if (!patch.is_array()) patch_error("a JSON patch must be an array of operations");
  json doc = target;
  for (const auto& op : patch) {
    if (!op.is_object() || !op.contains("op") || !op["op"].is_string())
      patch_error("every JSON patch operation needs an \"op\"");
    const std::string name = op["op"];
    if (name == "add" || name == "replace") {
      if (!op.contains("value")) patch_error(name + " operation needs a \"value\"");
      add_at(doc, to_pointer(op, "path"), op["value"], name == "replace");
    } else if (name == "remove") {
      remove_at(doc, to_pointer(op, "path"), "remove");
    } else if (name == "move") {
      auto from = to_pointer(op, "from");
      json v = remove_at(doc, from, "move");
      add_at(doc, to_pointer(op, "path"), std::move(v), false);
    } else if (name == "copy") {
      auto from = to_pointer(op, "from");
      if (!doc.contains(from))
        patch_error("copy operation does not apply: doc is missing from path");
      add_at(doc, to_pointer(op, "path"), doc[from], false);
    } else if (name == "test") {
      auto path = to_pointer(op, "path");
      if (!doc.contains(path) || doc[path] != op.value("value", json()))
        patch_error("testing value " + path.to_string() + " failed: test failed");
    } else {
      patch_error("unexpected JSON patch operation \"" + name + "\"");
    }
  }
  return doc;
}

namespace {

constexpr const char* kPatchDirective = "$patch";
constexpr const char* kRetainKeys = "$retainKeys";
constexpr const char* kSetElementOrder = "$setElementOrder/";
constexpr const char* kDeleteFromPrimitiveList = "$deleteFromPrimitiveList/";

json merge_map(const json& original, const json& patch, const Schema* schema);

bool key_matches(const json& item, const std::string& key, const json& value) {
  return item.is_object() && item.contains(key) && item[key] == value;
}

json merge_list(const json& original, const json& patch, const Schema* schema,
                const std::string& field) {
  const std::string strategy = schema ? schema->patch_strategy : "";
  const bool merge = strategy.find("merge") != std::string::npos;
  // {"$patch": "replace"} as an element replaces the whole list with the other elements.
  for (const auto& e : patch) {
    if (e.is_object() && e.value(kPatchDirective, "") == "replace") {
      json out = json::array();
      for (const auto& x : patch)
        if (!(x.is_object() && x.contains(kPatchDirective))) out.push_back(x);
      return out;
    }
  }
  if (!merge || !original.is_array()) {
    json out = json::array();
    for (const auto& x : patch)
      if (!(x.is_object() && x.contains(kPatchDirective))) out.push_back(x);
    return out;
  }
  const std::string key = schema->patch_merge_key;
  const Schema* item_schema = schema->items.get();
  json out = original;
  if (key.empty()) {
    // A merging list of scalars: union, keeping the original order.
    for (const auto& x : patch)
      if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
    return out;
  }
  for (const auto& e : patch) {
    if (!e.is_object())
      throw ApiError::bad_request("strategic merge patch: list " + field +
                                  " needs objects with merge key \"" + key + "\"");
    if (!e.contains(key)) {
      if (e.contains(kPatchDirective)) continue;
      throw ApiError::bad_request("map: " + e.dump() +
                                  " does not contain declared merge key: " + key);
    }
    const json& kv = e[key];
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const json& item) { return key_matches(item, key, kv); });
    std::string directive = e.value(kPatchDirective, "");
    if (directive == "delete") {
      out.erase(std::remove_if(out.begin(), out.end(),
                               [&](const json& item) { return key_matches(item, key, kv); }),
                out.end());
      continue;
    }
    if (it == out.end()) {
      json fresh = merge_map(json::object(), e, item_schema);
      out.push_back(fresh);
    } else {
      *it = merge_map(*it, e, item_schema);
    }
  }
  return out;
}

void apply_element_order(json& list, const json& order, const Schema* schema) {
  if (!list.is_array() || !order.is_array()) return;
  const std::string key = schema ? schema->patch_merge_key : "";
  json ordered = json::array();
  std::vector<bool> used(list.size(), false);
  for (const auto& o : order) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (used[i]) continue;
      bool match = key.empty()
                       ? list[i] == o
                       : (o.is_object() && o.contains(key) && key_matches(list[i], key, o[key]));
      if (match) {
        ordered.push_back(list[i]);
        used[i] = true;
        break;
      }
    }
  }
  for (std::size_t i = 0; i < list.size(); ++i)
    if (!used[i]) ordered.push_back(list[i]);
  list = std::move(ordered);
}

json merge_map(const json& original, const json& patch, const Schema* schema) {
  if (!patch.is_object()) return patch;
  std::string directive = patch.value(kPatchDirective, "");
  if (directive == "delete") return json(); // caller removes
  if (directive == "replace") {
    json out = patch;
    out.erase(kPatchDirective);
    return out;
  }
  if (!directive.empty() && directive != "merge")
    throw ApiError::bad_request("strategic merge patch: unknown $patch directive \"" + directive +
                                "\"");
  json out = original.is_object() ? original : json::object();
  if (patch.contains(kRetainKeys)) {
    const json& keep = patch[kRetainKeys];
    if (!keep.is_array())
      throw ApiError::bad_request("strategic merge patch: $retainKeys must be a list");
    std::set<std::string> retained;
    for (const auto& k : keep)
      if (k.is_string()) retained.insert(k.get<std::string>());
    for (auto it = out.begin(); it != out.end();) {
      if (!retained.count(it.key()))
        it = out.erase(it);
      else
        ++it;
    }
  }
  std::vector<std::pair<std::string, json>> orders;
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& k = it.key();
    if (k == kPatchDirective || k == kRetainKeys) continue;
    if (k.rfind(kSetElementOrder, 0) == 0) {
      orders.emplace_back(k.substr(std::string(kSetElementOrder).size()), it.value());
      continue;
    }
    if (k.rfind(kDeleteFromPrimitiveList, 0) == 0) {
      std::string field = k.substr(std::string(kDeleteFromPrimitiveList).size());
      if (out.contains(field) && out[field].is_array() && it.value().is_array()) {
        json kept = json::array();
        for (const auto& x : out[field])
          if (std::find(it.value().begin(), it.value().end(), x) == it.value().end())
            kept.push_back(x);
        out[field] = kept;
      }
      continue;
    }
    if (!k.empty() && k[0] == '$')
      throw ApiError::bad_request("strategic merge patch: unknown directive \"" + k + "\"");
    const Schema* field_schema = schema ? schema->property(k) : nullptr;
    if (!field_schema && schema && schema->type == SchemaType::kMap)
      field_schema = schema->items.get();
    const json& pv = it.value();
    if (pv.is_null()) {
      out.erase(k);
      continue;
    }
    if (pv.is_object()) {
      if (pv.value(kPatchDirective, "") == "delete") {
        out.erase(k);
        continue;
      }
      bool atomic =
          field_schema && (field_schema->atomic || field_schema->patch_strategy == "replace");
      json merged = atomic ? merge_map(json::object(), pv, field_schema)
                           : merge_map(out.contains(k) ? out[k] : json::object(), pv, field_schema);
      out[k] = merged;
    } else if (pv.is_array()) {
      out[k] = merge_list(out.contains(k) ? out[k] : json(), pv, field_schema, k);
    } else {
      out[k] = pv;
    }
  }
  for (const auto& [field, order] : orders) {
    if (!out.contains(field)) continue;
    const Schema* field_schema = schema ? schema->property(field) : nullptr;
    apply_element_order(out[field], order, field_schema);
  }
  return out;
}

} // namespace

json apply_strategic_merge_patch(const json& target, const json& patch, const Schema* schema) {
  if (!patch.is_object())
    throw ApiError::bad_request("strategic merge patch: the patch must be a JSON object");
  json out = merge_map(target, patch, schema);
  if (out.is_null()) return json::object();
  return out;
}

} // namespace capstan::sandbox
