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
void run_tasks(int threads, int64_t tasks, const std::function<void(int64_t)>& fn);

// The most threads run_tasks can use: the hardware concurrency.
int team_capacity();

}  // namespace nndct
