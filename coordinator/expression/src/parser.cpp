// Recursive-descent parser for pipeline expressions.
//
// Inside <+ ... > a '>' closes the expression unless it stands inside parentheses or a string:
// the same rule users learn from the product this syntax comes from (write `(a > b)` there).
#include <cctype>

#include "ast.h"

namespace capstan::expression {
namespace {

using Node = Expression::Node;

class Parser {
public:
  explicit Parser(std::string_view text) : text_(text) {}

  NodePtr condition() {
    skip_space();
    if (at_end()) fail("empty expression");
    NodePtr n = expr();
    skip_space();
    if (!at_end()) fail("unexpected '" + std::string(1, peek()) + "'");
    return n;
  }

  NodePtr template_text() {
    auto node = std::make_shared<Node>();
    node->kind = Node::Kind::kTemplate;
    node->source = std::string(text_);
    std::string literal;
    while (!at_end()) {
      if (starts_with("<+")) {
        if (!literal.empty()) {
          node->kids.push_back(literal_node(literal));
          literal.clear();
        }
        node->kids.push_back(bracket());
      } else {
        literal += text_[pos_++];
      }
    }
    if (!literal.empty()) node->kids.push_back(literal_node(literal));
    return node;
  }

private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(std::string(text_), why + " at column " + std::to_string(pos_ + 1));
  }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(std::size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  bool starts_with(std::string_view s) const { return text_.substr(pos_, s.size()) == s; }
  void skip_space() {
    while (!at_end() && std::isspace(static_cast<unsigned char>(peek()))) ++pos_;
  }
  // Consumes `s` (after spaces) when it is next; words must not run on into an identifier.
  bool accept(std::string_view s) {
    skip_space();
    if (!starts_with(s)) return false;
    if (std::isalpha(static_cast<unsigned char>(s[0]))) {
      char after = peek(s.size());
      if (std::isalnum(static_cast<unsigned char>(after)) || after == '_') return false;
    }
    pos_ += s.size();
    return true;
  }
  void expect(std::string_view s) {
    if (!accept(s)) fail("expected '" + std::string(s) + "'");
  }
  // '>' closes the innermost <+ > unless parentheses or brackets are open inside it.
  bool closing_angle_here() const { return bracket_depth_ > 0 && paren_depth_ == 0; }

  static NodePtr literal_node(Value v) {
    auto n = std::make_shared<Node>();
    n->kind = Node::Kind::kLiteral;
    n->value = std::move(v);
    return n;
  }

  NodePtr make(Node::Kind kind, std::string op, std::vector<NodePtr> kids, std::size_t start) {
    auto n = std::make_shared<Node>();
    n->kind = kind;
    n->op = std::move(op);
    n->kids = std::move(kids);
    n->source = std::string(text_.substr(start, pos_ - start));
    return n;
  }

  NodePtr expr() {
    std::size_t start = pos_;
    NodePtr cond = logical_or();
    if (accept("?:")) {
      return make(Node::Kind::kElvis, "?:", {cond, expr()}, start);
    }
    if (accept("?")) {
      NodePtr yes = expr();
      expect(":");
      NodePtr no = expr();
      return make(Node::Kind::kTernary, "?", {cond, yes, no}, start);
    }
    return cond;
  }

  NodePtr logical_or() {
    std::size_t start = pos_;
    NodePtr left = logical_and();
    while (accept("||") || accept("or")) {
      left = make(Node::Kind::kBinary, "||", {left, logical_and()}, start);
    }
    return left;
  }

  NodePtr logical_and() {
    std::size_t start = pos_;
    NodePtr left = equality();
    while (accept("&&") || accept("and")) {
      left = make(Node::Kind::kBinary, "&&", {left, equality()}, start);
    }
    return left;
  }

  NodePtr equality() {
    std::size_t start = pos_;
    NodePtr left = relational();
    for (;;) {
      std::string op;
      if (accept("==") || accept("eq")) {
        op = "==";
      } else if (accept("!=") || accept("ne")) {
        op = "!=";
      } else if (accept("=~")) {
        op = "=~";
      } else if (accept("!~")) {
        op = "!~";
      } else {
        return left;
      }
      left = make(Node::Kind::kBinary, op, {left, relational()}, start);
    }
  }

  NodePtr relational() {
    std::size_t start = pos_;
    NodePtr left = additive();
    for (;;) {
      std::string op;
      if (accept("<=") || accept("le")) {
        op = "<=";
      } else if (accept("lt")) {
        op = "<";
      } else if (lookahead_lt()) {
        op = "<";
      } else if (!closing_angle_here() && (accept(">=") || accept(">"))) {
        op = text_[pos_ - 1] == '=' ? ">=" : ">";
      } else if (accept("ge")) {
        op = ">=";
      } else if (accept("gt")) {
        op = ">";
      } else {
        return left;
      }
      left = make(Node::Kind::kBinary, op, {left, additive()}, start);
    }
  }

  // '<' as an operator, but not the start of "<+".
  bool lookahead_lt() {
    skip_space();
    if (peek() == '<' && peek(1) != '+' && peek(1) != '=') {
      ++pos_;
      return true;
    }
    return false;
  }

  NodePtr additive() {
    std::size_t start = pos_;
    NodePtr left = multiplicative();
    for (;;) {
      skip_space();
      char c = peek();
      if (c != '+' && c != '-') return left;
      ++pos_;
      left = make(Node::Kind::kBinary, std::string(1, c), {left, multiplicative()}, start);
    }
  }

  NodePtr multiplicative() {
    std::size_t start = pos_;
    NodePtr left = unary();
    for (;;) {
      skip_space();
      char c = peek();
      if (c != '*' && c != '/' && c != '%') return left;
      ++pos_;
      left = make(Node::Kind::kBinary, std::string(1, c), {left, unary()}, start);
    }
  }

  NodePtr unary() {
    std::size_t start = pos_;
    skip_space();
    if (peek() == '!' && peek(1) != '=' && peek(1) != '~') {
      ++pos_;
      return make(Node::Kind::kUnary, "!", {unary()}, start);
    }
    if (accept("not")) return make(Node::Kind::kUnary, "!", {unary()}, start);
    if (peek() == '-' && !std::isdigit(static_cast<unsigned char>(peek(1)))) {
      ++pos_;
      return make(Node::Kind::kUnary, "-", {unary()}, start);
    }
    return postfix();
  }

  NodePtr postfix() {
    skip_space();
    std::size_t start = pos_;
    auto chain = std::make_shared<Node>();
    chain->kind = Node::Kind::kChain;
    if (is_ident_start(peek())) {
      std::string word = identifier();
      if (word == "true" || word == "false") return literal_node(word == "true");
      if (word == "null") return literal_node(nullptr);
      chain->name = word;
    } else {
      chain->kids.push_back(primary());
    }
    for (;;) {
      skip_space();
      if (peek() == '.' && !std::isdigit(static_cast<unsigned char>(peek(1)))) {
        ++pos_;
        skip_space();
        if (!is_ident_start(peek())) fail("expected a name after '.'");
        Node::Op op{Node::Op::Kind::kField, identifier(), {}};
        skip_space();
        if (peek() == '(') {
          op.kind = Node::Op::Kind::kCall;
          op.args = arguments();
        }
        chain->ops.push_back(std::move(op));
      } else if (peek() == '[') {
        ++pos_;
        ++paren_depth_;
        Node::Op op{Node::Op::Kind::kIndex, "", {expr()}};
        expect("]");
        --paren_depth_;
        chain->ops.push_back(std::move(op));
      } else {
        break;
      }
    }
    if (chain->name.empty() && chain->ops.empty()) return chain->kids[0];
    chain->source = std::string(text_.substr(start, pos_ - start));
    return chain;
  }

  std::vector<NodePtr> arguments() {
    expect("(");
    ++paren_depth_;
    std::vector<NodePtr> args;
    if (!accept(")")) {
      do {
        args.push_back(expr());
      } while (accept(","));
      expect(")");
    }
    --paren_depth_;
    return args;
  }

  NodePtr primary() {
    skip_space();
    std::size_t start = pos_;
    char c = peek();
    if (starts_with("<+")) return bracket();
    if (c == '(') {
      ++pos_;
      ++paren_depth_;
      NodePtr inner = expr();
      expect(")");
      --paren_depth_;
      return inner;
    }
    if (c == '[') {
      ++pos_;
      ++paren_depth_;
      std::vector<NodePtr> items;
      if (!accept("]")) {
        do {
          items.push_back(expr());
        } while (accept(","));
        expect("]");
      }
      --paren_depth_;
      return make(Node::Kind::kList, "[]", std::move(items), start);
    }
    if (c == '"' || c == '\'') return literal_node(string_literal());
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '-' && std::isdigit(static_cast<unsigned char>(peek(1))))) {
      return literal_node(number());
    }
    if (at_end()) fail("expression ends too early");
    fail("unexpected '" + std::string(1, c) + "'");
  }

  // "<+" expr ">"
  NodePtr bracket() {
    std::size_t start = pos_;
    pos_ += 2;
    int saved_parens = paren_depth_;
    paren_depth_ = 0;
    ++bracket_depth_;
    skip_space();
    if (peek() == '>') fail("empty <+>");
    NodePtr inner = expr();
    skip_space();
    if (peek() != '>') {
      if (at_end()) {
        pos_ = start;
        fail("'<+' is never closed with '>'");
      }
      fail("unexpected '" + std::string(1, peek()) + "'");
    }
    ++pos_;
    --bracket_depth_;
    paren_depth_ = saved_parens;
    return inner;
  }

  static bool is_ident_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$';
  }

  std::string identifier() {
    std::size_t start = pos_;
    while (!at_end()) {
      char c = peek();
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$') {
        ++pos_;
      } else {
        break;
      }
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  std::string string_literal() {
    char quote = text_[pos_++];
    std::string out;
    while (!at_end() && peek() != quote) {
      char c = text_[pos_++];
      if (c == '\\' && !at_end()) {
        char e = text_[pos_++];
        switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        default:
          out += e;
        }
      } else {
        out += c;
      }
    }
    if (at_end()) fail("string is never closed");
    ++pos_;
    return out;
  }

  Value number() {
    std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    bool is_float = false;
    while (!at_end()) {
      char c = peek();
      if (std::isdigit(static_cast<unsigned char>(c))) {
        ++pos_;
      } else if (c == '.' && !is_float && std::isdigit(static_cast<unsigned char>(peek(1)))) {
        is_float = true;
        ++pos_;
      } else {
        break;
      }
    }
    std::string digits(text_.substr(start, pos_ - start));
    if (is_float) return std::stod(digits);
    try {
      return static_cast<std::int64_t>(std::stoll(digits));
    } catch (const std::out_of_range&) {
      return std::stod(digits);
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  int paren_depth_ = 0;   // parentheses/brackets open inside the innermost <+ >
  int bracket_depth_ = 0; // <+ > nesting
};

} // namespace

NodePtr parse_condition_text(std::string_view text) {
  return Parser(text).condition();
}
NodePtr parse_template_text(std::string_view text) {
  return Parser(text).template_text();
}

} // namespace capstan::expression
