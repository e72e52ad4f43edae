// Real Git servers on loopback for tests.
#include "capstan/testing/git_servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <stdexcept>

namespace capstan::testing {

namespace fs = std::filesystem;

namespace {
// A socket bound to an ephemeral loopback port (not listening); returns the fd, sets `port`.
int bind_loopback(int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  port = ntohs(addr.sin_port);
  return fd;
}
} // namespace

int pick_free_port() {
  int port = 0;
  ::close(bind_loopback(port));
  return port;
}

ClosedPort::ClosedPort() : fd_(bind_loopback(port_)) {}
ClosedPort::~ClosedPort() {
  if (fd_ >= 0) ::close(fd_);
}

std::string git(const std::vector<std::string>& args, const fs::path& cwd,
                const std::map<std::string, std::string>& env) {
  // No automatic gc: a detached background gc (after a commit of thousands of objects) would
  // race with the caller removing the work tree.
  std::vector<std::string> argv = {
      "git", "-c",       "init.defaultBranch=main", "-c", "protocol.file.allow=always",
      "-c",  "gc.auto=0"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> e = {{"GIT_CONFIG_NOSYSTEM", "1"},
                                          {"GIT_CONFIG_GLOBAL", "/dev/null"},
                                          {"GIT_AUTHOR_NAME", "Test Author"},
                                          {"GIT_AUTHOR_EMAIL", "author@example.com"},
                                          {"GIT_COMMITTER_NAME", "Test Committer"},
                                          {"GIT_COMMITTER_EMAIL", "committer@example.com"},
                                          {"GIT_TERMINAL_PROMPT", "0"}};
  for (const auto& [k, v] : env) e[k] = v;
  auto result = run(argv, e, std::chrono::seconds(120), cwd.string());
  if (!result.status.success()) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    throw std::runtime_error("git" + cmd + " failed (" + result.status.describe() +
                             "): " + result.err);
  }
  std::string out = result.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

fs::path make_remote(const fs::path& root, const std::string& name,
                     const std::vector<FileSet>& commits) {
  const fs::path bare = root / name;
  git({"init", "--bare", "-q", bare.string()});
  if (commits.empty()) return bare;
  const fs::path work = root / (name + ".seed");
  git({"clone", "-q", bare.string(), work.string()});
  int n = 0;
  for (const auto& files : commits) {
    for (const auto& [path, content] : files) write_file(work / path, content);
    git({"add", "-A"}, work);
    git({"commit", "-q", "--allow-empty", "-m", "seed " + std::to_string(++n)}, work);
  }
  git({"push", "-q", "origin", "HEAD:refs/heads/main"}, work);
  fs::remove_all(work);
  return bare;
}

GitDaemon::GitDaemon(fs::path base_path) : base_(std::move(base_path)) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    port_ = pick_free_port();
    auto log = logs_ / ("daemon-" + std::to_string(attempt) + ".log");
    auto d = std::make_unique<Daemon>(
        std::vector<std::string>{"git", "daemon", "--reuseaddr", "--verbose", "--export-all",
                                 "--enable=receive-pack", "--informative-errors",
                                 "--listen=127.0.0.1", "--port=" + std::to_string(port_),
                                 "--base-path=" + base_.string(), base_.string()},
        log,
        std::map<std::string, std::string>{{"GIT_CONFIG_NOSYSTEM", "1"},
                                           {"GIT_CONFIG_GLOBAL", "/dev/null"}});
    bool ready = wait_until(
        [&] {
          return d->log().find("Ready to rumble") != std::string::npos || !d->child().running();
        },
        std::chrono::seconds(15));
    if (ready && d->child().running()) {
      daemon_ = std::move(d);
      return;
    }
    // Lost the port to someone else (or the daemon died): try another one.
  }
  throw std::runtime_error("git daemon did not start on any port");
}

std::string GitDaemon::url(const std::string& repo) const {
  return "git://127.0.0.1:" + std::to_string(port_) + "/" + repo;
}

namespace {

std::string base64(const std::string& in) {
  static const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0;
  int bits = -6;
  for (unsigned char c : in) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(chars[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(chars[((val << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4 != 0) out.push_back('=');
  return out;
}

} // namespace

GitHttpServer::GitHttpServer(fs::path project_root, std::string username, std::string password,
                             bool tls)
    : root_(std::move(project_root)), username_(std::move(username)),
      password_(std::move(password)), tls_(tls) {
  if (tls_) {
    const fs::path cert = tls_dir_ / "cert.pem";
    const fs::path key = tls_dir_ / "key.pem";
    auto r = run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                  key.string(), "-out", cert.string(), "-days", "2", "-subj", "/CN=127.0.0.1",
                  "-addext", "subjectAltName=IP:127.0.0.1"});
    if (!r.status.success()) throw std::runtime_error("openssl req failed: " + r.err);
    server_ = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    std::string user = "anonymous";
    if (!username_.empty()) {
      const std::string expected = "Basic " + base64(username_ + ":" + password_);
      if (req.get_header_value("Authorization") != expected) {
        ++unauthorized_;
        res.status = 401;
        res.set_header("WWW-Authenticate", "Basic realm=\"git\"");
        res.set_content("authentication required\n", "text/plain");
        return;
      }
      user = username_;
    }
    if (req.method == "POST" && req.path.find("git-upload-pack") != std::string::npos) {
      ++upload_pack_posts_;
    }
    const auto q = req.target.find('?');
    std::map<std::string, std::string> env = {
        {"GIT_PROJECT_ROOT", root_.string()},
        {"GIT_HTTP_EXPORT_ALL", "1"},
        {"GIT_CONFIG_NOSYSTEM", "1"},
        {"GIT_CONFIG_GLOBAL", "/dev/null"},
        {"GATEWAY_INTERFACE", "CGI/1.1"},
        {"SERVER_PROTOCOL", "HTTP/1.1"},
        {"REQUEST_METHOD", req.method},
        {"PATH_INFO", req.path},
        {"QUERY_STRING", q == std::string::npos ? "" : req.target.substr(q + 1)},
        {"CONTENT_TYPE", req.get_header_value("Content-Type")},
        {"CONTENT_LENGTH", std::to_string(req.body.size())},
        {"REMOTE_USER", user},
        {"REMOTE_ADDR", "127.0.0.1"},
    };
    if (req.has_header("Git-Protocol")) env["GIT_PROTOCOL"] = req.get_header_value("Git-Protocol");
    auto result = run({"git", "http-backend"}, env, std::chrono::seconds(120), "", req.body);
    const std::string& out = result.out;
    std::size_t split = out.find("\r\n\r\n");
    std::size_t body_at = split == std::string::npos ? std::string::npos : split + 4;
    if (split == std::string::npos) {
      split = out.find("\n\n");
      body_at = split == std::string::npos ? std::string::npos : split + 2;
    }
    if (!result.status.success() || split == std::string::npos) {
      res.status = 500;
      res.set_content("http-backend failed: " + result.err, "text/plain");
      return;
    }
    res.status = 200;
    std::string content_type = "application/octet-stream";
    std::size_t pos = 0;
    const std::string head = out.substr(0, split);
    while (pos < head.size()) {
      std::size_t eol = head.find('\n', pos);
      std::string line = head.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
      pos = eol == std::string::npos ? head.size() : eol + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (name == "Status") {
        res.status = std::stoi(value);
      } else if (name == "Content-Type") {
        content_type = value;
      } else {
        res.set_header(name.c_str(), value);
      }
    }
    res.set_content(out.substr(body_at), content_type.c_str());
  };
  server_->Get(".*", handler);
  server_->Post(".*", handler);
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) throw std::runtime_error("cannot bind the git http server");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  wait_until([this] { return server_->is_running(); }, std::chrono::seconds(10));
}

GitHttpServer::~GitHttpServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string GitHttpServer::url(const std::string& repo) const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/" +
         repo;
}

std::string GitHttpServer::certificate_pem() const {
  return tls_ ? read_file(tls_dir_ / "cert.pem") : "";
}

bool SshServer::available() {
  return fs::exists("/usr/sbin/sshd") && fs::exists("/usr/bin/ssh-keygen");
}

SshServer::SshServer() {
  const passwd* pw = ::getpwuid(::geteuid());
  if (pw == nullptr) throw std::runtime_error("no passwd entry for the current user");
  user_ = pw->pw_name;
  if (::geteuid() == 0) fs::create_directories("/run/sshd"); // privilege separation dir
  const fs::path host_key = dir_ / "host_ed25519";
  auto keygen = run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key.string()});
  if (!keygen.status.success()) throw std::runtime_error("ssh-keygen failed: " + keygen.err);
  write_file(dir_ / "authorized_keys", "");
  fs::permissions(dir_.path(), fs::perms::owner_all);
  std::string host_pub = read_file(host_key.string() + ".pub");
  host_pub = host_pub.substr(0, host_pub.rfind(' ')); // drop the comment
  for (int attempt = 0; attempt < 10; ++attempt) {
    port_ = pick_free_port();
    const fs::path config = dir_ / ("sshd_config-" + std::to_string(attempt));
    write_file(config, "Port " + std::to_string(port_) + "\nListenAddress 127.0.0.1\nHostKey " +
                           host_key.string() + "\nAuthorizedKeysFile " +
                           (dir_ / "authorized_keys").string() +
                           "\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                           "PubkeyAuthentication yes\nUsePAM no\nStrictModes no\n"
                           "PermitRootLogin prohibit-password\nPidFile none\nLogLevel VERBOSE\n");
    auto d = std::make_unique<Daemon>(
        std::vector<std::string>{"/usr/sbin/sshd", "-D", "-e", "-f", config.string()},
        dir_ / ("sshd-" + std::to_string(attempt) + ".log"));
    bool ready = wait_until(
        [&] {
          return d->log().find("Server listening") != std::string::npos || !d->child().running();
        },
        std::chrono::seconds(15));
    if (ready && d->child().running()) {
      daemon_ = std::move(d);
      known_hosts_ = "[127.0.0.1]:" + std::to_string(port_) + " " + host_pub + "\n";
      return;
    }
  }
  throw std::runtime_error("sshd did not start on any port");
}

std::string SshServer::url(const fs::path& repo) const {
  return "ssh://" + user_ + "@127.0.0.1:" + std::to_string(port_) + fs::absolute(repo).string();
}

std::string SshServer::make_key(const std::string& type, const std::string& passphrase,
                                bool authorize) {
  const fs::path key = dir_ / ("client-" + std::to_string(++keys_));
  std::vector<std::string> argv = {"ssh-keygen", "-q",       "-t", type,
                                   "-N",         passphrase, "-f", key.string()};
  if (type == "rsa" || type == "rsa-openssh") {
    argv[3] = "rsa";
    argv.insert(argv.end(), {"-b", "2048"});
    if (type == "rsa") argv.insert(argv.end(), {"-m", "PEM"});
  }
  auto r = run(argv);
  if (!r.status.success()) throw std::runtime_error("ssh-keygen failed: " + r.err);
  if (authorize) {
    write_file(dir_ / "authorized_keys",
               read_file(dir_ / "authorized_keys") + read_file(key.string() + ".pub"));
  }
  return read_file(key);
}

} // namespace capstan::testing
