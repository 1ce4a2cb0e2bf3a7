// The persistent thread team of thread_team.h.
//
// Waiting: a thread that waits for a word to change spins for at most kSpinIterations pause
// instructions (only where the wait is inside a region: barriers and the caller's join), then
// sleeps on the word with a futex (a condition variable off Linux). A waker issues the wake-up
// system call only when someone sleeps, so the common spinning hand-off costs no system call.
#include "nndct/thread_team.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace nndct {
namespace {

// About 5-20 microseconds of pause instructions (a pause is 10-65 cycles, depending on the
// CPU): longer than the imbalance of a well-split time step, far shorter than a time slice.
constexpr int kSpinIterations = 2000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// A 32-bit word that threads wait on until it changes.
class Word {
 public:
  uint32_t load() const { return v_.load(std::memory_order_acquire); }

  void bump() {
    v_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) wake_all();
  }

  // Returns once load() != old or stop() holds; spins first when `spin`.
  template <typename Stop>
  void wait_change(uint32_t old, bool spin, Stop&& stop) {
    if (spin) {
      for (int i = 0; i < kSpinIterations; ++i) {
        if (load() != old || stop()) return;
        cpu_relax();
      }
    }
    while (load() == old && !stop()) sleep(old);
  }

 private:
#if defined(__linux__)
  void sleep(uint32_t old) {
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    // The kernel re-checks the word atomically, so a bump after the check above is not lost.
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&v_), FUTEX_WAIT_PRIVATE, old, nullptr, nullptr, 0);
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  }
  void wake_all() {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&v_), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
  }
#else
  void sleep(uint32_t old) {
    std::unique_lock<std::mutex> lock(m_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    cv_.wait(lock, [&] { return load() != old; });
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  }
  void wake_all() {
    { std::lock_guard<std::mutex> lock(m_); }
    cv_.notify_all();
  }
  std::mutex m_;
  std::condition_variable cv_;
#endif
  std::atomic<uint32_t> v_{0};
  std::atomic<int> sleepers_{0};
};
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex words are plain 32-bit integers");

// Thrown out of barrier() in the other threads when one thread's body threw.
struct TeamAborted {};

struct alignas(64) WorkerSlot {
  Word start;  // bumped when this worker has a region to run
};

struct Team {
  int capacity = 1;
#if defined(__linux__)
  pid_t pid = getpid();
#endif
  std::unique_ptr<WorkerSlot[]> slots;  // [capacity]; slot 0 unused (the caller)
  int started = 0;                      // workers started so far (indices 1..started)
  std::mutex busy;                      // held by the caller of the running region

  // The running region.
  const std::function<void(TeamRegion&)>* body = nullptr;
  int size = 1;
  std::atomic<int> remaining{0};  // workers of the region not finished yet
  Word finish;                    // bumped when the last worker finishes
  alignas(64) std::atomic<int> arrived{0};
  Word barrier_word;
  std::atomic<bool> aborted{false};
  std::mutex error_mutex;
  std::exception_ptr error;
};

void run_member(Team* t, int index) {
  TeamRegion region(index, t->size, t);
  try {
    (*t->body)(region);
  } catch (const TeamAborted&) {
    // another member failed first; its exception is the one reported
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(t->error_mutex);
      if (!t->error) t->error = std::current_exception();
    }
    t->aborted.store(true, std::memory_order_seq_cst);
    t->barrier_word.bump();  // releases the members waiting in a barrier
  }
}

void worker_loop(Team* t, int index, uint32_t seen) {
  for (;;) {
    // Between regions a worker sleeps without spinning.
    t->slots[index].start.wait_change(seen, false, [] { return false; });
    seen = t->slots[index].start.load();
    run_member(t, index);
    if (t->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) t->finish.bump();
  }
}

Team* make_team() {
  Team* t = new Team();  // never freed: workers live until the process exits
  t->capacity = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  t->slots.reset(new WorkerSlot[static_cast<size_t>(t->capacity)]);
  return t;
}

std::mutex& team_mutex() {
  static std::mutex m;
  return m;
}

// The process's team; a child process after fork() gets a new one (the parent's workers do not
// exist there; the old team is left behind on purpose).
Team* team() {
  static std::atomic<Team*> current{nullptr};
  Team* t = current.load(std::memory_order_acquire);
#if defined(__linux__)
  if (t && t->pid == getpid()) return t;
#else
  if (t) return t;
#endif
  std::lock_guard<std::mutex> lock(team_mutex());
  t = current.load(std::memory_order_acquire);
#if defined(__linux__)
  if (!t || t->pid != getpid()) {
#else
  if (!t) {
#endif
    t = make_team();
    current.store(t, std::memory_order_release);
  }
  return t;
}

void ensure_workers(Team* t, int size) {
  for (int i = t->started + 1; i < size; ++i) {
    const uint32_t seen = t->slots[i].start.load();
    std::thread(worker_loop, t, i, seen).detach();
    t->started = i;
  }
}

}  // namespace

void TeamRegion::barrier() {
  if (size_ <= 1) return;
  Team* t = static_cast<Team*>(team_);
  const uint32_t gen = t->barrier_word.load();
  if (t->aborted.load(std::memory_order_acquire)) throw TeamAborted{};
  if (t->arrived.fetch_add(1, std::memory_order_acq_rel) == size_ - 1) {
    t->arrived.store(0, std::memory_order_relaxed);
    t->barrier_word.bump();
  } else {
    t->barrier_word.wait_change(gen, true, [t] { return t->aborted.load(std::memory_order_acquire); });
  }
  if (t->aborted.load(std::memory_order_acquire)) throw TeamAborted{};
}

int team_capacity() { return team()->capacity; }

void run_team(int threads, const std::function<void(TeamRegion&)>& body) {
  Team* t = team();
  const int size = std::max(1, std::min(threads, t->capacity));
  std::unique_lock<std::mutex> lock(t->busy, std::defer_lock);
  if (size <= 1 || !lock.try_lock()) {
    TeamRegion alone(0, 1, nullptr);
    body(alone);
    return;
  }
  ensure_workers(t, size);
  t->body = &body;
  t->size = size;
  t->aborted.store(false, std::memory_order_relaxed);
  t->arrived.store(0, std::memory_order_relaxed);
  t->error = nullptr;
  t->remaining.store(size - 1, std::memory_order_relaxed);
  const uint32_t fin = t->finish.load();
  for (int i = 1; i < size; ++i) t->slots[i].start.bump();
  run_member(t, 0);
  t->finish.wait_change(fin, true, [] { return false; });
  t->body = nullptr;
  if (t->error) {
    std::exception_ptr e = t->error;
    t->error = nullptr;
    std::rethrow_exception(e);
  }
}

}  // namespace nndct
