// The template lexer: a state machine over the text, mirroring Go's lex.go state for state so
// that trim markers, comments and error messages behave the same.
#include "lexer.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "gostrings.h"

namespace capstan::manifest::tmpl {
namespace {

constexpr std::string_view kLeftDelim = "{{";
constexpr std::string_view kRightDelim = "}}";
constexpr std::string_view kLeftComment = "/*";
constexpr std::string_view kRightComment = "*/";
constexpr std::size_t kTrimMarkerLen = 2; // "- " or " -"

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_alnum(std::int32_t r) {
  if (r == '_') return true;
  if (r < 0x80) return std::isalnum(r) != 0;
  return true; // Go accepts Unicode letters and digits; other runes fail later as bad characters
}

bool has_left_trim_marker(std::string_view s) {
  return s.size() >= 2 && s[0] == '-' && is_space(s[1]);
}
bool has_right_trim_marker(std::string_view s) {
  return s.size() >= 2 && is_space(s[0]) && s[1] == '-';
}

const std::map<std::string, ItemType, std::less<>>& keywords() {
  static const std::map<std::string, ItemType, std::less<>> k = {
      {".", ItemType::Dot},
      {"block", ItemType::Block},
      {"break", ItemType::Break},
      {"continue", ItemType::Continue},
      {"define", ItemType::Define},
      {"else", ItemType::Else},
      {"end", ItemType::End},
      {"if", ItemType::If},
      {"range", ItemType::Range},
      {"nil", ItemType::Nil},
      {"template", ItemType::Template},
      {"with", ItemType::With},
  };
  return k;
}

class Lexer {
public:
  explicit Lexer(std::string_view input) : input_(input) {}

  std::vector<Item> run() {
    for (std::size_t i = 0; i < input_.size(); ++i) {
      if (input_[i] == '\n') newlines_.push_back(i);
    }
    St state = St::Text;
    while (state != St::Done) state = step(state);
    return std::move(items_);
  }

private:
  enum class St {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Space,
    Identifier,
    Field,
    Variable,
    Char,
    Number,
    Quote,
    RawQuote,
    Done
  };
  using State = St;

  St step(St s) {
    switch (s) {
    case St::Text:
      return lex_text();
    case St::LeftDelim:
      return lex_left_delim();
    case St::Comment:
      return lex_comment();
    case St::RightDelim:
      return lex_right_delim();
    case St::InsideAction:
      return lex_inside_action();
    case St::Space:
      return lex_space();
    case St::Identifier:
      return lex_identifier();
    case St::Field:
      return lex_field();
    case St::Variable:
      return lex_variable();
    case St::Char:
      return lex_char();
    case St::Number:
      return lex_number();
    case St::Quote:
      return lex_quote();
    case St::RawQuote:
      return lex_raw_quote();
    case St::Done:
      break;
    }
    return St::Done;
  }

  // Line of a byte offset, from 1.
  int line_of(std::size_t pos) const {
    auto it = std::lower_bound(newlines_.begin(), newlines_.end(), pos);
    return static_cast<int>(it - newlines_.begin()) + 1;
  }
  std::vector<std::size_t> newlines_;

  std::string_view input_;
  std::size_t start_ = 0;
  std::size_t pos_ = 0;
  int paren_depth_ = 0;
  std::vector<Item> items_;

  static constexpr std::int32_t kEof = -1;

  std::int32_t next() {
    if (pos_ >= input_.size()) {
      last_width_ = 0;
      return kEof;
    }
    std::int32_t r = 0;
    int w = utf8_decode(input_, pos_, r);
    last_width_ = static_cast<std::size_t>(w);
    pos_ += last_width_;
    return r;
  }
  void backup() {
    if (last_width_ == 0) return;
    pos_ -= last_width_;
  }
  std::int32_t peek() {
    std::int32_t r = next();
    backup();
    return r;
  }
  std::size_t last_width_ = 0;

  void emit(ItemType t) {
    items_.push_back(
        {t, start_, std::string(input_.substr(start_, pos_ - start_)), line_of(start_)});
    start_ = pos_;
  }
  void ignore() { start_ = pos_; }
  State error(std::string message) {
    items_.push_back({ItemType::Error, start_, std::move(message), line_of(start_)});
    return St::Done;
  }

  // At "}}" or " -}}"? Returns whether a delimiter is here and whether it trims.
  bool at_right_delim(bool& trim) {
    std::string_view rest = input_.substr(pos_);
    if (has_right_trim_marker(rest) && rest.substr(kTrimMarkerLen).starts_with(kRightDelim)) {
      trim = true;
      return true;
    }
    trim = false;
    return rest.starts_with(kRightDelim);
  }

  bool at_terminator() {
    std::int32_t r = peek();
    if (r == kEof) return true;
    if (r < 0x80 && is_space(static_cast<char>(r))) return true;
    switch (r) {
    case '.':
    case ',':
    case '|':
    case ':':
    case ')':
    case '(':
      return true;
    default:
      break;
    }
    return input_.substr(pos_).starts_with(kRightDelim);
  }

  State lex_text() {
    std::size_t x = input_.find(kLeftDelim, pos_);
    if (x != std::string_view::npos) {
      if (x > pos_) {
        pos_ = x;
        std::size_t trim_length = 0;
        std::string_view after = input_.substr(x + kLeftDelim.size());
        if (has_left_trim_marker(after)) {
          std::string_view text = input_.substr(start_, pos_ - start_);
          std::size_t keep = text.find_last_not_of(" \t\r\n");
          trim_length = keep == std::string_view::npos ? text.size() : text.size() - keep - 1;
        }
        pos_ -= trim_length;
        if (pos_ > start_) emit(ItemType::Text);
        pos_ += trim_length;
        ignore();
      }
      return St::LeftDelim;
    }
    pos_ = input_.size();
    if (pos_ > start_) emit(ItemType::Text);
    emit(ItemType::Eof);
    return St::Done;
  }

  State lex_left_delim() {
    pos_ += kLeftDelim.size();
    bool trim = has_left_trim_marker(input_.substr(pos_));
    std::size_t after_marker = trim ? kTrimMarkerLen : 0;
    if (input_.substr(pos_ + after_marker).starts_with(kLeftComment)) {
      pos_ += after_marker;
      ignore();
      return St::Comment;
    }
    emit(ItemType::LeftDelim);
    pos_ += after_marker;
    ignore();
    paren_depth_ = 0;
    return St::InsideAction;
  }

  State lex_comment() {
    pos_ += kLeftComment.size();
    std::size_t x = input_.find(kRightComment, pos_);
    if (x == std::string_view::npos) return error("unclosed comment");
    pos_ = x + kRightComment.size();
    bool trim = false;
    if (!at_right_delim(trim)) return error("comment ends before closing delimiter");
    // Comments are dropped, as Go does unless asked to keep them.
    if (trim) pos_ += kTrimMarkerLen;
    pos_ += kRightDelim.size();
    if (trim) skip_leading_space();
    ignore();
    return St::Text;
  }

  void skip_leading_space() {
    while (pos_ < input_.size() && is_space(input_[pos_])) ++pos_;
  }

  State lex_right_delim() {
    bool trim = false;
    at_right_delim(trim);
    if (trim) {
      pos_ += kTrimMarkerLen;
      ignore();
    }
    pos_ += kRightDelim.size();
    emit(ItemType::RightDelim);
    if (trim) {
      skip_leading_space();
      ignore();
    }
    return St::Text;
  }

  State lex_inside_action() {
    bool trim = false;
    if (at_right_delim(trim)) {
      if (paren_depth_ == 0) return St::RightDelim;
      return error("unclosed left paren");
    }
    std::int32_t r = next();
    if (r == kEof) return error("unclosed action");
    if (r < 0x80 && is_space(static_cast<char>(r))) {
      backup();
      return St::Space;
    }
    switch (r) {
    case '=':
      emit(ItemType::Assign);
      return St::InsideAction;
    case ':':
      if (next() != '=') return error("expected :=");
      emit(ItemType::Declare);
      return St::InsideAction;
    case '|':
      emit(ItemType::Pipe);
      return St::InsideAction;
    case '"':
      return St::Quote;
    case '`':
      return St::RawQuote;
    case '$':
      return St::Variable;
    case '\'':
      return St::Char;
    case '(':
      emit(ItemType::LeftParen);
      ++paren_depth_;
      return St::InsideAction;
    case ')':
      --paren_depth_;
      if (paren_depth_ < 0) return error("unexpected right paren");
      emit(ItemType::RightParen);
      return St::InsideAction;
    default:
      break;
    }
    if (r == '.') {
      // ".field" unless a digit follows: then it is a number like .5
      if (pos_ < input_.size()) {
        char c = input_[pos_];
        if (c < '0' || c > '9') return St::Field;
      }
    }
    if (r == '.' || r == '+' || r == '-' || (r >= '0' && r <= '9')) {
      backup();
      return St::Number;
    }
    if (is_alnum(r)) {
      backup();
      return St::Identifier;
    }
    if (r < 0x7f && r >= 0x20) {
      emit(ItemType::Char);
      return St::InsideAction;
    }
    return error("unrecognized character in action: " + go_rune_name(r));
  }

  State lex_space() {
    std::size_t spaces = 0;
    while (pos_ < input_.size() && is_space(input_[pos_])) {
      next();
      ++spaces;
    }
    // A space may be the first half of a trim-marked closing delimiter " -}}".
    if (pos_ > 0 && has_right_trim_marker(input_.substr(pos_ - 1)) &&
        input_.substr(pos_ - 1 + kTrimMarkerLen).starts_with(kRightDelim)) {
      backup();
      if (spaces == 1) return St::InsideAction;
    }
    emit(ItemType::Space);
    return St::InsideAction;
  }

  State lex_identifier() {
    std::int32_t r = 0;
    for (;;) {
      r = next();
      if (r != kEof && is_alnum(r)) continue;
      backup();
      break;
    }
    std::string_view word = input_.substr(start_, pos_ - start_);
    if (!at_terminator()) return error("bad character " + go_rune_name(peek()));
    auto it = keywords().find(word);
    if (it != keywords().end() && it->second > ItemType::Keyword) {
      emit(it->second);
    } else if (word == "true" || word == "false") {
      emit(ItemType::Bool);
    } else {
      emit(ItemType::Identifier);
    }
    return St::InsideAction;
  }

  State lex_field() { return lex_field_or_variable(ItemType::Field); }
  State lex_variable() { return lex_field_or_variable(ItemType::Variable); }

  State lex_field_or_variable(ItemType type) {
    if (at_terminator()) { // a lone "." or "$"
      emit(type == ItemType::Variable ? ItemType::Variable : ItemType::Dot);
      return St::InsideAction;
    }
    for (;;) {
      std::int32_t r = next();
      if (r != kEof && is_alnum(r)) continue;
      backup();
      break;
    }
    if (!at_terminator()) return error("bad character " + go_rune_name(peek()));
    emit(type);
    return St::InsideAction;
  }

  State lex_char() {
    for (;;) {
      std::int32_t r = next();
      if (r == '\\') {
        std::int32_t n = next();
        if (n != kEof && n != '\n') continue;
        return error("unterminated character constant");
      }
      if (r == kEof || r == '\n') return error("unterminated character constant");
      if (r == '\'') break;
    }
    emit(ItemType::CharConstant);
    return St::InsideAction;
  }

  State lex_number() {
    if (!scan_number()) {
      return error("bad number syntax: " + go_quote(input_.substr(start_, pos_ - start_)));
    }
    emit(ItemType::Number);
    return St::InsideAction;
  }

  bool accept(std::string_view valid) {
    std::int32_t r = next();
    if (r != kEof && r < 0x80 && valid.find(static_cast<char>(r)) != std::string_view::npos) {
      return true;
    }
    backup();
    return false;
  }
  void accept_run(std::string_view valid) {
    while (accept(valid)) {
    }
  }

  bool scan_number() {
    accept("+-");
    std::string_view digits = "0123456789_";
    if (accept("0")) {
      if (accept("xX")) {
        digits = "0123456789abcdefABCDEF_";
      } else if (accept("oO")) {
        digits = "01234567_";
      } else if (accept("bB")) {
        digits = "01_";
      }
    }
    accept_run(digits);
    if (accept(".")) accept_run(digits);
    if (digits.size() == 11 && accept("eE")) {
      accept("+-");
      accept_run("0123456789_");
    }
    if (digits.size() == 23 && accept("pP")) {
      accept("+-");
      accept_run("0123456789_");
    }
    accept("i");
    std::int32_t r = peek();
    if (r != kEof && is_alnum(r)) {
      next();
      return false;
    }
    return true;
  }

  State lex_quote() {
    for (;;) {
      std::int32_t r = next();
      if (r == '\\') {
        std::int32_t n = next();
        if (n != kEof && n != '\n') continue;
        return error("unterminated quoted string");
      }
      if (r == kEof || r == '\n') return error("unterminated quoted string");
      if (r == '"') break;
    }
    emit(ItemType::String);
    return St::InsideAction;
  }

  State lex_raw_quote() {
    for (;;) {
      std::int32_t r = next();
      if (r == kEof) return error("unterminated raw quoted string");
      if (r == '`') break;
    }
    emit(ItemType::RawString);
    return St::InsideAction;
  }
};

} // namespace

std::string describe(const Item& item) {
  switch (item.type) {
  case ItemType::Eof:
    return "EOF";
  case ItemType::Error:
    return item.val;
  default:
    break;
  }
  if (item.type > ItemType::Keyword) return "<" + item.val + ">";
  if (utf8_count(item.val) > 10) {
    std::string head;
    std::size_t i = 0;
    for (int n = 0; n < 10 && i < item.val.size(); ++n) {
      std::int32_t r = 0;
      i += static_cast<std::size_t>(utf8_decode(item.val, i, r));
    }
    head = item.val.substr(0, i);
    return go_quote(head) + "...";
  }
  return go_quote(item.val);
}

std::vector<Item> lex(std::string_view input) {
  return Lexer(input).run();
}

} // namespace capstan::manifest::tmpl
