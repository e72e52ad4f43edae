// YAML text → JSON values with positions, through yaml-cpp's node graph.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <sstream>
#include <unordered_map>
#include <vector>

#include "capstan/yaml/yaml.h"
#include "scalar.h"

namespace capstan::yaml {
namespace {

using detail::as_bool_word;
using detail::as_float;
using detail::as_int;
using detail::is_null_word;
using nlohmann::json;

Mark to_mark(const YAML::Mark& m) {
  if (m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

class Converter {
public:
  Converter(const std::string& file, const LoadOptions& options, SourceMap& where)
      : file_(file), options_(options), where_(where) {}

  json convert(const YAML::Node& node, const std::string& pointer, int depth, Mark fallback) {
    Mark mark = to_mark(node.Mark());
    if (!mark.known()) mark = fallback;
    if (depth > options_.max_depth) {
      throw Error(file_, mark,
                  "nesting deeper than " + std::to_string(options_.max_depth) + " levels");
    }
    if (++nodes_ > options_.max_nodes) {
      throw Error(file_, mark,
                  "document expands to more than " + std::to_string(options_.max_nodes) +
                      " nodes (aliases repeated too often?)");
    }
    where_.set(pointer, mark);
    switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar(node, mark);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      std::size_t i = 0;
      for (const auto& item : node) {
        out.push_back(convert(item, pointer_append(pointer, i), depth + 1, mark));
        ++i;
      }
      return out;
    }
    case YAML::NodeType::Map:
      return mapping(node, pointer, depth, mark);
    }
    return nullptr;
  }

private:
  json scalar(const YAML::Node& node, Mark mark) {
    const std::string& text = node.Scalar();
    const std::string& tag = node.Tag();
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return text; // quoted or !!str
    if (tag == "tag:yaml.org,2002:null") return nullptr;
    if (tag == "tag:yaml.org,2002:bool") {
      if (auto b = as_bool_word(text)) return *b;
      throw Error(file_, mark, "'" + text + "' is not a boolean");
    }
    if (tag == "tag:yaml.org,2002:int") {
      if (auto i = as_int(text)) return *i;
      throw Error(file_, mark, "'" + text + "' is not an integer");
    }
    if (tag == "tag:yaml.org,2002:float") {
      if (auto i = as_int(text)) return i->get<double>();
      if (auto f = as_float(text)) return *f;
      throw Error(file_, mark, "'" + text + "' is not a number");
    }
    if (tag != "?") return text; // an application tag: keep the text
    if (is_null_word(text)) return nullptr;
    if (auto b = as_bool_word(text)) return *b;
    if (auto i = as_int(text)) return *i;
    if (auto f = as_float(text)) return *f;
    return text;
  }

  json mapping(const YAML::Node& node, const std::string& pointer, int depth, Mark mark) {
    json out = json::object();
    std::vector<YAML::Node> merges; // handles: the iterator's pairs are temporaries
    for (const auto& kv : node) {
      const YAML::Node& key = kv.first;
      Mark key_mark = to_mark(key.Mark());
      if (!key_mark.known()) key_mark = mark;
      if (!key.IsScalar()) {
        throw Error(file_, key_mark, "mapping keys must be scalars");
      }
      const std::string& name = key.Scalar();
      if (name == "<<" && key.Tag() == "?") {
        merges.push_back(kv.second); // merge keys apply after the explicit keys
        continue;
      }
      if (out.contains(name)) {
        throw Error(file_, key_mark, "mapping key \"" + name + "\" already defined");
      }
      out[name] = convert(kv.second, pointer_append(pointer, name), depth + 1, key_mark);
    }
    for (const YAML::Node& merge : merges) {
      std::vector<YAML::Node> sources;
      if (merge.IsMap()) {
        sources.push_back(merge);
      } else if (merge.IsSequence()) {
        for (const auto& s : merge) sources.push_back(s);
      }
      for (const auto& source : sources) {
        if (!source.IsMap()) {
          throw Error(file_, to_mark(source.Mark()), "merge key '<<' needs a mapping");
        }
        json merged = mapping(source, pointer, depth + 1, mark);
        for (auto& [k, v] : merged.items()) {
          if (!out.contains(k)) out[k] = std::move(v);
        }
      }
    }
    return out;
  }

  const std::string& file_;
  const LoadOptions& options_;
  SourceMap& where_;
  std::size_t nodes_ = 0;
};

// Counts the nodes a document expands to from the parser's events, before anything is built:
// an alias adds the size its anchor's node was found to have, so "billion laughs" input is
// refused in time linear in its text. Counts as Converter does (scalar mapping keys are not
// nodes there).
class ExpansionCounter : public YAML::EventHandler {
public:
  ExpansionCounter(const std::string& file, std::size_t limit) : file_(file), limit_(limit) {}

  void OnDocumentStart(const YAML::Mark&) override {
    sizes_.clear();
    open_.clear();
    counted_ = 0;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor, 1); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = sizes_.find(anchor);
    leaf(mark, YAML::NullAnchor, it == sizes_.end() ? 1 : it->second);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    leaf(mark, anchor, 1);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    start(mark, anchor, false);
  }
  void OnSequenceEnd() override { end(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    start(mark, anchor, true);
  }
  void OnMapEnd() override { end(); }

private:
  struct Collection {
    YAML::anchor_t anchor;
    bool map;
    std::size_t children = 0; // events directly inside: keys and values alternate in a map
    std::size_t size = 0;     // nodes this collection expands to, itself included
  };

  // Takes the next child slot of the innermost collection; false when it is a mapping key.
  bool take_slot() {
    if (open_.empty()) return true;
    auto& parent = open_.back();
    bool key = parent.map && parent.children % 2 == 0;
    ++parent.children;
    return !key;
  }

  void count(const YAML::Mark& mark, std::size_t size) {
    counted_ += size;
    if (!open_.empty()) open_.back().size += size;
    if (counted_ > limit_) {
      throw Error(file_, to_mark(mark),
                  "document expands to more than " + std::to_string(limit_) +
                      " nodes (aliases repeated too often?)");
    }
  }
  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor, std::size_t size) {
    if (anchor != YAML::NullAnchor) sizes_[anchor] = size;
    if (take_slot()) count(mark, size);
  }
  void start(const YAML::Mark& mark, YAML::anchor_t anchor, bool map) {
    take_slot(); // a collection as a mapping key is refused later; count it all the same
    count(mark, 1);
    open_.push_back({anchor, map, 0, 1});
  }
  void end() {
    Collection done = open_.back();
    open_.pop_back();
    if (done.anchor != YAML::NullAnchor) sizes_[done.anchor] = done.size;
    if (!open_.empty()) open_.back().size += done.size - 1; // its own 1 went there at start
  }

  const std::string& file_;
  std::size_t limit_;
  std::unordered_map<YAML::anchor_t, std::size_t> sizes_;
  std::vector<Collection> open_;
  std::size_t counted_ = 0;
};

} // namespace

Error::Error(std::string file, Mark mark, std::string message)
    : std::runtime_error(file +
                         (mark.known()
                              ? ":" + std::to_string(mark.line) + ":" + std::to_string(mark.column)
                              : std::string()) +
                         ": " + message),
      file_(std::move(file)), mark_(mark), message_(std::move(message)) {}

Mark SourceMap::find(std::string_view pointer) const {
  std::string p(pointer);
  for (;;) {
    auto it = marks_.find(p);
    if (it != marks_.end() && it->second.known()) return it->second;
    if (p.empty()) return {};
    auto slash = p.rfind('/');
    p.resize(slash == std::string::npos ? 0 : slash);
  }
}

std::string SourceMap::locate(std::string_view pointer) const {
  Mark m = find(pointer);
  if (!m.known()) return file_;
  return file_ + ":" + std::to_string(m.line) + ":" + std::to_string(m.column);
}

std::vector<Document> load_all(std::string_view text, const std::string& file,
                               const LoadOptions& options) {
  std::vector<YAML::Node> nodes;
  try {
    if (text.find('*') != std::string_view::npos) { // aliases: bound what they expand to first
      std::istringstream in{std::string(text)};
      YAML::Parser parser(in);
      ExpansionCounter counter(file, options.max_nodes);
      while (parser.HandleNextDocument(counter)) {
      }
    }
    nodes = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    std::string msg = e.msg.empty() ? "invalid YAML" : e.msg;
    throw Error(file, to_mark(e.mark), msg);
  }
  std::vector<Document> out;
  out.reserve(nodes.size());
  for (const auto& node : nodes) {
    Document doc;
    doc.where = SourceMap(file);
    doc.start = to_mark(node.Mark());
    Converter converter(file, options, doc.where);
    doc.value = converter.convert(node, "", 0, doc.start);
    out.push_back(std::move(doc));
  }
  return out;
}

Document load(std::string_view text, const std::string& file, const LoadOptions& options) {
  auto docs = load_all(text, file, options);
  if (docs.empty()) {
    Document empty;
    empty.where = SourceMap(file);
    return empty;
  }
  if (docs.size() > 1) {
    throw Error(file, docs[1].start,
                "expected one YAML document, found " + std::to_string(docs.size()));
  }
  return std::move(docs.front());
}

std::string pointer_escape(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string pointer_append(std::string_view base, std::string_view token) {
  std::string out(base);
  out += '/';
  out += pointer_escape(token);
  return out;
}

std::string pointer_append(std::string_view base, std::size_t index) {
  std::string out(base);
  out += '/';
  out += std::to_string(index);
  return out;
}

} // namespace capstan::yaml
