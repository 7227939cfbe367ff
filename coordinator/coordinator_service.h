// The coordinator of a distributed job as a gRPC service: it admits workers whose config matches,
// hands each one its part of every task (splitting the data, training an epoch, evaluating it),
// provides the SSP clock, and keeps the workers' leases. The parts it wires together: who the
// workers are (coordinator/membership.h), the epoch schedule (coordinator/schedule.h), both shared
// with the job loop (coordinator/job_runner.h), which runs the epochs, evaluates them and recovers
// from failures (coordinator/recovery.h).
//
// Incarnations. Every coordinator process has its own (RecoveryOptions::incarnation), sent in
// RegisterResponse and repeated in each of the worker's later requests. A request carrying another
// incarnation (the worker registered with this coordinator's predecessor, which was stopped or
// died) is answered NOT_FOUND, whatever it asked, so that the worker registers again and is handed
// this incarnation's work; its old work is never counted. A request carrying 0 is not checked.
//
// Thread-safety: the handlers run on gRPC's threads and RunJob on the caller's. The membership and
// the schedule are behind one mutex (coordinator/coordinator_state.h); a handler that waits (the
// long polls of Register, GetWork and Clock) waits on a Condition of that mutex.
#ifndef PSREC_COORDINATOR_COORDINATOR_SERVICE_H_
#define PSREC_COORDINATOR_COORDINATOR_SERVICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/job_report.h"
#include "coordinator/coordinator_state.h"
#include "coordinator/job_runner.h"
#include "coordinator/recovery.h"
#include "coordinator/shard_control.h"
#include "proto/config.pb.h"
#include "proto/coordinator.grpc.pb.h"

namespace psrec {

class CoordinatorService final : public Coordinator::Service {
 public:
  // `config` has data_dir filled in; `data` says where the job's prepared shares are and what they
  // hold (the workers split them, and the job fills in rating_offset). `shards` may be null (no
  // recovery: tests of scheduling alone); it must outlive the service.
  CoordinatorService(JobConfig config, std::vector<std::string> ps_addresses, JobDataInfo data,
                     RecoveryOptions recovery = RecoveryOptions(), ShardControl* shards = nullptr);

  // FAILED_PRECONDITION naming each field when the worker's config differs. While every place is
  // held by a live worker, waits (up to the call's deadline, at most 10 minutes) for a lease to
  // run out or the job to end; RESOURCE_EXHAUSTED when neither came. After the job: job_done.
  grpc::Status Register(grpc::ServerContext* context, const RegisterRequest* request,
                        RegisterResponse* response) override;
  // Long-polls for up to a second before answering WAIT. INVALID_ARGUMENT for an unknown id.
  grpc::Status GetWork(grpc::ServerContext* context, const GetWorkRequest* request,
                       WorkAssignment* response) override;
  // As Schedule::Report.
  grpc::Status Report(grpc::ServerContext* context, const ReportRequest* request,
                      ReportResponse* response) override;
  // Waits (up to the call's deadline, at most 10 minutes) until the clock is allowed. ABORTED when
  // the generation is or becomes another; DEADLINE_EXCEEDED naming the slowest clock when the
  // wait ran out or the call was cancelled; INVALID_ARGUMENT for an unknown id.
  grpc::Status Clock(grpc::ServerContext* context, const ClockRequest* request,
                     ClockResponse* response) override;
  // Keeps the worker's lease. INVALID_ARGUMENT for an unknown id.
  grpc::Status Heartbeat(grpc::ServerContext* context, const HeartbeatRequest* request,
                         HeartbeatResponse* response) override;
  // The worker is taken for lost at once (Membership::Leave); if it owed a report of the work under
  // way, that work is redone as after a lost lease. INVALID_ARGUMENT for an unknown id.
  grpc::Status Leave(grpc::ServerContext* context, const LeaveRequest* request,
                     LeaveResponse* response) override;

  // JobRunner::Run. Call it once.
  absl::StatusOr<std::vector<EpochRecord>> RunJob(absl::Duration register_timeout,
                                                  absl::Duration epoch_timeout,
                                                  const std::string& metrics_out);

  // Waits up to `timeout` for every live worker to have been told DONE.
  void WaitForWorkersToLeave(absl::Duration timeout);

  uint32_t rollbacks() const { return runner_.rollbacks(); }
  // JobRunner::RequestStop: RunJob ends at the next epoch boundary, after a final checkpoint.
  void RequestStop() { runner_.RequestStop(); }

 private:
  // Waits (Register's long poll) while every place is held by a live worker. False when the call's
  // deadline came first or it was cancelled.
  bool AwaitPlace(grpc::ServerContext* context, const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  // INVALID_ARGUMENT for an id never registered; otherwise the worker is seen alive.
  grpc::Status Known(uint32_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu);
  // NOT_FOUND when worker `id`'s request carries another coordinator's `incarnation` (above).
  grpc::Status ThisIncarnation(const char* rpc, uint32_t id, uint64_t incarnation) const;
  // The same for a request with worker_id() and incarnation() (every call but Register).
  template <typename Request>
  grpc::Status ThisIncarnation(const char* rpc, const Request& request) const {
    return ThisIncarnation(rpc, request.worker_id(), request.incarnation());
  }

  const JobConfig config_;
  const std::vector<std::string> ps_addresses_;
  const std::string shares_dir_;
  const uint64_t data_fingerprint_;
  const absl::Duration heartbeat_;  // a quarter of the lease
  const uint64_t incarnation_;
  CoordinatorState state_;
  JobRunner runner_;
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_COORDINATOR_SERVICE_H_
