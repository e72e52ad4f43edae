// A small protobuf wire-format reader with the field numbers of the objects kubectl's typed
// clients create (k8s.io/api generated.proto): ObjectMeta, ConfigMap, Secret, Namespace,
// ServiceAccount.
#include "protobuf_body.h"

#include "capstan/sandbox/api_error.h"
#include "capstan/sandbox/util.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace capstan::sandbox {

using nlohmann::json;

namespace {

[[noreturn]] void malformed(const std::string& why) {
  throw ApiError::bad_request("the protobuf body of the request is malformed: " + why);
}

class Reader {
public:
  explicit Reader(std::string_view data) : p_(data.data()), end_(data.data() + data.size()) {}
  bool done() const { return p_ >= end_; }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) malformed("truncated varint");
      auto b = static_cast<unsigned char>(*p_++);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    malformed("varint too long");
  }
  std::string_view bytes() {
    std::uint64_t n = varint();
    if (n > static_cast<std::uint64_t>(end_ - p_)) malformed("length past the end of the body");
    std::string_view out(p_, n);
    p_ += n;
    return out;
  }
  void skip(unsigned wire) {
    switch (wire) {
    case 0:
      varint();
      break;
    case 1:
      advance(8);
      break;
    case 2:
      bytes();
      break;
    case 5:
      advance(4);
      break;
    default:
      malformed("unsupported wire type " + std::to_string(wire));
    }
  }

private:
  void advance(std::size_t n) {
    if (n > static_cast<std::size_t>(end_ - p_)) malformed("truncated field");
    p_ += n;
  }
  const char* p_;
  const char* end_;
};

enum class T {
  kString,
  kBytes,
  kInt,
  kBool,
  kTime,
  kStringMap,
  kBytesMap,
  kStrings,
  kMessage,
  kMessages
};

struct Message;
struct Field {
  unsigned number;
  const char* name;
  T type;
  const Message* message = nullptr;
};
struct Message {
  std::vector<Field> fields;
};

json decode(std::string_view data, const Message& m);

json decode_map(std::string_view entry, bool bytes_value, std::string& key) {
  Reader r(entry);
  json value = "";
  while (!r.done()) {
    auto tag = r.varint();
    unsigned num = static_cast<unsigned>(tag >> 3), wire = static_cast<unsigned>(tag & 7);
    if (num == 1 && wire == 2)
      key = std::string(r.bytes());
    else if (num == 2 && wire == 2) {
      std::string v(r.bytes());
      value = bytes_value ? base64_encode(v) : v;
    } else
      r.skip(wire);
  }
  return value;
}

json decode(std::string_view data, const Message& m) {
  json out = json::object();
  Reader r(data);
  while (!r.done()) {
    auto tag = r.varint();
    unsigned num = static_cast<unsigned>(tag >> 3), wire = static_cast<unsigned>(tag & 7);
    const Field* f = nullptr;
    for (const auto& x : m.fields)
      if (x.number == num) f = &x;
    if (!f) {
      r.skip(wire);
      continue;
    }
    bool length_delimited = f->type != T::kInt && f->type != T::kBool;
    if (length_delimited != (wire == 2))
      malformed(std::string("field ") + f->name + " has the wrong wire type");
    switch (f->type) {
    case T::kString:
      out[f->name] = std::string(r.bytes());
      break;
    case T::kBytes:
      out[f->name] = base64_encode(std::string(r.bytes()));
      break;
    case T::kInt:
      out[f->name] = static_cast<std::int64_t>(r.varint());
      break;
    case T::kBool:
      out[f->name] = r.varint() != 0;
      break;
    case T::kTime: {
      Reader t(r.bytes());
      std::int64_t seconds = 0;
      while (!t.done()) {
        auto tt = t.varint();
        if ((tt >> 3) == 1 && (tt & 7) == 0)
          seconds = static_cast<std::int64_t>(t.varint());
        else
          t.skip(static_cast<unsigned>(tt & 7));
      }
      out[f->name] = rfc3339(std::chrono::system_clock::from_time_t(seconds));
      break;
    }
    case T::kStringMap:
    case T::kBytesMap: {
      std::string key;
      json v = decode_map(r.bytes(), f->type == T::kBytesMap, key);
      out[f->name][key] = v;
      break;
    }
    case T::kStrings:
      out[f->name].push_back(std::string(r.bytes()));
      break;
    case T::kMessage:
      out[f->name] = decode(r.bytes(), *f->message);
      break;
    case T::kMessages:
      out[f->name].push_back(decode(r.bytes(), *f->message));
      break;
    }
  }
  return out;
}

const Message kOwnerReference{{{1, "kind", T::kString},
                               {3, "name", T::kString},
                               {4, "uid", T::kString},
                               {5, "apiVersion", T::kString},
                               {6, "controller", T::kBool},
                               {7, "blockOwnerDeletion", T::kBool}}};
const Message kObjectMeta{{{1, "name", T::kString},
                           {2, "generateName", T::kString},
                           {3, "namespace", T::kString},
                           {5, "uid", T::kString},
                           {6, "resourceVersion", T::kString},
                           {7, "generation", T::kInt},
                           {8, "creationTimestamp", T::kTime},
                           {11, "labels", T::kStringMap},
                           {12, "annotations", T::kStringMap},
                           {13, "ownerReferences", T::kMessages, &kOwnerReference},
                           {14, "finalizers", T::kStrings}}};
const Message kConfigMap{{{1, "metadata", T::kMessage, &kObjectMeta},
                          {2, "data", T::kStringMap},
                          {3, "binaryData", T::kBytesMap},
                          {4, "immutable", T::kBool}}};
const Message kSecret{{{1, "metadata", T::kMessage, &kObjectMeta},
                       {2, "data", T::kBytesMap},
                       {3, "type", T::kString},
                       {4, "stringData", T::kStringMap},
                       {5, "immutable", T::kBool}}};
const Message kNamespaceSpec{{{1, "finalizers", T::kStrings}}};
const Message kNamespace{
    {{1, "metadata", T::kMessage, &kObjectMeta}, {2, "spec", T::kMessage, &kNamespaceSpec}}};
const Message kLocalRef{{{1, "name", T::kString}}};
const Message kServiceAccount{{{1, "metadata", T::kMessage, &kObjectMeta},
                               {3, "imagePullSecrets", T::kMessages, &kLocalRef},
                               {4, "automountServiceAccountToken", T::kBool}}};

} // namespace

json decode_protobuf_object(const std::string& body) {
  static const std::string magic("k8s\0", 4);
  if (body.size() < 4 || body.compare(0, 4, magic) != 0)
    malformed("it does not start with the \"k8s\\0\" prefix");
  Reader unknown(std::string_view(body).substr(4));
  std::string api_version, kind;
  std::string_view raw;
  while (!unknown.done()) {
    auto tag = unknown.varint();
    unsigned num = static_cast<unsigned>(tag >> 3), wire = static_cast<unsigned>(tag & 7);
    if (num == 1 && wire == 2) {
      Reader tm(unknown.bytes());
      while (!tm.done()) {
        auto t = tm.varint();
        if ((t >> 3) == 1 && (t & 7) == 2)
          api_version = std::string(tm.bytes());
        else if ((t >> 3) == 2 && (t & 7) == 2)
          kind = std::string(tm.bytes());
        else
          tm.skip(static_cast<unsigned>(t & 7));
      }
    } else if (num == 2 && wire == 2) {
      raw = unknown.bytes();
    } else {
      unknown.skip(wire);
    }
  }
  const Message* m = nullptr;
  if (api_version == "v1" && kind == "ConfigMap")
    m = &kConfigMap;
  else if (api_version == "v1" && kind == "Secret")
    m = &kSecret;
  else if (api_version == "v1" && kind == "Namespace")
    m = &kNamespace;
  else if (api_version == "v1" && kind == "ServiceAccount")
    m = &kServiceAccount;
  if (!m)
    throw ApiError(415, "UnsupportedMediaType",
                   "the sandbox reads protobuf bodies for ConfigMap, Secret, Namespace and "
                   "ServiceAccount only; send " +
                       kind + " (" + api_version +
                       ") as application/json, e.g. with kubectl apply -f");
  json out = decode(raw, *m);
  out["apiVersion"] = api_version;
  out["kind"] = kind;
  return out;
}

} // namespace capstan::sandbox
