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
      wake = items_.empty() || quiet_;
      quiet_ = false;
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
      wake = items_.empty() || quiet_;
      quiet_ = false;
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
    if (items_.empty()) quiet_ = true;
    items_.push_back(std::move(item));
  }

  // Wakes the owner if items were posted quietly and are still waiting.
  void wake() {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      wake = quiet_;
      quiet_ = false;
    }
    if (wake) signal();
  }

  bool empty() const {
    std::lock_guard lock(mutex_);
    return items_.empty();
  }

  // Everything posted so far, in order; clears the wake-up.
  std::vector<T> drain() {
    std::uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(fd_, &count, sizeof count);
    std::vector<T> out;
    std::lock_guard lock(mutex_);
    out.swap(items_);
    quiet_ = false;
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
  // Guards items_ and quiet_: posted from any thread, drained by the owner.
  mutable std::mutex mutex_;
  std::vector<T> items_;
  bool quiet_ = false; // items_ is not empty and no wake-up was written for it
};

} // namespace capstan::wire
