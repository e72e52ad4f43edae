// Field ownership sets and server-side apply (merge, removal of fields a manager stopped
// applying, conflicts with other managers).
#include "capstan/sandbox/managed_fields.h"

#include <algorithm>

namespace capstan::sandbox {

using nlohmann::json;

namespace {

constexpr char kSep = '\x1f';

std::string join(const std::string& prefix, const std::string& element) {
  return prefix.empty() ? element : prefix + kSep + element;
}

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    auto pos = path.find(kSep, start);
    out.push_back(path.substr(start, pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

bool granular(const Schema* s) {
  return !s || ((s->type == SchemaType::kObject || s->type == SchemaType::kMap ||
                 s->type == SchemaType::kAny) &&
                !s->atomic);
}

const Schema* child_schema(const Schema* s, const std::string& field) {
  if (!s) return nullptr;
  if (s->type == SchemaType::kMap) return s->items.get();
  return s->property(field);
}

bool associative(const Schema* s) {
  return s && s->type == SchemaType::kList && s->list_type == "map" && !s->list_map_keys.empty();
}
bool set_list(const Schema* s) {
  return s && s->type == SchemaType::kList && s->list_type == "set";
}

json item_key(const json& item, const Schema& list) {
  json key = json::object();
  for (const auto& k : list.list_map_keys) {
    if (item.is_object() && item.contains(k)) {
      key[k] = item[k];
    } else if (auto d = list.list_key_defaults.find(k); d != list.list_key_defaults.end()) {
      key[k] = d->second;
    }
  }
  return key;
}

struct Walk {
  std::map<std::string, json> leaves;
  FieldSet items;
};

void walk(const json& v, const Schema* s, const std::string& path, Walk& out) {
  if (v.is_null()) return;
  if (v.is_object() && granular(s)) {
    if (v.empty()) {
      out.leaves[path] = v;
      return;
    }
    for (auto it = v.begin(); it != v.end(); ++it)
      walk(it.value(), child_schema(s, it.key()), join(path, "f:" + it.key()), out);
    return;
  }
  if (v.is_array() && associative(s) && !v.empty()) {
    for (const auto& item : v) {
      std::string ip = join(path, "k:" + item_key(item, *s).dump());
      out.items.insert(ip);
      if (item.is_object())
        for (auto it = item.begin(); it != item.end(); ++it)
          walk(it.value(), child_schema(s->items.get(), it.key()), join(ip, "f:" + it.key()), out);
    }
    return;
  }
  if (v.is_array() && set_list(s) && !v.empty()) {
    for (const auto& item : v) out.leaves[join(path, "v:" + item.dump())] = item;
    return;
  }
  out.leaves[path] = v;
}

json strip_for_ownership(const json& object) {
  json o = object;
  o.erase("apiVersion");
  o.erase("kind");
  o.erase("status");
  if (o.contains("metadata") && o["metadata"].is_object()) {
    auto& m = o["metadata"];
    for (const char* f :
         {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
          "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"})
      m.erase(f);
    if (m.empty()) o.erase("metadata");
  }
  return o;
}

Walk walk_object(const json& object, const Schema& schema) {
  Walk w;
  if (object.is_object()) walk(strip_for_ownership(object), &schema, "", w);
  w.leaves.erase("");
  return w;
}

FieldSet all_paths(const Walk& w) {
  FieldSet s = w.items;
  for (const auto& [p, _] : w.leaves) s.insert(p);
  return s;
}

// Removes the node at path (elements[i..]) from v.
void remove_path(json& v, const std::vector<std::string>& el, std::size_t i, const Schema* s) {
  if (i >= el.size() || v.is_null()) return;
  const std::string& e = el[i];
  bool last = i + 1 == el.size();
  if (e.rfind("f:", 0) == 0 && v.is_object()) {
    std::string f = e.substr(2);
    if (!v.contains(f)) return;
    if (last)
      v.erase(f);
    else
      remove_path(v[f], el, i + 1, child_schema(s, f));
  } else if (e.rfind("k:", 0) == 0 && v.is_array()) {
    json key = json::parse(e.substr(2), nullptr, false);
    if (key.is_discarded() || !key.is_object()) return;
    for (std::size_t j = 0; j < v.size(); ++j) {
      bool match = v[j].is_object();
      for (auto it = key.begin(); match && it != key.end(); ++it)
        match = v[j].contains(it.key()) && v[j][it.key()] == it.value();
      if (!match) continue;
      if (last)
        v.erase(j);
      else
        remove_path(v[j], el, i + 1, s ? s->items.get() : nullptr);
      return;
    }
  } else if (e.rfind("v:", 0) == 0 && v.is_array() && last) {
    json val = json::parse(e.substr(2), nullptr, false);
    v.erase(std::remove(v.begin(), v.end(), val), v.end());
  }
}

json merge_apply(const json& dst, const json& src, const Schema* s) {
  if (src.is_object() && dst.is_object() && granular(s)) {
    json out = dst;
    for (auto it = src.begin(); it != src.end(); ++it) {
      if (it.value().is_null()) continue;
      out[it.key()] = merge_apply(out.contains(it.key()) ? out[it.key()] : json(), it.value(),
                                  child_schema(s, it.key()));
    }
    return out;
  }
  if (src.is_array() && dst.is_array() && associative(s)) {
    json out = dst;
    for (const auto& item : src) {
      json key = item_key(item, *s);
      auto it = std::find_if(out.begin(), out.end(),
                             [&](const json& x) { return item_key(x, *s) == key; });
      if (it == out.end())
        out.push_back(item);
      else
        *it = merge_apply(*it, item, s->items.get());
    }
    return out;
  }
  if (src.is_array() && dst.is_array() && set_list(s)) {
    json out = dst;
    for (const auto& item : src)
      if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
    return out;
  }
  if (src.is_object() && granular(s)) return merge_apply(json::object(), src, s);
  return src;
}

json drop_nulls(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (auto it = v.begin(); it != v.end(); ++it)
      if (!it.value().is_null()) out[it.key()] = drop_nulls(it.value());
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& x : v) out.push_back(drop_nulls(x));
    return out;
  }
  return v;
}

struct Entry {
  json meta; // manager, operation, apiVersion, time, subresource
  FieldSet set;
};

std::vector<Entry> read_entries(const json& object) {
  std::vector<Entry> out;
  const json mf =
      object.is_object() ? object.value("/metadata/managedFields"_json_pointer, json()) : json();
  if (!mf.is_array()) return out;
  for (const auto& e : mf) {
    if (!e.is_object()) continue;
    Entry en;
    en.meta = e;
    en.meta.erase("fieldsV1");
    en.set = from_fields_v1(e.value("fieldsV1", json::object()));
    out.push_back(std::move(en));
  }
  return out;
}

json write_entries(const std::vector<Entry>& entries) {
  json out = json::array();
  for (const auto& e : entries) {
    if (e.set.empty()) continue;
    json j = e.meta;
    j["fieldsType"] = "FieldsV1";
    j["fieldsV1"] = to_fields_v1(e.set);
    out.push_back(j);
  }
  return out;
}

bool same_entry(const Entry& e, const std::string& manager, const std::string& op,
                const std::string& subresource) {
  return e.meta.value("manager", "") == manager && e.meta.value("operation", "") == op &&
         e.meta.value("subresource", "") == subresource;
}

json entry_meta(const ManagedFieldsInput& who, const std::string& op) {
  json m = {{"manager", who.manager},
            {"operation", op},
            {"apiVersion", who.api_version},
            {"time", who.now}};
  if (!who.subresource.empty()) m["subresource"] = who.subresource;
  return m;
}

} // namespace

std::map<std::string, json> field_values(const json& object, const Schema& schema) {
  return walk_object(object, schema).leaves;
}

FieldSet field_set(const json& object, const Schema& schema) {
  return all_paths(walk_object(object, schema));
}

json to_fields_v1(const FieldSet& set) {
  json root = json::object();
  for (const auto& p : set) {
    json* node = &root;
    for (const auto& e : split(p)) {
      if (!node->contains(e)) (*node)[e] = json::object();
      node = &(*node)[e];
    }
  }
  for (const auto& p : set) {
    json* node = &root;
    for (const auto& e : split(p)) node = &(*node)[e];
    if (!node->empty() && !node->contains(".")) (*node)["."] = json::object();
  }
  return root;
}

namespace {
void read_fields(const json& node, const std::string& prefix, FieldSet& out) {
  if (!node.is_object()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (it.key() == ".") {
      if (!prefix.empty()) out.insert(prefix);
      continue;
    }
    std::string p = join(prefix, it.key());
    if (!it.value().is_object() || it.value().empty())
      out.insert(p);
    else
      read_fields(it.value(), p, out);
  }
}
} // namespace

FieldSet from_fields_v1(const json& fields) {
  FieldSet out;
  read_fields(fields, "", out);
  return out;
}

std::string describe_path(const std::string& path) {
  std::string out;
  for (const auto& e : split(path)) {
    if (e.rfind("f:", 0) == 0) {
      out += "." + e.substr(2);
    } else if (e.rfind("k:", 0) == 0) {
      json key = json::parse(e.substr(2), nullptr, false);
      out += "[";
      bool first = true;
      if (key.is_object())
        for (auto it = key.begin(); it != key.end(); ++it) {
          if (!first) out += ",";
          out += it.key() + "=" + it.value().dump();
          first = false;
        }
      out += "]";
    } else if (e.rfind("v:", 0) == 0) {
      out += "[=" + e.substr(2) + "]";
    }
  }
  return out;
}

json server_side_apply(const json& live, const json& applied_in, const Schema& schema,
                       const ManagedFieldsInput& who, bool force,
                       std::vector<ApplyConflict>& conflicts) {
  const json applied = drop_nulls(applied_in);
  Walk aw = walk_object(applied, schema);
  FieldSet new_set = all_paths(aw);
  std::vector<Entry> entries = read_entries(live);
  Walk lw = walk_object(live, schema);

  FieldSet prev;
  for (const auto& e : entries)
    if (same_entry(e, who.manager, "Apply", who.subresource)) prev = e.set;

  for (const auto& [path, value] : aw.leaves) {
    auto lit = lw.leaves.find(path);
    if (lit == lw.leaves.end() || lit->second == value) continue;
    for (auto& e : entries) {
      if (same_entry(e, who.manager, "Apply", who.subresource)) continue;
      if (!e.set.count(path)) continue;
      if (force)
        e.set.erase(path);
      else
        conflicts.push_back({e.meta.value("manager", ""), describe_path(path)});
    }
  }
  if (!conflicts.empty()) return live;

  FieldSet others;
  for (const auto& e : entries)
    if (!same_entry(e, who.manager, "Apply", who.subresource))
      others.insert(e.set.begin(), e.set.end());
  std::vector<std::string> removed;
  for (const auto& p : prev)
    if (!new_set.count(p) && !others.count(p)) removed.push_back(p);
  // A removed list item takes its fields with it: paths below another removed path are
  // dropped (removing an item's key field first would leave it unfindable).
  std::sort(removed.begin(), removed.end(),
            [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
  std::vector<std::string> roots;
  for (const auto& p : removed) {
    bool covered = false;
    for (const auto& r : roots)
      covered =
          covered || (p.size() > r.size() && p.compare(0, r.size(), r) == 0 && p[r.size()] == kSep);
    if (!covered) roots.push_back(p);
  }
  removed = roots;
  json merged = live.is_object() ? live : json::object();
  for (const auto& p : removed) remove_path(merged, split(p), 0, &schema);
  json body = applied;
  body.erase("status");
  merged = merge_apply(merged, body, &schema);

  bool found = false;
  for (auto& e : entries) {
    if (same_entry(e, who.manager, "Apply", who.subresource)) {
      e.set = new_set;
      e.meta = entry_meta(who, "Apply");
      found = true;
    }
  }
  if (!found) entries.push_back({entry_meta(who, "Apply"), new_set});
  merged["metadata"]["managedFields"] = write_entries(entries);
  return merged;
}

json record_update(const json& before, const json& after, const Schema& schema,
                   const ManagedFieldsInput& who) {
  Walk bw = walk_object(before, schema);
  Walk aw = walk_object(after, schema);
  FieldSet changed;
  for (const auto& [p, v] : aw.leaves) {
    auto it = bw.leaves.find(p);
    if (it == bw.leaves.end() || it->second != v) changed.insert(p);
  }
  for (const auto& p : aw.items)
    if (!bw.items.count(p)) changed.insert(p);
  FieldSet removed;
  for (const auto& [p, _] : bw.leaves)
    if (!aw.leaves.count(p)) removed.insert(p);
  for (const auto& p : bw.items)
    if (!aw.items.count(p)) removed.insert(p);

  std::vector<Entry> entries = read_entries(before);
  bool found = false;
  for (auto& e : entries) {
    bool mine = same_entry(e, who.manager, "Update", who.subresource);
    for (const auto& p : removed) e.set.erase(p);
    if (mine) {
      e.set.insert(changed.begin(), changed.end());
      if (!changed.empty()) e.meta = entry_meta(who, "Update");
      found = true;
    } else {
      for (const auto& p : changed) e.set.erase(p);
    }
  }
  if (!found && !changed.empty()) entries.push_back({entry_meta(who, "Update"), changed});
  return write_entries(entries);
}

} // namespace capstan::sandbox
