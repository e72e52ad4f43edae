// The delegate's DEALER socket and its thread: Hello, heartbeats, Paranoid-Pirate reconnects.
#include "capstan/wire/client.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
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
  std::unique_ptr<zmq::socket_t> socket;
  Mailbox<v1::Envelope> outbox;
  std::atomic<bool> stopping{false};
  std::atomic<bool> is_attached{false};
  std::atomic<std::uint64_t> sessions{0}, sessions_lost{0}, heartbeat_misses{0};
  std::string bye_reason;
  std::mt19937_64 rng{std::random_device{}()};

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
  // The most envelopes the coordinator takes in one Batch (its Welcome says); 0: none.
  std::uint32_t batch_limit = 0;
  unsigned failures = 0;
  std::thread thread;

  Impl(zmq::context_t& ctx, ClientOptions opts, ClientHandler& h)
      : context(ctx), options(std::move(opts)), handler(h) {
    next_attempt = Clock::now();
    thread = std::thread([this] { loop(); });
  }

  ~Impl() {
    stopping = true;
    outbox.signal();
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
    socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::sndhwm, options.send_hwm);
    socket->set(zmq::sockopt::rcvhwm, options.receive_hwm);
    socket->set(zmq::sockopt::maxmsgsize,
                static_cast<std::int64_t>(options.max_message_bytes + 1024));
    socket->set(zmq::sockopt::linger, 0);
    if (!options.curve_server_key.empty()) {
      auto keys = generate_curve_keys();
      socket->set(zmq::sockopt::curve_serverkey, options.curve_server_key);
      socket->set(zmq::sockopt::curve_publickey, keys.public_key);
      socket->set(zmq::sockopt::curve_secretkey, keys.secret_key);
    }
    socket->set(zmq::sockopt::tcp_keepalive, 1);
    // libzmq's own reconnects (after a dropped TCP connection) back off too, jittered per socket.
    std::uniform_int_distribution<int> jitter(100, 300);
    socket->set(zmq::sockopt::reconnect_ivl, jitter(rng));
    socket->set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(options.reconnect_max.count()));
    socket->connect(options.endpoint);
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
    socket.reset();
    state = State::kWaiting;
    auto wait = backoff();
    next_attempt = Clock::now() + wait;
    spdlog::info("wire: {}; reconnecting to {} in {} ms", reason, options.endpoint, wait.count());
  }

  bool send_now(v1::Envelope& env) { return send_bytes(encode_in_place(env)); }

  // Sends envelopes in order, several to a Batch when the coordinator takes them.
  void send_all(std::vector<v1::Envelope>& envelopes) {
    if (envelopes.empty()) return;
    for (const auto& message : encode_all(envelopes, batch_limit)) send_bytes(message.bytes);
  }

  bool send_bytes(const std::string& bytes) {
    if (!socket) return false;
    try {
      return socket->send(zmq::buffer(bytes), zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t& e) {
      spdlog::warn("wire: send failed: {}", e.what());
      return false;
    }
  }

  void loop() {
    pthread_setname_np(pthread_self(), "capstan-client");
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
      std::array<zmq::pollitem_t, 2> items = {
          {{nullptr, outbox.fd(), ZMQ_POLLIN, 0},
           {socket ? socket->handle() : nullptr, 0, ZMQ_POLLIN, 0}}};
      const std::size_t polled = socket ? 2 : 1;
      auto wait = std::chrono::duration_cast<milliseconds>(wake - Clock::now());
      // Posts write no wake-up while this thread is awake; before it waits it looks whether
      // any came (and then only polls what is ready now).
      if (!outbox.sleep()) wait = milliseconds(0);
      try {
        zmq::poll(items.data(), polled, std::max(wait, milliseconds(0)));
      } catch (const zmq::error_t& e) {
        outbox.awake();
        if (e.num() == EINTR) continue;
        spdlog::error("wire: poll failed: {}", e.what());
        break;
      }
      outbox.awake();
      // Awake anyway: what was queued, with a wake-up or without (send_later), leaves now.
      if ((items[0].revents & ZMQ_POLLIN) || !outbox.empty()) flush_outbox();
      if (polled > 1 && (items[1].revents & ZMQ_POLLIN)) {
        receive_all();
        // What the workers queued meanwhile leaves together, without another round of poll.
        if (!outbox.empty()) flush_outbox();
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
    }
    if (socket && is_attached && !bye_reason.empty()) {
      flush_outbox();
      v1::Envelope bye;
      bye.mutable_bye()->set_reason(bye_reason);
      send_now(bye);
    }
  }

  // Sends what other threads queued, merging log lines of one attempt into few messages, and
  // everything together in Batches when the coordinator takes them.
  void flush_outbox() {
    auto items = outbox.drain();
    if (!is_attached) return;
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
    send_all(batch);
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

  void receive_all() {
    for (int i = 0; i < 1000 && socket; ++i) {
      zmq::message_t msg;
      zmq::recv_result_t got;
      try {
        got = socket->recv(msg, zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        spdlog::warn("wire: receive failed: {}", e.what());
        return;
      }
      if (!got) return;
      if (msg.more()) {
        // A ROUTER never sends us multipart; drain and drop.
        while (socket->get(zmq::sockopt::rcvmore) != 0) {
          zmq::message_t rest;
          if (!socket->recv(rest, zmq::recv_flags::dontwait)) break;
        }
        continue;
      }
      Decoded d = decode(msg.to_string_view(), options.max_message_bytes);
      if (!d.ok()) {
        spdlog::warn("wire: dropped a bad message from the coordinator: {}", d.message);
        continue;
      }
      last_heard = Clock::now();
      if (d.envelope.has_batch()) {
        // Checked whole by decode(): its entries are never session control.
        for (auto& entry : *d.envelope.mutable_batch()->mutable_envelopes()) {
          handle(std::move(entry));
        }
        continue;
      }
      handle(std::move(d.envelope));
    }
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
  impl_->outbox.post(std::move(envelope));
}

void Client::send_later(v1::Envelope envelope) {
  impl_->outbox.post_quiet(std::move(envelope));
}

void Client::flush() {
  impl_->outbox.wake();
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
  impl_->outbox.signal();
  impl_->thread.join();
  if (impl_->socket) {
    impl_->socket->set(zmq::sockopt::linger, static_cast<int>(linger.count()));
    impl_->socket.reset();
  }
}

} // namespace capstan::wire
