// The parse tree of a Go template, node for node as text/template/parse builds it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace capstan::manifest::tmpl {

struct Tree;

enum class NodeType {
  List,
  Text,
  Comment,
  Action,
  Pipe,
  Command,
  Field,
  Variable,
  Chain,
  Identifier,
  Dot,
  Nil,
  Bool,
  Number,
  String,
  If,
  Range,
  With,
  Template,
  Break,
  Continue,
  // Parser-internal markers, never left in a finished tree.
  End,
  Else,
};

struct Node {
  NodeType type;
  std::size_t pos = 0; // byte offset in the template text
  int line = 0;
  const Tree* tree = nullptr; // the text this node was parsed from (for error positions)

  Node(NodeType t, std::size_t p, int l) : type(t), pos(p), line(l) {}
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // The node as template source, used in "executing ... at <...>" messages.
  virtual std::string str() const = 0;
};

using NodePtr = std::unique_ptr<Node>;

struct ListNode : Node {
  std::vector<NodePtr> nodes;
  ListNode(std::size_t p, int l) : Node(NodeType::List, p, l) {}
  std::string str() const override;
};

struct TextNode : Node {
  std::string text;
  TextNode(std::size_t p, int l, std::string t) : Node(NodeType::Text, p, l), text(std::move(t)) {}
  std::string str() const override;
};

struct CommentNode : Node {
  std::string text;
  CommentNode(std::size_t p, int l, std::string t)
      : Node(NodeType::Comment, p, l), text(std::move(t)) {}
  std::string str() const override { return "{{" + text + "}}"; }
};

// $x.a.b: ident = {"$x", "a", "b"}
struct VariableNode : Node {
  std::vector<std::string> ident;
  VariableNode(std::size_t p, int l, std::vector<std::string> i)
      : Node(NodeType::Variable, p, l), ident(std::move(i)) {}
  std::string str() const override;
};

struct CommandNode;

struct PipeNode : Node {
  bool is_assign = false; // $x = ... rather than $x := ...
  std::vector<std::unique_ptr<VariableNode>> decl;
  std::vector<std::unique_ptr<CommandNode>> cmds;
  PipeNode(std::size_t p, int l) : Node(NodeType::Pipe, p, l) {}
  std::string str() const override;
};

struct CommandNode : Node {
  std::vector<NodePtr> args;
  CommandNode(std::size_t p, int l) : Node(NodeType::Command, p, l) {}
  std::string str() const override;
};

struct ActionNode : Node {
  std::unique_ptr<PipeNode> pipe;
  ActionNode(std::size_t p, int l, std::unique_ptr<PipeNode> pi)
      : Node(NodeType::Action, p, l), pipe(std::move(pi)) {}
  std::string str() const override { return "{{" + pipe->str() + "}}"; }
};

// .a.b: ident = {"a", "b"}
struct FieldNode : Node {
  std::vector<std::string> ident;
  FieldNode(std::size_t p, int l, std::vector<std::string> i)
      : Node(NodeType::Field, p, l), ident(std::move(i)) {}
  std::string str() const override;
};

// (pipeline).a.b
struct ChainNode : Node {
  NodePtr node;
  std::vector<std::string> field;
  ChainNode(std::size_t p, int l, NodePtr n) : Node(NodeType::Chain, p, l), node(std::move(n)) {}
  std::string str() const override;
};

struct IdentifierNode : Node {
  std::string name;
  IdentifierNode(std::size_t p, int l, std::string n)
      : Node(NodeType::Identifier, p, l), name(std::move(n)) {}
  std::string str() const override { return name; }
};

struct DotNode : Node {
  DotNode(std::size_t p, int l) : Node(NodeType::Dot, p, l) {}
  std::string str() const override { return "."; }
};

struct NilNode : Node {
  NilNode(std::size_t p, int l) : Node(NodeType::Nil, p, l) {}
  std::string str() const override { return "nil"; }
};

struct BoolNode : Node {
  bool value;
  BoolNode(std::size_t p, int l, bool v) : Node(NodeType::Bool, p, l), value(v) {}
  std::string str() const override { return value ? "true" : "false"; }
};

struct NumberNode : Node {
  bool is_int = false;
  bool is_float = false;
  bool is_char = false; // 'x' constants
  std::int64_t int_value = 0;
  double float_value = 0;
  std::string text;
  NumberNode(std::size_t p, int l, std::string t)
      : Node(NodeType::Number, p, l), text(std::move(t)) {}
  std::string str() const override { return text; }
};

struct StringNode : Node {
  std::string quoted; // as written, quotes included
  std::string text;   // the value
  StringNode(std::size_t p, int l, std::string q, std::string t)
      : Node(NodeType::String, p, l), quoted(std::move(q)), text(std::move(t)) {}
  std::string str() const override { return quoted; }
};

// if, range and with share their shape.
struct BranchNode : Node {
  std::unique_ptr<PipeNode> pipe;
  std::unique_ptr<ListNode> list;
  std::unique_ptr<ListNode> else_list; // may be null
  BranchNode(NodeType t, std::size_t p, int l) : Node(t, p, l) {}
  std::string str() const override;
};

struct TemplateNode : Node {
  std::string name;
  std::unique_ptr<PipeNode> pipe; // may be null
  TemplateNode(std::size_t p, int l, std::string n)
      : Node(NodeType::Template, p, l), name(std::move(n)) {}
  std::string str() const override;
};

struct BreakNode : Node {
  BreakNode(std::size_t p, int l) : Node(NodeType::Break, p, l) {}
  std::string str() const override { return "{{break}}"; }
};

struct ContinueNode : Node {
  ContinueNode(std::size_t p, int l) : Node(NodeType::Continue, p, l) {}
  std::string str() const override { return "{{continue}}"; }
};

struct EndNode : Node {
  EndNode(std::size_t p, int l) : Node(NodeType::End, p, l) {}
  std::string str() const override { return "{{end}}"; }
};

struct ElseNode : Node {
  ElseNode(std::size_t p, int l) : Node(NodeType::Else, p, l) {}
  std::string str() const override { return "{{else}}"; }
};

// One parsed template: the top level of a text, or a {{define}}/{{block}} body in it.
struct Tree {
  std::string name;       // the template's name ({{template "name"}})
  std::string parse_name; // the file it came from (for error positions)
  std::shared_ptr<const std::string> text;
  std::unique_ptr<ListNode> root;
};

// "file:line:col" of a node, with col a 0-based byte offset in its line, as Go's ErrorContext.
struct Location {
  std::string file;
  int line = 0;
  int column = 0;
};
Location locate(const Node& node);
Location locate(const Tree& tree, std::size_t pos);

} // namespace capstan::manifest::tmpl
