// std::thread based chunked parallel loop (see parallel.h for why not OpenMP).
#include "nndct/parallel.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace nndct {

int max_threads() {
  int n = static_cast<int>(std::thread::hardware_concurrency());
  if (n < 1) n = 1;
  if (const char* env = std::getenv("NNDCT_NUM_THREADS")) {
    char* end = nullptr;
    const long cap = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && cap >= 1) n = std::min<long>(n, cap);
  }
  return n;
}

void parallel_for_chunks(int64_t num_chunks, const std::function<void(int64_t)>& fn) {
  if (num_chunks <= 0) return;
  const int64_t threads = std::min<int64_t>(max_threads(), num_chunks);
  if (threads <= 1) {
    for (int64_t c = 0; c < num_chunks; ++c) fn(c);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    try {
      for (int64_t c = next.fetch_add(1); c < num_chunks; c = next.fetch_add(1)) fn(c);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next.store(num_chunks);
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

void parallel_for_range(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t chunks = (n + kChunkElements - 1) / kChunkElements;
  parallel_for_chunks(chunks, [&](int64_t c) {
    const int64_t begin = c * kChunkElements;
    fn(begin, std::min(n, begin + kChunkElements));
  });
}

}  // namespace nndct
