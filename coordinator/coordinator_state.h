// What the coordinator's gRPC handlers (coordinator/coordinator_service.h) and its job loop
// (coordinator/job_runner.h) share: the membership and the schedule, under one mutex.
//
// One mutex, because the waits cross the two: a Register waits for the job to end or a lease to
// run out, a GetWork for the job to end or its partition, the job loop for enough live, ready
// workers. Every such wait is an absl::Condition on `mu`, re-evaluated whenever a holder of `mu`
// releases it, so whoever changes either part wakes whoever waits on it. Nothing slow (no RPC,
// no file) is done while holding `mu`.
#ifndef PSREC_COORDINATOR_COORDINATOR_STATE_H_
#define PSREC_COORDINATOR_COORDINATOR_STATE_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/membership.h"
#include "coordinator/schedule.h"
#include "proto/config.pb.h"

namespace psrec {

// Generations of one coordinator incarnation: a restarted coordinator's generations start at its
// incarnation (start time in ms) times this, above every generation of the incarnation before.
constexpr uint64_t kGenerationsPerIncarnation = 1000000;

struct CoordinatorState {
  // num_workers places, each held while its worker calls at least once every `lease`; tasks with
  // config's SSP staleness; generations from incarnation * kGenerationsPerIncarnation + 1 (from 1
  // for incarnation 0, as tests use).
  CoordinatorState(const JobConfig& config, absl::Duration lease, uint64_t incarnation = 0)
      : membership(config.num_workers(), lease),
        schedule(config.staleness(), incarnation * kGenerationsPerIncarnation) {}

  absl::Mutex mu;
  Membership membership ABSL_GUARDED_BY(mu);
  Schedule schedule ABSL_GUARDED_BY(mu);
  // The coordinator is stopping (SIGTERM): the job loop ends at the next epoch boundary
  // (JobRunner::RequestStop).
  bool stopping ABSL_GUARDED_BY(mu) = false;
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_COORDINATOR_STATE_H_
