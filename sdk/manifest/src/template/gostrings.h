// Go's string quoting and unquoting (strconv.Quote / strconv.Unquote) and UTF-8 helpers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capstan::manifest::tmpl {

// strconv.Quote: a double-quoted Go string literal.
std::string go_quote(std::string_view s);
// strconv.QuoteRune: a single-quoted Go rune literal.
std::string go_quote_rune(std::int32_t r);
// strconv.Unquote of a "..." or `...` literal; nullopt when malformed.
std::optional<std::string> go_unquote(std::string_view literal);
// The rune of a '...' literal (e.g. 'a', '\n', '\u00e9'); nullopt when malformed.
std::optional<std::int32_t> go_unquote_char(std::string_view literal);

// Decodes one rune at s[i]; returns its length (1 for an invalid byte, reported as U+FFFD).
int utf8_decode(std::string_view s, std::size_t i, std::int32_t& rune);
void utf8_append(std::string& out, std::int32_t rune);
std::size_t utf8_count(std::string_view s);

// strings.Split with a non-empty separator.
std::vector<std::string> split_string(std::string_view s, std::string_view sep);

// %#U as Go prints it: U+0041 'A'.
std::string go_rune_name(std::int32_t r);

} // namespace capstan::manifest::tmpl
