// glibc malloc settings for psrec's processes and benchmarks, set once at the start of main().
//
// A pull's answer or a push's request is a buffer of up to a few MiB, allocated and freed once per
// request. With glibc's defaults the heap's top is given back to the kernel (and a buffer over the
// dynamic mmap threshold is mapped and unmapped) as often as that happens, and every new use of the
// memory takes page faults to map it again: cluster_bench's raw part took 54,692 page faults and
// 1.39 s of CPU by default, 16,243 and 1.17 s with the settings below (bench/RESULTS.md, "The
// allocator"). Buffers below 16 MiB come from the heap, and up to 64 MiB of free heap stay mapped.
// A process whose environment sets glibc's own malloc tunables (GLIBC_TUNABLES) keeps those.
#ifndef PSREC_COMMON_ALLOCATOR_H_
#define PSREC_COMMON_ALLOCATOR_H_

namespace psrec {

void TuneAllocator();

}  // namespace psrec

#endif  // PSREC_COMMON_ALLOCATOR_H_
