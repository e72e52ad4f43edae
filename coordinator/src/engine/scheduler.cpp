// The scheduler: sessions, slots, eligibility and least-loaded placement, the waiting queue.
#include "engine/scheduler.h"

#include <algorithm>

namespace capstan::engine {

std::string slot_key(const std::string& task_id, std::uint32_t attempt) {
  return task_id + "#" + std::to_string(attempt);
}

bool Session::has_tag(const std::string& tag) const {
  return tag == name || std::find(tags.begin(), tags.end(), tag) != tags.end();
}

Session& Scheduler::session(const std::string& instance_id, bool* fresh) {
  auto [it, inserted] = sessions_.try_emplace(instance_id);
  if (fresh != nullptr) *fresh = inserted;
  it->second.instance_id = instance_id;
  return it->second;
}

Session* Scheduler::by_peer(const wire::PeerId& peer) {
  auto it = instances_.find(peer);
  if (it == instances_.end()) return nullptr;
  return by_instance(it->second);
}

Session* Scheduler::by_instance(const std::string& instance_id) {
  auto it = sessions_.find(instance_id);
  return it == sessions_.end() ? nullptr : &it->second;
}

std::optional<wire::PeerId> Scheduler::bind(Session& session, const wire::PeerId& peer) {
  for (const auto& [type, ad] : session.types) retry_safe_[type] = ad.retry_safe();
  std::optional<wire::PeerId> old;
  if (!session.peer.empty() && session.peer != peer) {
    old = session.peer;
    instances_.erase(session.peer);
  }
  session.peer = peer;
  instances_[peer] = session.instance_id;
  return old;
}

std::optional<Session> Scheduler::detach(const wire::PeerId& peer) {
  auto it = instances_.find(peer);
  if (it == instances_.end()) return std::nullopt;
  auto instance = it->second;
  instances_.erase(it);
  auto sit = sessions_.find(instance);
  if (sit == sessions_.end()) return std::nullopt;
  Session s = std::move(sit->second);
  sessions_.erase(sit);
  return s;
}

bool Scheduler::retry_safe(const std::string& type) const {
  auto it = retry_safe_.find(type);
  return it != retry_safe_.end() && it->second;
}

void Scheduler::occupy(Session& session, const std::string& task_id, std::uint32_t attempt) {
  session.tasks.insert(slot_key(task_id, attempt));
}

bool Scheduler::release(const std::string& instance_id, const std::string& task_id,
                        std::uint32_t attempt) {
  auto* s = by_instance(instance_id);
  return s != nullptr && s->tasks.erase(slot_key(task_id, attempt)) > 0;
}

Placement Scheduler::place(const TaskNeeds& needs) {
  Placement p;
  bool matched = false;
  // Least loaded first: the lowest share of slots in use; ties go to the most free slots, so a
  // big delegate fills evenly with small ones.
  double best_load = 2.0;
  int best_free = 0;
  for (auto& [id, s] : sessions_) {
    if (!s.types.count(needs.type)) continue;
    if (!std::all_of(needs.selectors.begin(), needs.selectors.end(),
                     [&](const std::string& tag) { return s.has_tag(tag); })) {
      continue;
    }
    matched = true;
    if (s.draining || s.free() <= 0) continue;
    double load = static_cast<double>(s.tasks.size()) / s.slots;
    if (load < best_load || (load == best_load && s.free() > best_free)) {
      best_load = load;
      best_free = s.free();
      p.session = &s;
    }
  }
  p.verdict = p.session != nullptr ? Placement::Verdict::kPlaced
              : matched            ? Placement::Verdict::kBusy
                                   : Placement::Verdict::kUnmatched;
  return p;
}

std::string Scheduler::waiting_reason(const TaskNeeds& needs, Placement::Verdict verdict) const {
  std::string selectors;
  for (const auto& t : needs.selectors) selectors += (selectors.empty() ? "" : ", ") + t;
  switch (verdict) {
  case Placement::Verdict::kPlaced:
    return "";
  case Placement::Verdict::kBusy:
    return "waiting for a free slot: every delegate that can run step type '" + needs.type + "'" +
           (selectors.empty() ? "" : " with selectors [" + selectors + "]") +
           " is busy or draining";
  case Placement::Verdict::kUnmatched:
    break;
  }
  if (!provides(needs.type)) {
    return "no connected delegate can run step type '" + needs.type + "'; " + summary();
  }
  return "no connected delegate matches delegate selectors [" + selectors + "] for step type '" +
         needs.type + "'; " + summary();
}

bool Scheduler::provides(const std::string& type) const {
  return std::any_of(sessions_.begin(), sessions_.end(),
                     [&](const auto& kv) { return kv.second.types.count(type) > 0; });
}

std::string Scheduler::summary() const {
  if (sessions_.empty()) return "no delegate is connected";
  std::vector<const Session*> sorted;
  for (const auto& [id, s] : sessions_) sorted.push_back(&s);
  std::sort(sorted.begin(), sorted.end(),
            [](const Session* a, const Session* b) { return a->name < b->name; });
  std::string out = "connected delegates: ";
  bool first = true;
  for (const auto* s : sorted) {
    std::string types, tags;
    for (const auto& [t, ad] : s->types) types += (types.empty() ? "" : ", ") + t;
    for (const auto& t : s->tags) tags += (tags.empty() ? "" : ", ") + t;
    out += (first ? "" : "; ") + s->name + " (" + (types.empty() ? "no step types" : types) +
           (tags.empty() ? "" : "; tags: " + tags) + (s->draining ? "; draining" : "") + ")";
    first = false;
  }
  return out;
}

void Scheduler::append(Lanes& into, Lanes& later) {
  for (auto& [key, lane] : later) {
    auto& to = into[key];
    for (auto& t : lane) to.push_back(std::move(t));
  }
}

std::string TaskNeeds::key() const {
  std::string key = type;
  for (const auto& t : selectors) key += '\x1f' + t;
  return key;
}

void Scheduler::enqueue(QueuedTask task) {
  task.key = task.needs.key();
  task.seq = next_seq_++;
  lanes_[task.key].push_back(std::move(task));
  ++queued_;
}

std::deque<QueuedTask> Scheduler::take_queue() {
  std::deque<QueuedTask> out;
  for (auto& [key, lane] : lanes_) {
    for (auto& t : lane) out.push_back(std::move(t));
  }
  lanes_.clear();
  queued_ = 0;
  std::sort(out.begin(), out.end(),
            [](const QueuedTask& a, const QueuedTask& b) { return a.seq < b.seq; });
  return out;
}

void Scheduler::restore_queue(std::deque<QueuedTask> waiting) {
  // Tasks queued while the caller held the queue go after the ones that waited longer.
  auto later = std::move(lanes_);
  lanes_.clear();
  queued_ += waiting.size();
  for (auto& t : waiting) lanes_[t.key].push_back(std::move(t));
  append(lanes_, later);
}

void Scheduler::pass(const std::function<Offer(QueuedTask&)>& offer) {
  if (queued_ == 0 || !any_free_slot()) return;
  // The lanes are the pass's own: what `offer` queues goes into fresh ones, after these.
  auto lanes = std::move(lanes_);
  lanes_.clear();
  // Each lane's next task to offer; the oldest first.
  struct Next {
    std::uint64_t seq;
    std::deque<QueuedTask>* lane;
    std::size_t at; // the tasks before it were skipped and stay
    bool operator>(const Next& o) const { return seq > o.seq; }
  };
  std::vector<Next> heap;
  for (auto& [key, lane] : lanes) heap.push_back({lane.front().seq, &lane, 0});
  std::make_heap(heap.begin(), heap.end(), std::greater<>());
  while (!heap.empty() && any_free_slot()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    Next next = heap.back();
    heap.pop_back();
    auto& lane = *next.lane;
    switch (offer(lane[next.at])) {
    case Offer::kDone:
      lane.erase(lane.begin() + static_cast<std::ptrdiff_t>(next.at));
      --queued_;
      break;
    case Offer::kSkip:
      ++next.at;
      break;
    case Offer::kNoSlot:
      continue;
    }
    if (next.at < lane.size()) {
      heap.push_back({lane[next.at].seq, &lane, next.at});
      std::push_heap(heap.begin(), heap.end(), std::greater<>());
    }
  }
  // Back in place, ahead of what was queued during the pass.
  append(lanes, lanes_);
  std::erase_if(lanes, [](const auto& kv) { return kv.second.empty(); });
  lanes_ = std::move(lanes);
}

bool Scheduler::any_free_slot() const {
  return std::any_of(sessions_.begin(), sessions_.end(),
                     [](const auto& kv) { return !kv.second.draining && kv.second.free() > 0; });
}

} // namespace capstan::engine
