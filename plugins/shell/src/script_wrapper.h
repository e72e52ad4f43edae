// The wrapper around a user's script that hands its output variables back to the plugin.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace capstan::plugins::shell {

// The wrapper sources the user's script, so its variables (exported or not) are in scope, and
// on the way out (the end of the script, `exit`, or `set -e`) writes each named variable to
// out_file as a NUL-terminated record: 'S' + value when set, 'U' when unset. POSIX sh, so
// Bash and sh run it alike. Names must be shell identifiers (the schema guarantees it).
std::string wrapper_script(const std::string& script_file, const std::string& out_file,
                           const std::vector<std::string>& variables);

// Reads what the wrapper wrote: one entry per variable, nullopt for an unset one. Throws
// std::runtime_error when the file is missing or does not hold exactly one record per name.
std::vector<std::optional<std::string>> read_variables(const std::string& out_file,
                                                       std::size_t count);

// 'text' as a single-quoted shell word.
std::string shell_quote(const std::string& text);

} // namespace capstan::plugins::shell
