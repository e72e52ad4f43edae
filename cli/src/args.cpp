// Command-line parsing for the capstan CLI.
#include "args.h"

namespace capstan::cli {

Args::Args(const std::vector<std::string>& argv, const std::vector<Flag>& flags) {
  auto find = [&](const std::string& token) -> const Flag* {
    for (const auto& f : flags) {
      if (f.name == token || (!f.short_name.empty() && f.short_name == token)) return &f;
    }
    return nullptr;
  };
  bool only_positional = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (only_positional || a.size() < 2 || a[0] != '-') {
      positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    std::string name = a;
    std::optional<std::string> inline_value;
    if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      name = a.substr(0, eq);
      inline_value = a.substr(eq + 1);
    }
    const Flag* f = find(name);
    if (f == nullptr) throw UsageError("unknown flag '" + name + "'");
    auto& slot = values_[f->name];
    if (!f->repeatable && !slot.empty()) throw UsageError(f->name + " given more than once");
    if (!f->takes_value) {
      if (inline_value) throw UsageError(f->name + " takes no value");
      slot.emplace_back();
      continue;
    }
    if (inline_value) {
      slot.push_back(*inline_value);
    } else if (i + 1 < argv.size()) {
      slot.push_back(argv[++i]);
    } else {
      throw UsageError(f->name + " needs a value");
    }
  }
}

bool Args::has(const std::string& name) const {
  return values_.count(name) > 0;
}

std::optional<std::string> Args::value(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string Args::value_or(const std::string& name, const std::string& fallback) const {
  return value(name).value_or(fallback);
}

std::vector<std::string> Args::values(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

} // namespace capstan::cli
