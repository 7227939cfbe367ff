#include "ps/server.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <random>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/param_store.h"
#include "common/rng.h"
#include "common/rpc.h"
#include "common/sharding.h"
#include "ps/checkpoint.h"
#include "ps/optimizer.h"
#include "ps/sharded_table.h"
#include "ps/table.h"

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
      new ParameterServerImpl(config, shard, std::move(checkpoint_dir)));
  server->optimizer_ = optimizer;
  Tables tables = server->NewTables();
  absl::MutexLock state(&server->state_mu_);
  server->tables_ = std::move(tables);
  absl::MutexLock sync(&server->sync_mu_);
  server->member_.assign(config.num_workers(), true);
  server->num_members_ = config.num_workers();
  return server;
}

ParameterServerImpl::ParameterServerImpl(const JobConfig& config, uint32_t shard,
                                         std::string checkpoint_dir)
    : config_(config),
      shard_(shard),
      num_shards_(std::max(config.num_shards(), 1u)),
      checkpoint_dir_(std::move(checkpoint_dir)),
      incarnation_(NewIncarnation()),
      checks_(config, shard) {}

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

absl::Status ParameterServerImpl::CheckGeneration(uint64_t generation, int64_t worker) const {
  absl::MutexLock lock(&sync_mu_);
  if (generation != generation_) {
    return absl::AbortedError(absl::StrCat("request of generation ", generation,
                                           ", but the server is at generation ", generation_));
  }
  if (worker >= 0 && (static_cast<size_t>(worker) >= member_.size() || !member_[worker])) {
    return absl::AbortedError(
        absl::StrCat("worker ", worker, " is not one of generation ", generation_, "'s workers"));
  }
  return absl::OkStatus();
}

const ShardedTable* ParameterServerImpl::table(uint32_t id) const {
  return id < tables_.size() ? tables_[id].get() : nullptr;
}

grpc::Status ParameterServerImpl::Reject(grpc::ServerContext* context, const char* op,
                                         const absl::Status& status) {
  PSREC_LOG(WARNING) << "rejected " << op << " from " << context->peer() << ": " << status;
  return ToGrpc(status);
}

grpc::Status ParameterServerImpl::Pull(grpc::ServerContext* context, const PullRequest* request,
                                       PullResponse* response) {
  pull_requests_.fetch_add(1, std::memory_order_relaxed);
  {
    absl::ReaderMutexLock state(&state_mu_);
    if (absl::Status s = CheckGeneration(request->generation()); !s.ok()) {
      return Reject(context, "pull", s);
    }
    if (absl::Status s = checks_.CheckPull(*request); !s.ok()) return Reject(context, "pull", s);
    if (request->has_push()) {
      push_requests_.fetch_add(1, std::memory_order_relaxed);
      if (grpc::Status s = PushLocked(context, request->push()); !s.ok()) return s;
    }
  }
  // Not under state_mu_, so that a Restore can wake the wait.
  if (config_.consistency() == SYNC && request->clock() > 0) {
    grpc::Status s = WaitForClock(context, request->clock(), request->generation());
    if (!s.ok()) return s;
  }
  absl::ReaderMutexLock state(&state_mu_);
  if (absl::Status s = CheckGeneration(request->generation()); !s.ok()) {
    return Reject(context, "pull", s);
  }
  uint64_t rows = 0;
  for (const RowBlock& block : request->blocks()) {
    const ShardedTable* t = table(block.table());
    RowBlock* out = response->add_blocks();
    out->set_table(block.table());
    out->mutable_values()->Resize(block.keys_size() * static_cast<int>(t->width()), 0.0f);
    t->Pull(block.keys(),
            absl::MakeSpan(out->mutable_values()->mutable_data(), out->values_size()));
    rows += block.keys_size();
  }
  rows_pulled_.fetch_add(rows, std::memory_order_relaxed);
  return grpc::Status::OK;
}

// Waits in slices so that a cancelled RPC is noticed even when nothing signals the condition.
grpc::Status ParameterServerImpl::WaitForClock(grpc::ServerContext* context, uint64_t clock,
                                               uint64_t generation) {
  const auto left = context->deadline() - std::chrono::system_clock::now();
  const absl::Time deadline =
      absl::Now() + std::min(absl::FromChrono(std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::max(left, left.zero()))),
                             kMaxSyncWait);
  absl::MutexLock lock(&sync_mu_);
  while (applied_clock_ < clock) {
    if (shutting_down_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down");
    if (generation_ != generation) {
      return grpc::Status(grpc::StatusCode::ABORTED,
                          absl::StrCat("pull at clock ", clock, " of generation ", generation,
                                       ": the server moved to generation ", generation_));
    }
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    if (absl::Now() >= deadline) {
      std::vector<uint32_t> pushed;
      auto it = pending_.find(applied_clock_);
      for (uint32_t w = 0; it != pending_.end() && w < it->second.size(); ++w) {
        if (it->second[w] != nullptr) pushed.push_back(w);
      }
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          absl::StrCat("pull at clock ", clock, " timed out: clock ",
                                       applied_clock_, " has pushes from workers [",
                                       absl::StrJoin(pushed, ","), "] of ", num_members_));
    }
    clock_applied_.WaitWithDeadline(&sync_mu_,
                                    std::min(deadline, absl::Now() + absl::Milliseconds(100)));
  }
  return grpc::Status::OK;
}

grpc::Status ParameterServerImpl::Push(grpc::ServerContext* context, const PushRequest* request,
                                       PushResponse*) {
  push_requests_.fetch_add(1, std::memory_order_relaxed);
  absl::ReaderMutexLock state(&state_mu_);
  return PushLocked(context, *request);
}

grpc::Status ParameterServerImpl::PushLocked(grpc::ServerContext* context,
                                             const PushRequest& request) {
  if (absl::Status s = checks_.CheckPush(request); !s.ok()) return Reject(context, "push", s);
  if (absl::Status s = CheckGeneration(request.generation(), request.worker_id()); !s.ok()) {
    return Reject(context, "push", s);
  }
  if (config_.consistency() == SYNC) {
    if (absl::Status s = BufferSyncPush(request); !s.ok()) return Reject(context, "push", s);
    return grpc::Status::OK;
  }
  for (const RowBlock& block : request.blocks()) ApplyBlock(block);
  return grpc::Status::OK;
}

void ParameterServerImpl::ApplyBlock(const RowBlock& block) {
  tables_[block.table()]->Push(block.keys(), block.values());
  rows_updated_.fetch_add(block.keys_size(), std::memory_order_relaxed);
}

absl::Status ParameterServerImpl::BufferSyncPush(const PushRequest& request) {
  const uint64_t clock = request.clock();
  const uint32_t worker = request.worker_id();
  absl::MutexLock lock(&sync_mu_);
  if (clock < applied_clock_ || clock >= applied_clock_ + kMaxClockLead) {
    return absl::FailedPreconditionError(absl::StrCat(
        "push of clock ", clock, " by worker ", worker, ": applied clock is ", applied_clock_,
        ", so a push must be in [", applied_clock_, ", ", applied_clock_ + kMaxClockLead, ")"));
  }
  std::vector<std::unique_ptr<PushRequest>>& pushes = pending_[clock];
  pushes.resize(config_.num_workers());
  if (pushes[worker] != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("worker ", worker, " already pushed clock ", clock));
  }
  pushes[worker] = std::make_unique<PushRequest>(request);
  bool advanced = false;
  for (auto it = pending_.begin(); it != pending_.end() && it->first == applied_clock_;
       it = pending_.erase(it)) {
    bool complete = true;
    for (size_t w = 0; w < it->second.size(); ++w) {
      complete &= !member_[w] || it->second[w] != nullptr;
    }
    if (!complete) break;
    ApplyClock(it->second);
    ++applied_clock_;
    advanced = true;
  }
  if (advanced) clock_applied_.SignalAll();
  return absl::OkStatus();
}

// For each (table, key): the sum of the workers' gradients in worker-id order, starting from the
// first one (not from zero, so one worker's gradient passes through bitwise), divided by the
// number of the generation's workers. Rows are independent, so the order of keys does not matter.
void ParameterServerImpl::ApplyClock(const std::vector<std::unique_ptr<PushRequest>>& pushes) {
  struct Sum {
    absl::flat_hash_map<uint64_t, uint32_t> index;  // key -> position in keys
    RowBlock block;
  };
  std::map<uint32_t, Sum> sums;  // by table id
  for (const auto& push : pushes) {
    if (push == nullptr) continue;  // not one of this generation's workers
    for (const RowBlock& block : push->blocks()) {
      Sum& sum = sums[block.table()];
      sum.block.set_table(block.table());
      const size_t width = tables_[block.table()]->width();
      for (int i = 0; i < block.keys_size(); ++i) {
        const float* g = block.values().data() + i * width;
        auto [it, inserted] = sum.index.try_emplace(block.keys(i), sum.block.keys_size());
        if (inserted) {
          sum.block.add_keys(block.keys(i));
          sum.block.mutable_values()->Add(g, g + width);
        } else {
          float* acc = sum.block.mutable_values()->mutable_data() + size_t{it->second} * width;
          for (size_t k = 0; k < width; ++k) acc[k] += g[k];
        }
      }
    }
  }
  const float n = static_cast<float>(num_members_);
  for (auto& [id, sum] : sums) {
    for (float& g : *sum.block.mutable_values()) g /= n;
    ApplyBlock(sum.block);
  }
}

grpc::Status ParameterServerImpl::Stats(grpc::ServerContext*, const StatsRequest*,
                                        StatsResponse* response) {
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
  }
  response->set_pull_requests(pull_requests_.load(std::memory_order_relaxed));
  response->set_push_requests(push_requests_.load(std::memory_order_relaxed));
  response->set_rows_pulled(rows_pulled_.load(std::memory_order_relaxed));
  response->set_rows_updated(rows_updated_.load(std::memory_order_relaxed));
  absl::MutexLock lock(&sync_mu_);
  response->set_applied_clock(applied_clock_);
  return grpc::Status::OK;
}

grpc::Status ParameterServerImpl::GetConfig(grpc::ServerContext*, const GetConfigRequest*,
                                            GetConfigResponse* response) {
  *response->mutable_config() = config_;
  response->set_shard(shard_);
  response->set_incarnation(incarnation_);
  absl::MutexLock lock(&sync_mu_);
  response->set_generation(generation_);
  return grpc::Status::OK;
}

grpc::Status ParameterServerImpl::Checkpoint(grpc::ServerContext* context,
                                             const CheckpointRequest* request,
                                             CheckpointResponse* response) {
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
  if (absl::Status s = CheckGeneration(request->generation()); !s.ok()) {
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
}

grpc::Status ParameterServerImpl::Restore(grpc::ServerContext* context,
                                          const RestoreRequest* request,
                                          RestoreResponse* response) {
  absl::MutexLock one_at_a_time(&restore_mu_);
  {
    // A coordinator that retried a Restore whose answer it lost finds it done.
    absl::MutexLock sync(&sync_mu_);
    if (generation_ != 0 && request->generation() == generation_) {
      response->set_incarnation(incarnation_);
      return grpc::Status::OK;
    }
  }
  if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  if (absl::Status s = CheckRestoreWorkers(*request, config_.num_workers()); !s.ok()) {
    return Reject(context, "restore", s);
  }
  std::vector<bool> member(config_.num_workers(), false);
  for (uint32_t w : request->workers()) member[w] = true;
  Tables fresh;
  std::string source = "kept rows";
  if (!request->keep_rows()) {
    if (request->checkpoint().empty()) {
      fresh = NewTables();
      source = "fresh rows";
    } else {
      if (absl::Status s = CheckCheckpointName(request->checkpoint()); !s.ok()) {
        return Reject(context, "restore", s);
      }
      if (checkpoint_dir_.empty()) {
        return Reject(context, "restore",
                      absl::FailedPreconditionError(
                          "cannot restore a checkpoint: started without --checkpoint_dir"));
      }
      source = absl::StrCat(checkpoint_dir_, "/", request->checkpoint());
      absl::StatusOr<Tables> loaded = LoadTables(source);
      if (!loaded.ok()) return Reject(context, "restore", loaded.status());
      fresh = *std::move(loaded);
    }
  }
  absl::MutexLock state(&state_mu_);
  if (!request->keep_rows()) tables_.swap(fresh);
  uint64_t rows = 0;
  for (const auto& t : tables_) {
    if (t == nullptr) continue;
    uint64_t n, bytes;
    t->Sizes(&n, &bytes);
    rows += n;
  }
  response->set_rows(rows);
  response->set_incarnation(incarnation_);
  absl::MutexLock sync(&sync_mu_);
  generation_ = request->generation();
  applied_clock_ = request->clock();
  pending_.clear();
  member_ = member;
  num_members_ = request->workers_size();
  clock_applied_.SignalAll();
  PSREC_LOG(INFO) << "generation " << generation_ << ": " << source << ", " << rows
                  << " rows, clock " << applied_clock_ << ", workers ["
                  << absl::StrJoin(request->workers(), ",") << "]";
  return grpc::Status::OK;
}

grpc::Status ParameterServerImpl::Shutdown(grpc::ServerContext* context, const ShutdownRequest*,
                                           ShutdownResponse*) {
  PSREC_LOG(INFO) << "shutdown requested by " << context->peer();
  BeginShutdown();
  if (shutdown_callback_) shutdown_callback_();
  return grpc::Status::OK;
}

void ParameterServerImpl::BeginShutdown() {
  absl::MutexLock lock(&sync_mu_);
  shutting_down_ = true;
  clock_applied_.SignalAll();
}

}  // namespace psrec
