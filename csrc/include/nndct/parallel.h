// A minimal std::thread based parallel loop over fixed-size chunks.
//
// Why not OpenMP: torch bundles its own libgomp and two OpenMP runtimes in one process fight.
// Why fixed chunks: reductions keep one partial result per chunk and combine them in chunk
// order, so results do not depend on how many threads ran.
#pragma once

#include <cstdint>
#include <functional>

namespace nndct {

// Elements per chunk of the element-wise kernels and per partial sum of the reductions; also
// the size below which a kernel runs on the calling thread only.
constexpr int64_t kChunkElements = 65536;

// Number of worker threads allowed: the hardware concurrency, capped by the environment variable
// NNDCT_NUM_THREADS when it holds a positive integer (read on every call so it can be changed
// at run time).
int max_threads();

// Calls fn(chunk_index) for every chunk_index in [0, num_chunks), spread over at most
// max_threads() threads (the calling thread is one of them). Chunks are handed out dynamically;
// fn must only write to per-chunk or disjoint state. The first exception thrown by fn is
// re-thrown on the calling thread after all threads have joined.
void parallel_for_chunks(int64_t num_chunks, const std::function<void(int64_t)>& fn);

// Runs fn(begin, end) over [0, n) in chunks of kChunkElements elements, in parallel when n is
// large enough to pay for starting threads.
void parallel_for_range(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace nndct
