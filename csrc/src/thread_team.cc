// The persistent helper team of thread_team.h.
//
// A call publishes a section: a generation number, the task function and the task count. Tasks
// are claimed through one 64-bit ticket, (generation << 32) | next task; a claim is a
// compare-and-swap that also checks the generation, so a helper that wakes up late can never
// claim (or touch the function of) a section that is over. The caller waits only until the
// tasks already claimed have returned.
//
// Waiting: a thread that waits for a word to change spins for a bounded time, then sleeps on
// the word with a futex (a condition variable off Linux). A waker issues the wake-up system
// call only when someone sleeps, so the common spinning hand-off costs no system call.
#include "nndct/thread_team.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

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

// The caller's wait for tasks a helper has started: a few microseconds of pause instructions
// (10-65 cycles each, depending on the CPU), then sleep.
constexpr int kCallerSpinIterations = 2000;
// A helper that has finished its tasks watches for the next section this long before sleeping:
// longer than the gap between two time steps of a loop, far shorter than a time slice.
constexpr std::chrono::microseconds kHelperSpin{50};

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

  // Spins while load() == old for at most `iterations` pauses; true when it changed.
  bool spin(uint32_t old, int iterations) const {
    for (int i = 0; i < iterations; ++i) {
      if (load() != old) return true;
      cpu_relax();
    }
    return load() != old;
  }

  // Spins while load() == old for at most `budget` of wall time; true when it changed.
  bool spin_for(uint32_t old, std::chrono::microseconds budget) const {
    const auto end = std::chrono::steady_clock::now() + budget;
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (load() != old) return true;
        cpu_relax();
      }
      if (std::chrono::steady_clock::now() >= end) return load() != old;
    }
  }

  // Sleeps until load() != old.
  void sleep_until_changed(uint32_t old) {
    while (load() == old) sleep(old);
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

using TaskFn = std::function<void(int64_t)>;
using ChainFn = std::function<void(int, int64_t, int64_t)>;

// The state of one run_chains call. Shared (std::shared_ptr) with the helpers that join, so a
// helper that wakes up after the call has returned still finds valid state: it sees every chain
// finished and leaves without touching `fn` or the caller's data, which it only reaches while
// it holds a chain (and the caller never returns while a chain is held or unfinished).
struct ChainJob {
  ChainJob(int threads, int64_t chains, int64_t steps, const ChainFn* f)
      : threads(threads), chains(chains), steps(steps), fn(f), next(new std::atomic<int64_t>[chains]),
        held(new std::atomic<int>[chains]), unfinished(chains) {
    for (int64_t c = 0; c < chains; ++c) {
      next[c].store(0, std::memory_order_relaxed);
      held[c].store(0, std::memory_order_relaxed);
    }
  }
  const int threads;
  const int64_t chains, steps;
  const ChainFn* fn;
  std::unique_ptr<std::atomic<int64_t>[]> next;  // the next step of each chain
  std::unique_ptr<std::atomic<int>[]> held;      // 1 while a thread runs a step of the chain
  std::atomic<int64_t> unfinished;
  std::atomic<int> holding{0};
  std::atomic<int> next_slot{1};
  std::atomic<bool> aborted{false};
  Word released;  // bumped whenever a chain is let go
  std::mutex error_mutex;
  std::exception_ptr error;

  bool done() const {
    return unfinished.load(std::memory_order_acquire) == 0 || aborted.load(std::memory_order_acquire);
  }

  // Runs the free chains' steps until none is left to this thread. A thread keeps the chain it
  // holds (its data stays in that core's caches) unless the caller waits for one: then it lets
  // it go after every step. The caller returns only when every chain is finished and let go.
  void work(int slot, bool caller) {
    int64_t c = slot % chains;
    for (;;) {
      const uint32_t seen = released.load();  // before the scan: a release after it is not missed
      if (done()) {
        if (caller) wait_for_holders();
        return;
      }
      int64_t found = -1;
      for (int64_t k = 0; k < chains && found < 0; ++k, c = (c + 1) % chains) {
        if (next[c].load(std::memory_order_acquire) >= steps) continue;
        int expected = 0;
        if (held[c].compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) found = c;
      }
      if (found < 0) {
        if (!caller) return;  // a helper leaves when nothing is free
        waiting.fetch_add(1, std::memory_order_acq_rel);
        if (!released.spin(seen, 2000)) released.sleep_until_changed(seen);
        waiting.fetch_sub(1, std::memory_order_acq_rel);
        continue;
      }
      c = found;
      holding.fetch_add(1, std::memory_order_acq_rel);
      for (int64_t s = next[c].load(std::memory_order_acquire); s < steps; ++s) {
        try {
          (*fn)(slot, c, s);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
          aborted.store(true, std::memory_order_release);
        }
        next[c].store(s + 1, std::memory_order_release);
        if (s + 1 == steps) unfinished.fetch_sub(1, std::memory_order_acq_rel);
        if (aborted.load(std::memory_order_acquire) || waiting.load(std::memory_order_acquire) > 0) break;
      }
      holding.fetch_sub(1, std::memory_order_acq_rel);
      held[c].store(0, std::memory_order_release);
      released.bump();
    }
  }

  void wait_for_holders() {
    for (;;) {
      const uint32_t seen = released.load();
      if (holding.load(std::memory_order_acquire) == 0) return;
      if (!released.spin(seen, 2000)) released.sleep_until_changed(seen);
    }
  }

  std::atomic<int> waiting{0};  // callers waiting for a chain to be let go
};

struct Team {
  int capacity = 1;
#if defined(__linux__)
  pid_t pid = getpid();
#endif
  std::mutex busy;  // held by the caller of the current section
  int started = 0;  // helpers started so far (ids 1..started)
  uint32_t generation = 0;

  // The current section (published by the ticket's release store).
  alignas(64) std::atomic<uint64_t> ticket{0};  // (generation << 32) | next unclaimed task
  std::atomic<const TaskFn*> fn{nullptr};
  std::atomic<int64_t> tasks{0};
  std::atomic<int> helpers{0};  // helpers allowed to claim (ids 1..helpers)
  Word posted;                  // bumped when a section is published
  alignas(64) std::atomic<int64_t> finished{0};
  Word done;                    // bumped when a helper finishes a task
  std::mutex error_mutex;
  std::exception_ptr error;
  // The current run_chains call, if any.
  std::mutex chain_mutex;
  std::shared_ptr<ChainJob> chain_job;
};

// The next task of section `gen`, or -1 when none is left or the section is over.
int64_t claim(Team* t, uint32_t gen, int64_t total) {
  uint64_t cur = t->ticket.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(cur >> 32) != gen) return -1;
    const int64_t next = static_cast<int64_t>(cur & 0xffffffffu);
    if (next >= total) return -1;
    if (t->ticket.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel, std::memory_order_acquire))
      return next;
  }
}

void execute(Team* t, const TaskFn& fn, int64_t task) {
  try {
    fn(task);
  } catch (...) {
    std::lock_guard<std::mutex> lock(t->error_mutex);
    if (!t->error) t->error = std::current_exception();
  }
  t->finished.fetch_add(1, std::memory_order_acq_rel);
}

void helper_loop(Team* t, int id, uint32_t seen) {
  for (;;) {
    // Watch briefly for the next section (the next time step), then sleep.
    if (!t->posted.spin_for(seen, kHelperSpin)) t->posted.sleep_until_changed(seen);
    seen = t->posted.load();
    const uint64_t ticket = t->ticket.load(std::memory_order_acquire);
    if (id > t->helpers.load(std::memory_order_acquire)) continue;
    const uint32_t gen = static_cast<uint32_t>(ticket >> 32);
    const TaskFn* fn = t->fn.load(std::memory_order_acquire);
    const int64_t total = t->tasks.load(std::memory_order_acquire);
    // A claim succeeds only while section `gen` still has tasks, i.e. while its caller is
    // inside run_tasks, so fn (read before the claim) is that section's and still alive.
    for (int64_t task = claim(t, gen, total); task >= 0; task = claim(t, gen, total)) {
      execute(t, *fn, task);
      t->done.bump();
    }
    std::shared_ptr<ChainJob> job;
    {
      std::lock_guard<std::mutex> lock(t->chain_mutex);
      job = t->chain_job;
    }
    if (job) {
      const int slot = job->next_slot.fetch_add(1, std::memory_order_acq_rel);
      if (slot < job->threads) job->work(slot, false);
    }
  }
}

Team* make_team() {
  Team* t = new Team();  // never freed: helpers live until the process exits
  t->capacity = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return t;
}

std::mutex& team_mutex() {
  static std::mutex m;
  return m;
}

// The process's team; a child process after fork() gets a new one (the parent's helpers do not
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

}  // namespace

int team_capacity() { return team()->capacity; }

int64_t run_tasks(int threads, int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (tasks <= 0) return 0;
  Team* t = team();
  const int helpers = std::min(threads, t->capacity) - 1;
  std::unique_lock<std::mutex> lock(t->busy, std::defer_lock);
  if (helpers <= 0 || tasks == 1 || tasks > int64_t{0xffffffff} || !lock.try_lock()) {
    for (int64_t i = 0; i < tasks; ++i) fn(i);
    return 0;
  }
  for (; t->started < helpers; ++t->started)
    std::thread(helper_loop, t, t->started + 1, t->posted.load()).detach();
  const uint32_t gen = ++t->generation;
  t->error = nullptr;
  t->finished.store(0, std::memory_order_relaxed);
  t->tasks.store(tasks, std::memory_order_relaxed);
  t->fn.store(&fn, std::memory_order_relaxed);
  t->helpers.store(helpers, std::memory_order_relaxed);
  t->ticket.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
  t->posted.bump();
  for (int64_t task = claim(t, gen, tasks); task >= 0; task = claim(t, gen, tasks)) execute(t, fn, task);
  // Every task is claimed; wait for those a helper is still running.
  int64_t waited = 0;
  if (t->finished.load(std::memory_order_acquire) < tasks) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const uint32_t seen = t->done.load();
      if (t->finished.load(std::memory_order_acquire) >= tasks) break;
      if (!t->done.spin(seen, kCallerSpinIterations)) t->done.sleep_until_changed(seen);
    }
    waited = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  }
  if (t->error) {
    std::exception_ptr e = t->error;
    t->error = nullptr;
    std::rethrow_exception(e);
  }
  return waited;
}

namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
// Sections observed before deciding, and the share of the loop's time the caller may wait.
constexpr int64_t kPacerWarmup = 16;
constexpr int64_t kPacerWaitShare = 4;
}  // namespace

SectionPacer::SectionPacer(int threads) : threads_(std::max(1, threads)), start_ns_(now_ns()) {}

void SectionPacer::run(int64_t tasks, const std::function<void(int64_t)>& fn) {
  waited_ns_ += run_tasks(threads_, tasks, fn);
  if (threads_ > 1 && ++sections_ >= kPacerWarmup && waited_ns_ * kPacerWaitShare > now_ns() - start_ns_)
    threads_ = 1;
}

void run_chains(int threads, int64_t chains, int64_t steps,
                const std::function<void(int slot, int64_t chain, int64_t step)>& fn) {
  if (chains <= 0 || steps <= 0) return;
  Team* t = team();
  const int size = std::min(threads, t->capacity);
  std::unique_lock<std::mutex> lock(t->busy, std::defer_lock);
  if (size <= 1 || chains == 1 || !lock.try_lock()) {
    for (int64_t c = 0; c < chains; ++c)
      for (int64_t s = 0; s < steps; ++s) fn(0, c, s);
    return;
  }
  for (; t->started < size - 1; ++t->started)
    std::thread(helper_loop, t, t->started + 1, t->posted.load()).detach();
  auto job = std::make_shared<ChainJob>(size, chains, steps, &fn);
  {
    std::lock_guard<std::mutex> guard(t->chain_mutex);
    t->chain_job = job;
  }
  t->posted.bump();
  job->work(0, true);
  {
    std::lock_guard<std::mutex> guard(t->chain_mutex);
    t->chain_job.reset();
  }
  if (job->error) std::rethrow_exception(job->error);
}

}  // namespace nndct
