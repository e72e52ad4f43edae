// Where and when a task runs: delegate sessions with their slots, eligibility (step type,
// delegate selectors, draining), least-loaded placement, and the queue of tasks waiting for a
// delegate. Engine thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "capstan/wire/router.h"

namespace capstan::engine {

using Clock = std::chrono::steady_clock;

// A delegate process with an open session.
struct Session {
  wire::PeerId peer;
  std::string name;
  std::string instance_id;
  std::string hostname;
  std::string version;
  std::string token; // the name of the token it presented
  std::vector<std::string> tags;
  std::map<std::string, wire::v1::StepTypeAd> types;
  int slots = 1;
  std::set<std::string> tasks; // "task#attempt" occupying a slot
  std::int64_t connected_at = 0;
  bool draining = false;                // takes no new task
  std::vector<std::string> reconcilers; // plugins that can host GitOps applications
  int free() const { return slots - static_cast<int>(tasks.size()); }
  // Selectors match tags and the delegate's name.
  bool has_tag(const std::string& tag) const;
};

// What a task asks of a delegate.
struct TaskNeeds {
  std::string type;
  std::vector<std::string> selectors; // all must match
  // Type and selectors in one string: the tasks of one key are placed alike.
  std::string key() const;
};

// A step waiting for a delegate: which execution, which step, since when.
struct QueuedTask {
  std::string execution;
  std::size_t index = 0;
  std::int64_t queued_at = 0; // unix ms, as persisted: the queue timeout survives restarts
  // Since when no connected delegate could ever take it (type or selectors); none while one
  // exists (busy or not).
  std::optional<Clock::time_point> unmatched_since;
  bool reported = false; // its waiting reason was recorded on the step
  TaskNeeds needs;       // what it asks of a delegate, worked out once when it is queued
  // Set by Scheduler::enqueue: needs.key(), and the queue order across keys.
  std::string key;
  std::uint64_t seq = 0;
};

struct Placement {
  enum class Verdict {
    kPlaced,    // session is set
    kBusy,      // eligible delegates exist, all slots taken (or draining)
    kUnmatched, // no connected delegate provides the type or matches the selectors
  };
  Verdict verdict = Verdict::kUnmatched;
  Session* session = nullptr;
};

std::string slot_key(const std::string& task_id, std::uint32_t attempt);

class Scheduler {
public:
  // --- sessions ---
  // The session for a delegate instance, created when new. `fresh` tells which.
  Session& session(const std::string& instance_id, bool* fresh);
  Session* by_peer(const wire::PeerId& peer);
  Session* by_instance(const std::string& instance_id);
  // Binds a connection to an instance; returns the connection the instance used before, if
  // another one.
  std::optional<wire::PeerId> bind(Session& session, const wire::PeerId& peer);
  // Removes the session of a connection; returns it (with its tasks) when there was one.
  std::optional<Session> detach(const wire::PeerId& peer);
  const std::unordered_map<std::string, Session>& sessions() const { return sessions_; }
  // Remembers what each step type's plugin declared about retries (kept after disconnects).
  bool retry_safe(const std::string& type) const;

  // --- slots ---
  void occupy(Session& session, const std::string& task_id, std::uint32_t attempt);
  // True when the slot was held.
  bool release(const std::string& instance_id, const std::string& task_id, std::uint32_t attempt);

  // --- placement ---
  // The least-loaded eligible delegate with a free slot, or the verdict why there is none.
  Placement place(const TaskNeeds& needs);
  // Why a task with `needs` waits, for the step's message and the failure ("" when placed).
  std::string waiting_reason(const TaskNeeds& needs, Placement::Verdict verdict) const;
  // Whether some connected delegate provides the type (selectors aside).
  bool provides(const std::string& type) const;
  // "connected delegates: a (tags: x, y; types: T, U); ..." for messages.
  std::string summary() const;

  // --- queue ---
  // Waiting tasks are held by placement key (FIFO per key), ordered across keys by the order
  // they were queued in.
  void enqueue(QueuedTask task);
  // The whole queue, oldest first; the caller takes it and gives back what still waits.
  std::deque<QueuedTask> take_queue();
  void restore_queue(std::deque<QueuedTask> waiting);
  std::size_t queued() const { return queued_; }
  // Whether any session has a free slot (nothing to try otherwise).
  bool any_free_slot() const;

  // What a scheduling pass does with the task offered to it.
  enum class Offer {
    kDone,   // placed, or no longer waiting: it leaves the queue
    kSkip,   // waits for something else than a slot (a repository lock): later ones go on
    kNoSlot, // no usable slot: nor for the later tasks of its key, for the rest of the pass
  };
  // Offers the queued tasks to `offer` oldest first across keys while some slot is free. Only
  // each key's head is offered, and the ones after a kSkip: a key that met kNoSlot is left for
  // the pass (slots only fall during a pass), so a pass costs the keys, the tasks placed and the
  // skipped ones, not the queue. Tasks queued meanwhile wait for the next pass.
  void pass(const std::function<Offer(QueuedTask&)>& offer);

private:
  std::unordered_map<std::string, Session> sessions_;       // by instance id
  std::unordered_map<wire::PeerId, std::string> instances_; // peer -> instance id
  std::unordered_map<std::string, bool> retry_safe_;        // step type -> declared
  using Lanes = std::map<std::string, std::deque<QueuedTask>>;
  // Puts `later`'s tasks after `into`'s, key by key.
  static void append(Lanes& into, Lanes& later);
  Lanes lanes_; // by placement key, oldest first; never an empty one
  std::size_t queued_ = 0;
  std::uint64_t next_seq_ = 0;
};

} // namespace capstan::engine
