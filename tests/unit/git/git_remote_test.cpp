// capstan::git against real Git servers on loopback: git daemon (git://) and git http-backend
// (http://, with basic auth), plus the error kinds a step maps to failure strategies.
#include <gtest/gtest.h>

#include "capstan/testing/errors.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "capstan/git/cache.h"
#include "capstan/git/repository.h"
#include "capstan/testing/git_servers.h"

namespace fs = std::filesystem;
using capstan::testing::git;
using capstan::testing::GitDaemon;
using capstan::testing::GitHttpServer;
using capstan::testing::make_remote;
using capstan::testing::TempDir;
using namespace capstan::git;

namespace {

Error error_of(const std::function<void()>& f) {
  return capstan::testing::error_of<Error>(f, ErrorKind::kInternal, "none");
}

Signature bot() {
  return Signature{"Release Bot", "bot@example.com", std::nullopt, 0};
}

// One release repository served three ways.
struct Servers {
  TempDir dir{"capstan-git-remote"};
  fs::path root = dir / "srv";
  fs::path bare = make_remote(root, "release.git",
                              {{{"cluster-config/dev/config.json", "{\"imageTag\": \"v1\"}\n"}}});
  GitDaemon daemon{root};
  GitHttpServer http{root, "deployer", "s3cret-token"};

  RemoteOptions over(const std::string& transport) const {
    RemoteOptions r;
    if (transport == "file") r.url = "file://" + bare.string();
    if (transport == "git") r.url = daemon.url("release.git");
    if (transport == "http") {
      r.url = http.url("release.git");
      r.credentials.username = "deployer";
      r.credentials.password = "s3cret-token";
    }
    return r;
  }
};

class Transports : public ::testing::TestWithParam<std::string> {};

} // namespace

TEST_P(Transports, CloneFetchCommitPushAndCacheReuse) {
  Servers s;
  const RemoteOptions remote = s.over(GetParam());
  RepoCache cache(s.dir / "cache");
  std::string landed;
  {
    RepoLease lease = cache.acquire(remote);
    EXPECT_TRUE(lease.cloned());
    const std::string base = lease->resolve("main");
    CommitRequest r;
    r.parent = base;
    r.edits = {{"cluster-config/dev/config.json", std::string("{\"imageTag\": \"v2\"}\n"), false}};
    r.message = "dev v2 over " + GetParam();
    r.author = bot();
    auto tip = lease->commit_files(r);
    auto result = lease->push_rebasing(remote, "main", base, *tip, bot());
    EXPECT_TRUE(result.pushed);
    landed = result.oid;
  }
  EXPECT_EQ(git({"rev-parse", "main"}, s.bare), landed);
  EXPECT_EQ(git({"show", "main:cluster-config/dev/config.json"}, s.bare), "{\"imageTag\": \"v2\"}");

  // The remote's head without fetching, then a cheap re-acquire that fetches instead of cloning.
  EXPECT_EQ(remote_head(remote, "main").value_or(""), landed);
  EXPECT_EQ(remote_head(remote, "HEAD").value_or(""), landed);
  EXPECT_FALSE(remote_head(remote, "nope").has_value());
  auto refs = ls_remote(remote);
  bool saw_main = false;
  for (const auto& ref : refs) saw_main |= ref.name == "refs/heads/main" && ref.oid == landed;
  EXPECT_TRUE(saw_main);

  const fs::path work = s.dir / "w";
  git({"clone", "-q", s.bare.string(), work.string()});
  capstan::testing::write_file(work / "cluster-config/prod/config.json", "{}\n");
  git({"add", "-A"}, work);
  git({"commit", "-q", "-m", "prod"}, work);
  git({"push", "-q", "origin", "main"}, work);
  RepoLease again = cache.acquire(remote);
  EXPECT_FALSE(again.cloned());
  EXPECT_TRUE(again.fetched().changed());
  EXPECT_EQ(again->read_file("main", "cluster-config/prod/config.json"), "{}\n");
  EXPECT_EQ(again->resolve("main"), git({"rev-parse", "main"}, s.bare));
}

INSTANTIATE_TEST_SUITE_P(Git, Transports, ::testing::Values("file", "git", "http"));

TEST(GitRemote, LsRemoteTransfersNoObjects) {
  Servers s;
  const RemoteOptions remote = s.over("http");
  const int posts = s.http.upload_pack_posts();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(remote_head(remote, "main").value_or(""), git({"rev-parse", "main"}, s.bare));
  }
  EXPECT_EQ(s.http.upload_pack_posts(), posts); // only ref advertisements, no pack requests
  Repository repo = Repository::clone(remote, s.dir / "c", CloneOptions{true, ""});
  EXPECT_GT(s.http.upload_pack_posts(), posts); // whereas a clone negotiates a pack
}

TEST(GitRemote, PushRaceBetweenTwoDelegatesBothLand) {
  Servers s;
  for (const std::string& transport : {std::string("git"), std::string("http")}) {
    const RemoteOptions remote = s.over(transport);
    // Two delegates: separate caches, each with its own clone.
    RepoCache a(s.dir / ("cache-a-" + transport));
    RepoCache b(s.dir / ("cache-b-" + transport));
    std::string err_a;
    std::string err_b;
    auto step = [&](RepoCache& cache, const std::string& name, std::string& err) {
      try {
        RepoLease lease = cache.acquire(remote);
        const std::string base = lease->resolve("main");
        CommitRequest r;
        r.parent = base;
        r.edits = {
            {"cluster-config/" + name + "/config.json", "{\"by\": \"" + name + "\"}\n", false}};
        r.message = "update " + name;
        r.author = bot();
        auto tip = lease->commit_files(r);
        RetryPolicy policy;
        policy.max_attempts = 10;
        lease->push_rebasing(remote, "main", base, *tip, bot(), policy);
      } catch (const std::exception& e) {
        err = e.what();
      }
    };
    // Both clone first so both start from the same base, then race.
    { auto la = a.acquire(remote); }
    { auto lb = b.acquire(remote); }
    const std::string before = git({"rev-parse", "main"}, s.bare);
    std::thread ta([&] { step(a, "a-" + transport, err_a); });
    std::thread tb([&] { step(b, "b-" + transport, err_b); });
    ta.join();
    tb.join();
    EXPECT_EQ(err_a, "");
    EXPECT_EQ(err_b, "");
    EXPECT_EQ(git({"rev-list", "--count", before + "..main"}, s.bare), "2");
    EXPECT_EQ(git({"show", "main:cluster-config/a-" + transport + "/config.json"}, s.bare),
              "{\"by\": \"a-" + transport + "\"}");
    EXPECT_EQ(git({"show", "main:cluster-config/b-" + transport + "/config.json"}, s.bare),
              "{\"by\": \"b-" + transport + "\"}");
  }
}

TEST(GitRemote, WrongCredentialsAreAuthenticationErrors) {
  Servers s;
  RemoteOptions wrong = s.over("http");
  wrong.credentials.password = "not-the-token";
  Error e = error_of([&] { Repository::clone(wrong, s.dir / "c1"); });
  EXPECT_EQ(e.kind(), ErrorKind::kAuthentication) << e.what();
  EXPECT_EQ(std::string(e.what()).find("not-the-token"), std::string::npos) << e.what();
  EXPECT_GT(s.http.unauthorized(), 0);

  RemoteOptions none = s.over("http");
  none.credentials = {};
  e = error_of([&] { ls_remote(none); });
  EXPECT_EQ(e.kind(), ErrorKind::kAuthentication) << e.what();

  // Credentials inside the URL never reach the message either.
  RemoteOptions in_url = s.over("http");
  in_url.credentials = {};
  in_url.url =
      "http://deployer:wrong-in-url@127.0.0.1:" + std::to_string(s.http.port()) + "/release.git";
  e = error_of([&] { ls_remote(in_url); });
  EXPECT_EQ(e.kind(), ErrorKind::kAuthentication) << e.what();
  EXPECT_EQ(std::string(e.what()).find("wrong-in-url"), std::string::npos) << e.what();

  // Push with the wrong token is refused the same way.
  Repository repo = Repository::clone(s.over("http"), s.dir / "c2", CloneOptions{true, ""});
  e = error_of([&] { repo.push(wrong, {{"main", "other", false}}); });
  EXPECT_EQ(e.kind(), ErrorKind::kAuthentication) << e.what();
}

TEST(GitRemote, UnreachableRemotesAreConnectivityErrors) {
  const capstan::testing::ClosedPort closed_port; // nothing listens there, nor can
  const int closed = closed_port.port();
  for (const std::string& url : {"git://127.0.0.1:" + std::to_string(closed) + "/x.git",
                                 "http://127.0.0.1:" + std::to_string(closed) + "/x.git",
                                 std::string("https://no-such-host.invalid/x.git")}) {
    RemoteOptions r;
    r.url = url;
    Error e = error_of([&] { ls_remote(r); });
    EXPECT_EQ(e.kind(), ErrorKind::kConnectivity) << url << ": " << e.what();
  }
}

TEST(GitRemote, MissingRepositoriesAreNotFound) {
  Servers s;
  RemoteOptions http = s.over("http");
  http.url = s.http.url("missing.git");
  Error e = error_of([&] { ls_remote(http); });
  EXPECT_EQ(e.kind(), ErrorKind::kNotFound) << e.what();
  RemoteOptions daemon;
  daemon.url = s.daemon.url("missing.git");
  e = error_of([&] { ls_remote(daemon); });
  EXPECT_EQ(e.kind(), ErrorKind::kNotFound) << e.what();
}

TEST(GitRemote, RejectedPushOverDaemonIsNonFastForward) {
  Servers s;
  const RemoteOptions remote = s.over("git");
  Repository repo = Repository::clone(remote, s.dir / "c", CloneOptions{true, ""});
  const std::string base = repo.resolve("main");
  const fs::path work = s.dir / "w";
  git({"clone", "-q", s.bare.string(), work.string()});
  capstan::testing::write_file(work / "x.txt", "x\n");
  git({"add", "-A"}, work);
  git({"commit", "-q", "-m", "x"}, work);
  git({"push", "-q", "origin", "main"}, work);
  CommitRequest r;
  r.parent = base;
  r.edits = {{"y.txt", std::string("y\n"), false}};
  r.author = bot();
  auto tip = repo.commit_files(r);
  Error e = error_of([&] { repo.push(remote, {{*tip, "main", false}}); });
  EXPECT_EQ(e.kind(), ErrorKind::kNonFastForward) << e.what();
  RetryPolicy once;
  once.max_attempts = 1;
  e = error_of([&] { repo.push_rebasing(remote, "main", base, *tip, bot(), once); });
  EXPECT_EQ(e.kind(), ErrorKind::kNonFastForward) << e.what();
}

// The options of a repository behind `ssh` (no credentials yet).
RemoteOptions ssh_remote(const capstan::testing::SshServer& ssh, const fs::path& bare) {
  RemoteOptions remote;
  remote.url = ssh.url(bare);
  remote.ssh_known_hosts = ssh.known_hosts();
  return remote;
}

TEST(GitRemote, SshWithKeysAgentlessAndHostKeyChecks) {
  if (!capstan::testing::SshServer::available()) GTEST_SKIP() << "sshd is not installed";
  TempDir dir;
  const fs::path bare = make_remote(dir.path(), "release.git", {{{"a.txt", "a\n"}}});
  capstan::testing::SshServer ssh;
  RemoteOptions remote = ssh_remote(ssh, bare);
  remote.credentials.ssh_private_key = ssh.make_key("ed25519", "", true);

  std::optional<std::string> head;
  try {
    head = remote_head(remote, "main");
  } catch (const Error& e) {
    FAIL() << e.what() << "\nsshd log:\n" << ssh.log();
  }
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(*head, git({"rev-parse", "main"}, bare));
  Repository repo = Repository::clone(remote, dir / "clone", CloneOptions{true, ""});
  CommitRequest r;
  r.parent = *head;
  r.edits = {{"b.txt", std::string("b\n"), false}};
  r.message = "over ssh";
  r.author = bot();
  auto tip = repo.commit_files(r);
  repo.push(remote, {{*tip, "main", false}});
  EXPECT_EQ(git({"rev-parse", "main"}, bare), *tip);

  // A key with a passphrase.
  RemoteOptions protected_key = remote;
  protected_key.credentials.ssh_private_key = ssh.make_key("ecdsa", "open sesame", true);
  protected_key.credentials.ssh_passphrase = "open sesame";
  EXPECT_EQ(remote_head(protected_key, "main").value_or(""), *tip);

  // A key the server does not know: Authentication, and the key text is not in the message.
  RemoteOptions stranger = remote;
  stranger.credentials.ssh_private_key = ssh.make_key("ed25519", "", false);
  Error e = error_of([&] { ls_remote(stranger); });
  EXPECT_EQ(e.kind(), ErrorKind::kAuthentication) << e.what();
  EXPECT_EQ(std::string(e.what()).find("PRIVATE KEY"), std::string::npos);

  RemoteOptions no_key = remote;
  no_key.credentials = {};
  EXPECT_EQ(error_of([&] { ls_remote(no_key); }).kind(), ErrorKind::kAuthentication);

  // A host key that does not match the known hosts: refused before authenticating.
  RemoteOptions spoofed = remote;
  spoofed.ssh_known_hosts =
      "[127.0.0.1]:" + std::to_string(ssh.port()) +
      " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";
  e = error_of([&] { ls_remote(spoofed); });
  EXPECT_EQ(e.kind(), ErrorKind::kConnectivity) << e.what();
  EXPECT_NE(std::string(e.what()).find("host key"), std::string::npos) << e.what();
}

TEST(GitRemote, HttpsTrustsTheSystemAnExtraCaOrNothing) {
  TempDir dir;
  const fs::path root = dir / "srv";
  const fs::path bare = make_remote(root, "release.git", {{{"a.txt", "a\n"}}});
  GitHttpServer https(root, "deployer", "tok3n", true);
  GitHttpServer other(root, "", "", true); // another self-signed certificate
  RemoteOptions remote;
  remote.url = https.url("release.git");
  remote.credentials.password = "tok3n";
  remote.credentials.username = "deployer";

  Error e = error_of([&] { ls_remote(remote); });
  EXPECT_EQ(e.kind(), ErrorKind::kConnectivity) << e.what();
  EXPECT_NE(std::string(e.what()).find("not trusted"), std::string::npos) << e.what();

  RemoteOptions wrong_ca = remote;
  wrong_ca.tls_ca_pem = other.certificate_pem();
  EXPECT_EQ(error_of([&] { ls_remote(wrong_ca); }).kind(), ErrorKind::kConnectivity);

  RemoteOptions with_ca = remote;
  with_ca.tls_ca_pem = https.certificate_pem();
  EXPECT_EQ(remote_head(with_ca, "main").value_or(""), git({"rev-parse", "main"}, bare));
  Repository repo = Repository::clone(with_ca, dir / "clone", CloneOptions{true, ""});
  EXPECT_EQ(repo.read_file("main", "a.txt"), "a\n");

  RemoteOptions insecure = remote;
  insecure.insecure_skip_tls_verify = true;
  EXPECT_EQ(remote_head(insecure, "main").value_or(""), git({"rev-parse", "main"}, bare));
}

TEST(GitRemote, HostThatDropsConnectionsTimesOutAsConnectivity) {
  // A listener that never accepts, its backlog filled: further connection attempts hang.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  RemoteOptions r;
  r.url = "git://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x.git";
  r.connect_timeout = std::chrono::milliseconds(300);
  Error e = error_of([&] { ls_remote(r); });
  EXPECT_EQ(e.kind(), ErrorKind::kConnectivity) << e.what();
  EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
  for (int fd : fillers) ::close(fd);
  ::close(listener);
}

// A server that accepts connections (the kernel completes the handshake) and then never says
// a word: without a read timeout the operation would wait forever.
struct SilentServer {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  int port = 0;
  SilentServer() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listener, 16);
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ~SilentServer() { ::close(listener); }
};

TEST(GitRemote, StalledServerTimesOutInsteadOfHanging) {
  SilentServer silent;
  for (const std::string scheme : {"git", "http"}) {
    RemoteOptions r;
    r.url = scheme + "://127.0.0.1:" + std::to_string(silent.port) + "/release.git";
    r.read_timeout = std::chrono::milliseconds(500);
    Error e = error_of([&] { ls_remote(r); });
    EXPECT_EQ(e.kind(), ErrorKind::kTimeout) << scheme << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find("stalled"), std::string::npos) << e.what();
  }
}

TEST(GitRemote, CancellationReachesAStalledTransfer) {
  SilentServer silent;
  TempDir dir("capstan-git-stall");
  std::atomic<bool> stop{false};
  RemoteOptions r;
  r.url = "git://127.0.0.1:" + std::to_string(silent.port) + "/release.git";
  r.read_timeout = std::chrono::milliseconds(0); // none: only cancellation ends it
  r.cancelled = [&] { return stop.load(); };
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  Error e = error_of([&] { Repository::clone(r, dir / "clone", {true, ""}); });
  canceller.join();
  EXPECT_EQ(e.kind(), ErrorKind::kCancelled) << e.what();
}

// OpenSSH 9 refuses "ssh-rsa" (SHA-1) signatures, the only ones libssh2 1.10 makes for RSA:
// RSA keys are signed with rsa-sha2-512 instead, whatever format they are stored in.
TEST(GitRemote, SshWithRsaKeysSignsWithSha2) {
  if (!capstan::testing::SshServer::available()) GTEST_SKIP() << "sshd is not installed";
  TempDir dir;
  const fs::path bare = make_remote(dir.path(), "release.git", {{{"a.txt", "a\n"}}});
  capstan::testing::SshServer ssh;
  const RemoteOptions remote = ssh_remote(ssh, bare);
  struct Case {
    std::string type, passphrase;
  };
  std::string head = git({"rev-parse", "main"}, bare);
  int n = 0;
  for (const Case& c : {Case{"rsa", ""}, Case{"rsa-openssh", ""}, Case{"rsa", "open sesame"}}) {
    SCOPED_TRACE(c.type + (c.passphrase.empty() ? "" : " with a passphrase"));
    RemoteOptions r = remote;
    r.credentials.ssh_private_key = ssh.make_key(c.type, c.passphrase, true);
    r.credentials.ssh_passphrase = c.passphrase;
    try {
      EXPECT_EQ(remote_head(r, "main").value_or(""), head);
      Repository repo =
          Repository::clone(r, dir / ("clone-" + std::to_string(++n)), CloneOptions{true, ""});
      CommitRequest req;
      req.parent = head;
      req.edits = {{"rsa.txt", std::to_string(n) + "\n", false}};
      req.author = bot();
      auto tip = repo.commit_files(req);
      repo.push(r, {{*tip, "main", false}});
      head = *tip;
      EXPECT_EQ(git({"rev-parse", "main"}, bare), head);
    } catch (const Error& e) {
      ADD_FAILURE() << e.what() << "\nsshd log:\n" << ssh.log();
    }
  }
  EXPECT_NE(ssh.log().find("Accepted publickey"), std::string::npos) << ssh.log();
  EXPECT_NE(ssh.log().find("ssh2: RSA SHA256:"), std::string::npos) << ssh.log();
  EXPECT_EQ(ssh.log().find("not in PubkeyAcceptedAlgorithms"), std::string::npos) << ssh.log();

  // A wrong or missing passphrase: Authentication, said before connecting.
  RemoteOptions wrong = remote;
  wrong.credentials.ssh_private_key = ssh.make_key("rsa", "right", true);
  wrong.credentials.ssh_passphrase = "wrong";
  Error e = error_of([&] { ls_remote(wrong); });
  EXPECT_EQ(e.kind(), ErrorKind::kAuthentication) << e.what();
  EXPECT_NE(std::string(e.what()).find("passphrase is wrong"), std::string::npos) << e.what();
  wrong.credentials.ssh_passphrase = "";
  e = error_of([&] { ls_remote(wrong); });
  EXPECT_EQ(e.kind(), ErrorKind::kAuthentication) << e.what();

  // An unknown RSA key is refused like any other.
  RemoteOptions stranger = remote;
  stranger.credentials.ssh_private_key = ssh.make_key("rsa-openssh", "", false);
  e = error_of([&] { ls_remote(stranger); });
  EXPECT_EQ(e.kind(), ErrorKind::kAuthentication) << e.what();
  EXPECT_EQ(std::string(e.what()).find("PRIVATE KEY"), std::string::npos);

  // A passphrase-protected RSA key in OpenSSH format cannot be read: a plain early error that
  // names the key type and the remedy.
  RemoteOptions sealed = remote;
  sealed.credentials.ssh_private_key = ssh.make_key("rsa-openssh", "s3cret", true);
  sealed.credentials.ssh_passphrase = "s3cret";
  e = error_of([&] { ls_remote(sealed); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << e.what();
  EXPECT_NE(std::string(e.what()).find("RSA key in OpenSSH format"), std::string::npos);
  EXPECT_NE(std::string(e.what()).find("ssh-keygen -p -m PEM"), std::string::npos);
  EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos);
}
