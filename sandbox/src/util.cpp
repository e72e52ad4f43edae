// Time stamps, identifiers, name validation, selectors, JSONPath and base64.
#include "capstan/sandbox/util.h"

#include "capstan/sandbox/api_error.h"

#include <openssl/rand.h>

#include <cctype>
#include <cstdio>
#include <ctime>
#include <regex>

namespace capstan::sandbox {

using nlohmann::json;

std::string rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string now_rfc3339() {
  return rfc3339(std::chrono::system_clock::now());
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(const std::string& s) {
  std::tm tm{};
  int y, mo, d, h, mi, sec;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec) != 6)
    return std::nullopt;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string new_uid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

namespace {
constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
}

std::string random_suffix(std::size_t n) {
  std::string out;
  unsigned char b[64];
  RAND_bytes(b, static_cast<int>(std::min<std::size_t>(n, sizeof b)));
  for (std::size_t i = 0; i < n && i < sizeof b; ++i) out += kAlphabet[b[i] % 27];
  return out;
}

std::string safe_hash(const std::string& s) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  std::string out;
  for (int i = 0; i < 10; ++i) {
    out += kAlphabet[h % 27];
    h /= 27;
    if (h == 0) h = 2166136261u ^ static_cast<std::uint32_t>(i * 7919);
  }
  return out;
}

std::string check_dns1123_subdomain(const std::string& v) {
  static const std::regex re("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  if (v.size() > 253) return "must be no more than 253 characters";
  if (!std::regex_match(v, re))
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
           "'-' or '.', and must start and end with an alphanumeric character (e.g. "
           "'example.com', regex used for validation is "
           "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
  return "";
}

std::string check_dns1123_label(const std::string& v) {
  static const std::regex re("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  if (v.size() > 63) return "must be no more than 63 characters";
  if (!std::regex_match(v, re))
    return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
           "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
           "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
  return "";
}

std::string check_dns1035_label(const std::string& v) {
  static const std::regex re("[a-z]([-a-z0-9]*[a-z0-9])?");
  if (v.size() > 63) return "must be no more than 63 characters";
  if (!std::regex_match(v, re))
    return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
           "with an alphabetic character, and end with an alphanumeric character (e.g. "
           "'my-name',  or 'abc-123', regex used for validation is "
           "'[a-z]([-a-z0-9]*[a-z0-9])?')";
  return "";
}

std::string check_label_value(const std::string& v) {
  static const std::regex re("(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?");
  if (v.size() > 63) return "must be no more than 63 characters";
  if (!std::regex_match(v, re))
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', "
           "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  "
           "or 'my_value',  or '12345', regex used for validation is "
           "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
  return "";
}

std::string check_label_key(const std::string& v) {
  static const std::regex name("([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]");
  std::string prefix, n = v;
  auto slash = v.find('/');
  if (slash != std::string::npos) {
    prefix = v.substr(0, slash);
    n = v.substr(slash + 1);
    if (prefix.empty()) return "prefix part must be non-empty";
    std::string e = check_dns1123_subdomain(prefix);
    if (!e.empty()) return "prefix part " + e;
  }
  if (n.empty()) return "name part must be non-empty";
  if (n.size() > 63) return "name part must be no more than 63 characters";
  if (!std::regex_match(n, name))
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
           "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
           "'123-abc', regex used for validation is "
           "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
  return "";
}

namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// Splits on commas that are not inside parentheses.
std::vector<std::string> split_top(const std::string& s) {
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  for (char c : s) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

} // namespace

LabelSelector LabelSelector::parse(const std::string& text) {
  std::string error;
  auto parsed = labels::LabelSelector::parse(text, error);
  if (!parsed) {
    throw ApiError::bad_request("unable to parse requirement '" + text + "': " + error);
  }
  LabelSelector sel;
  sel.selector_ = std::move(*parsed);
  sel.text_ = text;
  return sel;
}

LabelSelector LabelSelector::from_object(const json& selector) {
  using Op = labels::LabelRequirement::Op;
  LabelSelector sel;
  if (!selector.is_object()) return sel;
  std::vector<labels::LabelRequirement> reqs;
  auto add = [&](labels::LabelRequirement r, const std::string& shown) {
    sel.text_ += (sel.text_.empty() ? "" : ",") + shown;
    reqs.push_back(std::move(r));
  };
  if (selector.contains("matchLabels") && selector["matchLabels"].is_object()) {
    for (const auto& [key, v] : selector["matchLabels"].items()) {
      const std::string value = v.is_string() ? v.get<std::string>() : v.dump();
      add({key, Op::kIn, {value}}, key + "=" + value);
    }
  }
  if (selector.contains("matchExpressions") && selector["matchExpressions"].is_array()) {
    for (const auto& e : selector["matchExpressions"]) {
      labels::LabelRequirement r;
      r.key = e.value("key", "");
      const std::string op = e.value("operator", "");
      if (e.contains("values") && e["values"].is_array()) {
        for (const auto& v : e["values"]) {
          if (v.is_string()) r.values.push_back(v);
        }
      }
      std::string listed;
      for (const auto& v : r.values) listed += (listed.empty() ? "" : ",") + v;
      if (op == "In" || op == "NotIn") {
        r.op = op == "In" ? Op::kIn : Op::kNotIn;
        add(std::move(r), e.value("key", "") + (op == "In" ? " in (" : " notin (") + listed + ")");
      } else if (op == "Exists" || op == "DoesNotExist") {
        r.op = op == "Exists" ? Op::kExists : Op::kDoesNotExist;
        r.values.clear();
        add(std::move(r), (op == "Exists" ? "" : "!") + e.value("key", ""));
      }
    }
  }
  sel.selector_ = labels::LabelSelector(std::move(reqs));
  return sel;
}

FieldSelector FieldSelector::parse(const std::string& text) {
  FieldSelector sel;
  if (trim(text).empty()) return sel;
  for (const auto& raw : split_top(text)) {
    std::string part = trim(raw);
    Requirement r;
    if (auto p = part.find("!="); p != std::string::npos) {
      r.field = trim(part.substr(0, p));
      r.equal = false;
      r.value = trim(part.substr(p + 2));
    } else if (auto p2 = part.find("=="); p2 != std::string::npos) {
      r.field = trim(part.substr(0, p2));
      r.value = trim(part.substr(p2 + 2));
    } else if (auto p3 = part.find('='); p3 != std::string::npos) {
      r.field = trim(part.substr(0, p3));
      r.value = trim(part.substr(p3 + 1));
    } else {
      throw ApiError::bad_request("invalid selector: '" + text + "'; can't understand '" + part +
                                  "'");
    }
    sel.reqs_.push_back(std::move(r));
  }
  return sel;
}

namespace {
std::optional<std::string> field_value(const json& o, const std::string& field) {
  static const std::vector<std::pair<std::string, std::string>> known = {
      {"metadata.name", "/metadata/name"},
      {"metadata.namespace", "/metadata/namespace"},
      {"status.phase", "/status/phase"},
      {"spec.nodeName", "/spec/nodeName"},
      {"spec.restartPolicy", "/spec/restartPolicy"},
      {"spec.schedulerName", "/spec/schedulerName"},
      {"spec.serviceAccountName", "/spec/serviceAccountName"},
      {"status.podIP", "/status/podIP"},
      {"involvedObject.kind", "/involvedObject/kind"},
      {"involvedObject.name", "/involvedObject/name"},
      {"involvedObject.namespace", "/involvedObject/namespace"},
      {"involvedObject.uid", "/involvedObject/uid"},
      {"involvedObject.apiVersion", "/involvedObject/apiVersion"},
      {"involvedObject.fieldPath", "/involvedObject/fieldPath"},
      {"involvedObject.resourceVersion", "/involvedObject/resourceVersion"},
      {"reason", "/reason"},
      {"source", "/source/component"},
      {"type", "/type"},
      {"spec.unschedulable", "/spec/unschedulable"},
      {"status.successful", "/status/succeeded"},
  };
  for (const auto& [name, ptr] : known) {
    if (name != field) continue;
    json::json_pointer p(ptr);
    if (!o.contains(p)) return std::string();
    const json& v = o[p];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
    return v.dump();
  }
  return std::nullopt;
}
} // namespace

bool FieldSelector::matches(const json& object) const {
  for (const auto& r : reqs_) {
    auto v = field_value(object, r.field);
    if (!v) return false;
    if ((*v == r.value) != r.equal) return false;
  }
  return true;
}

std::optional<std::string> FieldSelector::required(const std::string& field) const {
  for (const auto& r : reqs_)
    if (r.field == field && r.equal) return r.value;
  return std::nullopt;
}

namespace {
// ".a.b[0].c" → tokens a, b, [0], c
std::vector<std::string> path_tokens(const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  std::string p = path;
  if (!p.empty() && p.front() == '{' && p.back() == '}') p = p.substr(1, p.size() - 2);
  for (std::size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '.') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c == '[') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      auto close = p.find(']', i);
      if (close == std::string::npos) break;
      out.push_back(p.substr(i, close - i + 1));
      i = close;
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}
} // namespace

json json_path_get(const json& object, const std::string& path) {
  const json* cur = &object;
  for (const auto& t : path_tokens(path)) {
    if (t.front() == '[') {
      std::string inner = t.substr(1, t.size() - 2);
      if (!cur->is_array()) return json();
      try {
        std::size_t idx = std::stoul(inner);
        if (idx >= cur->size()) return json();
        cur = &(*cur)[idx];
      } catch (const std::exception&) {
        return json();
      }
    } else {
      if (!cur->is_object() || !cur->contains(t)) return json();
      cur = &(*cur)[t];
    }
  }
  return *cur;
}

void json_path_set(json& object, const std::string& path, const json& value) {
  json* cur = &object;
  for (const auto& t : path_tokens(path)) {
    if (t.front() == '[') return; // only plain field paths are writable
    if (!cur->is_object()) *cur = json::object();
    cur = &(*cur)[t];
  }
  *cur = value;
}

std::string base64_encode(const std::string& in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  while (i + 2 < in.size()) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
    i += 3;
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(const std::string& in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int a = val(in[i]), b = val(in[i + 1]);
    if (a < 0 || b < 0) return std::nullopt;
    out += static_cast<char>((a << 2) | (b >> 4));
    if (in[i + 2] == '=') break;
    int c = val(in[i + 2]);
    if (c < 0) return std::nullopt;
    out += static_cast<char>(((b & 15) << 4) | (c >> 2));
    if (in[i + 3] == '=') break;
    int d = val(in[i + 3]);
    if (d < 0) return std::nullopt;
    out += static_cast<char>(((c & 3) << 6) | d);
  }
  return out;
}

} // namespace capstan::sandbox
