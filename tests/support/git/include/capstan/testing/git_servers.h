// Real Git servers on loopback for tests: git daemon (git://) and git http-backend behind a small
// CGI host (http://, optional basic auth), plus helpers that drive the real `git` CLI.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "capstan/testing/testing.h"

namespace httplib {
class Server;
}

namespace capstan::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (for servers that need a fixed --port).
int pick_free_port();

// A loopback port that stays closed while this lives: bound but never listening, so nothing else
// (a server of a test running in parallel) can take it, and connections to it are refused.
class ClosedPort {
public:
  ClosedPort();
  ~ClosedPort();
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  int port() const { return port_; }

private:
  int fd_ = -1;
  int port_ = 0;
};

// Runs the real git CLI with an isolated configuration (no global/system config, fixed
// identity, main as the default branch); throws std::runtime_error with git's stderr on failure
// and returns stdout (trailing newline removed).
std::string git(const std::vector<std::string>& args, const std::filesystem::path& cwd = {},
                const std::map<std::string, std::string>& env = {});

// Creates a bare repository root/name (name may include ".git") whose main branch has one commit
// per entry of `commits`, each writing the given files. Returns its path.
using FileSet = std::map<std::string, std::string>;
std::filesystem::path make_remote(const std::filesystem::path& root, const std::string& name,
                                  const std::vector<FileSet>& commits);

// `git daemon --export-all --enable=receive-pack` serving base_path on 127.0.0.1. The daemon
// needs a fixed port, so a free one is picked and the start retried when another process takes
// it first.
class GitDaemon {
public:
  explicit GitDaemon(std::filesystem::path base_path);
  int port() const { return port_; }
  std::string url(const std::string& repo) const; // git://127.0.0.1:PORT/repo
  std::string log() const { return daemon_ ? daemon_->log() : ""; }

private:
  std::filesystem::path base_;
  TempDir logs_{"capstan-git-daemon"};
  std::unique_ptr<Daemon> daemon_;
  int port_ = 0;
};

// `git http-backend` run as CGI per request by a cpp-httplib server on 127.0.0.1:0 (smart HTTP,
// fetch and push). With a username set, every request needs basic auth with exactly those
// credentials (else 401 with WWW-Authenticate), as a hosted Git server does. With tls set it
// serves https with a fresh self-signed certificate for 127.0.0.1 (see certificate_pem()).
class GitHttpServer {
public:
  explicit GitHttpServer(std::filesystem::path project_root, std::string username = "",
                         std::string password = "", bool tls = false);
  ~GitHttpServer();
  GitHttpServer(const GitHttpServer&) = delete;
  GitHttpServer& operator=(const GitHttpServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& repo) const; // http(s)://127.0.0.1:PORT/repo
  std::string certificate_pem() const;            // the TLS certificate ("" without tls)
  int requests() const { return requests_.load(); }
  int unauthorized() const { return unauthorized_.load(); }
  // Requests whose path contains "git-upload-pack" as a POST: pack negotiations (object
  // transfers), as opposed to ref advertisements.
  int upload_pack_posts() const { return upload_pack_posts_.load(); }

private:
  std::filesystem::path root_;
  std::string username_;
  std::string password_;
  bool tls_ = false;
  TempDir tls_dir_{"capstan-git-tls"};
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::atomic<int> unauthorized_{0};
  std::atomic<int> upload_pack_posts_{0};
};

// OpenSSH's sshd on 127.0.0.1 for the current user (public-key auth only, a fresh host key), so
// tests reach repositories through ssh://USER@127.0.0.1:PORT/abs/path. available() is false when
// sshd is not installed.
class SshServer {
public:
  static bool available();
  SshServer();
  int port() const { return port_; }
  std::string user() const { return user_; }
  std::string url(const std::filesystem::path& repo) const;
  // The server's host key as a known_hosts line ("[127.0.0.1]:PORT ssh-ed25519 AAAA...").
  std::string known_hosts() const { return known_hosts_; }
  // A new client key pair (type as for ssh-keygen -t; "rsa" is written in PEM format,
  // "rsa-openssh" is RSA in OpenSSH format; optional passphrase) whose public half is
  // authorized when `authorize` is set; returns the private key text.
  std::string make_key(const std::string& type, const std::string& passphrase, bool authorize);
  std::string log() const { return daemon_ ? daemon_->log() : ""; }

private:
  TempDir dir_{"capstan-sshd"};
  std::unique_ptr<Daemon> daemon_;
  int port_ = 0;
  int keys_ = 0;
  std::string user_;
  std::string known_hosts_;
};

} // namespace capstan::testing
