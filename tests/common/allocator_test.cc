#include "common/allocator.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "gtest/gtest.h"

namespace psrec {
namespace {

constexpr size_t kBuffer = 8 << 20;  // above glibc's default mmap threshold, below ours

// A sanitizer brings its own allocator, which mallopt does not reach.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kGlibcMalloc = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
constexpr bool kGlibcMalloc = false;
#else
constexpr bool kGlibcMalloc = true;
#endif
#else
constexpr bool kGlibcMalloc = true;
#endif

long MinorFaults() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// In a child of its own (the allocator's state is per process): optionally tunes it, then
// allocates, fills and frees an 8 MiB buffer twice, and exits with 1 if the second round took
// fewer than a quarter of the buffer's pages in new page faults (its memory was still mapped),
// else 0. With glibc's defaults the first buffer is mapped and unmapped on its own, and the
// second comes from new heap pages.
bool SecondRoundReusesMemory(bool tune, const char* tunables) {
  if (!kGlibcMalloc) ADD_FAILURE() << "not glibc's malloc";
  const pid_t pid = fork();
  if (pid == 0) {
    if (tunables != nullptr) setenv("GLIBC_TUNABLES", tunables, 1);
    if (tune) TuneAllocator();
    long faults = 0;
    for (int round = 0; round < 2; ++round) {
      const long before = MinorFaults();
      char* buffer = static_cast<char*>(std::malloc(kBuffer));
      std::memset(buffer, round + 1, kBuffer);
      // Keeps the compiler from eliding the allocation, which it may when it sees all of its uses.
      asm volatile("" : : "r"(buffer) : "memory");
      std::free(buffer);
      faults = MinorFaults() - before;
    }
    const long pages = static_cast<long>(kBuffer / static_cast<size_t>(sysconf(_SC_PAGESIZE)));
    _exit(faults < pages / 4 ? 1 : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

TEST(AllocatorTest, AFreedBufferStaysMappedForTheNext) {
  if (!kGlibcMalloc) GTEST_SKIP() << "a sanitizer's allocator";
  EXPECT_TRUE(SecondRoundReusesMemory(/*tune=*/true, nullptr));
}

// The control: glibc's defaults map the second buffer anew, so the test above can fail.
TEST(AllocatorTest, GlibcDefaultsMapItAgain) {
  if (!kGlibcMalloc) GTEST_SKIP() << "a sanitizer's allocator";
  EXPECT_FALSE(SecondRoundReusesMemory(/*tune=*/false, nullptr));
}

TEST(AllocatorTest, TheEnvironmentsOwnMallocTunablesWin) {
  if (!kGlibcMalloc) GTEST_SKIP() << "a sanitizer's allocator";
  EXPECT_FALSE(SecondRoundReusesMemory(/*tune=*/true, "glibc.malloc.check=0"));
}

}  // namespace
}  // namespace psrec
