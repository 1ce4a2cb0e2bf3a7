// A persistent team of worker threads for loops that synchronise many times per call (the LSTM
// time loops: one barrier per time step).
//
// Why not parallel.h: parallel_for_chunks starts threads per call, which is right for one large
// element-wise pass but far too slow to hand work over once per time step. Here the workers
// are started once per process and sleep on a futex between calls, so an idle worker never
// holds a core; inside a call, barrier() spins only for a short bounded time (kSpinIterations
// pause instructions, a few microseconds) before it sleeps too, because a time step that waits
// for a futex wake-up would lose more than the step costs.
//
// A call that finds the team busy (another thread of the process is inside run_team) runs its
// body on the calling thread alone (size 1), so concurrent callers never deadlock and results
// never depend on the team size (callers must make their work split deterministic).
#pragma once

#include <cstdint>
#include <functional>

namespace nndct {

class TeamRegion {
 public:
  // This thread's index in the region (0 = the calling thread) and the number of threads.
  int index() const { return index_; }
  int size() const { return size_; }
  // Every thread of the region arrives before any returns. A no-op for a region of size 1.
  void barrier();

  TeamRegion(int index, int size, void* team) : index_(index), size_(size), team_(team) {}

 private:
  int index_;
  int size_;
  void* team_;
};

// Runs body(region) on min(threads, team_capacity()) threads; the caller is index 0. Returns
// when every thread has returned from body and re-throws the first exception thrown by any of
// them (a thread that throws releases the others from their barriers, which then throw too).
void run_team(int threads, const std::function<void(TeamRegion&)>& body);

// The most threads one region can have: the hardware concurrency.
int team_capacity();

}  // namespace nndct
