// The delegate's end of the wire: one DEALER socket and a thread that opens a session with Hello,
// receives, keeps the session alive with heartbeats and reconnects with jittered exponential
// backoff. Senders put their envelopes on the socket themselves, one at a time.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "capstan/wire/codec.h"
#include "capstan/wire/router.h"

namespace capstan::wire {

struct ClientOptions {
  std::string endpoint = "tcp://127.0.0.1:7700";
  Liveness liveness;
  // Backoff between session attempts: doubles from min up to max, each wait drawn at random
  // from its upper half, so delegates restarted together do not reconnect together.
  std::chrono::milliseconds reconnect_min{200};
  std::chrono::milliseconds reconnect_max{10000};
  std::size_t max_message_bytes = kDefaultMaxMessageBytes;
  int send_hwm = 20000;
  int receive_hwm = 20000;
  // CurveZMQ: the coordinator's public key (Z85). Each connection uses a fresh client keypair.
  // Empty: plain TCP (only against a coordinator started without CurveZMQ).
  std::string curve_server_key;
};

// Callbacks, all on the client's thread, holding no lock of the client's (they may send). They
// must not block for long: heartbeats wait.
class ClientHandler {
public:
  virtual ~ClientHandler() = default;
  // The Hello to send now (called before every session attempt, so it is current).
  virtual v1::Hello hello() = 0;
  virtual void on_welcome(const v1::Welcome& welcome) = 0;
  // Assign, Cancel, ResultAck, ... from an open session.
  virtual void on_message(v1::Envelope&& envelope) = 0;
  // The coordinator refused the Hello for a reason a retry will not fix by itself (version,
  // credentials, invalid Hello). The client keeps retrying at the longest backoff.
  virtual void on_refused(const v1::Refuse& refuse) = 0;
  // An open session ended (coordinator gone silent, restarted, or said Bye).
  virtual void on_session_lost(const std::string& reason) = 0;
};

struct ClientStats {
  std::uint64_t sessions = 0;         // sessions opened (the first one, then reconnects)
  std::uint64_t sessions_lost = 0;    // open sessions that ended
  std::uint64_t heartbeat_misses = 0; // sessions ended because the coordinator went silent
};

class Client {
public:
  Client(zmq::context_t& context, ClientOptions options, ClientHandler& handler);
  ~Client(); // closes without a Bye; call close() first for a polite exit
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Thread-safe. Sent when a session is open; dropped otherwise (a Result must therefore be
  // kept by the caller until its ResultAck). Sent from the calling thread, after whatever was
  // queued before it (in one Batch with it when the coordinator takes them), unless another
  // thread is using the socket: that one sends it before it lets go; send() never waits for it.
  // Log envelopes go by the wire's thread instead, so that consecutive ones of one task attempt
  // are merged into one message.
  void send(v1::Envelope envelope);
  // Like send(), but queued only: the envelope leaves with the next send() or flush(), or when
  // the wire's thread wakes for anything else (a message from the coordinator, a heartbeat), in
  // one Batch with what goes then. For a sender that knows more follows soon. Called from
  // ClientHandler::on_message (the wire's thread), it leaves once that thread has handled every
  // message of its round: what several of them answer goes as one Batch.
  void send_later(v1::Envelope envelope);
  // Sends what send_later() left waiting, from the calling thread (as send()).
  void flush();
  bool attached() const;
  ClientStats stats() const;
  // Sends Bye (when attached), waits up to `linger` for it to leave, and stops the thread.
  void close(const std::string& reason, std::chrono::milliseconds linger = std::chrono::seconds(1));

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace capstan::wire
