// The Sprig functions Harness's renderer offers (minus env/expandenv), plus Helm's include and
// required, with Sprig's argument orders and its forgiving conversions.
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "capstan/kube/base64.h"
#include "capstan/yaml/yaml.h"
#include "funcs.h"
#include "gofmt.h"
#include "gostrings.h"

namespace capstan::manifest::tmpl {
namespace {

using Args = std::vector<Value>;

// Sprig's strval: strings as they are, everything else as fmt's %v.
std::string strval(const Value& v0) {
  Value v = v0.unboxed();
  if (v.kind() == Value::Kind::String) return v.as_string();
  return sprint_value(v);
}

// strconv.ParseInt(s, 0, 64): sign, then 0x / 0o / 0b / leading-0 octal prefixes.
std::optional<std::int64_t> parse_int_base0(std::string_view s) {
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  bool prefixed = false;
  if (s.size() > 1 && s[0] == '0') {
    char p = static_cast<char>(std::tolower(static_cast<unsigned char>(s[1])));
    if (p == 'x' || p == 'o' || p == 'b') {
      base = p == 'x' ? 16 : (p == 'o' ? 8 : 2);
      s.remove_prefix(2);
      prefixed = true;
    } else {
      base = 8;
      s.remove_prefix(1);
    }
  }
  std::string digits;
  for (char c : s) {
    if (c == '_' && prefixed) continue;
    digits += c;
  }
  if (digits.empty()) return std::nullopt;
  std::uint64_t u = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), u, base);
  if (ec != std::errc() || p != digits.data() + digits.size()) return std::nullopt;
  if (!neg && u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  if (neg && u > static_cast<std::uint64_t>(INT64_MAX) + 1) return std::nullopt;
  return neg ? static_cast<std::int64_t>(0 - u) : static_cast<std::int64_t>(u);
}

// spf13/cast ToInt64: numbers truncate, bools are 0/1, strings parse (else 0), the rest is 0.
std::int64_t to_int64(const Value& v0) {
  Value v = v0.unboxed();
  switch (v.kind()) {
  case Value::Kind::Int:
    return v.as_int();
  case Value::Kind::Float: {
    double d = v.as_float();
    if (std::isnan(d) || std::fabs(d) > 9.2e18) return 0;
    return static_cast<std::int64_t>(d);
  }
  case Value::Kind::Bool:
    return v.as_bool() ? 1 : 0;
  case Value::Kind::String:
    return parse_int_base0(v.as_string()).value_or(0);
  default:
    return 0;
  }
}

double to_float64(const Value& v0) {
  Value v = v0.unboxed();
  switch (v.kind()) {
  case Value::Kind::Int:
    return static_cast<double>(v.as_int());
  case Value::Kind::Float:
    return v.as_float();
  case Value::Kind::Bool:
    return v.as_bool() ? 1 : 0;
  case Value::Kind::String: {
    const std::string& s = v.as_string();
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    return (!s.empty() && end == s.c_str() + s.size()) ? d : 0.0;
  }
  default:
    return 0;
  }
}

// Sprig's strslice: a list's non-nil elements as strings; a scalar as one string; nil as none.
std::vector<std::string> strslice(const Value& v0) {
  Value v = v0.unboxed();
  std::vector<std::string> out;
  if (!v.valid()) return out;
  if (v.kind() == Value::Kind::List) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      Value e = v.element(i).unboxed();
      if (e.valid()) out.push_back(strval(e));
    }
    return out;
  }
  out.push_back(strval(v));
  return out;
}

Value string_list(const std::vector<std::string>& items) {
  json arr = json::array();
  for (const auto& s : items) arr.push_back(s);
  return Value::make(std::move(arr), "[]string");
}

std::string repeat(const std::string& s, std::int64_t n) {
  std::string out;
  for (std::int64_t i = 0; i < n; ++i) out += s;
  return out;
}

std::string indent(std::int64_t spaces, const std::string& v) {
  std::string pad = repeat(" ", std::max<std::int64_t>(spaces, 0));
  std::string out = pad;
  for (char c : v) {
    out += c;
    if (c == '\n') out += pad;
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) {
    // strings.Replace with an empty old string inserts `to` around every rune.
    std::string out = to;
    for (std::size_t i = 0; i < s.size();) {
      std::int32_t r = 0;
      int n = utf8_decode(s, i, r);
      out.append(s, i, static_cast<std::size_t>(n));
      out += to;
      i += static_cast<std::size_t>(n);
    }
    return out;
  }
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    auto at = s.find(from, pos);
    if (at == std::string::npos) break;
    out.append(s, pos, at - pos);
    out += to;
    pos = at + from.size();
  }
  out.append(s, pos);
  return out;
}

// strings.Split: an empty separator splits after each rune.
std::vector<std::string> split(const std::string& s, const std::string& sep) {
  if (!sep.empty()) return split_string(s, sep);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    std::int32_t r = 0;
    int n = utf8_decode(s, i, r);
    out.push_back(s.substr(i, static_cast<std::size_t>(n)));
    i += static_cast<std::size_t>(n);
  }
  return out;
}

std::string trim_space(const std::string& s) {
  auto b = s.find_first_not_of(" \t\n\r\v\f");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\n\r\v\f");
  return s.substr(b, e - b + 1);
}

std::string ascii_case(std::string s, bool upper) {
  for (auto& c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x80) c = static_cast<char>(upper ? std::toupper(u) : std::tolower(u));
  }
  return s;
}

// strings.Title: upper-cases the first letter of each word.
std::string title(std::string s) {
  bool prev_sep = true;
  for (auto& c : s) {
    auto u = static_cast<unsigned char>(c);
    bool sep = u < 0x80 && !std::isalnum(u) && c != '_';
    if (prev_sep && u < 0x80) c = static_cast<char>(std::toupper(u));
    prev_sep = sep;
  }
  return s;
}

std::string sha256_hex(const std::string& in) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(in.data(), in.size(), digest, &len, EVP_sha256(), nullptr);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", digest[i]);
    out += buf;
  }
  return out;
}

// Go's JSON has no float for an integral number: 2.0 is written as 2.
json normalise_numbers(const json& j) {
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15) {
      return static_cast<std::int64_t>(d);
    }
    return j;
  }
  if (j.is_array()) {
    json out = json::array();
    for (const auto& e : j) out.push_back(normalise_numbers(e));
    return out;
  }
  if (j.is_object()) {
    json out = json::object();
    for (const auto& [k, v] : j.items()) out[k] = normalise_numbers(v);
    return out;
  }
  return j;
}

// Sprig's quote/squote: every non-nil argument quoted, separated by spaces.
template <typename Quote> Value quote_each(const Args& args, Quote quote) {
  std::string out;
  for (const auto& v : args) {
    if (!v.valid() || v.is_nil()) continue;
    if (!out.empty()) out += ' ';
    out += quote(strval(v));
  }
  return Value::string(out);
}

Value map_from(const json& j) {
  return Value::make(j.is_object() ? j : json::object());
}

} // namespace

std::string to_yaml_text(const Value& v) {
  return yaml::dump(normalise_numbers(to_json(v)));
}

std::string to_json_text(const Value& v) {
  json j = normalise_numbers(to_json(v));
  std::string s;
  try {
    s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (const json::exception&) {
    return "";
  }
  // encoding/json escapes HTML-significant characters.
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else {
      out += c;
    }
  }
  return out;
}

void register_sprig(std::map<std::string, Func, std::less<>>& f) {
  using P = Param;
  auto str1 = [](std::string (*fn)(const std::string&)) {
    return Func{{P::String}, false, [fn](CallContext&, Args& a) {
                  return Value::string(fn(a[0].unboxed().as_string()));
                }};
  };
  f["default"] = {{P::Any, P::Any}, true, [](CallContext&, Args& a) {
                    if (a.size() < 2 || empty(a[1])) return a[0].unboxed();
                    return a[1].unboxed();
                  }};
  f["empty"] = {{P::Any}, false, [](CallContext&, Args& a) { return Value::boolean(empty(a[0])); }};
  f["coalesce"] = {{P::Any}, true, [](CallContext&, Args& a) {
                     for (auto& v : a) {
                       if (!empty(v)) return v.unboxed();
                     }
                     return Value();
                   }};
  f["ternary"] = {{P::Any, P::Any, P::Bool}, false, [](CallContext&, Args& a) {
                    return a[2].as_bool() ? a[0].unboxed() : a[1].unboxed();
                  }};
  f["quote"] = {{P::Any}, true, [](CallContext&, Args& a) {
                  return quote_each(a, [](const std::string& s) { return go_quote(s); });
                }};
  f["squote"] = {{P::Any}, true, [](CallContext&, Args& a) {
                   return quote_each(a, [](const std::string& s) { return "'" + s + "'"; });
                 }};
  f["indent"] = {{P::Int, P::String}, false, [](CallContext&, Args& a) {
                   return Value::string(indent(a[0].as_int(), a[1].unboxed().as_string()));
                 }};
  f["nindent"] = {{P::Int, P::String}, false, [](CallContext&, Args& a) {
                    return Value::string("\n" + indent(a[0].as_int(), a[1].unboxed().as_string()));
                  }};
  f["toYaml"] = {
      {P::Any}, false, [](CallContext&, Args& a) { return Value::string(to_yaml_text(a[0])); }};
  f["toJson"] = {
      {P::Any}, false, [](CallContext&, Args& a) { return Value::string(to_json_text(a[0])); }};
  f["fromYaml"] = {{P::String}, false, [](CallContext&, Args& a) {
                     try {
                       auto doc = yaml::load(a[0].unboxed().as_string(), "fromYaml");
                       if (!doc.value.is_object() && !doc.value.is_null()) {
                         return map_from(json{{"Error", "fromYaml: the document is not a map"}});
                       }
                       return map_from(doc.value);
                     } catch (const std::exception& e) {
                       return map_from(json{{"Error", e.what()}});
                     }
                   }};
  f["fromJson"] = {
      {P::String}, false, [](CallContext&, Args& a) {
        try {
          json j = json::parse(a[0].unboxed().as_string());
          if (!j.is_object()) {
            return map_from(json{{"Error", "fromJson: the document is not an object"}});
          }
          return map_from(j);
        } catch (const std::exception& e) {
          return map_from(json{{"Error", e.what()}});
        }
      }};
  f["int"] = {
      {P::Any}, false, [](CallContext&, Args& a) { return Value::integer(to_int64(a[0]), "int"); }};
  f["int64"] = {{P::Any}, false, [](CallContext&, Args& a) {
                  return Value::integer(to_int64(a[0]), "int64");
                }};
  f["float64"] = {
      {P::Any}, false, [](CallContext&, Args& a) { return Value::floating(to_float64(a[0])); }};
  f["toString"] = {
      {P::Any}, false, [](CallContext&, Args& a) { return Value::string(strval(a[0])); }};
  f["toStrings"] = {
      {P::Any}, false, [](CallContext&, Args& a) { return string_list(strslice(a[0])); }};
  f["upper"] = str1([](const std::string& s) { return ascii_case(s, true); });
  f["lower"] = str1([](const std::string& s) { return ascii_case(s, false); });
  f["title"] = str1([](const std::string& s) { return title(s); });
  f["trim"] = str1([](const std::string& s) { return trim_space(s); });
  f["b64enc"] = str1([](const std::string& s) { return kube::base64_encode(s); });
  f["b64dec"] = str1([](const std::string& s) {
    auto d = kube::base64_decode(s);
    return d ? *d : std::string("illegal base64 data");
  });
  f["sha256sum"] = str1([](const std::string& s) { return sha256_hex(s); });
  f["nospace"] = str1([](const std::string& s) {
    std::string out;
    for (char c : s) {
      if (!std::isspace(static_cast<unsigned char>(c))) out += c;
    }
    return out;
  });
  f["trimSuffix"] = {{P::String, P::String}, false, [](CallContext&, Args& a) {
                       std::string s = a[1].unboxed().as_string();
                       const std::string& suffix = a[0].unboxed().as_string();
                       if (s.ends_with(suffix)) s.resize(s.size() - suffix.size());
                       return Value::string(s);
                     }};
  f["trimPrefix"] = {{P::String, P::String}, false, [](CallContext&, Args& a) {
                       std::string s = a[1].unboxed().as_string();
                       const std::string& prefix = a[0].unboxed().as_string();
                       if (s.starts_with(prefix)) s.erase(0, prefix.size());
                       return Value::string(s);
                     }};
  f["trimAll"] = {{P::String, P::String}, false, [](CallContext&, Args& a) {
                    std::string s = a[1].unboxed().as_string();
                    const std::string& cut = a[0].unboxed().as_string();
                    auto b = s.find_first_not_of(cut);
                    if (b == std::string::npos) return Value::string("");
                    auto e = s.find_last_not_of(cut);
                    return Value::string(s.substr(b, e - b + 1));
                  }};
  f["replace"] = {{P::String, P::String, P::String}, false, [](CallContext&, Args& a) {
                    return Value::string(replace_all(a[2].unboxed().as_string(),
                                                     a[0].unboxed().as_string(),
                                                     a[1].unboxed().as_string()));
                  }};
  f["contains"] = {{P::String, P::String}, false, [](CallContext&, Args& a) {
                     return Value::boolean(a[1].unboxed().as_string().find(
                                               a[0].unboxed().as_string()) != std::string::npos);
                   }};
  f["hasPrefix"] = {{P::String, P::String}, false, [](CallContext&, Args& a) {
                      return Value::boolean(
                          a[1].unboxed().as_string().starts_with(a[0].unboxed().as_string()));
                    }};
  f["hasSuffix"] = {{P::String, P::String}, false, [](CallContext&, Args& a) {
                      return Value::boolean(
                          a[1].unboxed().as_string().ends_with(a[0].unboxed().as_string()));
                    }};
  f["repeat"] = {{P::Int, P::String}, false, [](CallContext&, Args& a) {
                   std::int64_t n = a[0].as_int();
                   const std::string& s = a[1].unboxed().as_string();
                   if (n < 0) throw FuncError("strings: negative Repeat count");
                   if (s.size() * static_cast<std::size_t>(n) > (64u << 20)) {
                     throw FuncError("repeat: result larger than 64 MiB");
                   }
                   return Value::string(repeat(s, n));
                 }};
  f["trunc"] = {{P::Int, P::String}, false, [](CallContext&, Args& a) {
                  std::int64_t c = a[0].as_int();
                  const std::string& s = a[1].unboxed().as_string();
                  auto n = static_cast<std::int64_t>(s.size());
                  if (c < 0 && n + c > 0)
                    return Value::string(s.substr(static_cast<std::size_t>(n + c)));
                  if (c >= 0 && n > c)
                    return Value::string(s.substr(0, static_cast<std::size_t>(c)));
                  return Value::string(s);
                }};
  f["substr"] = {{P::Int, P::Int, P::String}, false, [](CallContext&, Args& a) {
                   std::int64_t start = a[0].as_int();
                   std::int64_t end = a[1].as_int();
                   const std::string& s = a[2].unboxed().as_string();
                   auto n = static_cast<std::int64_t>(s.size());
                   if (start < 0)
                     return Value::string(s.substr(
                         0, static_cast<std::size_t>(std::clamp<std::int64_t>(end, 0, n))));
                   if (end < 0 || end > n)
                     return Value::string(s.substr(static_cast<std::size_t>(std::min(start, n))));
                   if (start > end) return Value::string("");
                   return Value::string(s.substr(static_cast<std::size_t>(start),
                                                 static_cast<std::size_t>(end - start)));
                 }};
  f["split"] = {{P::String, P::String}, false, [](CallContext&, Args& a) {
                  auto parts = split(a[1].unboxed().as_string(), a[0].unboxed().as_string());
                  json m = json::object();
                  for (std::size_t i = 0; i < parts.size(); ++i)
                    m["_" + std::to_string(i)] = parts[i];
                  return Value::make(std::move(m), "map[string]string");
                }};
  f["splitList"] = {{P::String, P::String}, false, [](CallContext&, Args& a) {
                      return string_list(
                          split(a[1].unboxed().as_string(), a[0].unboxed().as_string()));
                    }};
  f["join"] = {{P::String, P::Any}, false, [](CallContext&, Args& a) {
                 auto parts = strslice(a[1]);
                 std::string out;
                 for (std::size_t i = 0; i < parts.size(); ++i) {
                   if (i > 0) out += a[0].unboxed().as_string();
                   out += parts[i];
                 }
                 return Value::string(out);
               }};
  f["cat"] = {{P::Any}, true, [](CallContext&, Args& a) {
                std::string out;
                for (auto& v : a) {
                  if (!v.valid() || v.is_nil()) continue;
                  if (!out.empty()) out += ' ';
                  out += sprint_value(v);
                }
                return Value::string(trim_space(out));
              }};
  f["list"] = {{P::Any}, true, [](CallContext&, Args& a) {
                 json arr = json::array();
                 for (auto& v : a) arr.push_back(to_json(v));
                 return Value::make(std::move(arr));
               }};
  f["dict"] = {{P::Any}, true, [](CallContext&, Args& a) {
                 json m = json::object();
                 for (std::size_t i = 0; i < a.size(); i += 2) {
                   std::string key = strval(a[i]);
                   m[key] = i + 1 < a.size() ? to_json(a[i + 1]) : json("");
                 }
                 return Value::make(std::move(m));
               }};
  f["get"] = {{P::Map, P::String}, false, [](CallContext&, Args& a) {
                bool found = false;
                Value v = a[0].unboxed().member(a[1].unboxed().as_string(), &found);
                return found ? v.unboxed() : Value::string("");
              }};
  f["hasKey"] = {{P::Map, P::String}, false, [](CallContext&, Args& a) {
                   return Value::boolean(
                       a[0].unboxed().data().contains(a[1].unboxed().as_string()));
                 }};
  f["keys"] = {{P::Map}, true, [](CallContext&, Args& a) {
                 std::vector<std::string> out;
                 for (auto& m : a) {
                   for (const auto& [k, _] : m.unboxed().data().items()) out.push_back(k);
                 }
                 return string_list(out);
               }};
  f["sortAlpha"] = {{P::Any}, false, [](CallContext&, Args& a) {
                      auto items = strslice(a[0]);
                      std::sort(items.begin(), items.end());
                      return string_list(items);
                    }};
  f["first"] = {{P::Any}, false, [](CallContext&, Args& a) {
                  Value l = a[0].unboxed();
                  if (l.kind() != Value::Kind::List) {
                    throw FuncError("Cannot find first on type " + l.concrete_type());
                  }
                  return l.size() == 0 ? Value() : l.element(0).unboxed();
                }};
  f["last"] = {{P::Any}, false, [](CallContext&, Args& a) {
                 Value l = a[0].unboxed();
                 if (l.kind() != Value::Kind::List) {
                   throw FuncError("Cannot find last on type " + l.concrete_type());
                 }
                 return l.size() == 0 ? Value() : l.element(l.size() - 1).unboxed();
               }};
  f["has"] = {{P::Any, P::Any}, false, [](CallContext&, Args& a) {
                Value l = a[1].unboxed();
                if (l.kind() != Value::Kind::List) return Value::boolean(false);
                json needle = to_json(a[0]);
                for (std::size_t i = 0; i < l.size(); ++i) {
                  if (l.data()[i] == needle) return Value::boolean(true);
                }
                return Value::boolean(false);
              }};
  // Sprig's arithmetic works in int64 after converting every operand.
  f["add"] = {{P::Any}, true, [](CallContext&, Args& a) {
                std::int64_t sum = 0;
                for (auto& v : a) sum += to_int64(v);
                return Value::integer(sum, "int64");
              }};
  f["sub"] = {{P::Any, P::Any}, false, [](CallContext&, Args& a) {
                return Value::integer(to_int64(a[0]) - to_int64(a[1]), "int64");
              }};
  f["mul"] = {{P::Any, P::Any}, true, [](CallContext&, Args& a) {
                std::int64_t p = 1;
                for (auto& v : a) p *= to_int64(v);
                return Value::integer(p, "int64");
              }};
  f["div"] = {{P::Any, P::Any}, false, [](CallContext&, Args& a) {
                std::int64_t d = to_int64(a[1]);
                if (d == 0) throw FuncError("runtime error: integer divide by zero");
                return Value::integer(to_int64(a[0]) / d, "int64");
              }};
  f["mod"] = {{P::Any, P::Any}, false, [](CallContext&, Args& a) {
                std::int64_t d = to_int64(a[1]);
                if (d == 0) throw FuncError("runtime error: integer divide by zero");
                return Value::integer(to_int64(a[0]) % d, "int64");
              }};
  f["max"] = {{P::Any, P::Any}, true, [](CallContext&, Args& a) {
                std::int64_t m = to_int64(a[0]);
                for (auto& v : a) m = std::max(m, to_int64(v));
                return Value::integer(m, "int64");
              }};
  f["min"] = {{P::Any, P::Any}, true, [](CallContext&, Args& a) {
                std::int64_t m = to_int64(a[0]);
                for (auto& v : a) m = std::min(m, to_int64(v));
                return Value::integer(m, "int64");
              }};
  f["semverCompare"] = {{P::String, P::String}, false, [](CallContext&, Args& a) {
                          return Value::boolean(semver_matches(a[0].unboxed().as_string(),
                                                               a[1].unboxed().as_string()));
                        }};
  f["fail"] = {{P::String}, false, [](CallContext&, Args& a) -> Value {
                 throw FuncError(a[0].unboxed().as_string());
               }};
  // Helm's: an empty string counts as missing too.
  f["required"] = {{P::String, P::Any}, false, [](CallContext&, Args& a) {
                     Value v = a[1].unboxed();
                     if (!v.valid() || (v.kind() == Value::Kind::String && v.as_string().empty())) {
                       throw FuncError(a[0].unboxed().as_string());
                     }
                     return v;
                   }};
  f["include"] = {{P::String, P::Any}, false, [](CallContext& ctx, Args& a) {
                    return Value::string(ctx.include(a[0].unboxed().as_string(), a[1]));
                  }};
}

} // namespace capstan::manifest::tmpl
