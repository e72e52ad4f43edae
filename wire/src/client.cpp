// The delegate's DEALER socket, its thread (Hello, receiving, heartbeats, Paranoid-Pirate
// reconnects) and its senders.
#include "capstan/wire/client.h"

#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "capstan/wire/mailbox.h"

namespace capstan::wire {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {
// A Log message grows up to about this size before a new one is started.
constexpr std::size_t kMaxLogBatchBytes = 256 * 1024;

} // namespace

struct Client::Impl {
  enum class State { kWaiting, kHelloSent, kAttached };

  zmq::context_t& context;
  ClientOptions options;
  ClientHandler& handler;
  std::atomic<bool> stopping{false};
  std::atomic<bool> is_attached{false};
  std::atomic<std::uint64_t> sessions{0}, sessions_lost{0}, heartbeat_misses{0};
  // The most envelopes the coordinator takes in one Batch (its Welcome says); 0: none.
  std::atomic<std::uint32_t> batch_limit{0};
  std::string bye_reason;
  std::mt19937_64 rng{std::random_device{}()};

  // The socket is shared on purpose: a thread with an envelope to send (a worker with its
  // Result) sends it itself instead of handing it to this client's thread and waking it, which
  // saves a wake-up and a thread crossing per task. libzmq lets a socket be used from several
  // threads one at a time, with a full memory barrier between them: the mutex gives both. The
  // client's thread never waits inside libzmq: it sleeps in poll() on the socket's descriptor
  // (ZMQ_FD), holding nothing. That descriptor only signals edges, and any thread's call on the
  // socket may consume one: a sender that finds the thread asleep therefore looks whether
  // messages wait (ZMQ_EVENTS) and wakes it if so.
  std::mutex socket_mutex;
  std::unique_ptr<zmq::socket_t> socket; // guarded by socket_mutex
  int socket_fd = -1;                    // the socket's ZMQ_FD (client thread only)
  // A send since the socket was taken, or since a receive found nothing (socket_mutex): such a
  // receive took every command libzmq had for the socket, so only a later call may hide an edge.
  bool sent = false;

  // Envelopes not yet on the socket, in order (guarded by out_mutex). Whoever holds the socket
  // sends them all; one who cannot take the socket leaves them to its holder, which looks again
  // after letting go, so nothing is stranded.
  std::mutex out_mutex;
  std::vector<v1::Envelope> out;
  std::vector<v1::Envelope> taken; // what send_queued() took from `out` (socket_mutex)
  bool out_due = false;            // something in `out` must leave now (not only send_later's)
  bool out_gathered = false;       // something in `out` waits for the client's thread
  bool thread_asleep = false;      // the client's thread waits in poll() (or is about to)
  bool wake_pending = false;       // woken for gathered envelopes, and not awake yet
  Mailbox<int> wake_box;           // only its descriptor: wakes the client's thread

  // Owned by the client thread.
  State state = State::kWaiting;
  Clock::time_point next_attempt;   // kWaiting: when to connect and say Hello
  Clock::time_point hello_deadline; // kHelloSent: when to give up on a Welcome
  Clock::time_point last_heard;
  Clock::time_point next_beat;
  // The session's pace, agreed in the Welcome: beat at least as often as the coordinator
  // expects, and wait for it at least as long as it takes to miss its own beats.
  milliseconds beat_interval{1000};
  milliseconds dead_after{3000};
  unsigned failures = 0;
  std::thread thread;

  Impl(zmq::context_t& ctx, ClientOptions opts, ClientHandler& h)
      : context(ctx), options(std::move(opts)), handler(h) {
    next_attempt = Clock::now();
    thread = std::thread([this] { loop(); });
  }

  ~Impl() {
    stopping = true;
    wake_box.signal();
    if (thread.joinable()) thread.join();
  }

  milliseconds backoff() {
    auto base = options.reconnect_min.count();
    auto cap = options.reconnect_max.count();
    long long delay = base;
    for (unsigned i = 0; i < failures && delay < cap; ++i) delay *= 2;
    delay = std::min<long long>(delay, cap);
    std::uniform_int_distribution<long long> pick(delay / 2, delay);
    ++failures;
    return milliseconds(pick(rng));
  }

  void open_socket() {
    auto s = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    s->set(zmq::sockopt::sndhwm, options.send_hwm);
    s->set(zmq::sockopt::rcvhwm, options.receive_hwm);
    s->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(options.max_message_bytes + 1024));
    s->set(zmq::sockopt::linger, 0);
    if (!options.curve_server_key.empty()) {
      auto keys = generate_curve_keys();
      s->set(zmq::sockopt::curve_serverkey, options.curve_server_key);
      s->set(zmq::sockopt::curve_publickey, keys.public_key);
      s->set(zmq::sockopt::curve_secretkey, keys.secret_key);
    }
    s->set(zmq::sockopt::tcp_keepalive, 1);
    // libzmq's own reconnects (after a dropped TCP connection) back off too, jittered per socket.
    std::uniform_int_distribution<int> jitter(100, 300);
    s->set(zmq::sockopt::reconnect_ivl, jitter(rng));
    s->set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(options.reconnect_max.count()));
    s->connect(options.endpoint);
    const int fd = s->get(zmq::sockopt::fd);
    std::lock_guard lock(socket_mutex);
    socket = std::move(s);
    socket_fd = fd;
  }

  void say_hello() {
    v1::Envelope env;
    *env.mutable_hello() = handler.hello();
    env.mutable_hello()->set_batch_limit(kBatchLimit);
    batch_limit = 0;
    send_now(env);
    state = State::kHelloSent;
    hello_deadline = Clock::now() + options.liveness.dead_after();
  }

  // The session is gone or never came: start over on a fresh socket after a backoff.
  void restart(const std::string& reason, bool was_attached) {
    if (was_attached) {
      handler.on_session_lost(reason);
      ++sessions_lost;
    }
    is_attached = false;
    batch_limit = 0;
    {
      std::lock_guard lock(socket_mutex);
      socket.reset();
      socket_fd = -1;
    }
    state = State::kWaiting;
    auto wait = backoff();
    next_attempt = Clock::now() + wait;
    spdlog::info("wire: {}; reconnecting to {} in {} ms", reason, options.endpoint, wait.count());
  }

  // From the client's thread, outside the socket's lock: what was queued, then this.
  bool send_now(v1::Envelope& env) {
    std::unique_lock lock(socket_mutex);
    send_queued();
    const bool sent = send_bytes(encode_in_place(env));
    release(lock);
    return sent;
  }

  // socket_mutex held.
  bool send_bytes(const std::string& bytes) {
    if (!socket) return false;
    sent = true;
    try {
      return socket->send(zmq::buffer(bytes), zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t& e) {
      spdlog::warn("wire: send failed: {}", e.what());
      return false;
    }
  }

  enum class Leave { kNow, kGathered, kLater };

  // Queues an envelope. kNow: sends it (after what is queued before it) from this thread, unless
  // another holds the socket, which then sends it before it lets go. kGathered: the client's
  // thread sends it, with whatever else comes until it gets to it (log lines merge there).
  // kLater: it waits for the next of either, or for the client's thread to wake anyway.
  void submit(v1::Envelope&& envelope, Leave leave) {
    bool wake = false;
    {
      std::lock_guard lock(out_mutex);
      out.push_back(std::move(envelope));
      if (leave == Leave::kNow) out_due = true;
      if (leave == Leave::kGathered) {
        out_gathered = true;
        if (thread_asleep && !wake_pending) wake = wake_pending = true;
      }
    }
    if (wake) wake_box.signal();
    if (leave == Leave::kNow) deliver();
  }

  // Sends what is queued now, from this thread (as submit() with kNow).
  void flush() {
    {
      std::lock_guard lock(out_mutex);
      if (out.empty()) return;
      out_due = true;
    }
    deliver();
  }

  void deliver() {
    std::unique_lock lock(socket_mutex, std::try_to_lock);
    if (!lock.owns_lock()) return; // the holder sends it before it lets go (release())
    send_queued();
    release(lock);
  }

  // Lets go of the socket; what came meanwhile that must leave now is sent first.
  void release(std::unique_lock<std::mutex>& lock) {
    while (true) {
      // A sender's libzmq calls may have consumed the descriptor's edge for messages that
      // arrived meanwhile: wake the client's thread if it sleeps on that edge.
      bool asleep = false;
      {
        std::lock_guard out_lock(out_mutex);
        asleep = thread_asleep;
      }
      if (asleep && sent && socket) {
        try {
          if ((socket->get(zmq::sockopt::events) & ZMQ_POLLIN) != 0) wake_box.signal();
        } catch (const zmq::error_t&) { // NOLINT(bugprone-empty-catch): the thread's poll sees it
        }
      }
      sent = false;
      lock.unlock();
      {
        std::lock_guard out_lock(out_mutex);
        if (!out_due) return;
      }
      if (!lock.try_lock()) return; // another holder: it looks again when it lets go
      send_queued();
    }
  }

  // Sends what is queued, merging log lines of one attempt into few messages, and everything
  // together in Batches when the coordinator takes them (socket_mutex held).
  void send_queued() {
    std::vector<v1::Envelope>& items = taken;
    {
      std::lock_guard lock(out_mutex);
      if (out.empty()) return;
      items.swap(out); // `out` keeps the capacity `taken` had: no allocation a round
      out_due = false;
      out_gathered = false;
    }
    struct Clear {
      std::vector<v1::Envelope>& items;
      ~Clear() { items.clear(); }
    } clear{items};
    if (!is_attached || !socket) return;
    if (items.size() == 1) { // the usual case when tasks come one at a time
      send_bytes(encode_in_place(items.front()));
      return;
    }
    std::vector<v1::Envelope> batch;
    batch.reserve(items.size());
    // Attempt -> index in batch of its open Log, while its lines may still be merged. Few
    // attempts log at once: a linear search beats hashing their keys.
    std::vector<std::pair<std::size_t, std::size_t>> open_log; // index, bytes
    auto same_attempt = [](const v1::Log& a, const v1::Log& b) {
      return a.attempt() == b.attempt() && a.task_id() == b.task_id();
    };
    for (auto& env : items) {
      if (env.has_log()) {
        auto it = std::find_if(open_log.begin(), open_log.end(), [&](const auto& o) {
          return same_attempt(batch[o.first].log(), env.log());
        });
        auto* open = it != open_log.end() ? batch[it->first].mutable_log() : nullptr;
        // Numbered lines merge only when they follow on (a resend may repeat earlier ones).
        bool follows =
            open != nullptr &&
            (env.log().first_seq() == 0
                 ? open->first_seq() == 0
                 : env.log().first_seq() ==
                       open->first_seq() + static_cast<std::uint64_t>(open->lines_size()));
        if (follows && it->second < kMaxLogBatchBytes) {
          for (auto& line : *env.mutable_log()->mutable_lines()) {
            it->second += line.text().size() + 16;
            *open->add_lines() = std::move(line);
          }
          continue;
        }
        if (it != open_log.end()) open_log.erase(it);
        open_log.emplace_back(batch.size(), env.ByteSizeLong());
      } else if (env.has_result()) {
        // Lines after a Result would be out of order; close the attempt's batch.
        std::erase_if(open_log, [&](const auto& o) {
          const auto& log = batch[o.first].log();
          return log.attempt() == env.result().attempt() && log.task_id() == env.result().task_id();
        });
      }
      batch.push_back(std::move(env));
    }
    for (const auto& message : encode_all(batch, batch_limit)) send_bytes(message.bytes);
  }

  // Sends what is queued (the Results of the steps run on this thread last round), then takes
  // what the coordinator sent (up to a bound), in one hold of the socket. Nothing received and
  // nothing left to gather: the thread is marked asleep in the same hold, so a sender from then
  // on looks for what its calls may hide from poll() (release()) and one who queues for the
  // thread wakes it. Returns whether it was marked so. Receiving last, until nothing is left,
  // makes the look at ZMQ_EVENTS needless when it goes to sleep (one libzmq call less a round).
  bool exchange(std::vector<zmq::message_t>& got) {
    std::unique_lock lock(socket_mutex);
    send_queued();
    for (int i = 0; i < 1000 && socket; ++i) {
      zmq::message_t msg;
      try {
        if (!socket->recv(msg, zmq::recv_flags::dontwait)) {
          sent = false; // that call took every pending command: nothing is hidden from poll()
          break;
        }
      } catch (const zmq::error_t& e) {
        spdlog::warn("wire: receive failed: {}", e.what());
        break;
      }
      if (msg.more()) {
        // A ROUTER never sends us multipart; drain and drop.
        while (socket->get(zmq::sockopt::rcvmore) != 0) {
          zmq::message_t rest;
          if (!socket->recv(rest, zmq::recv_flags::dontwait)) break;
        }
        continue;
      }
      got.push_back(std::move(msg));
    }
    bool asleep = false;
    {
      std::lock_guard out_lock(out_mutex);
      // Gathered envelopes that came since send_queued() took the queue: go round again.
      asleep = thread_asleep = got.empty() && !out_gathered;
    }
    release(lock);
    return asleep;
  }

  void loop() {
    pthread_setname_np(pthread_self(), "capstan-client");
    std::vector<zmq::message_t> got; // what a round received (kept: no allocation a round)
    while (!stopping) {
      auto now = Clock::now();
      if (state == State::kWaiting && now >= next_attempt) {
        try {
          open_socket();
          say_hello();
        } catch (const zmq::error_t& e) {
          spdlog::error("wire: cannot connect to {}: {}", options.endpoint, e.what());
          restart("connect failed", false);
        }
      }
      got.clear();
      const bool idle = exchange(got);
      for (const auto& msg : got) {
        if (state == State::kWaiting) break; // the session ended: the rest belonged to it
        receive(msg);
      }
      now = Clock::now();
      if (state == State::kHelloSent && now >= hello_deadline) {
        restart("no answer to Hello from " + options.endpoint, false);
      } else if (state == State::kAttached) {
        if (now - last_heard > dead_after) {
          ++heartbeat_misses;
          restart("coordinator silent for " + std::to_string(dead_after.count()) + " ms", true);
        } else if (now >= next_beat) {
          v1::Envelope hb;
          hb.mutable_heartbeat();
          send_now(hb);
          next_beat = now + beat_interval;
        }
      }
      if (!idle || stopping) {
        std::lock_guard out_lock(out_mutex);
        thread_asleep = false;
        continue; // more may have come: look again before sleeping
      }
      Clock::time_point wake;
      switch (state) {
      case State::kWaiting:
        wake = next_attempt;
        break;
      case State::kHelloSent:
        wake = hello_deadline;
        break;
      case State::kAttached:
        wake = std::min(next_beat, last_heard + dead_after);
        break;
      }
      std::array<pollfd, 2> fds = {{{wake_box.fd(), POLLIN, 0}, {socket_fd, POLLIN, 0}}};
      const nfds_t polled = socket_fd >= 0 ? 2 : 1;
      auto wait = std::chrono::duration_cast<milliseconds>(wake - Clock::now());
      // Rounded up: a wake-up a little early would only poll again.
      int timeout = static_cast<int>(std::clamp<long long>(wait.count() + 1, 0, 60000));
      if (::poll(fds.data(), polled, timeout) < 0 && errno != EINTR) {
        spdlog::error("wire: poll failed: {}", std::strerror(errno));
        break;
      }
      {
        std::lock_guard out_lock(out_mutex);
        thread_asleep = false;
        wake_pending = false;
      }
      if ((fds[0].revents & POLLIN) != 0) wake_box.drain();
    }
    if (!bye_reason.empty()) {
      std::unique_lock lock(socket_mutex);
      send_queued();
      if (socket && is_attached) {
        v1::Envelope bye;
        bye.mutable_bye()->set_reason(bye_reason);
        send_bytes(encode_in_place(bye));
      }
    }
  }

  void agree_pace(const v1::Welcome& welcome) {
    beat_interval = options.liveness.interval;
    dead_after = options.liveness.dead_after();
    if (welcome.heartbeat_interval_ms() == 0) return; // a coordinator that does not say
    milliseconds theirs(welcome.heartbeat_interval_ms());
    auto misses = welcome.heartbeat_misses() ? welcome.heartbeat_misses() : options.liveness.misses;
    beat_interval = std::min(beat_interval, theirs);
    dead_after = std::max(dead_after, theirs * misses);
  }

  void receive(const zmq::message_t& msg) {
    Decoded d = decode(msg.to_string_view(), options.max_message_bytes);
    if (!d.ok()) {
      spdlog::warn("wire: dropped a bad message from the coordinator: {}", d.message);
      return;
    }
    last_heard = Clock::now();
    if (d.envelope.has_batch()) {
      // Checked whole by decode(): its entries are never session control.
      for (auto& entry : *d.envelope.mutable_batch()->mutable_envelopes()) {
        handle(std::move(entry));
      }
      return;
    }
    handle(std::move(d.envelope));
  }
  void handle(v1::Envelope&& env) {
    switch (env.body_case()) {
    case v1::Envelope::kWelcome:
      if (state == State::kAttached) return; // a duplicate; nothing to do
      state = State::kAttached;
      is_attached = true;
      failures = 0;
      ++sessions;
      batch_limit = std::min(env.welcome().batch_limit(), kBatchLimit);
      agree_pace(env.welcome());
      next_beat = Clock::now() + beat_interval;
      handler.on_welcome(env.welcome());
      return;
    case v1::Envelope::kRefuse: {
      const auto& r = env.refuse();
      bool was = state == State::kAttached;
      if (r.code() == v1::Refuse::CODE_UNKNOWN_SESSION) {
        // The coordinator does not know this connection (it restarted, or our connection was
        // re-established): open a new session at once on the same socket.
        if (was) handler.on_session_lost("coordinator has no session for us (restarted?)");
        is_attached = false;
        batch_limit = 0;
        if (state != State::kHelloSent) say_hello();
        return;
      }
      if (!r.retry()) {
        handler.on_refused(r);
        failures = 64; // the longest backoff from now on
      }
      restart("coordinator refused the session: " + r.message(), was);
      return;
    }
    case v1::Envelope::kBye:
      restart("coordinator said bye: " + env.bye().reason(), state == State::kAttached);
      return;
    case v1::Envelope::kHeartbeat:
      return;
    default:
      if (state == State::kAttached) handler.on_message(std::move(env));
      return;
    }
  }
};

Client::Client(zmq::context_t& context, ClientOptions options, ClientHandler& handler)
    : impl_(std::make_unique<Impl>(context, std::move(options), handler)) {}

Client::~Client() = default;

void Client::send(v1::Envelope envelope) {
  auto leave = envelope.has_log() ? Impl::Leave::kGathered : Impl::Leave::kNow;
  impl_->submit(std::move(envelope), leave);
}

void Client::send_later(v1::Envelope envelope) {
  impl_->submit(std::move(envelope), Impl::Leave::kLater);
}

void Client::flush() {
  impl_->flush();
}

bool Client::attached() const {
  return impl_->is_attached;
}

ClientStats Client::stats() const {
  return {impl_->sessions, impl_->sessions_lost, impl_->heartbeat_misses};
}

void Client::close(const std::string& reason, std::chrono::milliseconds linger) {
  if (!impl_->thread.joinable()) return;
  impl_->bye_reason = reason.empty() ? "closing" : reason;
  impl_->stopping = true;
  impl_->wake_box.signal();
  impl_->thread.join();
  std::lock_guard lock(impl_->socket_mutex);
  if (impl_->socket) {
    impl_->socket->set(zmq::sockopt::linger, static_cast<int>(linger.count()));
    impl_->socket.reset();
  }
}

} // namespace capstan::wire
