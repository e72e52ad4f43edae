// Writes the wrapper script and reads back the variables it exported.
#include "script_wrapper.h"

#include <fstream>
#include <iterator>
#include <stdexcept>

namespace capstan::plugins::shell {

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string wrapper_script(const std::string& script_file, const std::string& out_file,
                           const std::vector<std::string>& variables) {
  std::string w;
  w += "__capstan_out=" + shell_quote(out_file) + "\n";
  w += "__capstan_export() {\n";
  w += "  __capstan_rc=$?\n";
  w += "  {\n";
  w += "    :\n"; // a group needs a command even when there are no variables
  for (const auto& v : variables) {
    w += "    if [ -n \"${" + v + "+x}\" ]; then printf 'S%s\\0' \"$" + v +
         "\"; else printf 'U\\0'; fi\n";
  }
  w += "  } >\"$__capstan_out\"\n";
  w += "  return $__capstan_rc\n";
  w += "}\n";
  // The trap covers `exit` and `set -e` inside the script; the call after it covers a script
  // that replaced the trap with its own and ran to its end.
  w += "trap '__capstan_export' EXIT\n";
  w += ". " + shell_quote(script_file) + "\n";
  w += "__capstan_export\n";
  return w;
}

std::vector<std::optional<std::string>> read_variables(const std::string& out_file,
                                                       std::size_t count) {
  std::ifstream in(out_file, std::ios::binary);
  if (!in) throw std::runtime_error("the script ended without handing back its variables");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::optional<std::string>> out;
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::size_t end = data.find('\0', pos);
    if (end == std::string::npos) break;
    if (data[pos] == 'S') {
      out.emplace_back(data.substr(pos + 1, end - pos - 1));
    } else if (data[pos] == 'U' && end == pos + 1) {
      out.emplace_back(std::nullopt);
    } else {
      break;
    }
    pos = end + 1;
  }
  if (out.size() != count || pos != data.size()) {
    throw std::runtime_error("the script's variables came back garbled (" +
                             std::to_string(out.size()) + " of " + std::to_string(count) + ")");
  }
  return out;
}

} // namespace capstan::plugins::shell
