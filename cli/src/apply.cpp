// `capstan apply -f FILE|DIR`: send YAML documents to the coordinator, all or nothing.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "output.h"

namespace capstan::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw CommandError("cannot read " + file.string(), 1);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool is_yaml(const fs::path& p) {
  auto ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml";
}

} // namespace

int cmd_apply(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--filename", "-f", true, true}, {"--dry-run", "", false, false}});
  if (!a.positional().empty()) {
    throw UsageError("unexpected argument '" + a.positional()[0] + "' (files go after -f)");
  }
  auto paths = a.values("--filename");
  if (paths.empty()) throw UsageError("apply needs -f FILE|DIR");
  json files = json::array();
  for (const auto& p : paths) {
    fs::path path(p);
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<fs::path> found;
      for (const auto& e : fs::directory_iterator(path)) {
        if (e.is_regular_file() && is_yaml(e.path())) found.push_back(e.path());
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) throw CommandError("no *.yaml or *.yml files in " + p, 2);
      for (const auto& f : found) {
        files.push_back({{"name", f.lexically_normal().string()},
                         {"content", read_all(f)},
                         {"dir", fs::absolute(f).parent_path().lexically_normal().string()}});
      }
    } else if (fs::exists(path, ec)) {
      files.push_back({{"name", p},
                       {"content", read_all(path)},
                       {"dir", fs::absolute(path).parent_path().lexically_normal().string()}});
    } else {
      throw CommandError(p + ": no such file or directory", 2);
    }
  }
  ApiClient api(g);
  bool dry = a.has("--dry-run");
  auto result = api.post("/api/v1/apply", {{"files", files}, {"dryRun", dry}});
  auto format = parse_format(g.output);
  if (format == Format::kJson || format == Format::kYaml) {
    print_document(result, format);
    return 0;
  }
  for (const auto& r : result["results"]) {
    std::cout << r["kind"].get<std::string>() << "/" << r["identifier"].get<std::string>() << " "
              << r["action"].get<std::string>() << (dry ? " (dry run)" : "") << "\n";
  }
  return 0;
}

} // namespace capstan::cli
