#include "coordinator/coordinator_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "coordinator/job_config.h"

namespace psrec {
namespace {

// How long GetWork and Clock hold a call before answering "not yet".
constexpr absl::Duration kLongPoll = absl::Seconds(1);

uint64_t Batches(uint64_t rows, uint32_t batch_size) {
  return (rows + batch_size - 1) / batch_size;
}

}  // namespace

std::vector<Partition> PlanEpoch(uint64_t num_rows, uint32_t num_workers, uint32_t batch_size,
                                 uint32_t epoch) {
  std::vector<Partition> plan(num_workers);
  uint64_t batches_in_epoch = 0, max_batches = 0;
  for (uint32_t w = 0; w < num_workers; ++w) {
    plan[w].begin = num_rows * w / num_workers;
    plan[w].end = num_rows * (w + 1) / num_workers;
    const uint64_t batches = Batches(plan[w].end - plan[w].begin, batch_size);
    plan[w].first_step = batches_in_epoch;  // offset within the epoch, rebased below
    batches_in_epoch += batches;
    max_batches = std::max(max_batches, batches);
  }
  for (Partition& p : plan) {
    p.first_step += uint64_t{epoch} * batches_in_epoch;
    p.first_clock = uint64_t{epoch} * max_batches;
    p.num_clocks = max_batches;
  }
  return plan;
}

std::vector<std::string> RegistrationDifferences(const JobConfig& mine, const JobConfig& theirs) {
  JobConfig a = mine, b = theirs;
  for (JobConfig* c : {&a, &b}) {
    c->clear_data_dir();
    c->clear_rating_offset();
  }
  // A worker started by hand learns the shards from the coordinator and need not be told their
  // count.
  if (!b.has_num_shards()) a.clear_num_shards();
  return ConfigDifferences(a, b);
}

CoordinatorService::CoordinatorService(JobConfig config, std::vector<std::string> ps_addresses,
                                       const JobData* job)
    : config_(std::move(config)), ps_addresses_(std::move(ps_addresses)), job_(job) {}

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
  absl::MutexLock lock(&mu_);
  if (workers_.size() >= config_.num_workers()) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("all ", config_.num_workers(), " worker places are taken"));
  }
  response->set_worker_id(static_cast<uint32_t>(workers_.size()));
  workers_.push_back(WorkerState{request->name()});
  for (const std::string& address : ps_addresses_) response->add_ps_addresses(address);
  *response->mutable_config() = config_;
  PSREC_LOG(INFO) << "worker " << response->worker_id() << " registered: " << request->name()
                  << " at " << context->peer() << " (" << workers_.size() << "/"
                  << config_.num_workers() << ")";
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetWork(grpc::ServerContext*, const GetWorkRequest* request,
                                         WorkAssignment* response) {
  absl::MutexLock lock(&mu_);
  const uint32_t id = request->worker_id();
  if (id >= workers_.size()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("worker id ", id, " is not registered"));
  }
  auto has_work = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_ || (running_epoch_ && workers_[id].assigned_epoch != epoch_);
  };
  workers_[id].ready = true;
  mu_.AwaitWithTimeout(absl::Condition(&has_work), kLongPoll);
  if (done_) {
    response->set_kind(failed_ ? WorkAssignment::ABORTED : WorkAssignment::DONE);
    workers_[id].told_done = true;
    return grpc::Status::OK;
  }
  if (!has_work()) {
    response->set_kind(WorkAssignment::WAIT);
    return grpc::Status::OK;
  }
  const Partition& p = plan_[id];
  workers_[id].assigned_epoch = epoch_;
  workers_[id].clock = p.first_clock;
  response->set_kind(WorkAssignment::TRAIN);
  response->set_epoch(epoch_);
  response->set_begin(p.begin);
  response->set_end(p.end);
  response->set_first_step(p.first_step);
  response->set_first_clock(p.first_clock);
  response->set_num_clocks(p.num_clocks);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Report(grpc::ServerContext*, const ReportRequest* request,
                                        ReportResponse*) {
  absl::MutexLock lock(&mu_);
  const uint32_t id = request->worker_id();
  if (id >= workers_.size() || !running_epoch_ || request->epoch() != epoch_ ||
      workers_[id].assigned_epoch != epoch_ || workers_[id].reported_epoch == epoch_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("unexpected report from worker ", id, " for epoch ",
                                     request->epoch(), " (current epoch ", epoch_, ")"));
  }
  workers_[id].reported_epoch = epoch_;
  // The last clock of the epoch: SSP neighbours waiting on this worker may go on.
  workers_[id].clock = plan_[id].first_clock + plan_[id].num_clocks;
  epoch_stats_.loss_sum += request->loss_sum();
  epoch_stats_.examples += request->examples();
  epoch_stats_.batches += request->batches();
  return grpc::Status::OK;
}

uint64_t CoordinatorService::MinClock() const {
  uint64_t min_clock = UINT64_MAX;
  for (const WorkerState& w : workers_) min_clock = std::min(min_clock, w.clock);
  return min_clock;
}

grpc::Status CoordinatorService::Clock(grpc::ServerContext* context, const ClockRequest* request,
                                       ClockResponse* response) {
  absl::MutexLock lock(&mu_);
  const uint32_t id = request->worker_id();
  if (id >= workers_.size()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("worker id ", id, " is not registered"));
  }
  workers_[id].clock = request->clock();
  auto allowed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return request->clock() <= MinClock() + config_.staleness() || context->IsCancelled();
  };
  const absl::Time deadline =
      std::min(absl::FromChrono(context->deadline()), absl::Now() + absl::Minutes(10));
  if (!mu_.AwaitWithDeadline(absl::Condition(&allowed), deadline) || context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        absl::StrCat("worker ", id, " waited too long at clock ", request->clock(),
                                     " for the slowest worker (clock ", MinClock(), ")"));
  }
  response->set_min_clock(MinClock());
  return grpc::Status::OK;
}

bool CoordinatorService::AllReported() const {
  for (const WorkerState& w : workers_) {
    if (w.reported_epoch != epoch_) return false;
  }
  return true;
}

absl::StatusOr<std::vector<EpochRecord>> CoordinatorService::RunJob(
    const Evaluator& evaluate, absl::Duration register_timeout, absl::Duration epoch_timeout,
    const std::string& metrics_out) {
  absl::StatusOr<std::vector<EpochRecord>> result =
      RunEpochs(evaluate, register_timeout, epoch_timeout, metrics_out);
  // However the job ends, workers asking for work from now on are told to exit.
  absl::MutexLock lock(&mu_);
  done_ = true;
  failed_ = !result.ok();
  return result;
}

absl::StatusOr<std::vector<EpochRecord>> CoordinatorService::RunEpochs(
    const Evaluator& evaluate, absl::Duration register_timeout, absl::Duration epoch_timeout,
    const std::string& metrics_out) {
  {
    absl::MutexLock lock(&mu_);
    auto all_ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return workers_.size() == config_.num_workers() &&
             std::all_of(workers_.begin(), workers_.end(),
                         [](const WorkerState& w) { return w.ready; });
    };
    PSREC_LOG(INFO) << "waiting for " << config_.num_workers() << " workers";
    if (!mu_.AwaitWithTimeout(absl::Condition(&all_ready), register_timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "only ", workers_.size(), " of ", config_.num_workers(), " workers registered (",
          std::count_if(workers_.begin(), workers_.end(),
                        [](const WorkerState& w) { return w.ready; }),
          " with their data loaded) within ", absl::FormatDuration(register_timeout)));
    }
  }
  std::vector<EpochRecord> records;
  for (uint32_t epoch = 0; epoch < config_.epochs(); ++epoch) {
    const absl::Time start = absl::Now();
    EpochRecord record;
    record.epoch = epoch + 1;
    {
      absl::MutexLock lock(&mu_);
      epoch_ = epoch;
      plan_ =
          PlanEpoch(job_->split.train.size(), config_.num_workers(), config_.batch_size(), epoch);
      epoch_stats_ = TrainStats();
      running_epoch_ = true;
      auto all_reported = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return AllReported(); };
      if (!mu_.AwaitWithTimeout(absl::Condition(&all_reported), epoch_timeout)) {
        return absl::DeadlineExceededError(absl::StrCat(
            "epoch ", epoch + 1, " did not finish within ", absl::FormatDuration(epoch_timeout)));
      }
      running_epoch_ = false;
      record.train_loss = epoch_stats_.mean_loss();
      record.examples = epoch_stats_.examples;
    }
    record.train_seconds = absl::ToDoubleSeconds(absl::Now() - start);
    absl::StatusOr<TestMetrics> metrics = evaluate();
    if (!metrics.ok()) return metrics.status();
    record.test = *metrics;
    record.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (absl::Status s = FinishEpoch(record, config_.epochs()); !s.ok()) return s;
    records.push_back(record);
    if (!metrics_out.empty()) {
      if (absl::Status s = WriteMetricsJson(metrics_out, config_, records); !s.ok()) return s;
    }
  }
  return records;
}

void CoordinatorService::WaitForWorkersToLeave(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto all_told = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::all_of(workers_.begin(), workers_.end(),
                       [](const WorkerState& w) { return w.told_done; });
  };
  mu_.AwaitWithTimeout(absl::Condition(&all_told), timeout);
}

}  // namespace psrec
