// A persistent team of helper threads for loops that fork small independent tasks many times
// per call (the LSTM time loops: a few tasks per time step, or one task per slice of the batch).
//
// Why not parallel.h: parallel_for_chunks starts threads per call, which is right for one large
// element-wise pass but far too slow to hand work over once per time step.
//
// Why tasks are claimed, not assigned: on a loaded machine a helper thread may not run for a
// whole time slice. Here the calling thread publishes the tasks and runs them itself; helpers
// claim whatever is left when they get to it. The caller only ever waits for a task that a
// helper has already started, never for a helper that is asleep or descheduled, so a call is
// never much slower than running it on one thread.
//
// Idle helpers sleep on a futex. After finishing a task a helper spins for at most
// kHelperSpinNs (a few tens of microseconds, then sleeps) so that the next time step's tasks
// find it awake; between calls it holds no core.
#pragma once

#include <cstdint>
#include <functional>

namespace nndct {

// Runs fn(task) for every task in [0, tasks): on the calling thread and on up to threads - 1
// helpers. Returns when every task has returned; re-throws the first exception a task threw
// (after all started tasks have finished). Tasks must be independent of each other (any may run
// on any thread, in any order). When the team is busy with another caller's tasks, or threads
// <= 1, everything runs on the calling thread.
// Returns the nanoseconds the caller waited for tasks helpers were still running.
int64_t run_tasks(int threads, int64_t tasks, const std::function<void(int64_t)>& fn);

// For loops that run one section of tasks per time step: after a few sections, when the caller
// has spent more than a quarter of the loop's time waiting for helpers (descheduled on a loaded
// machine), the rest of the loop runs on the caller alone. Results never depend on it.
class SectionPacer {
 public:
  explicit SectionPacer(int threads);
  // Threads for the next section (1 once helpers stopped paying off).
  int threads() const { return threads_; }
  // Runs one section with threads() threads and updates the decision.
  void run(int64_t tasks, const std::function<void(int64_t)>& fn);

 private:
  int threads_;
  int64_t sections_ = 0, waited_ns_ = 0, start_ns_;
};

// Runs fn(slot, chain, step) for every chain in [0, chains) and step in [0, steps): the steps
// of one chain in order and one at a time, different chains in parallel. Any thread may run the
// next step of any chain that no thread is running, so a chain moves on without the helper that
// ran its last step; the caller waits only for steps a helper is running. `slot` (0 for the
// caller, 1 .. threads - 1 for helpers) identifies the running thread's scratch. The first
// exception a step throws stops the chains and is re-thrown.
void run_chains(int threads, int64_t chains, int64_t steps,
                const std::function<void(int slot, int64_t chain, int64_t step)>& fn);

// The most threads run_tasks can use: the hardware concurrency.
int team_capacity();

}  // namespace nndct
