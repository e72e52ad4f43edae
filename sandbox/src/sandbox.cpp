// Wires the store, the API server, TLS and the controllers into one process.
#include "capstan/sandbox/sandbox.h"

#include "api_server.h"
#include "capstan/sandbox/util.h"
#include "capstan/yaml/yaml.h"
#include "controllers.h"
#include "tls.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <condition_variable>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace capstan::sandbox {

using nlohmann::json;

struct Sandbox::Impl {
  SandboxOptions options;
  Credentials creds;
  std::unique_ptr<Cluster> cluster;
  std::unique_ptr<ApiServer> api;
  std::unique_ptr<httplib::SSLServer> server;
  std::unique_ptr<Controllers> controllers;
  std::thread thread;
  int port = 0;
  int listen_socket = -1; // the server's listening socket, once bound
  std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;
  bool started = false;
};

namespace {

void write_atomically(const std::filesystem::path& p, const std::string& content, bool secret) {
  auto tmp = p;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
    out << content;
  }
  if (secret) ::chmod(tmp.c_str(), 0600);
  std::filesystem::rename(tmp, p);
}

void ensure_namespace(Cluster& c, const std::string& name) {
  auto t = c.type_of("", "Namespace");
  if (c.store().get({t.storage_key(), "", name})) return;
  WriteOptions o;
  o.manager = "kube-apiserver";
  c.create(t, "", {{"metadata", {{"name", name}}}}, o);
}

} // namespace

Sandbox::Sandbox(SandboxOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  auto& dir = impl_->options.data_dir;
  if (dir.empty()) throw std::runtime_error("a data directory is required (--data-dir DIR)");
  std::filesystem::create_directories(dir);
  ::chmod(dir.c_str(), 0700);
  SandboxConfig config = SandboxConfig::load(dir);
  impl_->creds = ensure_credentials(dir);
  impl_->cluster = std::make_unique<Cluster>(dir, config);
  for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"})
    ensure_namespace(*impl_->cluster, ns);
  impl_->api =
      std::make_unique<ApiServer>(*impl_->cluster, impl_->creds.token, impl_->options.log_requests);
  impl_->controllers = std::make_unique<Controllers>(*impl_->cluster);
}

Sandbox::~Sandbox() {
  stop();
}

void Sandbox::start() {
  auto& im = *impl_;
  im.server = std::make_unique<httplib::SSLServer>(im.creds.server_cert.c_str(),
                                                   im.creds.server_key.c_str());
  if (!im.server->is_valid()) throw std::runtime_error("cannot load the serving certificate");
  int threads = std::max(8, im.options.threads);
  im.server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  im.server->set_keep_alive_max_count(10000);
  im.server->set_keep_alive_timeout(30);
  im.server->set_read_timeout(30, 0);
  im.server->set_write_timeout(30, 0);
  im.server->set_tcp_nodelay(true);
  // Called for the listening socket only, before it is bound.
  im.server->set_socket_options([&im](socket_t sock) {
    httplib::default_socket_options(sock);
    im.listen_socket = sock;
  });
  im.api->install(*im.server);
  if (im.options.port == 0) {
    im.port = im.server->bind_to_any_port(im.options.address);
  } else {
    im.port = im.server->bind_to_port(im.options.address, im.options.port) ? im.options.port : -1;
  }
  if (im.port <= 0)
    throw std::runtime_error("cannot listen on " + im.options.address + ":" +
                             std::to_string(im.options.port));
  // The HTTP library listens with a backlog of 5: clients opening several connections at once
  // (kubectl, client-go and Capstan's pools do) had SYNs dropped, and waited a second to send
  // them again, whenever the accepting thread was slow to run. kube-apiserver listens with the
  // kernel's maximum; listening again on the bound socket raises the backlog to that.
  if (im.listen_socket >= 0) ::listen(im.listen_socket, SOMAXCONN);
  im.api->set_address(im.options.address + ":" + std::to_string(im.port));
  json kubeconfig = {
      {"apiVersion", "v1"},
      {"kind", "Config"},
      {"clusters",
       {{{"name", "capstan-sandbox"},
         {"cluster",
          {{"server", server_url()},
           {"certificate-authority-data", base64_encode(im.creds.ca_pem)}}}}}},
      {"users", {{{"name", "capstan-sandbox"}, {"user", {{"token", im.creds.token}}}}}},
      {"contexts",
       {{{"name", "capstan-sandbox"},
         {"context",
          {{"cluster", "capstan-sandbox"},
           {"user", "capstan-sandbox"},
           {"namespace", "default"}}}}}},
      {"current-context", "capstan-sandbox"},
      {"preferences", json::object()}};
  write_atomically(kubeconfig_path(), yaml::dump(kubeconfig), true);
  write_atomically(im.options.data_dir / "port", std::to_string(im.port) + "\n", false);
  im.controllers->start();
  im.thread = std::thread([this] { impl_->server->listen_after_bind(); });
  im.started = true;
}

void Sandbox::stop() {
  auto& im = *impl_;
  {
    std::lock_guard lock(im.mu);
    if (im.stopped) return;
    im.stopped = true;
  }
  if (im.api) im.api->shutdown();
  if (im.cluster) im.cluster->store().close_watches();
  if (im.server) im.server->stop();
  if (im.thread.joinable()) im.thread.join();
  if (im.controllers) im.controllers->stop();
  im.cv.notify_all();
}

void Sandbox::wait() {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->stopped; });
}

int Sandbox::port() const {
  return impl_->port;
}
std::string Sandbox::server_url() const {
  return "https://" + impl_->options.address + ":" + std::to_string(impl_->port);
}
std::filesystem::path Sandbox::kubeconfig_path() const {
  return impl_->options.data_dir / "kubeconfig";
}
const std::string& Sandbox::token() const {
  return impl_->creds.token;
}
Cluster& Sandbox::cluster() {
  return *impl_->cluster;
}

} // namespace capstan::sandbox
