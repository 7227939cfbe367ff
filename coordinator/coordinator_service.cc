#include "coordinator/coordinator_service.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/job_config.h"
#include "common/log.h"
#include "ps/checkpoint.h"

namespace psrec {
namespace {

// How long GetWork and Clock hold a call before answering "not yet".
constexpr absl::Duration kLongPoll = absl::Seconds(1);
// How often a running epoch looks at leases and at the shards.
constexpr absl::Duration kWatchEvery = absl::Milliseconds(250);
constexpr absl::Duration kCheckShardsEvery = absl::Milliseconds(500);

grpc::Status Aborted(uint64_t theirs, uint64_t current) {
  return grpc::Status(grpc::StatusCode::ABORTED,
                      absl::StrCat("generation ", theirs, " is over; the job is at generation ",
                                   current, ": ask for work again"));
}

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
                                       const JobData* job, RecoveryOptions recovery,
                                       ShardControl* shards)
    : config_(std::move(config)),
      ps_addresses_(std::move(ps_addresses)),
      job_(job),
      recovery_(std::move(recovery)),
      shards_(shards) {}

grpc::Status CoordinatorService::Known(uint32_t id) {
  if (id >= workers_.size()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("worker id ", id, " is not registered"));
  }
  Seen(id);
  return grpc::Status::OK;
}

void CoordinatorService::Seen(uint32_t id) {
  WorkerState& w = workers_[id];
  w.last_seen = absl::Now();
  if (!w.live) {
    PSREC_LOG(INFO) << "worker " << id << " (" << w.name << ") is back; it joins after this epoch";
    w.live = true;
  }
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
  absl::MutexLock lock(&mu_);
  if (!AwaitPlace(context, request->name())) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("all ", config_.num_workers(), " worker places are taken"));
  }
  if (done_) {
    PSREC_LOG(INFO) << "worker " << request->name() << " at " << context->peer()
                    << " came after the job ended; told it is done";
    response->set_job_done(true);
    return grpc::Status::OK;
  }
  uint32_t id = static_cast<uint32_t>(workers_.size());
  if (workers_.size() >= config_.num_workers()) {
    // A replacement takes the place of a worker whose lease ran out.
    auto dead = std::find_if(workers_.begin(), workers_.end(),
                             [](const WorkerState& w) { return !w.live; });
    id = static_cast<uint32_t>(dead - workers_.begin());
    // The slot's progress stays, so that the replacement is not handed a partition its
    // predecessor already trained; it trains from the next epoch or generation on.
    WorkerState fresh;
    fresh.assigned_epoch = dead->assigned_epoch;
    fresh.assigned_generation = dead->assigned_generation;
    fresh.reported_epoch = dead->reported_epoch;
    fresh.reported_generation = dead->reported_generation;
    *dead = fresh;
  } else {
    workers_.emplace_back();
  }
  workers_[id].name = request->name();
  workers_[id].last_seen = absl::Now();
  response->set_worker_id(id);
  for (const std::string& address : ps_addresses_) response->add_ps_addresses(address);
  *response->mutable_config() = config_;
  response->set_heartbeat_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(recovery_.worker_lease / 4)));
  PSREC_LOG(INFO) << "worker " << id << " registered: " << request->name() << " at "
                  << context->peer() << " (" << workers_.size() << "/" << config_.num_workers()
                  << ")";
  return grpc::Status::OK;
}

bool CoordinatorService::AwaitPlace(grpc::ServerContext* context, const std::string& name) {
  auto place = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_ || workers_.size() < config_.num_workers() ||
           std::any_of(workers_.begin(), workers_.end(),
                       [](const WorkerState& w) { return !w.live; });
  };
  if (place()) return true;
  PSREC_LOG(INFO) << "worker " << name << " waits for a place: all " << config_.num_workers()
                  << " are held by live workers";
  const absl::Time deadline =
      std::min(absl::FromChrono(context->deadline()), absl::Now() + absl::Minutes(10));
  // Woken as soon as a lease runs out or the job ends; the timeout only looks for cancellation.
  while (!place() && !context->IsCancelled() && absl::Now() < deadline) {
    mu_.AwaitWithDeadline(absl::Condition(&place), std::min(deadline, absl::Now() + kLongPoll));
  }
  return place();
}

bool CoordinatorService::IsMember(uint32_t id) const {
  return std::find(members_.begin(), members_.end(), id) != members_.end();
}

grpc::Status CoordinatorService::GetWork(grpc::ServerContext*, const GetWorkRequest* request,
                                         WorkAssignment* response) {
  absl::MutexLock lock(&mu_);
  const uint32_t id = request->worker_id();
  if (grpc::Status s = Known(id); !s.ok()) return s;
  if (!request->error().empty()) {
    PSREC_LOG(WARNING) << "worker " << id << " gave up generation " << request->failed_generation()
                       << ": " << request->error();
    if (request->failed_generation() == generation_ && running_epoch_ && trouble_.empty()) {
      trouble_ = absl::StrCat("worker ", id, ": ", request->error());
    }
  }
  auto has_work = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const WorkerState& w = workers_[id];
    // An assignment not yet reported is handed out again: the answer to an earlier GetWork may
    // have been lost. (A worker that gave its assignment up has set trouble_ by now.)
    const bool reported = w.reported_epoch == epoch_ && w.reported_generation == generation_;
    return done_ || (running_epoch_ && trouble_.empty() && IsMember(id) && !reported);
  };
  workers_[id].ready = true;
  ++workers_[id].polling;  // a worker waiting here is alive
  mu_.AwaitWithTimeout(absl::Condition(&has_work), kLongPoll);
  --workers_[id].polling;
  Seen(id);
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
  workers_[id].assigned_generation = generation_;
  workers_[id].clock = p.first_clock;
  response->set_kind(WorkAssignment::TRAIN);
  response->set_epoch(epoch_);
  response->set_begin(p.begin);
  response->set_end(p.end);
  response->set_first_step(p.first_step);
  response->set_first_clock(p.first_clock);
  response->set_num_clocks(p.num_clocks);
  response->set_generation(generation_);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Report(grpc::ServerContext*, const ReportRequest* request,
                                        ReportResponse*) {
  absl::MutexLock lock(&mu_);
  const uint32_t id = request->worker_id();
  if (id < workers_.size()) Seen(id);
  if (id < workers_.size() && request->epoch() == workers_[id].reported_epoch &&
      request->generation() == workers_[id].reported_generation) {
    return grpc::Status::OK;  // a retry whose first answer was lost
  }
  if (id < workers_.size() && (request->generation() != generation_ || !running_epoch_)) {
    // Another generation, or a rollback under way that is about to start one.
    return Aborted(request->generation(), generation_);
  }
  if (id >= workers_.size() || request->epoch() != epoch_ ||
      workers_[id].assigned_epoch != epoch_ || workers_[id].assigned_generation != generation_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("unexpected report from worker ", id, " for epoch ",
                                     request->epoch(), " (current epoch ", epoch_, ")"));
  }
  workers_[id].reported_epoch = epoch_;
  workers_[id].reported_generation = generation_;
  // The last clock of the epoch: SSP neighbours waiting on this worker may go on.
  workers_[id].clock = plan_[id].first_clock + plan_[id].num_clocks;
  epoch_stats_.loss_sum += request->loss_sum();
  epoch_stats_.examples += request->examples();
  epoch_stats_.batches += request->batches();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Heartbeat(grpc::ServerContext*, const HeartbeatRequest* request,
                                           HeartbeatResponse*) {
  absl::MutexLock lock(&mu_);
  return Known(request->worker_id());
}

uint64_t CoordinatorService::MinClock() const {
  uint64_t min_clock = UINT64_MAX;
  for (uint32_t id : members_) min_clock = std::min(min_clock, workers_[id].clock);
  return min_clock;
}

grpc::Status CoordinatorService::Clock(grpc::ServerContext* context, const ClockRequest* request,
                                       ClockResponse*) {
  absl::MutexLock lock(&mu_);
  const uint32_t id = request->worker_id();
  if (grpc::Status s = Known(id); !s.ok()) return s;
  if (request->generation() != generation_) return Aborted(request->generation(), generation_);
  workers_[id].clock = request->clock();
  const uint64_t generation = request->generation();
  auto allowed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return request->clock() <= MinClock() + config_.staleness() || context->IsCancelled() ||
           generation_ != generation;
  };
  const absl::Time deadline =
      std::min(absl::FromChrono(context->deadline()), absl::Now() + absl::Minutes(10));
  ++workers_[id].polling;
  const bool woke = mu_.AwaitWithDeadline(absl::Condition(&allowed), deadline);
  --workers_[id].polling;
  Seen(id);
  if (generation_ != generation) return Aborted(generation, generation_);
  if (!woke || context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        absl::StrCat("worker ", id, " waited too long at clock ", request->clock(),
                                     " for the slowest worker (clock ", MinClock(), ")"));
  }
  return grpc::Status::OK;
}

bool CoordinatorService::AllReported() const {
  for (uint32_t id : members_) {
    const WorkerState& w = workers_[id];
    if (w.reported_epoch != epoch_ || w.reported_generation != generation_) return false;
  }
  return true;
}

std::vector<uint32_t> CoordinatorService::LiveReadyWorkers() const {
  std::vector<uint32_t> ids;
  for (uint32_t id = 0; id < workers_.size(); ++id) {
    if (workers_[id].live && workers_[id].ready) ids.push_back(id);
  }
  return ids;
}

std::string CoordinatorService::ExpireLeases() {
  std::string trouble;
  const absl::Time now = absl::Now();
  for (uint32_t id = 0; id < workers_.size(); ++id) {
    WorkerState& w = workers_[id];
    if (!w.live || w.polling > 0 || now - w.last_seen <= recovery_.worker_lease) continue;
    w.live = false;
    const std::string what =
        absl::StrCat("worker ", id, " (", w.name, ") lost: nothing from it for ",
                     absl::FormatDuration(now - w.last_seen));
    PSREC_LOG(WARNING) << what;
    if (trouble.empty() && running_epoch_ && IsMember(id) &&
        (w.reported_epoch != epoch_ || w.reported_generation != generation_)) {
      trouble = what;
    }
  }
  return trouble;
}

uint32_t CoordinatorService::rollbacks() const {
  absl::MutexLock lock(&mu_);
  return rollbacks_;
}

absl::StatusOr<std::vector<EpochRecord>> CoordinatorService::RunJob(
    const Evaluator& evaluate, absl::Duration register_timeout, absl::Duration epoch_timeout,
    const std::string& metrics_out) {
  register_timeout_ = register_timeout;
  absl::StatusOr<std::vector<EpochRecord>> result =
      RunEpochs(evaluate, register_timeout, epoch_timeout, metrics_out);
  // However the job ends, workers asking for work from now on are told to exit.
  absl::MutexLock lock(&mu_);
  done_ = true;
  failed_ = !result.ok();
  running_epoch_ = false;
  return result;
}

absl::StatusOr<std::pair<std::string, uint32_t>> CoordinatorService::LatestCheckpoint() const {
  if (recovery_.checkpoint_dir.empty()) return std::make_pair(std::string(), 0u);
  absl::StatusOr<std::string> path = FindLatestCheckpoint(recovery_.checkpoint_dir);
  if (absl::IsNotFound(path.status())) return std::make_pair(std::string(), 0u);
  if (!path.ok()) return path.status();
  absl::StatusOr<CheckpointManifest> manifest = ReadManifest(*path);
  if (!manifest.ok()) return manifest.status();
  const std::vector<std::string> diff = CheckpointConfigDifferences(manifest->config(), config_);
  if (!diff.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(*path, " was written by a job with another config (checkpoint vs job): ",
                     absl::StrJoin(diff, "; ")));
  }
  if (manifest->epochs_done() > config_.epochs()) {
    return absl::FailedPreconditionError(absl::StrCat(*path, " holds ", manifest->epochs_done(),
                                                      " epochs, more than the job's ",
                                                      config_.epochs()));
  }
  return std::make_pair(std::filesystem::path(*path).filename().string(), manifest->epochs_done());
}

bool CoordinatorService::AwaitMinWorkers() {
  const size_t wanted = std::max(recovery_.min_workers, 1u);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return LiveReadyWorkers().size() >= wanted;
  };
  ExpireLeases();
  if (enough()) return true;
  PSREC_LOG(WARNING) << LiveReadyWorkers().size()
                     << " live workers, fewer than --min_workers=" << wanted << "; waiting up to "
                     << absl::FormatDuration(register_timeout_)
                     << " for replacements to register and load their data";
  const absl::Time give_up = absl::Now() + register_timeout_;
  while (!enough() && absl::Now() < give_up) {
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWatchEvery);
    ExpireLeases();
  }
  return enough();
}

absl::Status CoordinatorService::StartGeneration(const std::string& checkpoint, bool keep_rows) {
  std::vector<uint32_t> members;
  uint64_t generation, clock;
  {
    absl::MutexLock lock(&mu_);
    if (!AwaitMinWorkers()) {
      return absl::UnavailableError(absl::StrCat(
          "only ", LiveReadyWorkers().size(), " live workers, fewer than --min_workers=",
          recovery_.min_workers, ", and no replacement registered and loaded its data within ",
          absl::FormatDuration(register_timeout_), " (--register_timeout)"));
    }
    members = LiveReadyWorkers();
    generation = ++generation_;
    clock = next_clock_;
    running_epoch_ = false;
    trouble_.clear();
    members_ = members;
  }  // Releasing mu_ re-evaluates the Conditions of Clock calls waiting in the old generation.
  if (shards_ == nullptr) return absl::OkStatus();
  if (absl::Status s = shards_->Restore(generation, checkpoint, keep_rows, clock, members);
      !s.ok()) {
    return s;
  }
  PSREC_LOG(INFO) << "generation " << generation << ": workers [" << absl::StrJoin(members, ",")
                  << "], rows "
                  << (keep_rows            ? "kept"
                      : checkpoint.empty() ? "fresh"
                                           : absl::StrCat("from ", checkpoint));
  return absl::OkStatus();
}

absl::Status CoordinatorService::Rollback(const std::string& why, uint32_t* epoch) {
  {
    absl::MutexLock lock(&mu_);
    if (++rollbacks_ > recovery_.max_rollbacks) {
      return absl::AbortedError(absl::StrCat("giving up after ", recovery_.max_rollbacks,
                                             " rollbacks; the last because ", why));
    }
  }
  absl::StatusOr<std::pair<std::string, uint32_t>> latest = LatestCheckpoint();
  if (!latest.ok()) return latest.status();
  PSREC_LOG(WARNING) << "rolling back to "
                     << (latest->first.empty() ? std::string("fresh rows")
                                               : absl::StrCat("checkpoint ", latest->first))
                     << " (epoch " << latest->second + 1 << ") because " << why;
  if (absl::Status s = StartGeneration(latest->first, /*keep_rows=*/false); !s.ok()) return s;
  *epoch = latest->second;
  return absl::OkStatus();
}

absl::StatusOr<CoordinatorService::EpochEnd> CoordinatorService::WaitForEpoch(
    uint32_t epoch, absl::Duration epoch_timeout) {
  const absl::Time give_up = absl::Now() + epoch_timeout;
  absl::Time next_check = absl::Now() + kCheckShardsEvery;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return AllReported() || !trouble_.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ended), kWatchEvery);
      if (AllReported()) return EpochEnd::kReported;
      if (trouble_.empty()) trouble_ = ExpireLeases();
      if (!trouble_.empty()) return EpochEnd::kTrouble;
    }
    if (absl::Now() >= give_up) {
      return absl::DeadlineExceededError(absl::StrCat(
          "epoch ", epoch + 1, " did not finish within ", absl::FormatDuration(epoch_timeout)));
    }
    if (shards_ != nullptr && absl::Now() >= next_check) {
      absl::StatusOr<std::string> trouble = shards_->Check();
      if (!trouble.ok()) return trouble.status();
      next_check = absl::Now() + kCheckShardsEvery;
      if (!trouble->empty()) {
        absl::MutexLock lock(&mu_);
        if (trouble_.empty()) trouble_ = *trouble;
      }
    }
  }
}

absl::Status CoordinatorService::WriteCheckpoint(uint32_t epochs_done) {
  uint64_t generation, clock;
  {
    absl::MutexLock lock(&mu_);
    generation = generation_;
    clock = next_clock_;
  }
  const std::string name = CheckpointName(epochs_done);
  absl::StatusOr<std::vector<CheckpointFile>> files = shards_->Checkpoint(name, generation);
  if (!files.ok()) return files.status();
  CheckpointManifest manifest;
  manifest.set_format_version(kCheckpointFormatVersion);
  *manifest.mutable_config() = config_;
  manifest.set_epochs_done(epochs_done);
  manifest.set_clock(clock);
  manifest.set_num_shards(static_cast<uint32_t>(files->size()));
  for (CheckpointFile& file : *files) *manifest.add_files() = std::move(file);
  manifest.set_created(absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()));
  const std::string dir = absl::StrCat(recovery_.checkpoint_dir, "/", name);
  if (absl::Status s = WriteManifest(dir, manifest); !s.ok()) return s;
  PSREC_LOG(INFO) << "checkpoint " << dir << " complete (" << files->size() << " shards)";
  // Keep the newest keep_checkpoints complete ones; never the one just written.
  std::error_code error;
  std::vector<std::string> complete;
  for (const auto& entry : std::filesystem::directory_iterator(recovery_.checkpoint_dir, error)) {
    const std::string base = entry.path().filename().string();
    // Only names CheckpointName makes: ckpt-<digits>, none of them a copy such as ckpt-000003.bak.
    if (base.size() == name.size() && base.rfind("ckpt-", 0) == 0 &&
        base.find_first_not_of("0123456789", 5) == std::string::npos && base < name &&
        std::filesystem::exists(entry.path() / "MANIFEST", error)) {
      complete.push_back(entry.path().string());
    }
  }
  std::sort(complete.begin(), complete.end());
  const size_t keep_older = std::max(recovery_.keep_checkpoints, 1u) - 1;
  for (size_t i = 0; i + keep_older < complete.size(); ++i) {
    std::filesystem::remove_all(complete[i], error);
  }
  absl::MutexLock lock(&mu_);
  last_checkpoint_ = absl::Now();
  return absl::OkStatus();
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
    last_checkpoint_ = absl::Now();
  }
  uint32_t epoch = 0;
  if (shards_ != nullptr) {
    std::string checkpoint;
    if (!recovery_.resume && !recovery_.checkpoint_dir.empty()) {
      absl::StatusOr<std::string> old = FindLatestCheckpoint(recovery_.checkpoint_dir);
      if (old.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            recovery_.checkpoint_dir, " already holds checkpoints (", *old,
            "): pass --resume to continue that job, or give another --checkpoint_dir"));
      }
    }
    if (recovery_.resume) {
      absl::StatusOr<std::pair<std::string, uint32_t>> latest = LatestCheckpoint();
      if (!latest.ok()) return latest.status();
      if (latest->first.empty()) {
        PSREC_LOG(INFO) << "--resume: no complete checkpoint in " << recovery_.checkpoint_dir
                        << "; starting from the first epoch";
      } else {
        PSREC_LOG(INFO) << "--resume: continuing after epoch " << latest->second << " from "
                        << recovery_.checkpoint_dir << "/" << latest->first;
      }
      std::tie(checkpoint, epoch) = *latest;
    }
    if (absl::Status s = StartGeneration(checkpoint, /*keep_rows=*/false); !s.ok()) return s;
  } else {
    absl::MutexLock lock(&mu_);
    members_ = LiveReadyWorkers();
  }
  std::vector<EpochRecord> records;
  // A resumed job that has no epoch left still reports its model's metrics.
  const bool evaluate_only = epoch == config_.epochs() && epoch > 0;
  while (epoch < config_.epochs() || evaluate_only) {
    const absl::Time start = absl::Now();
    EpochRecord record;
    record.epoch = epoch + (evaluate_only ? 0 : 1);
    std::string trouble;
    uint64_t generation;
    if (!evaluate_only) {
      bool joined_or_left;
      {
        absl::MutexLock lock(&mu_);
        ExpireLeases();
        joined_or_left = LiveReadyWorkers() != members_;
      }
      // Workers that joined or left between epochs change the generation, rows kept.
      if (joined_or_left && shards_ != nullptr) {
        absl::Status s = StartGeneration("", /*keep_rows=*/true);
        if (absl::IsAborted(s)) {
          // A server restarted between epochs: its rows are not the job's.
          if (s = Rollback(std::string(s.message()), &epoch); s.ok()) {
            while (!records.empty() && records.back().epoch > epoch) records.pop_back();
            continue;
          }
        }
        if (!s.ok()) return s;
      }
      {
        absl::MutexLock lock(&mu_);
        if (shards_ == nullptr) members_ = LiveReadyWorkers();
        if (members_.empty()) return absl::UnavailableError("no worker is left");
        epoch_ = epoch;
        const std::vector<Partition> parts =
            PlanEpoch(job_->split.train.size(), static_cast<uint32_t>(members_.size()),
                      config_.batch_size(), epoch);
        plan_.assign(workers_.size(), Partition());
        for (size_t k = 0; k < members_.size(); ++k) {
          plan_[members_[k]] = parts[k];
          plan_[members_[k]].first_clock = next_clock_;
        }
        next_clock_ += parts.front().num_clocks;
        epoch_stats_ = TrainStats();
        running_epoch_ = true;
      }
      absl::StatusOr<EpochEnd> end = WaitForEpoch(epoch, epoch_timeout);
      if (!end.ok()) return end.status();
      absl::MutexLock lock(&mu_);
      running_epoch_ = false;
      trouble = trouble_;
      record.train_loss = epoch_stats_.mean_loss();
      record.examples = epoch_stats_.examples;
    }
    {
      absl::MutexLock lock(&mu_);
      generation = generation_;
    }
    record.train_seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (trouble.empty()) {
      absl::StatusOr<TestMetrics> metrics = evaluate(generation);
      if (metrics.ok()) {
        record.test = *metrics;
      } else if (shards_ == nullptr) {
        return metrics.status();
      } else {
        trouble = absl::StrCat("evaluation failed: ", metrics.status().message());
      }
    }
    const bool last = evaluate_only || epoch + 1 == config_.epochs();
    if (trouble.empty() && !evaluate_only && shards_ != nullptr &&
        !recovery_.checkpoint_dir.empty()) {
      bool due;
      {
        absl::MutexLock lock(&mu_);
        due = last || absl::Now() - last_checkpoint_ >= recovery_.checkpoint_every;
      }
      if (due) {
        if (absl::Status s = WriteCheckpoint(epoch + 1); !s.ok()) {
          if (absl::IsDeadlineExceeded(s)) {
            // The call's deadline is fail_after.
            return absl::DeadlineExceededError(
                absl::StrCat(s.message(), " (no answer within --fail_after=",
                             absl::FormatDuration(recovery_.fail_after), ")"));
          }
          if (absl::IsAborted(s) || absl::IsUnavailable(s) || absl::IsCancelled(s)) {
            trouble = absl::StrCat("checkpoint failed: ", s.message());
          } else {
            // The rows are intact (a full disk, say): train on, and try again after the next
            // epoch; the last complete checkpoint stays the one to roll back to.
            PSREC_LOG(WARNING) << "checkpoint after epoch " << epoch + 1
                               << " failed; training goes on: " << s.message();
          }
        }
      }
    }
    if (!trouble.empty()) {
      if (shards_ == nullptr) return absl::AbortedError(trouble);
      if (absl::Status s = Rollback(trouble, &epoch); !s.ok()) return s;
      while (!records.empty() && records.back().epoch > epoch) records.pop_back();
      continue;
    }
    record.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (absl::Status s = FinishEpoch(record, config_.epochs()); !s.ok()) return s;
    records.push_back(record);
    if (!metrics_out.empty()) {
      if (absl::Status s = WriteMetricsJson(metrics_out, config_, records); !s.ok()) return s;
    }
    if (evaluate_only) break;
    ++epoch;
  }
  return records;
}

void CoordinatorService::WaitForWorkersToLeave(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto all_told = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::all_of(workers_.begin(), workers_.end(),
                       [](const WorkerState& w) { return w.told_done || !w.live; });
  };
  mu_.AwaitWithTimeout(absl::Condition(&all_told), timeout);
}

}  // namespace psrec
