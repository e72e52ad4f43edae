// Go's fmt formatting rules, verb by verb, for the values a template can hold.
#include "gofmt.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "gostrings.h"

namespace capstan::manifest::tmpl {
namespace {

// A decimal number as strconv holds it: digits without leading/trailing zeros, and the
// position of the decimal point relative to them.
struct Decimal {
  std::string digits;
  int dp = 0;
};

// Leading zeros move the point, trailing ones say nothing; zero has no digits at all.
Decimal trimmed(Decimal d) {
  std::size_t lead = d.digits.find_first_not_of('0');
  if (lead == std::string::npos) return Decimal{};
  d.digits.erase(0, lead);
  d.dp -= static_cast<int>(lead);
  while (!d.digits.empty() && d.digits.back() == '0') d.digits.pop_back();
  return d;
}

Decimal from_scientific(const char* first, const char* last) {
  Decimal d;
  std::string_view s(first, static_cast<std::size_t>(last - first));
  auto e = s.find_first_of("eE");
  std::string_view mant = s.substr(0, e);
  int exp = 0;
  if (e != std::string_view::npos) {
    std::string_view es = s.substr(e + 1);
    if (!es.empty() && es[0] == '+') es.remove_prefix(1);
    std::from_chars(es.data(), es.data() + es.size(), exp);
  }
  for (char c : mant) {
    if (c >= '0' && c <= '9') d.digits += c;
  }
  d.dp = exp + 1;
  return trimmed(d);
}

Decimal from_fixed(const char* first, const char* last) {
  Decimal d;
  std::string_view s(first, static_cast<std::size_t>(last - first));
  auto point = s.find('.');
  std::string_view ip = s.substr(0, point);
  std::string_view fp = point == std::string_view::npos ? std::string_view() : s.substr(point + 1);
  d.digits = std::string(ip) + std::string(fp);
  d.dp = static_cast<int>(ip.size());
  return trimmed(d);
}

std::string fmt_e(bool neg, const Decimal& d, int prec, char e) {
  std::string out = neg ? "-" : "";
  out += d.digits.empty() ? '0' : d.digits[0];
  if (prec > 0) {
    out += '.';
    for (int i = 1; i <= prec; ++i) {
      out += static_cast<std::size_t>(i) < d.digits.size() ? d.digits[static_cast<std::size_t>(i)]
                                                           : '0';
    }
  }
  out += e;
  int exp = d.digits.empty() ? 0 : d.dp - 1;
  out += exp < 0 ? '-' : '+';
  if (exp < 0) exp = -exp;
  if (exp < 10) out += '0';
  out += std::to_string(exp);
  return out;
}

std::string fmt_f(bool neg, const Decimal& d, int prec) {
  std::string out = neg ? "-" : "";
  if (d.dp > 0) {
    for (int i = 0; i < d.dp; ++i) {
      out += static_cast<std::size_t>(i) < d.digits.size() ? d.digits[static_cast<std::size_t>(i)]
                                                           : '0';
    }
  } else {
    out += '0';
  }
  if (prec > 0) {
    out += '.';
    for (int i = 1; i <= prec; ++i) {
      int j = d.dp + i - 1;
      out += (j >= 0 && static_cast<std::size_t>(j) < d.digits.size())
                 ? d.digits[static_cast<std::size_t>(j)]
                 : '0';
    }
  }
  return out;
}

struct Spec {
  bool minus = false, plus = false, sharp = false, space = false, zero = false;
  int width = -1;
  int prec = -1;
};

std::string pad(const std::string& s, const Spec& spec) {
  if (spec.width < 0) return s;
  std::size_t n = utf8_count(s);
  if (n >= static_cast<std::size_t>(spec.width)) return s;
  std::size_t fill = static_cast<std::size_t>(spec.width) - n;
  if (spec.minus) return s + std::string(fill, ' ');
  if (spec.zero) {
    // Zero padding goes after a sign.
    std::size_t at = (!s.empty() && (s[0] == '-' || s[0] == '+' || s[0] == ' ')) ? 1 : 0;
    return s.substr(0, at) + std::string(fill, '0') + s.substr(at);
  }
  return std::string(fill, ' ') + s;
}

std::string format_int(std::int64_t v, char verb, const Spec& spec) {
  bool neg = v < 0;
  std::uint64_t u = neg ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
  int base = 10;
  switch (verb) {
  case 'x':
  case 'X':
    base = 16;
    break;
  case 'o':
  case 'O':
    base = 8;
    break;
  case 'b':
    base = 2;
    break;
  default:
    break;
  }
  char buf[80];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, u, base);
  std::string digits(buf, end);
  if (verb == 'X') {
    for (auto& c : digits) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (spec.prec >= 0) {
    if (spec.prec == 0 && u == 0) digits.clear();
    while (static_cast<int>(digits.size()) < spec.prec) digits = "0" + digits;
  }
  std::string prefix;
  if (spec.sharp) {
    if (verb == 'x') prefix = "0x";
    if (verb == 'X') prefix = "0X";
    if (verb == 'o' && (digits.empty() || digits[0] != '0')) prefix = "0";
    if (verb == 'b') prefix = "0b";
  }
  if (verb == 'O') prefix = "0o";
  std::string sign = neg ? "-" : (spec.plus ? "+" : (spec.space ? " " : ""));
  std::string body = prefix + digits;
  if (spec.zero && !spec.minus && spec.width > 0 && spec.prec < 0) {
    int fill = spec.width - static_cast<int>(sign.size() + body.size());
    if (fill > 0) body = prefix + std::string(static_cast<std::size_t>(fill), '0') + digits;
    return sign + body;
  }
  Spec no_zero = spec;
  no_zero.zero = false;
  return pad(sign + body, no_zero);
}

std::string format_float_verb(double v, char verb, const Spec& spec) {
  int prec = spec.prec;
  char fverb = verb;
  if (verb == 'v') {
    fverb = 'g';
    prec = -1;
  } else if ((verb == 'e' || verb == 'E' || verb == 'f' || verb == 'F') && prec < 0) {
    prec = 6;
  }
  if (fverb == 'F') fverb = 'f';
  std::string num = format_float(v, fverb, prec);
  if (std::isinf(v) || std::isnan(v)) {
    Spec s = spec;
    s.zero = false;
    if (spec.plus && num[0] != '-' && !std::isnan(v)) num = "+" + num;
    return pad(num, s);
  }
  if (num[0] != '-') {
    if (spec.plus) {
      num = "+" + num;
    } else if (spec.space) {
      num = " " + num;
    }
  }
  return pad(num, spec);
}

std::string format_string(const std::string& s, char verb, const Spec& spec) {
  std::string body = s;
  if (spec.prec >= 0 && (verb == 's' || verb == 'v' || verb == 'q')) {
    std::size_t i = 0;
    for (int n = 0; n < spec.prec && i < body.size(); ++n) {
      std::int32_t r = 0;
      i += static_cast<std::size_t>(utf8_decode(body, i, r));
    }
    body = body.substr(0, i);
  }
  switch (verb) {
  case 's':
  case 'v':
    return pad(body, spec);
  case 'q':
    if (spec.sharp && body.find('`') == std::string::npos) return pad("`" + body + "`", spec);
    return pad(go_quote(body), spec);
  case 'x':
  case 'X': {
    std::string out;
    char buf[4];
    for (std::size_t i = 0; i < body.size(); ++i) {
      if (spec.space && i > 0) out += ' ';
      std::snprintf(buf, sizeof buf, verb == 'x' ? "%02x" : "%02X",
                    static_cast<unsigned char>(body[i]));
      out += buf;
    }
    return pad(out, spec);
  }
  default:
    return {};
  }
}

bool verb_ok(Value::Kind k, char verb) {
  if (verb == 'v' || verb == 'T') return true;
  switch (k) {
  case Value::Kind::Bool:
    return verb == 't';
  case Value::Kind::Int:
    return std::string_view("bcdoOqxXU").find(verb) != std::string_view::npos;
  case Value::Kind::Float:
    return std::string_view("beEfFgGxX").find(verb) != std::string_view::npos;
  case Value::Kind::String:
    return std::string_view("sqxX").find(verb) != std::string_view::npos;
  default:
    return true; // composites apply the verb to their elements
  }
}

std::string format_arg(const Value& v, char verb, const Spec& spec, bool top);

std::string bad_verb(const Value& v, char verb) {
  if (!v.valid() || v.is_nil()) return std::string("%!") + verb + "(<nil>)";
  return std::string("%!") + verb + "(" + v.concrete_type() + "=" +
         format_arg(v, 'v', Spec{}, false) + ")";
}

std::string format_arg(const Value& v, char verb, const Spec& spec, bool top) {
  if (verb == 'T') return pad(v.valid() && !v.is_nil() ? v.concrete_type() : "<nil>", spec);
  if (!v.valid() || v.is_nil()) {
    if (verb == 'v') return pad("<nil>", spec);
    return bad_verb(v, verb);
  }
  if (!verb_ok(v.kind(), verb)) return bad_verb(v, verb);
  switch (v.kind()) {
  case Value::Kind::Bool:
    return pad(v.as_bool() ? "true" : "false", spec);
  case Value::Kind::Int: {
    std::int64_t i = v.as_int();
    if (verb == 'v' || verb == 'd') return format_int(i, 'd', spec);
    if (verb == 'c') {
      std::string s;
      utf8_append(s, static_cast<std::int32_t>(i));
      return pad(s, spec);
    }
    if (verb == 'q') return pad(go_quote_rune(static_cast<std::int32_t>(i)), spec);
    if (verb == 'U') {
      char buf[24];
      std::snprintf(buf, sizeof buf, "U+%04llX", static_cast<unsigned long long>(i));
      return pad(buf, spec);
    }
    return format_int(i, verb, spec);
  }
  case Value::Kind::Float:
    return format_float_verb(v.as_float(), verb, spec);
  case Value::Kind::String:
    return format_string(v.as_string(), verb, spec);
  case Value::Kind::List: {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out += ' ';
      out += format_arg(v.element(i).unboxed(), verb, spec, false);
    }
    return out + "]";
  }
  case Value::Kind::Map: {
    std::string out = "map[";
    bool first = true;
    for (const auto& [k, _] : v.data().items()) {
      if (!first) out += ' ';
      first = false;
      out += format_string(k, verb == 'v' ? 's' : verb, Spec{});
      out += ':';
      out += format_arg(v.member(k).unboxed(), verb, spec, false);
    }
    return out + "]";
  }
  default:
    break;
  }
  (void)top;
  return {};
}

} // namespace

std::string format_float(double v, char verb, int prec) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  bool neg = std::signbit(v);
  double a = std::fabs(v);
  char buf[512];
  Decimal d;
  bool shortest = prec < 0;
  char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(verb)));
  if (lower == 'f' && !shortest) {
    auto r = std::to_chars(buf, buf + sizeof buf, a, std::chars_format::fixed, prec);
    d = from_fixed(buf, r.ptr);
  } else if (shortest) {
    auto r = std::to_chars(buf, buf + sizeof buf, a, std::chars_format::scientific);
    d = from_scientific(buf, r.ptr);
  } else {
    int sig = lower == 'e' ? prec + 1 : (prec == 0 ? 1 : prec);
    auto r = std::to_chars(buf, buf + sizeof buf, a, std::chars_format::scientific, sig - 1);
    d = from_scientific(buf, r.ptr);
  }
  if (shortest) {
    if (lower == 'e') prec = std::max(static_cast<int>(d.digits.size()) - 1, 0);
    if (lower == 'f') prec = std::max(static_cast<int>(d.digits.size()) - d.dp, 0);
    if (lower == 'g') prec = static_cast<int>(d.digits.size());
  }
  char e_char = std::isupper(static_cast<unsigned char>(verb)) ? 'E' : 'e';
  switch (lower) {
  case 'e':
    return fmt_e(neg, d, prec, e_char);
  case 'f':
    return fmt_f(neg, d, prec);
  case 'g': {
    if (prec == 0) prec = 1;
    int nd = static_cast<int>(d.digits.size());
    int eprec = prec;
    if (eprec > nd && nd >= d.dp) eprec = nd;
    if (shortest) eprec = 6;
    int exp = d.digits.empty() ? 0 : d.dp - 1;
    if (exp < -4 || exp >= eprec) {
      if (prec > nd) prec = nd;
      return fmt_e(neg, d, std::max(prec - 1, 0), e_char);
    }
    if (prec > d.dp) prec = nd;
    return fmt_f(neg, d, std::max(prec - d.dp, 0));
  }
  default:
    return fmt_e(neg, d, prec, e_char);
  }
}

std::string sprint_value(const Value& v) {
  return format_arg(v.unboxed(), 'v', Spec{}, true);
}

std::string go_sprint(const std::vector<Value>& args) {
  std::string out;
  bool prev_string = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    Value a = args[i].unboxed();
    bool is_string = a.kind() == Value::Kind::String;
    if (i > 0 && !is_string && !prev_string) out += ' ';
    out += format_arg(a, 'v', Spec{}, true);
    prev_string = is_string;
  }
  return out;
}

std::string go_sprintln(const std::vector<Value>& args) {
  std::string out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i > 0) out += ' ';
    out += format_arg(args[i].unboxed(), 'v', Spec{}, true);
  }
  return out + "\n";
}

std::string go_sprintf(const std::string& format, const std::vector<Value>& args) {
  std::string out;
  std::size_t arg = 0;
  std::size_t i = 0;
  const std::size_t n = format.size();
  while (i < n) {
    if (format[i] != '%') {
      out += format[i++];
      continue;
    }
    ++i;
    if (i >= n) {
      out += "%!(NOVERB)";
      break;
    }
    Spec spec;
    for (; i < n; ++i) {
      char c = format[i];
      if (c == '-') {
        spec.minus = true;
      } else if (c == '+') {
        spec.plus = true;
      } else if (c == '#') {
        spec.sharp = true;
      } else if (c == ' ') {
        spec.space = true;
      } else if (c == '0') {
        spec.zero = true;
      } else {
        break;
      }
    }
    auto read_num = [&](int& target) -> bool {
      if (i < n && format[i] == '*') {
        ++i;
        if (arg < args.size() && args[arg].unboxed().kind() == Value::Kind::Int) {
          target = static_cast<int>(args[arg++].unboxed().as_int());
          if (target < 0) {
            spec.minus = true;
            target = -target;
          }
          return true;
        }
        ++arg;
        return false;
      }
      if (i < n && format[i] >= '0' && format[i] <= '9') {
        target = 0;
        while (i < n && format[i] >= '0' && format[i] <= '9') {
          target = target * 10 + (format[i++] - '0');
          if (target > 1'000'000) target = 1'000'000;
        }
      }
      return true;
    };
    if (!read_num(spec.width)) out += "%!(BADWIDTH)";
    if (i < n && format[i] == '.') {
      ++i;
      spec.prec = 0;
      if (!read_num(spec.prec)) out += "%!(BADPREC)";
    }
    if (i >= n) {
      out += "%!(NOVERB)";
      break;
    }
    std::int32_t verb_rune = 0;
    int w = utf8_decode(format, i, verb_rune);
    i += static_cast<std::size_t>(w);
    if (verb_rune == '%') {
      out += '%';
      continue;
    }
    std::string verb_text;
    utf8_append(verb_text, verb_rune);
    if (arg >= args.size()) {
      out += "%!" + verb_text + "(MISSING)";
      continue;
    }
    const Value& v = args[arg++];
    if (verb_rune > 0x7f) {
      out += "%!" + verb_text + "(" + v.unboxed().concrete_type() + "=" + sprint_value(v) + ")";
      continue;
    }
    out += format_arg(v.unboxed(), static_cast<char>(verb_rune), spec, true);
  }
  if (arg < args.size()) {
    out += "%!(EXTRA ";
    for (std::size_t k = arg; k < args.size(); ++k) {
      if (k > arg) out += ", ";
      Value v = args[k].unboxed();
      out += (v.valid() ? v.concrete_type() : "<nil>") + "=" + format_arg(v, 'v', Spec{}, true);
    }
    out += ")";
  }
  return out;
}

} // namespace capstan::manifest::tmpl
