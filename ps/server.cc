#include "ps/server.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/param_store.h"
#include "common/process_stats.h"
#include "common/rng.h"
#include "common/rpc.h"
#include "common/sharding.h"
#include "ps/checkpoint.h"
#include "ps/optimizer.h"
#include "ps/request_metrics.h"
#include "ps/sharded_table.h"

namespace psrec {

namespace {

absl::Status CheckTables(const JobConfig& config) {
  std::vector<bool> seen(kMaxTableId, false);
  for (const TableSpec& spec : config.tables()) {
    if (spec.id() >= kMaxTableId || spec.width() == 0 || seen[spec.id()]) {
      return absl::InvalidArgumentError(absl::StrCat("table ", spec.id(), " (", spec.name(),
                                                     "): duplicate id, id >= ", kMaxTableId,
                                                     ", or width 0 (width ", spec.width(), ")"));
    }
    seen[spec.id()] = true;
  }
  return absl::OkStatus();
}

uint64_t NewIncarnation() {
  std::random_device device;
  return HashCombine((uint64_t{device()} << 32) | device(),
                     static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())));
}

// When a SYNC pull stops waiting: at its RPC's deadline, but after kMaxSyncWait at most.
absl::Time SyncWaitDeadline(const grpc::ServerContext& context) {
  const auto left = context.deadline() - std::chrono::system_clock::now();
  return absl::Now() +
         std::min(absl::FromChrono(std::chrono::duration_cast<std::chrono::microseconds>(
                      std::max(left, left.zero()))),
                  ParameterServerImpl::kMaxSyncWait);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ParameterServerImpl>> ParameterServerImpl::Create(
    const JobConfig& config, uint32_t shard, std::string checkpoint_dir) {
  const uint32_t num_shards = std::max(config.num_shards(), 1u);
  if (shard >= num_shards) {
    return absl::InvalidArgumentError(
        absl::StrCat("shard ", shard, " is not below num_shards ", num_shards));
  }
  if (config.num_workers() < 1) return absl::InvalidArgumentError("num_workers must be at least 1");
  if (config.consistency() == CONSISTENCY_UNSPECIFIED) {
    return absl::InvalidArgumentError("consistency is not set");
  }
  if (absl::Status s = CheckTables(config); !s.ok()) return s;
  OptimizerConfig optimizer = config.optimizer();
  if (absl::Status s = ResolveOptimizerConfig(&optimizer); !s.ok()) return s;
  std::unique_ptr<ParameterServerImpl> server(
      new ParameterServerImpl(config, shard, std::move(checkpoint_dir), optimizer));
  Tables tables = server->NewTables();
  absl::MutexLock state(&server->state_mu_);
  server->tables_ = std::move(tables);
  return server;
}

ParameterServerImpl::ParameterServerImpl(const JobConfig& config, uint32_t shard,
                                         std::string checkpoint_dir,
                                         const OptimizerConfig& optimizer)
    : config_(config),
      shard_(shard),
      num_shards_(std::max(config.num_shards(), 1u)),
      checkpoint_dir_(std::move(checkpoint_dir)),
      incarnation_(NewIncarnation()),
      optimizer_(optimizer),
      checks_(config, shard),
      barrier_(config.num_workers()) {}

ParameterServerImpl::~ParameterServerImpl() = default;

ParameterServerImpl::Tables ParameterServerImpl::NewTables() const {
  Tables tables;
  for (const TableSpec& spec : config_.tables()) {
    if (spec.id() >= tables.size()) tables.resize(spec.id() + 1);
    tables[spec.id()] = std::make_unique<ShardedTable>(spec, optimizer_, config_.seed());
  }
  return tables;
}

absl::StatusOr<ParameterServerImpl::Tables> ParameterServerImpl::LoadTables(
    const std::string& checkpoint) const {
  Tables tables = NewTables();
  const uint32_t shard = shard_, num_shards = num_shards_;
  // A server's config has no rating_offset (the coordinator computes it from the data, and has
  // checked the checkpoint's against its own), so it takes the checkpoint's.
  JobConfig config = config_;
  absl::StatusOr<CheckpointManifest> manifest = ReadManifest(checkpoint);
  if (!manifest.ok()) return manifest.status();
  if (!config.has_rating_offset()) config.set_rating_offset(manifest->config().rating_offset());
  PSREC_LOG(INFO) << "loading " << checkpoint << " (" << manifest->epochs_done() << " epochs, "
                  << manifest->num_shards() << " shards) into shard " << shard_ << " of "
                  << num_shards_;
  absl::Status status = LoadCheckpoint(
      checkpoint, config,
      [shard, num_shards](uint32_t table, uint64_t key) {
        return ShardOf(table, key, num_shards) == shard;
      },
      [&tables](uint32_t table, uint64_t key, uint32_t step, absl::Span<const float> values,
                absl::Span<const float> state) {
        tables[table]->InsertRow(key, step, values, state);
      });
  if (!status.ok()) return status;
  return tables;
}

absl::Status ParameterServerImpl::Reject(const std::string& peer, const char* op,
                                         const absl::Status& status) {
  PSREC_LOG(WARNING) << "rejected " << op << " from " << peer << ": " << status;
  return status;
}

grpc::Status ParameterServerImpl::ToGrpcStatus(const absl::Status& status) {
  return ToGrpc(status);
}

absl::Status ParameterServerImpl::CheckPullLocked(const PullRequest& request,
                                                  const std::string& peer) {
  if (absl::Status s = barrier_.CheckGeneration(request.generation()); !s.ok()) {
    return Reject(peer, "pull", s);
  }
  if (absl::Status s = checks_.CheckPull(request); !s.ok()) return Reject(peer, "pull", s);
  return absl::OkStatus();
}

grpc::Status ParameterServerImpl::Pull(grpc::ServerContext* context, const PullRequest* request,
                                       PullResponse* response) {
  return Measured("Pull", [&]() -> grpc::Status {
    pull_requests_.fetch_add(1, std::memory_order_relaxed);
    const std::string peer = context->peer();
    SyncBarrier::Wakeups woken;
    {
      absl::ReaderMutexLock state(&state_mu_);
      absl::Status s = CheckPullLocked(*request, peer);
      if (s.ok() && request->has_push()) {
        push_requests_.fetch_add(1, std::memory_order_relaxed);
        s = PushLocked(request->push(), peer, &woken);
      }
      if (!s.ok()) return ToGrpc(s);
    }
    woken.Run();
    // Not under state_mu_, so that a Restore can wake the wait.
    if (config_.consistency() == SYNC && request->clock() > 0) {
      absl::Status s =
          barrier_.WaitForClock(request->clock(), request->generation(), SyncWaitDeadline(*context),
                                [context] { return context->IsCancelled(); });
      if (!s.ok()) return ToGrpc(s);
    }
    absl::ReaderMutexLock state(&state_mu_);
    if (absl::Status s = barrier_.CheckGeneration(request->generation()); !s.ok()) {
      return Reject(context, "pull", s);
    }
    ReadRows(*request, response);
    return grpc::Status::OK;
  });
}

void ParameterServerImpl::ReadRows(const PullRequest& request, PullResponse* response) {
  uint64_t rows = 0;
  for (const RowBlock& block : request.blocks()) {
    const ShardedTable* t = tables_[block.table()].get();
    RowBlock* out = response->add_blocks();
    out->set_table(block.table());
    out->mutable_values()->Resize(block.keys_size() * static_cast<int>(t->width()), 0.0f);
    t->Pull(block.keys(),
            absl::MakeSpan(out->mutable_values()->mutable_data(), out->values_size()));
    rows += block.keys_size();
  }
  rows_pulled_.fetch_add(rows, std::memory_order_relaxed);
}

grpc::Status ParameterServerImpl::Push(grpc::ServerContext* context, const PushRequest* request,
                                       PushResponse*) {
  return Measured("Push", [&]() -> grpc::Status {
    push_requests_.fetch_add(1, std::memory_order_relaxed);
    SyncBarrier::Wakeups woken;
    absl::Status s;
    {
      absl::ReaderMutexLock state(&state_mu_);
      s = PushLocked(*request, context->peer(), &woken);
    }
    woken.Run();
    return ToGrpc(s);
  });
}

absl::Status ParameterServerImpl::PushLocked(const PushRequest& request, const std::string& peer,
                                             SyncBarrier::Wakeups* woken) {
  if (absl::Status s = checks_.CheckPush(request); !s.ok()) return Reject(peer, "push", s);
  if (config_.consistency() == SYNC) {
    // The barrier checks the generation and buffers the push under one lock; a clock it
    // completes is applied on this thread, within this call's hold of state_mu_.
    absl::Status s = barrier_.Push(
        request, [this](const RowBlock& mean) { ApplyBlock(mean); }, woken);
    if (!s.ok()) return Reject(peer, "push", s);
    return absl::OkStatus();
  }
  if (absl::Status s = barrier_.CheckGeneration(request.generation(), request.worker_id());
      !s.ok()) {
    return Reject(peer, "push", s);
  }
  for (const RowBlock& block : request.blocks()) ApplyBlock(block);
  return absl::OkStatus();
}

void ParameterServerImpl::ApplyBlock(const RowBlock& block) {
  tables_[block.table()]->Push(block.keys(), block.values());
  rows_updated_.fetch_add(block.keys_size(), std::memory_order_relaxed);
}

uint64_t ParameterServerImpl::CountRows() const {
  uint64_t rows = 0;
  for (const auto& t : tables_) {
    if (t == nullptr) continue;
    uint64_t n, bytes;
    t->Sizes(&n, &bytes);
    rows += n;
  }
  return rows;
}

grpc::Status ParameterServerImpl::Stats(grpc::ServerContext*, const StatsRequest*,
                                        StatsResponse* response) {
  return Measured("Stats", [&]() -> grpc::Status {
    FillStats(response);
    return grpc::Status::OK;
  });
}

void ParameterServerImpl::FillStats(StatsResponse* response) {
  response->set_shard(shard_);
  absl::ReaderMutexLock state(&state_mu_);
  for (const auto& t : tables_) {
    if (t == nullptr) continue;
    TableStats* stats = response->add_tables();
    stats->set_table(t->spec().id());
    stats->set_name(t->spec().name());
    uint64_t rows, bytes;
    t->Sizes(&rows, &bytes);
    stats->set_rows(rows);
    stats->set_bytes(bytes);
    stats->set_memory_bytes(t->MemoryBytes());
  }
  response->set_pull_requests(pull_requests_.load(std::memory_order_relaxed));
  response->set_push_requests(push_requests_.load(std::memory_order_relaxed));
  response->set_rows_pulled(rows_pulled_.load(std::memory_order_relaxed));
  response->set_rows_updated(rows_updated_.load(std::memory_order_relaxed));
  response->set_applied_clock(barrier_.applied_clock());
  response->set_peak_rss_bytes(PeakRssBytes());
  response->set_cpu_seconds(CpuSeconds());
}

grpc::Status ParameterServerImpl::GetConfig(grpc::ServerContext*, const GetConfigRequest*,
                                            GetConfigResponse* response) {
  return Measured("GetConfig", [&]() -> grpc::Status {
    *response->mutable_config() = config_;
    response->set_shard(shard_);
    response->set_incarnation(incarnation_);
    response->set_generation(barrier_.generation());
    return grpc::Status::OK;
  });
}

grpc::Status ParameterServerImpl::Checkpoint(grpc::ServerContext* context,
                                             const CheckpointRequest* request,
                                             CheckpointResponse* response) {
  return Measured("Checkpoint", [&]() -> grpc::Status {
    absl::MutexLock one_at_a_time(&restore_mu_);
    if (checkpoint_dir_.empty()) {
      return Reject(
          context, "checkpoint",
          absl::FailedPreconditionError("this server was started without --checkpoint_dir"));
    }
    if (absl::Status s = CheckCheckpointName(request->name()); !s.ok()) {
      return Reject(context, "checkpoint", s);
    }
    // Exclusive: the rows written are those of one moment.
    absl::MutexLock state(&state_mu_);
    if (absl::Status s = barrier_.CheckGeneration(request->generation()); !s.ok()) {
      return Reject(context, "checkpoint", s);
    }
    std::vector<const ShardedTable*> tables;
    for (const auto& t : tables_) tables.push_back(t.get());
    const std::string dir = absl::StrCat(checkpoint_dir_, "/", request->name());
    absl::StatusOr<CheckpointFile> file = WriteShardCheckpoint(dir, shard_, num_shards_, tables);
    if (!file.ok()) {
      PSREC_LOG(ERROR) << "checkpoint " << dir << " failed: " << file.status();
      return ToGrpc(file.status());
    }
    PSREC_LOG(INFO) << "wrote " << dir << "/" << file->name() << ": " << file->rows() << " rows, "
                    << file->bytes() << " bytes";
    *response->mutable_file() = *std::move(file);
    return grpc::Status::OK;
  });
}

absl::StatusOr<ParameterServerImpl::Tables> ParameterServerImpl::RestoreTables(
    const RestoreRequest& request, std::string* source) const {
  if (request.checkpoint().empty()) {
    *source = "fresh rows";
    return NewTables();
  }
  if (absl::Status s = CheckCheckpointName(request.checkpoint()); !s.ok()) return s;
  if (checkpoint_dir_.empty()) {
    return absl::FailedPreconditionError(
        "cannot restore a checkpoint: started without --checkpoint_dir");
  }
  *source = absl::StrCat(checkpoint_dir_, "/", request.checkpoint());
  return LoadTables(*source);
}

grpc::Status ParameterServerImpl::Restore(grpc::ServerContext* context,
                                          const RestoreRequest* request,
                                          RestoreResponse* response) {
  return Measured("Restore", [&]() -> grpc::Status {
    absl::MutexLock one_at_a_time(&restore_mu_);
    // A coordinator that retried a Restore whose answer it lost finds it done.
    if (const uint64_t current = barrier_.generation();
        current != 0 && request->generation() == current) {
      response->set_incarnation(incarnation_);
      return grpc::Status::OK;
    }
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    if (absl::Status s = CheckRestoreWorkers(*request, config_.num_workers()); !s.ok()) {
      return Reject(context, "restore", s);
    }
    Tables fresh;
    std::string source = "kept rows";
    if (!request->keep_rows()) {
      absl::StatusOr<Tables> tables = RestoreTables(*request, &source);
      if (!tables.ok()) return Reject(context, "restore", tables.status());
      fresh = *std::move(tables);
    }
    SyncBarrier::Wakeups woken;  // parked stream pulls, woken once state_mu_ is released
    {
      absl::MutexLock state(&state_mu_);
      if (!request->keep_rows()) tables_.swap(fresh);
      const uint64_t rows = CountRows();
      response->set_rows(rows);
      response->set_incarnation(incarnation_);
      barrier_.Reset(request->generation(), request->clock(), request->workers(), &woken);
      PSREC_LOG(INFO) << "generation " << request->generation() << ": " << source << ", " << rows
                      << " rows, clock " << request->clock() << ", workers ["
                      << absl::StrJoin(request->workers(), ",") << "]";
    }
    woken.Run();
    return grpc::Status::OK;
  });
}

grpc::Status ParameterServerImpl::Shutdown(grpc::ServerContext* context, const ShutdownRequest*,
                                           ShutdownResponse*) {
  return Measured("Shutdown", [&]() -> grpc::Status {
    PSREC_LOG(INFO) << "shutdown requested by " << context->peer();
    BeginShutdown();
    if (shutdown_callback_) shutdown_callback_();
    return grpc::Status::OK;
  });
}

void ParameterServerImpl::BeginShutdown() {
  SyncBarrier::Wakeups woken;
  barrier_.BeginShutdown(&woken);
  woken.Run();
  streams_.Shutdown();
}

}  // namespace psrec
