// Recognising and validating applied documents.
#include "model/object.h"

#include <map>
#include <sstream>

#include "capstan/yaml/yaml.h"
#include "model/pipeline.h"

namespace capstan::model {

namespace {

// The text of each document of a stream, split at "---" lines (column 0, so never inside a
// block scalar). Returns nothing when the split does not match the parsed documents.
std::vector<std::string> split_documents(const std::string& text, std::size_t expected) {
  std::vector<std::string> chunks(1);
  std::istringstream in(text);
  std::string line;
  bool first_content = true;
  while (std::getline(in, line)) {
    if (line.rfind("---", 0) == 0 && (line.size() == 3 || line[3] == ' ' || line[3] == '\t')) {
      if (!first_content) chunks.emplace_back();
      first_content = false;
      continue;
    }
    if (line.rfind("...", 0) == 0 && line.find_first_not_of(". \t") == std::string::npos) continue;
    if (line.find_first_not_of(" \t") != std::string::npos && line[0] != '#') first_content = false;
    chunks.back() += line + "\n";
  }
  if (chunks.size() != expected) return {};
  return chunks;
}

} // namespace

const std::vector<std::string>& known_kinds() {
  static const std::vector<std::string> kinds = {"pipeline"};
  return kinds;
}

std::vector<Object> parse_objects(const std::vector<SourceFile>& files) {
  std::vector<Problem> problems;
  std::vector<Object> out;
  std::map<std::string, std::string> seen; // kind/identifier -> where first defined
  for (const auto& file : files) {
    std::vector<yaml::Document> docs;
    try {
      docs = yaml::load_all(file.content, file.name);
    } catch (const yaml::Error& e) {
      problems.push_back(
          {e.file() + ":" + std::to_string(e.mark().line) + ":" + std::to_string(e.mark().column),
           e.message()});
      continue;
    }
    auto texts = split_documents(file.content, docs.size());
    for (std::size_t i = 0; i < docs.size(); ++i) {
      const auto& doc = docs[i];
      if (doc.value.is_null()) continue;
      Checker check(doc.where, problems);
      if (!doc.value.is_object()) {
        check.error("", std::string("a document must be a mapping with one top-level key naming "
                                    "its kind (e.g. 'pipeline:'), not ") +
                            type_name(doc.value));
        continue;
      }
      if (doc.value.size() != 1) {
        std::string keys;
        for (const auto& [k, v] : doc.value.items()) keys += (keys.empty() ? "" : ", ") + k;
        check.error("", "a document must have exactly one top-level key naming its kind "
                        "(e.g. 'pipeline:'); found: " +
                            keys);
        continue;
      }
      const std::string kind = doc.value.begin().key();
      Object obj;
      obj.kind = kind;
      obj.document = doc.value;
      obj.source = file.name + ":" + std::to_string(doc.start.line);
      obj.yaml = texts.empty() ? yaml::dump(doc.value) : texts[i];
      if (kind == "pipeline") {
        auto before = problems.size();
        Pipeline p = parse_pipeline(doc.value, doc.where, problems);
        if (problems.size() != before) continue;
        obj.identifier = p.identifier;
        obj.name = p.name;
        obj.model = to_json(p);
        for (std::size_t s = 0; s < p.stages.size(); ++s) {
          for (std::size_t t = 0; t < p.stages[s].steps.size(); ++t) {
            auto ptr = "/pipeline/stages/" + std::to_string(s) + "/stage/spec/execution/steps/" +
                       std::to_string(t) + "/step/type";
            obj.step_types.push_back({p.stages[s].steps[t].type, doc.where.locate(ptr)});
          }
        }
      } else {
        std::string list;
        for (const auto& k : known_kinds()) list += (list.empty() ? "" : ", ") + k;
        check.error("/" + yaml::pointer_escape(kind),
                    "unknown kind '" + kind + "' (this coordinator accepts: " + list + ")");
        continue;
      }
      auto key = obj.kind + "/" + obj.identifier;
      auto [it, fresh] = seen.emplace(key, obj.source);
      if (!fresh) {
        problems.push_back(
            {obj.source, obj.kind + " '" + obj.identifier + "' is also defined at " + it->second});
        continue;
      }
      out.push_back(std::move(obj));
    }
  }
  if (!problems.empty()) throw ValidationError(std::move(problems));
  return out;
}

} // namespace capstan::model
