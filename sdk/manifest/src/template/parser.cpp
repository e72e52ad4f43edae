// The template parser, a port of Go's text/template/parse/parse.go with its error messages.
#include "parser.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "capstan/manifest/template.h"
#include "gostrings.h"
#include "lexer.h"

namespace capstan::manifest::tmpl {

// ---- node text (what error messages show) ----

std::string ListNode::str() const {
  std::string out;
  for (const auto& n : nodes) out += n->str();
  return out;
}

std::string TextNode::str() const {
  return go_quote(text);
}

std::string VariableNode::str() const {
  std::string out;
  for (std::size_t i = 0; i < ident.size(); ++i) {
    if (i > 0) out += '.';
    out += ident[i];
  }
  return out;
}

std::string PipeNode::str() const {
  std::string out;
  if (!decl.empty()) {
    for (std::size_t i = 0; i < decl.size(); ++i) {
      if (i > 0) out += ", ";
      out += decl[i]->str();
    }
    out += is_assign ? " = " : " := ";
  }
  for (std::size_t i = 0; i < cmds.size(); ++i) {
    if (i > 0) out += " | ";
    out += cmds[i]->str();
  }
  return out;
}

std::string CommandNode::str() const {
  std::string out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i > 0) out += ' ';
    if (args[i]->type == NodeType::Pipe) {
      out += "(" + args[i]->str() + ")";
    } else {
      out += args[i]->str();
    }
  }
  return out;
}

std::string FieldNode::str() const {
  std::string out;
  for (const auto& id : ident) out += "." + id;
  return out;
}

std::string ChainNode::str() const {
  std::string out = node->type == NodeType::Pipe ? "(" + node->str() + ")" : node->str();
  for (const auto& f : field) out += "." + f;
  return out;
}

std::string BranchNode::str() const {
  std::string name = type == NodeType::If ? "if" : (type == NodeType::Range ? "range" : "with");
  std::string out = "{{" + name + " " + pipe->str() + "}}" + list->str();
  if (else_list) out += "{{else}}" + else_list->str();
  return out + "{{end}}";
}

std::string TemplateNode::str() const {
  if (!pipe) return "{{template " + go_quote(name) + "}}";
  return "{{template " + go_quote(name) + " " + pipe->str() + "}}";
}

Location locate(const Tree& tree, std::size_t pos) {
  const std::string& text = *tree.text;
  pos = std::min(pos, text.size());
  std::string_view before(text.data(), pos);
  auto nl = before.rfind('\n');
  int column = static_cast<int>(nl == std::string_view::npos ? pos : pos - nl - 1);
  int line = 1 + static_cast<int>(std::count(before.begin(), before.end(), '\n'));
  return {tree.parse_name, line, column};
}

Location locate(const Node& node) {
  return locate(*node.tree, node.pos);
}

bool is_empty_tree(const Tree& tree) {
  for (const auto& n : tree.root->nodes) {
    if (n->type == NodeType::Comment) continue;
    if (n->type != NodeType::Text) return false;
    const auto& t = static_cast<const TextNode&>(*n).text;
    if (t.find_first_not_of(" \t\r\n") != std::string::npos) return false;
  }
  return true;
}

namespace {

class Parser {
public:
  Parser(const std::string& name, std::string_view text,
         const std::function<bool(std::string_view)>& is_function)
      : name_(name), text_(std::make_shared<const std::string>(text)), is_function_(is_function) {
    items_ = lex(*text_);
  }

  TreeMap run() {
    auto top = new_tree(name_);
    current_ = top.get();
    top->root = std::make_unique<ListNode>(peek().pos, peek().line);
    while (peek().type != ItemType::Eof) {
      if (peek().type == ItemType::LeftDelim) {
        std::size_t mark = idx_;
        next();
        if (next_non_space().type == ItemType::Define) {
          parse_definition();
          continue;
        }
        idx_ = mark;
      }
      NodePtr n = text_or_action();
      if (n->type == NodeType::End || n->type == NodeType::Else) {
        errorf("unexpected " + n->str());
      }
      top->root->nodes.push_back(std::move(n));
    }
    add(top);
    return std::move(trees_);
  }

private:
  std::string name_;
  std::shared_ptr<const std::string> text_;
  const std::function<bool(std::string_view)>& is_function_;
  std::vector<Item> items_;
  std::size_t idx_ = 0;
  std::size_t far_ = 0; // furthest item looked at: Go reports errors at its last lexed token
  TreeMap trees_;
  Tree* current_ = nullptr;
  std::vector<std::string> vars_{"$"};
  int range_depth_ = 0;
  // Bodies and parentheses nest by recursion; a limit keeps hostile input from exhausting the
  // stack.
  static constexpr int kMaxNesting = 100;
  int nesting_ = 0;
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.nesting_ > kMaxNesting) {
        p.errorf("nesting deeper than " + std::to_string(kMaxNesting) + " levels");
      }
    }
    ~Nest() { --p.nesting_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
  };
  int action_line_ = 0;

  std::shared_ptr<Tree> new_tree(const std::string& name) {
    auto t = std::make_shared<Tree>();
    t->name = name;
    t->parse_name = name_;
    t->text = text_;
    return t;
  }

  template <typename T, typename... Args> std::unique_ptr<T> make(Args&&... args) {
    auto n = std::make_unique<T>(std::forward<Args>(args)...);
    n->tree = current_;
    return n;
  }

  // ---- tokens ----
  // The stream ends in Eof or Error; reading past it keeps returning that last item.
  const Item& at(std::size_t i) {
    i = std::min(i, items_.size() - 1);
    far_ = std::max(far_, i);
    return items_[i];
  }
  const Item& next() { return at(idx_++); }
  void backup() { --idx_; }
  const Item& peek() { return at(idx_); }
  const Item& next_non_space() {
    for (;;) {
      const Item& it = next();
      if (it.type != ItemType::Space) return it;
    }
  }
  // Skips (consumes) spaces and returns the next token without consuming it.
  const Item& peek_non_space() {
    while (at(idx_).type == ItemType::Space) ++idx_;
    return at(idx_);
  }

  // Go reports the line of the last token it lexed; the column tells where that token starts.
  [[noreturn]] void errorf(const std::string& message) {
    errorf_at(items_[std::min(far_, items_.size() - 1)], message);
  }
  [[noreturn]] void errorf_at(const Item& at, const std::string& message) {
    Tree probe;
    probe.parse_name = name_;
    probe.text = text_;
    Location loc = locate(probe, at.pos);
    throw TemplateError(loc.file, loc.line, loc.column, message);
  }

  [[noreturn]] void unexpected(const Item& item, const std::string& context) {
    if (item.type == ItemType::Error) {
      std::string extra;
      if (action_line_ != 0 && action_line_ != item.line) {
        extra = " in action started at " + name_ + ":" + std::to_string(action_line_);
        if (item.val.ends_with(" action")) extra = extra.substr(std::string(" in action").size());
      }
      errorf(item.val + extra);
    }
    errorf("unexpected " + describe(item) + " in " + context);
  }

  const Item& expect(ItemType expected, const std::string& context) {
    const Item& token = next_non_space();
    if (token.type != expected) unexpected(token, context);
    return token;
  }

  // ---- trees ----
  void add(const std::shared_ptr<Tree>& tree) {
    auto it = trees_.find(tree->name);
    if (it == trees_.end() || is_empty_tree(*it->second)) {
      trees_[tree->name] = tree;
      return;
    }
    if (!is_empty_tree(*tree)) {
      errorf("template: multiple definition of template " + go_quote(tree->name));
    }
  }

  void parse_definition() {
    const std::string context = "define clause";
    const Item& name_item = next_non_space();
    if (name_item.type != ItemType::String && name_item.type != ItemType::RawString) {
      unexpected(name_item, context);
    }
    auto name = go_unquote(name_item.val);
    if (!name) errorf("invalid syntax");
    expect(ItemType::RightDelim, context);
    parse_named_body(*name, context);
  }

  // The body of a {{define}} or {{block}} up to its {{end}}: a tree of its own, with its own
  // variables.
  void parse_named_body(const std::string& name, const std::string& context) {
    auto tree = new_tree(name);
    Tree* saved = current_;
    auto saved_vars = vars_;
    vars_ = {"$"};
    current_ = tree.get();
    NodePtr end;
    tree->root = item_list(end);
    if (end->type != NodeType::End) errorf("unexpected " + end->str() + " in " + context);
    current_ = saved;
    vars_ = saved_vars;
    add(tree);
  }

  std::unique_ptr<ListNode> item_list(NodePtr& end) {
    Nest nest(*this);
    const Item& first = peek_non_space();
    auto list = make<ListNode>(first.pos, first.line);
    while (peek_non_space().type != ItemType::Eof) {
      NodePtr n = text_or_action();
      if (n->type == NodeType::End || n->type == NodeType::Else) {
        end = std::move(n);
        return list;
      }
      list->nodes.push_back(std::move(n));
    }
    next_non_space();
    errorf("unexpected EOF");
  }

  NodePtr text_or_action() {
    const Item& token = next_non_space();
    switch (token.type) {
    case ItemType::Text:
      return make<TextNode>(token.pos, token.line, token.val);
    case ItemType::LeftDelim: {
      action_line_ = token.line;
      NodePtr n = action();
      action_line_ = 0;
      return n;
    }
    default:
      unexpected(token, "input");
    }
  }

  NodePtr action() {
    const Item& token = next_non_space();
    switch (token.type) {
    case ItemType::Block:
      return block_control();
    case ItemType::Break:
      return break_control(token, true);
    case ItemType::Continue:
      return break_control(token, false);
    case ItemType::Else:
      return else_control();
    case ItemType::End:
      return end_control();
    case ItemType::If:
      return branch_control(NodeType::If, "if");
    case ItemType::Range:
      return branch_control(NodeType::Range, "range");
    case ItemType::Template:
      return template_control();
    case ItemType::With:
      return branch_control(NodeType::With, "with");
    default:
      break;
    }
    backup();
    const Item& start = peek();
    auto pipe = pipeline("command", ItemType::RightDelim);
    // Variables declared here persist until the enclosing {{end}}.
    return make<ActionNode>(start.pos, start.line, std::move(pipe));
  }

  NodePtr break_control(const Item& token, bool is_break) {
    const Item& after = next_non_space();
    std::string word = is_break ? "{{break}}" : "{{continue}}";
    if (after.type != ItemType::RightDelim) unexpected(after, word);
    if (range_depth_ == 0) errorf(word + " outside {{range}}");
    if (is_break) return make<BreakNode>(token.pos, token.line);
    return make<ContinueNode>(token.pos, token.line);
  }

  NodePtr else_control() {
    const Item& peeked = peek_non_space();
    // "{{else if" and "{{else with" leave the keyword for the enclosing branch to parse.
    if (peeked.type == ItemType::If || peeked.type == ItemType::With) {
      return make<ElseNode>(peeked.pos, peeked.line);
    }
    const Item& token = expect(ItemType::RightDelim, "else");
    return make<ElseNode>(token.pos, token.line);
  }

  NodePtr end_control() {
    const Item& token = expect(ItemType::RightDelim, "end");
    return make<EndNode>(token.pos, token.line);
  }

  std::unique_ptr<BranchNode> branch_control(NodeType type, const std::string& context) {
    std::size_t vars_mark = vars_.size();
    auto pipe = pipeline(context, ItemType::RightDelim);
    if (type == NodeType::Range) ++range_depth_;
    NodePtr next_node;
    auto list = item_list(next_node);
    if (type == NodeType::Range) --range_depth_;
    std::unique_ptr<ListNode> else_list;
    if (next_node->type == NodeType::Else) {
      if (type == NodeType::If && peek().type == ItemType::If) {
        next();
        else_list = make<ListNode>(next_node->pos, next_node->line);
        else_list->nodes.push_back(branch_control(NodeType::If, "if"));
      } else if (type == NodeType::With && peek().type == ItemType::With) {
        next();
        else_list = make<ListNode>(next_node->pos, next_node->line);
        else_list->nodes.push_back(branch_control(NodeType::With, "with"));
      } else {
        NodePtr end;
        else_list = item_list(end);
        if (end->type != NodeType::End) errorf("expected end; found " + end->str());
      }
    }
    vars_.resize(vars_mark);
    auto node = make<BranchNode>(type, pipe->pos, pipe->line);
    node->pipe = std::move(pipe);
    node->list = std::move(list);
    node->else_list = std::move(else_list);
    return node;
  }

  std::string template_name(const Item& token, const std::string& context) {
    if (token.type != ItemType::String && token.type != ItemType::RawString) {
      unexpected(token, context);
    }
    auto s = go_unquote(token.val);
    if (!s) errorf("invalid syntax");
    return *s;
  }

  NodePtr template_control() {
    const std::string context = "template clause";
    const Item& token = next_non_space();
    std::string name = template_name(token, context);
    std::unique_ptr<PipeNode> pipe;
    if (next_non_space().type != ItemType::RightDelim) {
      backup();
      pipe = pipeline(context, ItemType::RightDelim);
    }
    auto node = make<TemplateNode>(token.pos, token.line, name);
    node->pipe = std::move(pipe);
    return node;
  }

  NodePtr block_control() {
    const std::string context = "block clause";
    const Item& token = next_non_space();
    std::string name = template_name(token, context);
    auto pipe = pipeline(context, ItemType::RightDelim);
    parse_named_body(name, context);
    auto node = make<TemplateNode>(token.pos, token.line, name);
    node->pipe = std::move(pipe);
    return node;
  }

  std::unique_ptr<PipeNode> pipeline(const std::string& context, ItemType end) {
    const Item& first = peek_non_space();
    auto pipe = make<PipeNode>(first.pos, first.line);
    // Declarations: "$x :=", "$x =", "$i, $v :=".
    for (;;) {
      const Item& v = peek_non_space();
      if (v.type != ItemType::Variable) break;
      std::size_t mark = idx_;
      next(); // the variable
      const Item& after = peek_non_space();
      if (after.type == ItemType::Assign || after.type == ItemType::Declare) {
        pipe->is_assign = after.type == ItemType::Assign;
        next_non_space();
        pipe->decl.push_back(make<VariableNode>(v.pos, v.line, split_ident(v.val)));
        vars_.push_back(v.val);
        break;
      }
      if (after.type == ItemType::Char && after.val == ",") {
        next_non_space();
        pipe->decl.push_back(make<VariableNode>(v.pos, v.line, split_ident(v.val)));
        vars_.push_back(v.val);
        if (context == "range" && pipe->decl.size() < 2) {
          ItemType t = peek_non_space().type;
          if (t == ItemType::Variable || t == ItemType::RightDelim || t == ItemType::RightParen) {
            continue; // the second variable of a range
          }
          errorf("range can only initialize variables");
        }
        errorf("too many declarations in " + context);
      }
      idx_ = mark; // an operand, not a declaration
      break;
    }
    for (;;) {
      const Item& token = next_non_space();
      if (token.type == end) {
        check_pipeline(*pipe, context);
        return pipe;
      }
      switch (token.type) {
      case ItemType::Bool:
      case ItemType::CharConstant:
      case ItemType::Dot:
      case ItemType::Field:
      case ItemType::Identifier:
      case ItemType::Number:
      case ItemType::Nil:
      case ItemType::RawString:
      case ItemType::String:
      case ItemType::Variable:
      case ItemType::LeftParen:
        backup();
        pipe->cmds.push_back(command());
        break;
      default:
        unexpected(token, context);
      }
    }
  }

  void check_pipeline(const PipeNode& pipe, const std::string& context) {
    if (pipe.cmds.empty()) errorf("missing value for " + context);
    for (std::size_t i = 1; i < pipe.cmds.size(); ++i) {
      switch (pipe.cmds[i]->args[0]->type) {
      case NodeType::Bool:
      case NodeType::Dot:
      case NodeType::Nil:
      case NodeType::Number:
      case NodeType::String:
        errorf("non executable command in pipeline stage " + std::to_string(i + 1));
      default:
        break;
      }
    }
  }

  std::unique_ptr<CommandNode> command() {
    const Item& first = peek_non_space();
    auto cmd = make<CommandNode>(first.pos, first.line);
    for (;;) {
      peek_non_space();
      NodePtr operand_node = operand();
      if (operand_node) cmd->args.push_back(std::move(operand_node));
      const Item& token = next();
      if (token.type == ItemType::Space) continue;
      if (token.type == ItemType::RightDelim || token.type == ItemType::RightParen) {
        backup();
      } else if (token.type != ItemType::Pipe) {
        unexpected(token, "operand");
      }
      break;
    }
    if (cmd->args.empty()) errorf("empty command");
    return cmd;
  }

  static std::vector<std::string> split_ident(const std::string& s) {
    // A field ".a.b" starts with a dot; a variable "$x.a" does not.
    return split_string(!s.empty() && s[0] == '.' ? std::string_view(s).substr(1) : s, ".");
  }

  NodePtr operand() {
    NodePtr node = term();
    if (!node) return nullptr;
    if (peek().type == ItemType::Field) {
      std::size_t chain_pos = peek().pos;
      int chain_line = peek().line;
      std::vector<std::string> fields;
      while (peek().type == ItemType::Field) {
        auto parts = split_ident(next().val);
        fields.insert(fields.end(), parts.begin(), parts.end());
      }
      switch (node->type) {
      case NodeType::Field: {
        auto& f = static_cast<FieldNode&>(*node);
        f.ident.insert(f.ident.end(), fields.begin(), fields.end());
        return node;
      }
      case NodeType::Variable: {
        auto& v = static_cast<VariableNode&>(*node);
        v.ident.insert(v.ident.end(), fields.begin(), fields.end());
        return node;
      }
      case NodeType::Bool:
      case NodeType::String:
      case NodeType::Number:
      case NodeType::Nil:
      case NodeType::Dot:
        errorf("unexpected . after term " + go_quote(node->str()));
      default: {
        (void)chain_pos;
        (void)chain_line;
        auto chain = make<ChainNode>(node->pos, node->line, std::move(node));
        chain->field = std::move(fields);
        return chain;
      }
      }
    }
    return node;
  }

  NodePtr term() {
    const Item& token = next_non_space();
    switch (token.type) {
    case ItemType::Identifier:
      if (!is_function_(token.val)) {
        errorf_at(token, "function " + go_quote(token.val) + " not defined");
      }
      return make<IdentifierNode>(token.pos, token.line, token.val);
    case ItemType::Dot:
      return make<DotNode>(token.pos, token.line);
    case ItemType::Nil:
      return make<NilNode>(token.pos, token.line);
    case ItemType::Variable: {
      auto v = make<VariableNode>(token.pos, token.line, split_ident(token.val));
      if (std::find(vars_.begin(), vars_.end(), v->ident[0]) == vars_.end()) {
        errorf_at(token, "undefined variable " + go_quote(v->ident[0]));
      }
      return v;
    }
    case ItemType::Field:
      return make<FieldNode>(token.pos, token.line, split_ident(token.val));
    case ItemType::Bool:
      return make<BoolNode>(token.pos, token.line, token.val == "true");
    case ItemType::CharConstant:
    case ItemType::Number:
      return number(token);
    case ItemType::LeftParen: {
      Nest nest(*this);
      return pipeline("parenthesized pipeline", ItemType::RightParen);
    }
    case ItemType::String:
    case ItemType::RawString: {
      auto s = go_unquote(token.val);
      if (!s) errorf("invalid syntax");
      return make<StringNode>(token.pos, token.line, token.val, *s);
    }
    default:
      break;
    }
    backup();
    return nullptr;
  }

  NodePtr number(const Item& token) {
    auto n = make<NumberNode>(token.pos, token.line, token.val);
    if (token.type == ItemType::CharConstant) {
      auto r = go_unquote_char(token.val);
      if (!r) errorf("malformed character constant: " + token.val);
      n->is_int = n->is_float = n->is_char = true;
      n->int_value = *r;
      n->float_value = *r;
      return n;
    }
    std::string text;
    for (char c : token.val) {
      if (c != '_') text += c;
    }
    if (!text.empty() && text.back() == 'i')
      errorf("complex numbers are not supported: " + token.val);
    // Integers: decimal, 0x, 0o, 0b, or a leading 0 for octal, with an optional sign.
    {
      std::string_view s = text;
      bool negative = false;
      if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        negative = s[0] == '-';
        s.remove_prefix(1);
      }
      int base = 10;
      if (s.size() > 1 && s[0] == '0') {
        char p = s[1];
        if (p == 'x' || p == 'X') {
          base = 16;
          s.remove_prefix(2);
        } else if (p == 'o' || p == 'O') {
          base = 8;
          s.remove_prefix(2);
        } else if (p == 'b' || p == 'B') {
          base = 2;
          s.remove_prefix(2);
        } else if (s.find_first_not_of("01234567") == std::string_view::npos) {
          base = 8;
          s.remove_prefix(1);
        }
      }
      std::uint64_t magnitude = 0;
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), magnitude, base);
      if (ec == std::errc::result_out_of_range) errorf("integer overflow: " + go_quote(token.val));
      if (!s.empty() && ec == std::errc() && ptr == s.data() + s.size()) {
        if (!negative && magnitude <= static_cast<std::uint64_t>(INT64_MAX)) {
          n->is_int = true;
          n->int_value = static_cast<std::int64_t>(magnitude);
        } else if (negative && magnitude <= static_cast<std::uint64_t>(INT64_MAX) + 1) {
          n->is_int = true;
          n->int_value = static_cast<std::int64_t>(0 - magnitude);
        }
        n->is_float = true;
        n->float_value =
            negative ? -static_cast<double>(magnitude) : static_cast<double>(magnitude);
        if (!n->is_int) errorf(token.val + " overflows int");
        return n;
      }
    }
    // Floats; hexadecimal floats are rare enough to refuse.
    char* end = nullptr;
    double f = std::strtod(text.c_str(), &end);
    bool hex = text.find_first_of("xX") != std::string::npos;
    if (hex || end != text.c_str() + text.size() || text.empty()) {
      errorf("illegal number syntax: " + go_quote(token.val));
    }
    n->is_float = true;
    n->float_value = f;
    if (std::floor(f) == f && std::fabs(f) < 9.2e18) {
      n->is_int = true;
      n->int_value = static_cast<std::int64_t>(f);
    }
    return n;
  }
};

} // namespace

TreeMap parse(const std::string& name, std::string_view text,
              const std::function<bool(std::string_view)>& is_function) {
  return Parser(name, text, is_function).run();
}

} // namespace capstan::manifest::tmpl
