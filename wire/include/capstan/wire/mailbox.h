// A queue that wakes a ZeroMQ poll loop: how other threads hand work to a socket's owner thread.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

namespace capstan::wire {

// Any thread posts; the one thread that owns a socket polls fd() next to the socket (zmq_poll
// takes plain descriptors) and drains. The eventfd is written only on the empty -> non-empty
// transition, so a burst of posts costs one wake-up; post_quiet() adds to the queue without one.
template <typename T> class Mailbox {
public:
  Mailbox() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("eventfd failed");
  }
  ~Mailbox() { ::close(fd_); }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  void post(T item) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      if (owner_awake_) {
        owner_waits_ = true; // it looks before it sleeps: no wake-up needed
      } else {
        wake = items_.empty() || quiet_;
        quiet_ = false;
      }
      items_.push_back(std::move(item));
    }
    if (wake) signal();
  }

  // Several items, in order, as one post: one lock and at most one wake-up for all of them.
  void post_all(std::vector<T>&& items) {
    if (items.empty()) return;
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      if (owner_awake_) {
        owner_waits_ = true; // as post(): it looks before it sleeps
      } else {
        wake = items_.empty() || quiet_;
        quiet_ = false;
      }
      if (items_.empty()) {
        items_.swap(items);
      } else {
        items_.insert(items_.end(), std::make_move_iterator(items.begin()),
                      std::make_move_iterator(items.end()));
      }
    }
    if (wake) signal();
  }

  // Queues without waking the owner: the item leaves with the next post() or wake(), or when
  // the owner drains for a reason of its own. For a poster that knows more follows soon.
  void post_quiet(T item) {
    std::lock_guard lock(mutex_);
    if (items_.empty() && !owner_awake_) quiet_ = true;
    items_.push_back(std::move(item));
  }

  // Wakes the owner if items were posted quietly and are still waiting.
  void wake() {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      if (owner_awake_) {
        if (!items_.empty()) owner_waits_ = true;
      } else {
        wake = quiet_;
        quiet_ = false;
      }
    }
    if (wake) signal();
  }

  // For an owner that says when it is awake: between awake() and sleep() posts write no
  // wake-up (the owner drains before it sleeps again), which saves a system call and a wake-up
  // when it is busy anyway. sleep() is called right before waiting on fd(): false means posts
  // came meanwhile that want the owner (it should not wait, and stays awake); true means later
  // posts wake it as usual. An owner that never calls awake() is woken by every first post.
  void awake() {
    std::lock_guard lock(mutex_);
    owner_awake_ = true;
  }
  bool sleep() {
    std::lock_guard lock(mutex_);
    if (owner_waits_) return false;
    owner_awake_ = false;
    quiet_ = !items_.empty(); // what is left was posted quietly: it waits for a post or wake()
    return true;
  }

  bool empty() const {
    std::lock_guard lock(mutex_);
    return items_.empty();
  }

  // Everything posted so far, in order; clears the wake-up. An owner that knows fd() was not
  // readable when it looked passes false and saves the read (a wake-up written since stays
  // readable and is cleared by the next drain after the owner sees it).
  std::vector<T> drain(bool woken = true) {
    if (woken) {
      std::uint64_t count = 0;
      [[maybe_unused]] auto n = ::read(fd_, &count, sizeof count);
    }
    std::vector<T> out;
    std::lock_guard lock(mutex_);
    out.swap(items_);
    quiet_ = false;
    owner_waits_ = false;
    return out;
  }

  // Wakes the owner without posting (used to ask it to stop).
  void signal() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
  }

  int fd() const { return fd_; }

private:
  int fd_;
  // Guards the items and flags: posted from any thread, drained by the owner.
  mutable std::mutex mutex_;
  std::vector<T> items_;
  bool quiet_ = false;       // items_ is not empty and no wake-up was written for it
  bool owner_awake_ = false; // between the owner's awake() and sleep()
  bool owner_waits_ = false; // posted to while awake: the owner must drain before it sleeps
};

} // namespace capstan::wire
