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

struct CoordinatorState {
  // num_workers places, each held while its worker calls at least once every `lease`; tasks with
  // config's SSP staleness.
  CoordinatorState(const JobConfig& config, absl::Duration lease)
      : membership(config.num_workers(), lease), schedule(config.staleness()) {}

  absl::Mutex mu;
  Membership membership ABSL_GUARDED_BY(mu);
  Schedule schedule ABSL_GUARDED_BY(mu);
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_COORDINATOR_STATE_H_
