#include "worker/worker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/job_config.h"
#include "common/log.h"
#include "common/security.h"
#include "grpcpp/grpcpp.h"
#include "worker/progress.h"

namespace psrec {
namespace {

absl::Status Annotate(const absl::Status& status, const std::string& prefix) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

// Failures after which the worker gives up its assignment and asks for new work, rather than
// failing: a server that went away or restarted, a call that timed out, a generation that ended.
bool GiveUpAssignment(const absl::Status& status) {
  return absl::IsAborted(status) || absl::IsUnavailable(status) ||
         absl::IsDeadlineExceeded(status) || absl::IsCancelled(status);
}

}  // namespace

Worker::Worker(JobConfig config, WorkerOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      channel_(CreatePeerChannel(options_.coordinator, QuickReconnect())),
      coordinator_(Coordinator::NewStub(channel_)) {}

Worker::~Worker() {
  stop_heartbeats_.Notify();
  if (heartbeats_.joinable()) heartbeats_.join();
}

void Worker::StartHeartbeats(absl::Duration every) {
  // A worker that registers again keeps its heartbeat thread: the loop reads the new id.
  if (every <= absl::ZeroDuration() || heartbeats_.joinable()) return;
  heartbeats_ = std::thread([this, every] { HeartbeatLoop(every); });
}

// The stub is thread-safe; the loop shares nothing else with the training thread.
void Worker::HeartbeatLoop(absl::Duration every) {
  HeartbeatRequest request;
  bool failing = false;
  while (!stop_heartbeats_.WaitForNotificationWithTimeout(every)) {
    request.set_worker_id(worker_id_);
    request.set_incarnation(incarnation_);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + std::max(every, absl::Seconds(1))));
    HeartbeatResponse response;
    const grpc::Status status = coordinator_->Heartbeat(&context, request, &response);
    if (!status.ok() && !failing) {
      PSREC_LOG(WARNING) << "Heartbeat to coordinator (" << options_.coordinator
                         << ") failed: " << status.error_message();
    }
    failing = !status.ok();
  }
}

template <typename Request, typename Response>
absl::Status Worker::Call(const char* rpc,
                          grpc::Status (Coordinator::Stub::*method)(grpc::ClientContext*,
                                                                    const Request&, Response*),
                          const Request& request, Response* response, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  const grpc::Status status = (coordinator_.get()->*method)(&context, request, response);
  // The coordinator's only NOT_FOUND: it restarted (proto/coordinator.proto).
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) coordinator_restarted_.store(true);
  return FromGrpcStatus(status, absl::StrCat(rpc, " to coordinator (", options_.coordinator, ")"));
}

template <typename Request, typename Response>
absl::Status Worker::CallWithRetry(const char* rpc,
                                   grpc::Status (Coordinator::Stub::*method)(grpc::ClientContext*,
                                                                             const Request&,
                                                                             Response*),
                                   const Request& request, Response* response) {
  return RetryWhileUnreachable(options_.fail_after, [&](absl::Time) {
    return Call(rpc, method, request, response, options_.rpc_timeout);
  });
}

// Workers may start before the coordinator listens, so an UNAVAILABLE Register is retried until
// register_timeout has passed; so is a RESOURCE_EXHAUSTED one (see below). The call's deadline is
// what is left of register_timeout, because the coordinator holds a Register while every place is
// taken.
absl::Status Worker::RegisterWithRetry(const RegisterRequest& request, RegisterResponse* response) {
  const absl::Time give_up = absl::Now() + options_.register_timeout;
  absl::Duration backoff = absl::Milliseconds(50);
  for (bool logged = false;;) {
    const bool was_ready = channel_->GetState(false) == GRPC_CHANNEL_READY;
    const absl::Duration left = std::max(give_up - absl::Now(), absl::Milliseconds(100));
    absl::Status s = Call("Register", &Coordinator::Stub::Register, request, response, left);
    // RESOURCE_EXHAUSTED: every place stayed taken until the call's deadline.
    if (!(absl::IsUnavailable(s) || absl::IsResourceExhausted(s)) || absl::Now() >= give_up) {
      return s;
    }
    if (!logged) PSREC_LOG(INFO) << "waiting for the coordinator: " << s.message();
    logged = true;
    const absl::Time next = std::min(absl::Now() + backoff, give_up);
    backoff = std::min(2 * backoff, absl::Seconds(1));
    // A call that fails fast does not poll the channel, and gRPC's backup poller looks at a
    // reconnecting channel only every 5 s; waiting on the channel itself makes it reconnect now.
    if (!was_ready && channel_->WaitForConnected(absl::ToChronoTime(next))) continue;
    absl::SleepFor(std::max(next - absl::Now(), absl::ZeroDuration()));
  }
}

absl::Status Worker::Leave(const std::string& reason) {
  if (!admitted_.load(std::memory_order_acquire)) return absl::OkStatus();
  LeaveRequest request;
  request.set_worker_id(worker_id_);
  request.set_incarnation(incarnation_);
  request.set_reason(reason);
  LeaveResponse response;
  return Call("Leave", &Coordinator::Stub::Leave, request, &response,
              std::min(options_.rpc_timeout, absl::Seconds(5)));
}

absl::StatusOr<Worker::Admission> Worker::Register() {
  RegisterRequest request;
  *request.mutable_config() = config_;
  request.set_name(options_.name);
  RegisterResponse response;
  if (absl::Status s = RegisterWithRetry(request, &response); !s.ok()) return s;
  if (response.job_done()) return Admission::kJobIsDone;
  worker_id_ = response.worker_id();
  incarnation_ = response.incarnation();
  admitted_.store(true, std::memory_order_release);
  ps_addresses_.assign(response.ps_addresses().begin(), response.ps_addresses().end());
  // From here on: loading the data may take longer than the lease.
  StartHeartbeats(absl::Milliseconds(response.heartbeat_ms()));
  // A name given at start (the launcher gives "worker<k>") is what the operator knows it by;
  // otherwise the coordinator's id.
  SetLogRole(options_.name_given ? options_.name : absl::StrCat("worker", worker_id_.load()));
  config_ = response.config();
  shares_dir_ = options_.shares_dir.empty() ? response.shares_dir() : options_.shares_dir;
  data_fingerprint_ = response.data_fingerprint();
  PSREC_LOG(INFO) << "registered with the coordinator at " << options_.coordinator << " as worker "
                  << worker_id_.load() << " of " << config_.num_workers() << ", "
                  << ps_addresses_.size() << " ps shards, " << EnumFlagName(config_.consistency())
                  << " consistency, shares " << shares_dir_;
  return Admission::kJoined;
}

absl::Status Worker::Setup() {
  // The shares are mapped as tasks name them; opening reads the manifest and the id tables.
  absl::StatusOr<std::unique_ptr<ShareSet>> data = ShareSet::Open(shares_dir_);
  if (!data.ok()) return data.status();
  data_ = *std::move(data);
  if (data_->fingerprint() != data_fingerprint_) {
    return absl::FailedPreconditionError(
        absl::StrCat("the shares in ", shares_dir_,
                     " are not the coordinator's (their MANIFEST differs): this "
                     "worker reads different data"));
  }
  absl::StatusOr<std::unique_ptr<RemoteStore>> store =
      RemoteStore::Create(ps_addresses_, config_, worker_id_.load(), options_.rpc_timeout);
  if (!store.ok()) return store.status();
  store_ = *std::move(store);
  // Waits for every shard to serve, and catches a list of addresses in the wrong order.
  absl::StatusOr<std::vector<GetConfigResponse>> shards = store_->GetConfigs();
  if (!shards.ok()) return shards.status();
  for (uint32_t i = 0; i < shards->size(); ++i) {
    if ((*shards)[i].shard() != i) {
      return absl::FailedPreconditionError(absl::StrCat(
          "ps shard ", i, " (", store_->address(i), ") says it is shard ", (*shards)[i].shard()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Worker::Admission> Worker::RejoinAfter(const absl::Status& failed) {
  if (!coordinator_restarted_.exchange(false)) return failed;
  PSREC_LOG(WARNING) << "the coordinator restarted (" << failed.message()
                     << "); registering with it again";
  admitted_.store(false, std::memory_order_release);
  absl::StatusOr<Admission> admission = Register();
  if (!admission.ok() || *admission == Admission::kJobIsDone) return admission;
  // The trainer uses the store and the shares' id table: it goes first.
  trainer_.reset();
  store_.reset();
  data_.reset();
  if (absl::Status s = Setup(); !s.ok()) return s;
  return admission;
}

absl::Status Worker::Run() {
  if (absl::Status s = Setup(); !s.ok()) return s;
  GetWorkRequest request;
  while (true) {
    request.set_worker_id(worker_id_);
    request.set_incarnation(incarnation_);
    WorkAssignment work;
    const absl::Time asked = absl::Now();
    absl::Status failed = CallWithRetry("GetWork", &Coordinator::Stub::GetWork, request, &work);
    bool task_failed = false;
    if (failed.ok()) {
      request.clear_failed_generation();
      request.clear_error();
      switch (work.kind()) {
        case WorkAssignment::DONE:
          PSREC_LOG(INFO) << "the coordinator says the job is done";
          return absl::OkStatus();
        case WorkAssignment::ABORTED:
          return absl::AbortedError(absl::StrCat("the coordinator (", options_.coordinator,
                                                 ") says the job failed; see its log"));
        case WorkAssignment::WAIT:
          // The coordinator long-polls; should it answer at once, do not spin.
          if (absl::Now() - asked < absl::Milliseconds(100)) {
            absl::SleepFor(absl::Milliseconds(50));
          }
          continue;
        default: {
          ReportRequest report;
          ReportResponse reported;
          failed = DoTask(work, &report);
          if (failed.ok()) {
            failed = CallWithRetry("Report", &Coordinator::Stub::Report, report, &reported);
          }
          task_failed = !failed.ok();
        }
      }
    }
    if (failed.ok()) continue;
    if (coordinator_restarted_.load()) {
      absl::StatusOr<Admission> again = RejoinAfter(failed);
      if (!again.ok()) return again.status();
      if (*again == Admission::kJobIsDone) return absl::OkStatus();
      request.clear_failed_generation();
      request.clear_error();
      continue;
    }
    if (!task_failed || !GiveUpAssignment(failed)) return failed;
    GiveUp(work, failed);
    request.set_failed_generation(work.generation());
    request.set_error(std::string(failed.message()));
  }
}

void Worker::GiveUp(const WorkAssignment& work, const absl::Status& status) {
  PSREC_LOG(WARNING) << "giving up task " << work.task() << " (epoch " << work.epoch() + 1
                     << ") of generation " << work.generation() << ": " << status.message();
  store_->Reset();
  // A restarted server's channel reconnects with backoff; failing again at once would only make
  // the coordinator roll back once more.
  if (absl::IsUnavailable(status) && !store_->WaitForConnected(absl::Now() + options_.fail_after)) {
    PSREC_LOG(WARNING) << "a parameter server is still unreachable after "
                       << absl::FormatDuration(options_.fail_after);
  }
}

absl::StatusOr<TrainStats> Worker::TrainBatches(const WorkAssignment& work,
                                                absl::Span<const uint32_t> rows) {
  ProgressLog progress(work.epoch() + 1, config_.epochs(), rows.size(), absl::Seconds(2));
  const bool clocked = config_.consistency() != ASYNC;
  // No clocks to keep in ASYNC: the trainer pulls each next batch while it computes this one.
  trainer_->set_prefetch(!clocked);
  uint64_t clock = work.first_clock();
  ClockRequest clock_request;
  clock_request.set_worker_id(worker_id_);
  clock_request.set_incarnation(incarnation_);
  clock_request.set_generation(work.generation());
  TrainHooks hooks;
  hooks.progress = [&](const TrainStats& so_far) {
    if (!trained_a_batch_) {
      trained_a_batch_ = true;
      PSREC_LOG(INFO) << absl::StrFormat("first batch trained, %.2f s after this worker started",
                                         absl::ToDoubleSeconds(absl::Now() - started_));
    }
    progress.Update(so_far);
  };
  if (clocked) {
    hooks.before_batch = [&](uint64_t b) -> absl::Status {
      clock = work.first_clock() + b;
      store_->set_clock(clock);
      if (config_.consistency() != SSP) return absl::OkStatus();
      clock_request.set_clock(clock);
      ClockResponse clock_response;
      return Call("Clock", &Coordinator::Stub::Clock, clock_request, &clock_response,
                  options_.rpc_timeout);
    };
  }
  absl::StatusOr<TrainStats> trained = trainer_->Train(rows, work.first_step(), hooks);
  if (!trained.ok()) {
    return Annotate(trained.status(),
                    clocked ? absl::StrCat("epoch ", work.epoch() + 1, " clock ", clock, ": ")
                            : absl::StrCat("epoch ", work.epoch() + 1, ": "));
  }
  return trained;
}

// SYNC servers apply a clock once every worker has pushed it, so a worker whose partition is short
// pushes nothing, but pushes, for each clock it has no batch for.
absl::Status Worker::FinishClocks(const WorkAssignment& work, uint64_t batches) {
  if (config_.consistency() != SYNC) return absl::OkStatus();
  for (uint64_t c = work.first_clock() + batches; c < work.first_clock() + work.num_clocks(); ++c) {
    store_->set_clock(c);
    if (absl::Status s = store_->Push({}); !s.ok()) {
      return Annotate(s,
                      absl::StrCat("epoch ", work.epoch() + 1, " empty push of clock ", c, ": "));
    }
  }
  return absl::OkStatus();
}

}  // namespace psrec
