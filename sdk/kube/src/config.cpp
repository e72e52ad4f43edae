// kubeconfig and in-cluster configuration.
#include "capstan/kube/config.h"

#include <capstan/yaml/yaml.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "capstan/kube/base64.h"
#include "capstan/kube/error.h"
#include "json_fields.h"

namespace capstan::kube {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Error config_error(const std::string& message) {
  return Error(ErrorKind::kConfiguration, message);
}

std::string read_file(const fs::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error("cannot read " + what + " " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool truthy(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  return it->is_string() && it->get<std::string>() == "true";
}

// The entry of a named list (clusters, users, contexts) called `name`.
const json* named(const json& doc, const char* list, const std::string& name, const char* body) {
  auto it = doc.find(list);
  if (it == doc.end() || !it->is_array()) return nullptr;
  for (const auto& entry : *it) {
    if (entry.is_object() && detail::text(entry, "name") == name) {
      auto b = entry.find(body);
      static const json empty = json::object();
      return b != entry.end() && b->is_object() ? &*b : &empty;
    }
  }
  return nullptr;
}

std::vector<std::string> names(const json& doc, const char* list) {
  std::vector<std::string> out;
  if (auto it = doc.find(list); it != doc.end() && it->is_array()) {
    for (const auto& e : *it) {
      if (e.is_object()) out.push_back(detail::text(e, "name"));
    }
  }
  return out;
}

std::string join_names(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

fs::path resolve(const fs::path& base, const std::string& p) {
  fs::path path(p);
  if (path.is_relative() && !base.empty()) return base / path;
  return path;
}

// PEM from `<key>-data` (base64) or the file `<key>`.
std::string pem(const json& o, const std::string& key, const fs::path& base,
                const std::string& where) {
  std::string data = detail::text(o, (key + "-data").c_str());
  if (!data.empty()) {
    auto decoded = base64_decode(data);
    if (!decoded) throw config_error(where + ": " + key + "-data is not valid base64");
    return *decoded;
  }
  std::string file = detail::text(o, key.c_str());
  if (!file.empty()) return read_file(resolve(base, file), where + ": " + key);
  return {};
}

ExecConfig parse_exec(const json& e, const std::string& where) {
  ExecConfig x;
  x.api_version = detail::text(e, "apiVersion");
  x.command = detail::text(e, "command");
  if (x.command.empty()) throw config_error(where + ": exec has no command");
  if (x.api_version.empty()) {
    throw config_error(where + ": exec needs an apiVersion (client.authentication.k8s.io/v1)");
  }
  if (auto a = e.find("args"); a != e.end() && a->is_array()) {
    for (const auto& arg : *a)
      x.args.push_back(arg.is_string() ? arg.get<std::string>() : arg.dump());
  }
  if (auto en = e.find("env"); en != e.end() && en->is_array()) {
    for (const auto& v : *en) {
      if (v.is_object()) x.env.emplace_back(detail::text(v, "name"), detail::text(v, "value"));
    }
  }
  x.install_hint = detail::text(e, "installHint");
  x.provide_cluster_info = truthy(e, "provideClusterInfo");
  return x;
}

ClusterConfig from_document(const json& doc, const KubeconfigOptions& options) {
  const std::string& src = options.source;
  if (!doc.is_object()) throw config_error(src + ": not a kubeconfig (expected a YAML map)");
  std::string context =
      options.context.empty() ? detail::text(doc, "current-context") : options.context;
  if (context.empty()) {
    throw config_error(src + ": no context given and no current-context set (contexts: " +
                       join_names(names(doc, "contexts")) + ")");
  }
  const json* ctx = named(doc, "contexts", context, "context");
  if (ctx == nullptr) {
    throw config_error(src + ": no context named '" + context +
                       "' (contexts: " + join_names(names(doc, "contexts")) + ")");
  }
  ClusterConfig c;
  c.context = context;
  c.namespace_ = detail::text(*ctx, "namespace");
  std::string cluster_name = detail::text(*ctx, "cluster");
  const json* cluster = named(doc, "clusters", cluster_name, "cluster");
  if (cluster == nullptr) {
    throw config_error(src + ": context '" + context + "' names cluster '" + cluster_name +
                       "', which is not defined (clusters: " + join_names(names(doc, "clusters")) +
                       ")");
  }
  std::string cwhere = src + ": cluster '" + cluster_name + "'";
  c.server = detail::text(*cluster, "server");
  if (c.server.empty()) throw config_error(cwhere + " has no server");
  while (c.server.size() > 1 && c.server.back() == '/') c.server.pop_back();
  if (c.server.rfind("https://", 0) != 0 && c.server.rfind("http://", 0) != 0) {
    throw config_error(cwhere + ": server '" + c.server + "' is not an http(s) URL");
  }
  c.insecure_skip_tls_verify = truthy(*cluster, "insecure-skip-tls-verify");
  c.ca_pem = pem(*cluster, "certificate-authority", options.base_dir, cwhere);
  c.tls_server_name = detail::text(*cluster, "tls-server-name");
  c.proxy_url = detail::text(*cluster, "proxy-url");

  std::string user_name = detail::text(*ctx, "user");
  if (!user_name.empty()) {
    const json* user = named(doc, "users", user_name, "user");
    if (user == nullptr) {
      throw config_error(src + ": context '" + context + "' names user '" + user_name +
                         "', which is not defined (users: " + join_names(names(doc, "users")) +
                         ")");
    }
    std::string uwhere = src + ": user '" + user_name + "'";
    c.token = detail::text(*user, "token");
    if (std::string f = detail::text(*user, "tokenFile"); !f.empty()) {
      c.token_file = resolve(options.base_dir, f).string();
    }
    c.client_cert_pem = pem(*user, "client-certificate", options.base_dir, uwhere);
    c.client_key_pem = pem(*user, "client-key", options.base_dir, uwhere);
    if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
      throw config_error(uwhere + ": a client certificate needs its key and the other way round");
    }
    c.username = detail::text(*user, "username");
    c.password = detail::text(*user, "password");
    if (auto e = user->find("exec"); e != user->end() && e->is_object()) {
      c.exec = parse_exec(*e, uwhere);
    }
    if (user->contains("auth-provider")) {
      throw config_error(uwhere + ": auth-provider plugins are not supported (they were removed "
                                  "from kubectl too); use an exec credential plugin");
    }
  }
  return c;
}

json load_doc(std::string_view text, const std::string& source) {
  try {
    return yaml::load(text, source).value;
  } catch (const yaml::Error& e) {
    throw config_error(std::string("invalid kubeconfig: ") + e.what());
  }
}

// Merges kubeconfig b into a with a's values winning, as kubectl merges $KUBECONFIG.
void merge_into(json& a, const json& b) {
  if (!b.is_object()) return;
  for (const char* list : {"clusters", "users", "contexts"}) {
    if (!b.contains(list) || !b[list].is_array()) continue;
    if (!a.contains(list) || !a[list].is_array()) a[list] = json::array();
    for (const auto& entry : b[list]) {
      std::string n = entry.is_object() ? detail::text(entry, "name") : "";
      bool present = false;
      for (const auto& have : a[list])
        present = present || (have.is_object() && detail::text(have, "name") == n);
      if (!present) a[list].push_back(entry);
    }
  }
  if (detail::text(a, "current-context").empty() && !detail::text(b, "current-context").empty()) {
    a["current-context"] = b["current-context"];
  }
}

// Relative references of a file merged with others must be made absolute before merging.
void absolutise(json& doc, const fs::path& base) {
  auto fix = [&](json& o, const char* key) {
    if (o.contains(key) && o[key].is_string() && !o[key].get<std::string>().empty()) {
      o[key] = resolve(base, o[key].get<std::string>()).string();
    }
  };
  for (auto [list, body] : {std::pair{"clusters", "cluster"}, std::pair{"users", "user"}}) {
    if (!doc.contains(list) || !doc[list].is_array()) continue;
    for (auto& entry : doc[list]) {
      if (!entry.is_object() || !entry.contains(body) || !entry[body].is_object()) continue;
      json& b = entry[body];
      fix(b, "certificate-authority");
      fix(b, "client-certificate");
      fix(b, "client-key");
      fix(b, "tokenFile");
    }
  }
}

} // namespace

ClusterConfig parse_kubeconfig(std::string_view text, const KubeconfigOptions& options) {
  return from_document(load_doc(text, options.source), options);
}

ClusterConfig load_kubeconfig(const fs::path& file, const std::string& context) {
  std::string text = read_file(file, "kubeconfig");
  KubeconfigOptions o;
  o.context = context;
  o.base_dir = file.parent_path();
  o.source = file.string();
  return parse_kubeconfig(text, o);
}

ClusterConfig load_default_kubeconfig(const std::string& context) {
  std::vector<fs::path> files;
  if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
    std::string list = env;
    std::size_t start = 0;
    while (start <= list.size()) {
      auto end = list.find(':', start);
      std::string part =
          list.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (!part.empty()) files.emplace_back(part);
      if (end == std::string::npos) break;
      start = end + 1;
    }
  } else if (const char* home = std::getenv("HOME"); home != nullptr) {
    files.emplace_back(fs::path(home) / ".kube" / "config");
  }
  json merged = json::object();
  std::string sources;
  for (const auto& f : files) {
    std::error_code ec;
    if (!fs::exists(f, ec)) continue; // kubectl skips missing files in $KUBECONFIG
    json doc = load_doc(read_file(f, "kubeconfig"), f.string());
    absolutise(doc, f.parent_path());
    merge_into(merged, doc);
    sources += (sources.empty() ? "" : ":") + f.string();
  }
  if (sources.empty()) {
    throw config_error(
        "no kubeconfig found (looked at " +
        (files.empty() ? std::string("$KUBECONFIG and ~/.kube/config") : files.front().string()) +
        ")");
  }
  KubeconfigOptions o;
  o.context = context;
  o.source = sources;
  return from_document(merged, o);
}

ClusterConfig in_cluster_config(const fs::path& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    throw config_error("not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST and "
                       "KUBERNETES_SERVICE_PORT are not set");
  }
  std::error_code ec;
  if (!fs::exists(sa_dir / "token", ec)) {
    throw config_error("no service account token at " + (sa_dir / "token").string() +
                       " (is automountServiceAccountToken off?)");
  }
  ClusterConfig c;
  c.context = "in-cluster";
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]"; // IPv6
  c.server = "https://" + h + ":" + port;
  c.token_file = (sa_dir / "token").string();
  c.ca_pem = read_file(sa_dir / "ca.crt", "service account CA");
  if (fs::exists(sa_dir / "namespace", ec)) {
    c.namespace_ = read_file(sa_dir / "namespace", "service account namespace");
    while (!c.namespace_.empty() && std::isspace(static_cast<unsigned char>(c.namespace_.back()))) {
      c.namespace_.pop_back();
    }
  }
  return c;
}

} // namespace capstan::kube
