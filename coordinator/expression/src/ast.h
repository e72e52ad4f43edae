// The parsed form of an expression.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "capstan/expression/expression.h"

namespace capstan::expression {

struct Expression::Node {
  enum class Kind {
    kLiteral,  // value
    kChain,    // name, then ops: a.b.c, a.f(x), a[0], "s".length()
    kUnary,    // op, kids[0]
    kBinary,   // op, kids[0..1]
    kTernary,  // kids[0] ? kids[1] : kids[2]
    kElvis,    // kids[0] ?: kids[1]
    kList,     // [kids...]
    kTemplate, // parts: text (value is a string) or expressions
  };
  struct Op {
    enum class Kind { kField, kIndex, kCall } kind;
    std::string name;                              // field or method name
    std::vector<std::shared_ptr<const Node>> args; // index expression or call arguments
  };

  Kind kind = Kind::kLiteral;
  Value value;         // kLiteral
  std::string name;    // kChain: first identifier (empty when the chain starts at kids[0])
  std::string op;      // kUnary/kBinary operator, normalised ("&&", "==", ...)
  std::vector<Op> ops; // kChain
  std::vector<std::shared_ptr<const Node>> kids;
  std::string source; // the text this node was parsed from, for messages
};

using NodePtr = std::shared_ptr<const Expression::Node>;

// Parses a condition / a template (parser.cpp).
NodePtr parse_condition_text(std::string_view text);
NodePtr parse_template_text(std::string_view text);

} // namespace capstan::expression
