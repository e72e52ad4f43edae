// The coordinator's end of the wire: one ROUTER socket, owned by one thread, that keeps
// delegate sessions alive with heartbeats and reports what arrives.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "capstan/wire/codec.h"

namespace capstan::wire {

// Heartbeat timing, the same on both ends: a beat every `interval`; a peer silent for
// `misses` intervals is dead.
struct Liveness {
  std::chrono::milliseconds interval{1000};
  std::uint32_t misses = 3;
  std::chrono::milliseconds dead_after() const { return interval * misses; }
};

struct RouterOptions {
  std::string bind = "tcp://127.0.0.1:7700"; // port 0 picks a free port; see Router::endpoint()
  Liveness liveness;
  std::size_t max_message_bytes = kDefaultMaxMessageBytes;
  // Queued messages per peer each way. Past it a send to that peer fails and the peer is
  // treated as lost, instead of the coordinator buffering without bound for a stuck delegate.
  int send_hwm = 20000;
  int receive_hwm = 20000;
  // CurveZMQ: the coordinator's secret key (Z85, 40 characters). Empty: plain TCP, no
  // encryption (only for debugging on a trusted network).
  std::string curve_secret_key;
  // false: the router starts no thread for the socket; the application's thread drives it
  // (Router::service()), which saves a thread hop each way per message for an application that
  // has a loop of its own. Heartbeats still leave on time while that thread is busy elsewhere.
  bool own_thread = true;
};

// A CurveZMQ keypair in Z85 (40 characters each).
struct CurveKeys {
  std::string public_key;
  std::string secret_key;
};
// A fresh keypair (throws std::runtime_error when libzmq was built without CURVE).
CurveKeys generate_curve_keys();
// Whether text is a Z85 CurveZMQ key.
bool valid_curve_key(const std::string& text);

// A peer is a connection, named by the routing id ZeroMQ gave it. A delegate that reconnects
// comes back as a new peer; its Hello (same instance id) says who it is.
using PeerId = std::string;

struct RouterEvent {
  enum class Kind {
    kMessage,  // an envelope from a peer: a Hello from anyone, anything else from attached peers
    kPeerLost, // an attached peer went silent, became unreachable or said Bye
  };
  Kind kind = Kind::kMessage;
  PeerId peer;
  v1::Envelope envelope; // kMessage
  std::string reason;    // kPeerLost
};

// A message the application queues for a peer; without an envelope, the peer is forgotten.
struct Outgoing {
  PeerId peer;
  std::optional<v1::Envelope> envelope;
};

struct RouterStats {
  std::uint64_t received = 0;
  std::uint64_t sent = 0;
  std::uint64_t garbage = 0;       // frames that were not a valid envelope
  std::uint64_t undeliverable = 0; // sends to peers that were gone or full
  std::uint64_t peers_lost = 0;
  std::uint64_t silent = 0;           // peers lost because they missed their heartbeats
  std::uint64_t attached = 0;         // peers with an open session now
  std::uint64_t batches_sent = 0;     // Batch messages sent (each counted once in `sent`)
  std::uint64_t batches_received = 0; // Batch messages received (each counted once in `received`)
};

// Sessions: a peer becomes attached when the application sends it a Welcome and detached
// when the application sends it a Refuse or a Bye, or when it is lost. Messages other than
// Hello from peers that are not attached are answered with Refuse(UNKNOWN_SESSION) here,
// without bothering the application; garbage is counted and dropped, never answered.
//
// Batches: a delegate that announced a batch_limit in its Hello is told the coordinator's in the
// Welcome; from then on what is queued for it at the same moment leaves in Batch messages, and
// Batches it sends are unpacked here, so the application sees single envelopes either way.
class Router {
public:
  // Called on the router's thread for every event; must not block (hand off to a queue).
  using Sink = std::function<void(RouterEvent&&)>;
  // Called on the router's thread with every event read in one go (a burst, or one Batch), in
  // order: one hand-off per burst instead of one per message.
  using BatchSink = std::function<void(std::vector<RouterEvent>&&)>;

  // Binds (throws zmq::error_t when the address is taken or invalid) and starts the thread.
  Router(zmq::context_t& context, RouterOptions options, Sink sink);
  Router(zmq::context_t& context, RouterOptions options, BatchSink sink);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // The bound endpoint with the real port, e.g. "tcp://127.0.0.1:40123".
  const std::string& endpoint() const;

  // Thread-safe; queued for the router's thread.
  void send(const PeerId& peer, v1::Envelope envelope);
  // Several sends and forgets, in order, handed over at once (one lock, at most one wake-up of
  // the router's thread): what an engine batch sends.
  void send_all(std::vector<Outgoing>&& messages);
  // Forgets a peer without a message (a delegate that re-attached from another connection).
  void forget(const PeerId& peer);

  RouterStats stats() const;

  // Driving the socket from the application's thread (RouterOptions::own_thread false); only
  // that thread calls these. Its loop: service(), its own work (sends it queues meanwhile wait
  // for the next service()), and when it has nothing left and may_wait() says so, a poll(2) on
  // wait_fds() until the time service() returned at the latest.
  //
  // Reads what arrived (the sink is called on this thread), sends what is queued, and sends
  // heartbeats and finds silent peers when due. `woken`: wait_fds()[1] was readable. Returns
  // when the next heartbeat is due.
  std::chrono::steady_clock::time_point service(bool woken);
  // Right before waiting: false when service() has work already (messages wait in libzmq, or
  // another thread queued sends); then call it instead of waiting.
  bool may_wait();
  // The socket's descriptor (readable: messages may have arrived) and the queue's (readable:
  // another thread queued sends).
  std::array<int, 2> wait_fds() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace capstan::wire
