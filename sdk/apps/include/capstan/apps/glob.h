// Path globs as Argo CD matches them: '*' and '?' within one path segment, '**' across
// segments, '[a-z]' / '[!a-z]' classes and '{a,b}' alternatives.
#pragma once

#include <string_view>

namespace capstan::apps {

// Whether the '/'-separated `path` matches `pattern` as a whole.
bool glob_match(std::string_view pattern, std::string_view path);

} // namespace capstan::apps
