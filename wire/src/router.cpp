// The coordinator's ROUTER socket and its thread: sessions, heartbeats, refusals.
#include "capstan/wire/router.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "capstan/wire/mailbox.h"

namespace capstan::wire {

using Clock = std::chrono::steady_clock;

namespace {

struct Outbound {
  PeerId peer;
  std::optional<v1::Envelope> envelope; // none: forget the peer
};

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
  };

  RouterOptions options;
  Sink sink;
  zmq::socket_t socket;
  std::string endpoint;
  Mailbox<Outbound> outbox;
  std::atomic<bool> stopping{false};
  std::unordered_map<PeerId, Peer> attached; // touched only by the router thread

  std::atomic<std::uint64_t> received{0}, sent{0}, garbage{0}, undeliverable{0}, lost{0}, silent{0},
      attached_count{0};
  std::thread thread;

  Impl(zmq::context_t& context, RouterOptions opts, Sink s)
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
    thread = std::thread([this] { loop(); });
  }

  ~Impl() {
    stopping = true;
    outbox.signal();
    if (thread.joinable()) thread.join();
  }

  void loop() {
    pthread_setname_np(pthread_self(), "capstan-router");
    auto next_beat = Clock::now() + options.liveness.interval;
    std::vector<zmq::pollitem_t> items = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                                          {nullptr, outbox.fd(), ZMQ_POLLIN, 0}};
    while (!stopping) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_beat - Clock::now());
      try {
        zmq::poll(items.data(), items.size(), std::max(wait, std::chrono::milliseconds(0)));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        spdlog::error("wire: poll failed: {}", e.what());
        break;
      }
      if (items[0].revents & ZMQ_POLLIN) receive_all();
      if (items[1].revents & ZMQ_POLLIN) {
        for (auto& out : outbox.drain()) {
          if (out.envelope) {
            deliver(out.peer, *out.envelope);
          } else if (attached.erase(out.peer) > 0) {
            attached_count = attached.size();
          }
        }
      }
      if (Clock::now() >= next_beat) {
        beat();
        next_beat = Clock::now() + options.liveness.interval;
      }
    }
  }

  // Reads what is queued, bounded so heartbeats keep their pace under a flood.
  void receive_all() {
    for (int i = 0; i < 1000; ++i) {
      zmq::message_t id;
      zmq::recv_result_t got;
      try {
        got = socket.recv(id, zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        spdlog::warn("wire: receive failed: {}", e.what());
        return;
      }
      if (!got) return;
      std::vector<zmq::message_t> frames;
      while (true) {
        bool more = socket.get(zmq::sockopt::rcvmore) != 0;
        if (!more) break;
        zmq::message_t frame;
        if (!socket.recv(frame, zmq::recv_flags::dontwait)) break;
        frames.push_back(std::move(frame));
      }
      PeerId peer(static_cast<const char*>(id.data()), id.size());
      if (frames.size() != 1) {
        note_garbage(peer, "expected one frame, got " + std::to_string(frames.size()));
        continue;
      }
      handle(peer, frames[0].to_string_view());
    }
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
      sink(RouterEvent{RouterEvent::Kind::kMessage, peer, std::move(d.envelope), {}});
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
    sink(RouterEvent{RouterEvent::Kind::kMessage, peer, std::move(d.envelope), {}});
  }

  void deliver(const PeerId& peer, const v1::Envelope& env) {
    auto body = env.body_case();
    if (body == v1::Envelope::kWelcome) {
      attached[peer].last_seen = Clock::now();
      attached_count = attached.size();
    }
    bool ok = send_now(peer, env);
    if (body == v1::Envelope::kRefuse || body == v1::Envelope::kBye) {
      if (attached.erase(peer) > 0) attached_count = attached.size();
      return;
    }
    if (!ok && attached.count(peer) > 0) drop(peer, "unreachable (disconnected or not reading)");
  }

  bool send_now(const PeerId& peer, const v1::Envelope& env) {
    std::string bytes = encode(env);
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
    sink(RouterEvent{RouterEvent::Kind::kPeerLost, peer, {}, std::move(reason)});
  }

  void beat() {
    auto now = Clock::now();
    std::vector<PeerId> dead;
    for (const auto& [peer, state] : attached) {
      if (now - state.last_seen > options.liveness.dead_after()) dead.push_back(peer);
    }
    for (const auto& peer : dead) {
      ++silent;
      drop(peer, "no message for " + std::to_string(options.liveness.dead_after().count()) +
                     " ms (" + std::to_string(options.liveness.misses) + " missed heartbeats)");
    }
    v1::Envelope hb;
    hb.mutable_heartbeat();
    std::vector<PeerId> unreachable;
    for (const auto& [peer, state] : attached) {
      if (!send_now(peer, hb)) unreachable.push_back(peer);
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

Router::Router(zmq::context_t& context, RouterOptions options, Sink sink)
    : impl_(std::make_unique<Impl>(context, std::move(options), std::move(sink))) {}

Router::~Router() = default;

const std::string& Router::endpoint() const {
  return impl_->endpoint;
}

void Router::send(const PeerId& peer, v1::Envelope envelope) {
  impl_->outbox.post(Outbound{peer, std::move(envelope)});
}

void Router::forget(const PeerId& peer) {
  impl_->outbox.post(Outbound{peer, std::nullopt});
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
  return s;
}

} // namespace capstan::wire
