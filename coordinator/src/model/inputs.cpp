// Runtime inputs: finding, naming, binding and substituting them.
#include "model/inputs.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace capstan::model {

using nlohmann::json;
using yaml::pointer_append;

namespace {

// Keys of list entries that wrap one object named by its identifier.
bool is_wrapper(const std::string& key) {
  static const std::set<std::string> keys = {"stage", "step", "stepGroup", "manifest",
                                             "configFile"};
  return keys.count(key) > 0;
}

struct Walker {
  const yaml::SourceMap* where = nullptr;
  std::vector<InputSite>* sites = nullptr;              // find mode
  std::map<std::string, std::string>* values = nullptr; // flatten mode
  std::string stage;
  std::string step;

  void value(const json& v, const std::string& ptr, const std::string& fqn) {
    if (v.is_object()) {
      for (const auto& [k, child] : v.items()) {
        value(child, pointer_append(ptr, k), fqn + "." + k);
      }
    } else if (v.is_array()) {
      list(v, ptr, fqn);
    } else {
      scalar(v, ptr, fqn);
    }
  }

  void list(const json& arr, const std::string& ptr, const std::string& fqn) {
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const auto& item = arr[i];
      auto iptr = pointer_append(ptr, i);
      if (item.is_object() && item.size() == 1 && item.contains("parallel") &&
          item["parallel"].is_array()) {
        list(item["parallel"], pointer_append(iptr, "parallel"), fqn); // transparent
        continue;
      }
      if (item.is_object() && item.size() == 1 && is_wrapper(item.begin().key()) &&
          item.begin().value().is_object()) {
        const std::string key = item.begin().key();
        const auto& inner = item.begin().value();
        std::string id = inner.value("identifier", std::to_string(i));
        auto saved_stage = stage;
        auto saved_step = step;
        if (key == "stage") {
          stage = id;
          step.clear();
        } else if (key == "step" || key == "stepGroup") {
          step = step.empty() ? id : step + "." + id;
        }
        value(inner, pointer_append(iptr, key), fqn + "." + id);
        stage = saved_stage;
        step = saved_step;
        continue;
      }
      if (item.is_object() && item.contains("identifier") && item["identifier"].is_string()) {
        value(item, iptr, fqn + "." + item["identifier"].get<std::string>());
        continue;
      }
      if (item.is_object() && item.contains("name") && item["name"].is_string()) {
        // A variable: its value is named after the variable itself (pipeline.variables.tag).
        auto vfqn = fqn + "." + item["name"].get<std::string>();
        for (const auto& [k, child] : item.items()) {
          if (k == "value") {
            value(child, pointer_append(iptr, k), vfqn);
          } else if (k != "name" && k != "type" && k != "description" && k != "required") {
            value(child, pointer_append(iptr, k), vfqn + "." + k);
          }
        }
        continue;
      }
      value(item, iptr, fqn + "." + std::to_string(i));
    }
  }

  void scalar(const json& v, const std::string& ptr, const std::string& fqn) {
    std::string text;
    if (v.is_string()) {
      text = v.get<std::string>();
    } else if (v.is_null()) {
      return;
    } else {
      text = v.dump();
    }
    std::optional<expression::RuntimeInput> input;
    try {
      input = expression::parse_runtime_input(text);
    } catch (const expression::Error&) {
      return; // a malformed marker: reported when the document was applied
    }
    if (sites != nullptr && input) {
      sites->push_back({fqn, where ? where->locate(ptr) : "", text, *input, ptr, stage, step});
    }
    if (values != nullptr && !input && !expression::has_expression(text)) (*values)[fqn] = text;
  }
};

bool ends_with_segment(const std::string& fqn, const std::string& name) {
  if (fqn == name) return true;
  return fqn.size() > name.size() &&
         fqn.compare(fqn.size() - name.size(), name.size(), name) == 0 &&
         fqn[fqn.size() - name.size() - 1] == '.';
}

} // namespace

std::vector<InputSite> find_inputs(const json& root, const std::string& pointer,
                                   const std::string& fqn_prefix, const yaml::SourceMap& where) {
  std::vector<InputSite> out;
  Walker w;
  w.where = &where;
  w.sites = &out;
  w.value(root, pointer, fqn_prefix);
  // In the order they stand in the document (JSON objects keep their keys sorted).
  std::stable_sort(out.begin(), out.end(), [&](const InputSite& a, const InputSite& b) {
    auto ma = where.find(a.pointer);
    auto mb = where.find(b.pointer);
    return std::tie(ma.line, ma.column) < std::tie(mb.line, mb.column);
  });
  return out;
}

std::map<std::string, std::string> flatten_values(const json& root, const std::string& prefix) {
  std::map<std::string, std::string> out;
  Walker w;
  w.values = &out;
  w.value(root, "", prefix);
  return out;
}

std::map<std::string, std::string> read_inputs_file(const std::string& text,
                                                    const std::string& file_name) {
  yaml::Document doc;
  try {
    doc = yaml::load(text, file_name);
  } catch (const yaml::Error& e) {
    throw ValidationError(
        {{e.file() + ":" + std::to_string(e.mark().line) + ":" + std::to_string(e.mark().column),
          e.message()}});
  }
  const json* root = &doc.value;
  std::string ptr;
  if (root->is_object() && root->contains("inputSet") && (*root)["inputSet"].is_object()) {
    root = &(*root)["inputSet"];
    ptr = "/inputSet";
  }
  if (!root->is_object() || !root->contains("pipeline") || !(*root)["pipeline"].is_object()) {
    throw ValidationError({{doc.where.locate(ptr),
                            "an inputs file holds 'pipeline:' (or 'inputSet: {pipeline: ...}') "
                            "with the values of the pipeline's runtime inputs, as Harness writes "
                            "it"}});
  }
  return flatten_values((*root)["pipeline"], "pipeline");
}

Bound bind_inputs(const std::vector<InputSite>& sites,
                  const std::map<std::string, std::string>& set,
                  const std::map<std::string, std::string>& file,
                  const std::map<std::string, std::string>& fixed, std::vector<Problem>& problems) {
  Bound out;
  std::map<std::string, std::pair<std::string, std::string>> given; // fqn -> (value, source)
  for (const auto& [name, value] : set) {
    std::vector<const InputSite*> hits;
    for (const auto& s : sites) {
      if (s.fqn == name) {
        hits = {&s};
        break;
      }
      if (ends_with_segment(s.fqn, name)) hits.push_back(&s);
    }
    if (hits.empty()) {
      std::string list;
      for (const auto& s : sites) list += (list.empty() ? "" : ", ") + s.fqn;
      problems.push_back(
          {"", "--set " + name + ": no runtime input is named '" + name + "' (" +
                   (list.empty() ? "this run has no runtime inputs" : "runtime inputs: " + list) +
                   ")"});
      continue;
    }
    if (hits.size() > 1) {
      std::string list;
      for (const auto* s : hits) list += (list.empty() ? "" : ", ") + s->fqn;
      problems.push_back(
          {"", "--set " + name + " is ambiguous: it matches " + list + "; use more of the name"});
      continue;
    }
    given[hits[0]->fqn] = {value, "--set " + name};
  }
  std::set<std::string> known;
  for (const auto& s : sites) known.insert(s.fqn);
  for (const auto& [fqn, value] : file) {
    if (given.count(fqn)) continue; // --set wins over the file
    if (known.count(fqn)) {
      given[fqn] = {value, "the inputs file"};
    } else if (ends_with_segment(fqn, "identifier") || ends_with_segment(fqn, "type")) {
      continue; // structure, as Harness writes inputs files: which stage, step or source
    } else if (!fixed.count(fqn)) {
      problems.push_back(
          {"", "the inputs file sets " + fqn + ", which is not a runtime input of this run"});
    }
  }
  for (const auto& [fqn, value] : fixed) out.values[fqn] = value;
  for (const auto& s : sites) {
    auto it = given.find(s.fqn);
    if (it != given.end()) {
      if (auto why = s.input.reject(it->second.first)) {
        problems.push_back({s.location, s.fqn + " (" + it->second.second + "): " + *why});
        continue;
      }
      out.values[s.fqn] = it->second.first;
      continue;
    }
    if (out.values.count(s.fqn)) continue; // fixed by the pipeline (serviceInputs)
    if (s.input.execution_input) {
      out.pending.push_back(s);
      continue;
    }
    if (s.input.default_value) {
      out.values[s.fqn] = *s.input.default_value;
      continue;
    }
    std::string short_name = s.fqn.substr(s.fqn.rfind('.') + 1);
    problems.push_back({s.location, "runtime input " + s.fqn + " needs a value: pass --set " +
                                        short_name + "=VALUE (or give it in --inputs FILE)"});
  }
  return out;
}

void substitute(json& document, const std::vector<InputSite>& sites,
                const std::map<std::string, std::string>& values) {
  for (const auto& s : sites) {
    auto it = values.find(s.fqn);
    if (it == values.end()) continue;
    json::json_pointer ptr(s.pointer);
    if (!document.contains(ptr)) continue;
    document[ptr] = it->second;
  }
}

} // namespace capstan::model
