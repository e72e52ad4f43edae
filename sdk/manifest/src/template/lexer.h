// Tokens of a Go template, produced as text/template/parse/lex.go produces them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace capstan::manifest::tmpl {

enum class ItemType {
  Error, // val holds the message; always the last item
  Bool,
  Char, // a printable ASCII character not otherwise handled (the parser sees ',')
  CharConstant,
  Comment,
  Assign,  // =
  Declare, // :=
  Eof,
  Field, // .name
  Identifier,
  LeftDelim,
  LeftParen,
  Number,
  Pipe,
  RawString,
  RightDelim,
  RightParen,
  Space,
  String,
  Text,
  Variable, // $name
  // Keywords follow.
  Keyword,
  Block,
  Break,
  Continue,
  Dot,
  Define,
  Else,
  End,
  If,
  Nil,
  Range,
  Template,
  With,
};

struct Item {
  ItemType type;
  std::size_t pos; // byte offset of the item's start
  std::string val;
  int line; // line of the item's start, from 1
};

// Go's rendering of an item in "unexpected X in Y" messages.
std::string describe(const Item& item);

// The whole token stream, ending in Eof or an Error item.
std::vector<Item> lex(std::string_view input);

} // namespace capstan::manifest::tmpl
