// The coordinator's ROUTER socket and its thread: sessions, heartbeats, refusals.
#include "capstan/wire/router.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "capstan/wire/mailbox.h"

namespace capstan::wire {

using Clock = std::chrono::steady_clock;

namespace {

v1::Envelope refusal(v1::Refuse::Code code, std::string message, bool retry) {
  v1::Envelope env;
  auto* r = env.mutable_refuse();
  r->set_code(code);
  r->set_message(std::move(message));
  r->set_retry(retry);
  return env;
}

} // namespace

struct Router::Impl {
  struct Peer {
    Clock::time_point last_seen;
    std::uint32_t batch_limit = 0; // what its Hello announced; 0: send it no Batch
  };

  RouterOptions options;
  BatchSink sink;
  zmq::socket_t socket;
  std::string endpoint;
  Mailbox<Outgoing> outbox;
  std::atomic<bool> stopping{false};
  // Without a thread of its own, the application's thread uses the socket and everything below
  // under this lock, and the keeper thread takes it to send heartbeats when that thread has not
  // come by for a while (a long batch must not make the delegates think the coordinator died).
  std::mutex socket_mutex;
  Clock::time_point next_beat;
  int socket_fd = -1;
  std::atomic<Clock::rep> last_service{0};
  std::thread keeper;
  std::mutex keeper_mutex; // guards keeper_stop, for keeper_cv
  std::condition_variable keeper_cv;
  bool keeper_stop = false;
  // Touched only by the thread that owns the socket (or holds socket_mutex):
  std::unordered_map<PeerId, Peer> attached;
  // The batch_limit of peers whose Hello awaits the application's Welcome or Refuse.
  std::unordered_map<PeerId, std::uint32_t> greeting;
  std::vector<RouterEvent> events; // read but not handed to the sink yet

  std::atomic<std::uint64_t> received{0}, sent{0}, garbage{0}, undeliverable{0}, lost{0}, silent{0},
      attached_count{0}, batches_sent{0}, batches_received{0};
  std::thread thread;

  Impl(zmq::context_t& context, RouterOptions opts, BatchSink s)
      : options(std::move(opts)), sink(std::move(s)), socket(context, zmq::socket_type::router) {
    socket.set(zmq::sockopt::router_mandatory, 1);
    socket.set(zmq::sockopt::sndhwm, options.send_hwm);
    socket.set(zmq::sockopt::rcvhwm, options.receive_hwm);
    // A few bytes of slack over the envelope limit: libzmq drops the connection of a peer that
    // sends more, before the bytes are ever buffered.
    socket.set(zmq::sockopt::maxmsgsize,
               static_cast<std::int64_t>(options.max_message_bytes + 1024));
    socket.set(zmq::sockopt::linger, 0);
    if (!options.curve_secret_key.empty()) {
      socket.set(zmq::sockopt::curve_server, true);
      socket.set(zmq::sockopt::curve_secretkey, options.curve_secret_key);
    }
    // Half-open TCP connections (a peer host that vanished) are found by the kernel too.
    socket.set(zmq::sockopt::tcp_keepalive, 1);
    // A peer that connects but never finishes the ZMTP/CURVE handshake is dropped.
    socket.set(zmq::sockopt::handshake_ivl,
               static_cast<int>(std::max<long long>(5000, options.liveness.dead_after().count())));
    socket.bind(options.bind);
    endpoint = socket.get(zmq::sockopt::last_endpoint);
    if (options.own_thread) {
      thread = std::thread([this] { loop(); });
    } else {
      socket_fd = static_cast<int>(socket.get(zmq::sockopt::fd));
      next_beat = Clock::now() + options.liveness.interval;
      last_service = Clock::now().time_since_epoch().count();
      keeper = std::thread([this] { keep_beating(); });
    }
  }

  ~Impl() {
    stopping = true;
    outbox.signal();
    if (thread.joinable()) thread.join();
    {
      std::lock_guard lock(keeper_mutex);
      keeper_stop = true;
    }
    keeper_cv.notify_all();
    if (keeper.joinable()) keeper.join();
  }

  // RouterOptions::own_thread false: what the application's thread calls each round.
  Clock::time_point service(bool woken) {
    outbox.awake();
    std::vector<RouterEvent> out;
    Clock::time_point beat_at;
    {
      std::lock_guard lock(socket_mutex);
      last_service = Clock::now().time_since_epoch().count();
      const bool drained = receive_all();
      if (woken || !outbox.empty()) send_outbox(woken);
      if (Clock::now() >= next_beat) {
        // A peer whose messages are still unread in libzmq is not silent.
        beat(drained);
        next_beat = Clock::now() + options.liveness.interval;
      }
      out.swap(events);
      beat_at = next_beat;
    }
    if (!out.empty()) sink(std::move(out));
    return beat_at;
  }

  bool may_wait() {
    {
      std::lock_guard lock(socket_mutex);
      if (!events.empty()) return false; // the keeper lost a peer
      // Also what makes the socket's descriptor signal again for messages that arrived while
      // this thread sent (it is edge-triggered).
      if (socket.get(zmq::sockopt::events) & ZMQ_POLLIN) return false;
    }
    return outbox.sleep();
  }

  // Sends the heartbeats the application's thread is late for; silent peers are left to it,
  // since their messages may be waiting unread.
  void keep_beating() {
    pthread_setname_np(pthread_self(), "capstan-beat");
    const auto late = options.liveness.interval * 3 / 2;
    std::unique_lock lock(keeper_mutex);
    while (!keeper_stop) {
      keeper_cv.wait_for(lock, options.liveness.interval / 2);
      if (keeper_stop) break;
      const Clock::time_point seen{Clock::duration(last_service.load())};
      if (Clock::now() - seen < late) continue;
      std::unique_lock socket_lock(socket_mutex, std::try_to_lock);
      if (!socket_lock.owns_lock()) continue; // the application's thread is at it
      beat(false);
      next_beat = Clock::now() + options.liveness.interval;
      socket_lock.unlock();
      outbox.signal(); // the owner looks at the socket again (its descriptor may not signal)
    }
  }

  void loop() {
    pthread_setname_np(pthread_self(), "capstan-router");
    auto next_beat = Clock::now() + options.liveness.interval;
    std::vector<zmq::pollitem_t> items = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                                          {nullptr, outbox.fd(), ZMQ_POLLIN, 0}};
    // Between polls this thread says it is awake: what the application queues meanwhile is
    // sent before the next wait, without a wake-up written for it.
    outbox.awake();
    while (!stopping) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_beat - Clock::now());
      const bool queued = !outbox.sleep();
      if (queued) wait = std::chrono::milliseconds(0);
      try {
        zmq::poll(items.data(), items.size(), std::max(wait, std::chrono::milliseconds(0)));
      } catch (const zmq::error_t& e) {
        outbox.awake();
        if (e.num() == EINTR) continue;
        spdlog::error("wire: poll failed: {}", e.what());
        break;
      }
      outbox.awake();
      if (items[0].revents & ZMQ_POLLIN) {
        receive_all();
        emit(); // the engine starts on it while this thread sends
      }
      const bool woken = (items[1].revents & ZMQ_POLLIN) != 0;
      if (queued || woken) send_outbox(woken);
      if (Clock::now() >= next_beat) {
        beat(true);
        next_beat = Clock::now() + options.liveness.interval;
      }
      emit();
    }
  }

  // Hands what was read to the application in one call.
  void emit() {
    if (events.empty()) return;
    std::vector<RouterEvent> out;
    out.swap(events);
    sink(std::move(out));
  }

  // Sends what the application queued. Consecutive envelopes for one peer that takes batches
  // leave together; session control (Welcome, Refuse, Bye, forget) keeps its place in the order.
  void send_outbox(bool woken) {
    auto items = outbox.drain(woken);
    // Per peer, the envelopes not sent yet, in order.
    std::vector<std::pair<PeerId, std::vector<v1::Envelope>>> runs;
    std::unordered_map<PeerId, std::size_t> run_of;
    auto flush = [&](const PeerId& peer) {
      auto it = run_of.find(peer);
      if (it == run_of.end()) return;
      auto& envelopes = runs[it->second].second;
      if (!envelopes.empty()) deliver_run(peer, envelopes);
      envelopes.clear();
    };
    for (auto& out : items) {
      if (!out.envelope) {
        flush(out.peer);
        greeting.erase(out.peer);
        if (attached.erase(out.peer) > 0) attached_count = attached.size();
        continue;
      }
      if (!batchable(*out.envelope)) {
        flush(out.peer);
        deliver(out.peer, *out.envelope);
        continue;
      }
      auto [it, fresh] = run_of.try_emplace(out.peer, runs.size());
      if (fresh) runs.emplace_back(out.peer, std::vector<v1::Envelope>{});
      runs[it->second].second.push_back(std::move(*out.envelope));
    }
    for (auto& [peer, envelopes] : runs) {
      if (!envelopes.empty()) deliver_run(peer, envelopes);
    }
  }

  // Sends envelopes to one peer, in Batches when it takes them.
  void deliver_run(const PeerId& peer, std::vector<v1::Envelope>& envelopes) {
    auto it = attached.find(peer);
    std::uint32_t limit = it != attached.end() ? std::min(it->second.batch_limit, kBatchLimit) : 0;
    for (const auto& message : encode_all(envelopes, limit)) {
      if (!send_bytes(peer, message.bytes)) {
        if (attached.count(peer) > 0) drop(peer, "unreachable (disconnected or not reading)");
        return;
      }
      if (message.entries > 1) ++batches_sent;
    }
  }

  // Reads what is queued, bounded so heartbeats keep their pace under a flood. False when it
  // stopped at the bound with more to read.
  bool receive_all() {
    for (int i = 0; i < 1000; ++i) {
      zmq::message_t id;
      zmq::recv_result_t got;
      try {
        got = socket.recv(id, zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        spdlog::warn("wire: receive failed: {}", e.what());
        return true;
      }
      if (!got) return true;
      // A ROUTER hands over a peer's whole message at once: its id, then its frames.
      zmq::message_t body;
      std::size_t frames = 0;
      for (bool more = id.more(); more; ++frames) {
        zmq::message_t frame;
        if (!socket.recv(frame, zmq::recv_flags::dontwait)) break;
        more = frame.more();
        if (frames == 0) body = std::move(frame);
      }
      PeerId peer(static_cast<const char*>(id.data()), id.size());
      if (frames != 1) {
        note_garbage(peer, "expected one frame, got " + std::to_string(frames));
        continue;
      }
      handle(peer, body.to_string_view());
    }
    return false;
  }

  void note_garbage(const PeerId& peer, const std::string& why) {
    auto n = ++garbage;
    // Rate-limited: a flood of junk must not become a flood of log lines.
    if (n <= 10 || n % 1000 == 0) {
      spdlog::warn("wire: dropped a bad message from peer {} ({}; {} so far)", hex(peer), why, n);
    }
  }

  void handle(const PeerId& peer, std::string_view bytes) {
    ++received;
    // A batch from a peer without a session is answered like any other message below.
    Decoded d = decode(bytes, options.max_message_bytes);
    if (!d.ok()) {
      if (d.error == DecodeError::kWrongVersion) {
        // Worth an answer: a delegate of another release should say why it cannot attach.
        send_now(peer,
                 refusal(v1::Refuse::CODE_PROTOCOL_VERSION,
                         "coordinator speaks wire protocol " + std::to_string(kProtocolVersion) +
                             ", delegate sent " + std::to_string(d.peer_version) +
                             "; run a delegate of the coordinator's release",
                         false));
      }
      note_garbage(peer, d.message);
      return;
    }
    auto it = attached.find(peer);
    if (it != attached.end()) it->second.last_seen = Clock::now();
    auto body = d.envelope.body_case();
    if (body == v1::Envelope::kHello) {
      greeting[peer] = d.envelope.hello().batch_limit();
      events.push_back(RouterEvent{RouterEvent::Kind::kMessage, peer, std::move(d.envelope), {}});
      return;
    }
    if (it == attached.end()) {
      if (body != v1::Envelope::kBye && body != v1::Envelope::kRefuse) {
        send_now(peer, refusal(v1::Refuse::CODE_UNKNOWN_SESSION,
                               "no session for this connection; say Hello", true));
      }
      return;
    }
    if (body == v1::Envelope::kHeartbeat) return;
    if (body == v1::Envelope::kBye) {
      drop(peer, "said bye: " + d.envelope.bye().reason());
      return;
    }
    if (body != v1::Envelope::kBatch) {
      events.push_back(RouterEvent{RouterEvent::Kind::kMessage, peer, std::move(d.envelope), {}});
      return;
    }
    ++batches_received;
    for (auto& entry : *d.envelope.mutable_batch()->mutable_envelopes()) {
      if (entry.has_heartbeat()) continue;
      events.push_back(RouterEvent{RouterEvent::Kind::kMessage, peer, std::move(entry), {}});
    }
  }

  void deliver(const PeerId& peer, v1::Envelope& env) {
    auto body = env.body_case();
    if (body == v1::Envelope::kWelcome) {
      auto& state = attached[peer];
      state.last_seen = Clock::now();
      if (auto g = greeting.find(peer); g != greeting.end()) {
        state.batch_limit = g->second;
        greeting.erase(g);
      }
      attached_count = attached.size();
      env.mutable_welcome()->set_batch_limit(kBatchLimit);
    }
    bool ok = send_now(peer, std::move(env));
    if (body == v1::Envelope::kRefuse || body == v1::Envelope::kBye) {
      greeting.erase(peer);
      if (attached.erase(peer) > 0) attached_count = attached.size();
      return;
    }
    if (!ok && attached.count(peer) > 0) drop(peer, "unreachable (disconnected or not reading)");
  }

  bool send_now(const PeerId& peer, v1::Envelope env) {
    return send_bytes(peer, encode_in_place(env));
  }

  bool send_bytes(const PeerId& peer, const std::string& bytes) {
    try {
      if (!socket.send(zmq::buffer(peer), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        ++undeliverable;
        return false;
      }
      socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
      ++sent;
      return true;
    } catch (const zmq::error_t& e) {
      // EHOSTUNREACH under ROUTER_MANDATORY: the peer is gone.
      ++undeliverable;
      return false;
    }
  }

  void drop(const PeerId& peer, std::string reason) {
    if (attached.erase(peer) == 0) return;
    attached_count = attached.size();
    ++lost;
    events.push_back(RouterEvent{RouterEvent::Kind::kPeerLost, peer, {}, std::move(reason)});
  }

  void beat(bool find_silent) {
    auto now = Clock::now();
    std::vector<PeerId> dead;
    for (const auto& [peer, state] : attached) {
      if (find_silent && now - state.last_seen > options.liveness.dead_after()) {
        dead.push_back(peer);
      }
    }
    for (const auto& peer : dead) {
      ++silent;
      drop(peer, "no message for " + std::to_string(options.liveness.dead_after().count()) +
                     " ms (" + std::to_string(options.liveness.misses) + " missed heartbeats)");
    }
    v1::Envelope hb;
    hb.mutable_heartbeat();
    const std::string beat_bytes = encode_in_place(hb);
    std::vector<PeerId> unreachable;
    for (const auto& [peer, state] : attached) {
      if (!send_bytes(peer, beat_bytes)) unreachable.push_back(peer);
    }
    for (const auto& peer : unreachable) drop(peer, "unreachable (disconnected or not reading)");
  }

  static std::string hex(const PeerId& id) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : id) {
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
    return out;
  }
};

CurveKeys generate_curve_keys() {
  char pub[41] = {}, sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    throw std::runtime_error(
        "cannot generate a CurveZMQ keypair: " + std::string(zmq_strerror(zmq_errno())) +
        " (is libzmq built with CURVE support?)");
  }
  return {pub, sec};
}

bool valid_curve_key(const std::string& text) {
  if (text.size() != 40) return false;
  std::uint8_t decoded[32];
  return zmq_z85_decode(decoded, text.c_str()) != nullptr;
}

Router::Router(zmq::context_t& context, RouterOptions options, BatchSink sink)
    : impl_(std::make_unique<Impl>(context, std::move(options), std::move(sink))) {}

Router::Router(zmq::context_t& context, RouterOptions options, Sink sink)
    : Router(context, std::move(options),
             [sink = std::move(sink)](std::vector<RouterEvent>&& events) {
               for (auto& e : events) sink(std::move(e));
             }) {}

Router::~Router() = default;

const std::string& Router::endpoint() const {
  return impl_->endpoint;
}

void Router::send(const PeerId& peer, v1::Envelope envelope) {
  impl_->outbox.post(Outgoing{peer, std::move(envelope)});
}

void Router::send_all(std::vector<Outgoing>&& messages) {
  impl_->outbox.post_all(std::move(messages));
}

void Router::forget(const PeerId& peer) {
  impl_->outbox.post(Outgoing{peer, std::nullopt});
}

std::chrono::steady_clock::time_point Router::service(bool woken) {
  return impl_->service(woken);
}

bool Router::may_wait() {
  return impl_->may_wait();
}

std::array<int, 2> Router::wait_fds() const {
  return {impl_->socket_fd, impl_->outbox.fd()};
}

RouterStats Router::stats() const {
  RouterStats s;
  s.received = impl_->received;
  s.sent = impl_->sent;
  s.garbage = impl_->garbage;
  s.undeliverable = impl_->undeliverable;
  s.peers_lost = impl_->lost;
  s.silent = impl_->silent;
  s.attached = impl_->attached_count;
  s.batches_sent = impl_->batches_sent;
  s.batches_received = impl_->batches_received;
  return s;
}

} // namespace capstan::wire
