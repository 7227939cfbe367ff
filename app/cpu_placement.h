// Which CPU each process of a local cluster runs on (`psrec train --ps_shards=N --cpu_affinity`).
//
// Left to itself, the kernel moves a cluster's processes between CPUs as they wake one another: a
// worker that answers its server's write is woken next to it, so a worker and a server that could
// run side by side end up taking turns on one CPU while the other idles, and every move starts on
// cold caches. Bound to one CPU each, they stay put (as Open MPI binds its ranks to cores):
//  - a worker computes while the servers apply other pushes, so workers spread over the CPUs;
//  - with SYNC, a server shares its CPU with a worker: a SYNC worker waits for its pull while the
//    server works and the server waits while the worker computes, so the two take turns anyway, and
//    a wake-up on the same CPU is cheaper than one across CPUs;
//  - otherwise (ASYNC, SSP) the servers take the CPUs after the workers', so that one worker and
//    one server run side by side;
//  - the coordinator is not bound: it idles while the workers train and evaluates between epochs.
// bench/RESULTS.md ("CPU binding") has the measurements behind these choices.
#ifndef PSREC_APP_CPU_PLACEMENT_H_
#define PSREC_APP_CPU_PLACEMENT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "proto/config.pb.h"

namespace psrec {

// The flag's file, for `psrec train --help`.
const char* CpuPlacementFlagsFile();
// --cpu_affinity: true for "auto" (bind as above), false for "none"; an error for anything else.
absl::StatusOr<bool> CpuAffinityFromFlag();

// The CPUs this process may run on (its affinity mask), in increasing order; empty if unknown.
std::vector<int> AllowedCpus();

// The CPU of each child of a local cluster in cluster.json's order (servers, coordinator, workers),
// -1 for a child left unbound: every child is unbound on fewer than two CPUs.
std::vector<int> PlaceChildren(absl::Span<const int> cpus, uint32_t num_servers,
                               uint32_t num_workers, Consistency consistency);

}  // namespace psrec

#endif  // PSREC_APP_CPU_PLACEMENT_H_
