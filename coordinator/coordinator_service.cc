#include "coordinator/coordinator_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/rpc.h"

namespace psrec {
namespace {

// How long GetWork and Clock hold a call before answering "not yet".
constexpr absl::Duration kLongPoll = absl::Seconds(1);

// The end of a call's wait: its deadline, but at most 10 minutes away.
absl::Time WaitDeadline(const grpc::ServerContext& context) {
  return std::min(absl::FromChrono(context.deadline()), absl::Now() + absl::Minutes(10));
}

}  // namespace

CoordinatorService::CoordinatorService(JobConfig config, std::vector<std::string> ps_addresses,
                                       JobDataInfo data, RecoveryOptions recovery,
                                       ShardControl* shards)
    : config_(std::move(config)),
      ps_addresses_(std::move(ps_addresses)),
      shares_dir_(data.shares_dir),
      data_fingerprint_(data.fingerprint),
      heartbeat_(recovery.worker_lease / 4),
      incarnation_(recovery.incarnation),
      state_(config_, recovery.worker_lease, recovery.incarnation),
      runner_(config_, std::move(data), std::move(recovery), shards, &state_) {}

absl::StatusOr<std::vector<EpochRecord>> CoordinatorService::RunJob(
    absl::Duration register_timeout, absl::Duration epoch_timeout, const std::string& metrics_out) {
  return runner_.Run(register_timeout, epoch_timeout, metrics_out);
}

grpc::Status CoordinatorService::Known(uint32_t id) {
  return ToGrpc(state_.membership.CheckIn(id, absl::Now()));
}

grpc::Status CoordinatorService::ThisIncarnation(const char* rpc, uint32_t id,
                                                 uint64_t incarnation) const {
  if (incarnation == 0 || incarnation == incarnation_) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::NOT_FOUND,
                      absl::StrCat(rpc, " from worker ", id, " of coordinator incarnation ",
                                   incarnation, ": this is incarnation ", incarnation_,
                                   " (the coordinator restarted); register again"));
}

grpc::Status CoordinatorService::Register(grpc::ServerContext* context,
                                          const RegisterRequest* request,
                                          RegisterResponse* response) {
  const std::vector<std::string> diff = RegistrationDifferences(config_, request->config());
  if (!diff.empty()) {
    const std::string message = absl::StrCat(
        "worker ", request->name(), " (", context->peer(),
        ") has a different config (coordinator vs worker): ", absl::StrJoin(diff, "; "));
    PSREC_LOG(WARNING) << "refused " << message;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, message);
  }
  absl::MutexLock lock(&state_.mu);
  if (!AwaitPlace(context, request->name())) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("all ", config_.num_workers(), " worker places are taken"));
  }
  if (state_.schedule.done()) {
    PSREC_LOG(INFO) << "worker " << request->name() << " at " << context->peer()
                    << " came after the job ended; told it is done";
    response->set_job_done(true);
    return grpc::Status::OK;
  }
  const uint32_t id = state_.membership.Admit(request->name(), absl::Now());
  state_.schedule.AddWorker(id);
  response->set_worker_id(id);
  for (const std::string& address : ps_addresses_) response->add_ps_addresses(address);
  *response->mutable_config() = config_;
  response->set_shares_dir(shares_dir_);
  response->set_data_fingerprint(data_fingerprint_);
  response->set_heartbeat_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(heartbeat_)));
  response->set_incarnation(incarnation_);
  PSREC_LOG(INFO) << "worker " << id << " registered: " << request->name() << " at "
                  << context->peer() << " (" << state_.membership.size() << "/"
                  << config_.num_workers() << ")";
  return grpc::Status::OK;
}

bool CoordinatorService::AwaitPlace(grpc::ServerContext* context, const std::string& name) {
  auto place = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu) {
    return state_.schedule.done() || state_.membership.HasPlace();
  };
  if (place()) return true;
  PSREC_LOG(INFO) << "worker " << name << " waits for a place: all " << config_.num_workers()
                  << " are held by live workers";
  const absl::Time deadline = WaitDeadline(*context);
  // Woken as soon as a lease runs out or the job ends; the timeout only looks for cancellation.
  while (!place() && !context->IsCancelled() && absl::Now() < deadline) {
    state_.mu.AwaitWithDeadline(absl::Condition(&place),
                                std::min(deadline, absl::Now() + kLongPoll));
  }
  return place();
}

grpc::Status CoordinatorService::GetWork(grpc::ServerContext*, const GetWorkRequest* request,
                                         WorkAssignment* response) {
  const uint32_t id = request->worker_id();
  if (grpc::Status s = ThisIncarnation("GetWork", *request); !s.ok()) return s;
  absl::MutexLock lock(&state_.mu);
  if (grpc::Status s = Known(id); !s.ok()) return s;
  if (!request->error().empty()) {
    state_.schedule.GaveUp(id, request->failed_generation(), request->error());
  }
  auto answer = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu) {
    return state_.schedule.HasAnswer(id);
  };
  state_.membership.SetReady(id);
  state_.membership.BeginWait(id);
  state_.mu.AwaitWithTimeout(absl::Condition(&answer), kLongPoll);
  state_.membership.EndWait(id, absl::Now());
  state_.schedule.Answer(id, response);
  if (response->kind() == WorkAssignment::DONE || response->kind() == WorkAssignment::ABORTED) {
    state_.membership.SetToldDone(id);
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Report(grpc::ServerContext*, const ReportRequest* request,
                                        ReportResponse*) {
  if (grpc::Status s = ThisIncarnation("Report", *request); !s.ok()) return s;
  absl::MutexLock lock(&state_.mu);
  // An unknown id is refused by the schedule, as a report it did not expect.
  state_.membership.CheckIn(request->worker_id(), absl::Now()).IgnoreError();
  return ToGrpc(state_.schedule.Report(*request));
}

grpc::Status CoordinatorService::Heartbeat(grpc::ServerContext*, const HeartbeatRequest* request,
                                           HeartbeatResponse*) {
  if (grpc::Status s = ThisIncarnation("Heartbeat", *request); !s.ok()) return s;
  absl::MutexLock lock(&state_.mu);
  return Known(request->worker_id());
}

grpc::Status CoordinatorService::Leave(grpc::ServerContext*, const LeaveRequest* request,
                                       LeaveResponse*) {
  if (grpc::Status s = ThisIncarnation("Leave", *request); !s.ok()) return s;
  absl::MutexLock lock(&state_.mu);
  absl::StatusOr<Membership::Lost> lost =
      state_.membership.Leave(request->worker_id(), request->reason());
  if (!lost.ok()) return ToGrpc(lost.status());
  // SetTrouble keeps the first reason the running task already has.
  state_.schedule.SetTrouble(runner_.Lose({*lost}));
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Clock(grpc::ServerContext* context, const ClockRequest* request,
                                       ClockResponse*) {
  const uint32_t id = request->worker_id();
  if (grpc::Status s = ThisIncarnation("Clock", *request); !s.ok()) return s;
  absl::MutexLock lock(&state_.mu);
  if (grpc::Status s = Known(id); !s.ok()) return s;
  const uint64_t generation = request->generation();
  if (absl::Status s = state_.schedule.EnterClock(id, request->clock(), generation); !s.ok()) {
    return ToGrpc(s);
  }
  auto allowed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu) {
    return state_.schedule.ClockAllowed(request->clock()) || context->IsCancelled() ||
           state_.schedule.generation() != generation;
  };
  state_.membership.BeginWait(id);
  const bool woke = state_.mu.AwaitWithDeadline(absl::Condition(&allowed), WaitDeadline(*context));
  state_.membership.EndWait(id, absl::Now());
  if (absl::Status s = state_.schedule.CheckGeneration(generation); !s.ok()) return ToGrpc(s);
  if (!woke || context->IsCancelled()) {
    return grpc::Status(
        grpc::StatusCode::DEADLINE_EXCEEDED,
        absl::StrCat("worker ", id, " waited too long at clock ", request->clock(),
                     " for the slowest worker (clock ", state_.schedule.MinClock(), ")"));
  }
  return grpc::Status::OK;
}

void CoordinatorService::WaitForWorkersToLeave(absl::Duration timeout) {
  absl::MutexLock lock(&state_.mu);
  auto all_told = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_.mu) {
    return state_.membership.AllToldDoneOrLost();
  };
  state_.mu.AwaitWithTimeout(absl::Condition(&all_told), timeout);
}

}  // namespace psrec
