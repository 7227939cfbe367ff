// The parameter server of one shard: the ParameterServer gRPC service (proto/ps.proto) over the
// rows this shard owns. `psrec ps` (ps/ps_main.cc) puts it in a grpc::Server and handles signals.
//
// Rows live in one store per table, split into kSubShards sub-shards by a hash of the key that is
// independent of ShardOf's; each sub-shard is a Table behind its own mutex, so pulls and pushes of
// different rows proceed in parallel and no lock covers the whole store. Each request is checked
// first (ps/request_checks.h). In SYNC mode pushes are buffered per clock under one more mutex and
// applied, as the per-key mean over all workers, once every worker has pushed that clock.
//
// Recovery: the coordinator numbers the job's generations. Restore starts a new one (fresh rows, a
// checkpoint's rows or the same rows, and a new set of workers and clock); requests of any other
// generation are refused with ABORTED. Checkpoint writes the rows to --checkpoint_dir. Both are
// only sent between epochs, but Restore is also safe while requests are in flight: it takes
// state_mu_ exclusively, which every request holds shared while it touches rows.
#ifndef PSREC_PS_SERVER_H_
#define PSREC_PS_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/config.pb.h"
#include "proto/ps.grpc.pb.h"
#include "ps/request_checks.h"

namespace psrec {

class ShardedTable;  // ps/sharded_table.h

// Thread-safe: gRPC calls every method from its own threads. Errors are those of proto/ps.proto,
// plus INVALID_ARGUMENT for a key that another shard owns or a pull or push of more than
// kMaxRequestFloats floats (or the limit set_max_request_floats gave), FAILED_PRECONDITION for a
// SYNC push of an already applied clock, a second push of one clock by one worker, or a clock
// kMaxClockLead or more ahead of the applied one, and UNAVAILABLE for a SYNC pull still waiting
// when the server shuts down. A rejected request changes nothing and is logged with its peer.
class ParameterServerImpl final : public ParameterServer::Service {
 public:
  // The most floats one pull may ask for or one push may carry: 256 MiB. (gRPC refuses a message
  // over the server's receive limit, 512 MiB, with RESOURCE_EXHAUSTED before it reaches here.)
  static constexpr uint64_t kMaxRequestFloats = RequestChecks::kMaxRequestFloats;
  static constexpr uint64_t kMaxClockLead = 64;  // SYNC clocks buffered ahead
  // A SYNC pull waits at most this long even when its RPC has no deadline.
  static constexpr absl::Duration kMaxSyncWait = absl::Minutes(5);

  // Serves shard `shard` of `config` (config.num_shards() shards; 0 counts as 1). Fails with
  // INVALID_ARGUMENT on a shard out of range, no workers, an unset consistency, a duplicate, too
  // large or zero-width table, or an invalid optimizer config.
  // `checkpoint_dir` may be empty: Checkpoint and a Restore from a checkpoint then fail with
  // FAILED_PRECONDITION.
  static absl::StatusOr<std::unique_ptr<ParameterServerImpl>> Create(
      const JobConfig& config, uint32_t shard, std::string checkpoint_dir = "");
  ~ParameterServerImpl() override;

  grpc::Status Pull(grpc::ServerContext* context, const PullRequest* request,
                    PullResponse* response) override;
  grpc::Status Push(grpc::ServerContext* context, const PushRequest* request,
                    PushResponse* response) override;
  grpc::Status Stats(grpc::ServerContext* context, const StatsRequest* request,
                     StatsResponse* response) override;
  grpc::Status GetConfig(grpc::ServerContext* context, const GetConfigRequest* request,
                         GetConfigResponse* response) override;
  grpc::Status Checkpoint(grpc::ServerContext* context, const CheckpointRequest* request,
                          CheckpointResponse* response) override;
  grpc::Status Restore(grpc::ServerContext* context, const RestoreRequest* request,
                       RestoreResponse* response) override;
  // Calls BeginShutdown, then the callback given to set_shutdown_callback (if any), and answers.
  grpc::Status Shutdown(grpc::ServerContext* context, const ShutdownRequest* request,
                        ShutdownResponse* response) override;

  // Wakes every waiting SYNC pull, which then answers UNAVAILABLE, as will later ones that would
  // wait. Pushes and non-waiting pulls are still served. Idempotent.
  void BeginShutdown();

  // `callback` runs on the Shutdown RPC's thread and must not block; it should make the owner of
  // the grpc::Server shut it down from another thread. Set before the server starts.
  void set_shutdown_callback(std::function<void()> callback) {
    shutdown_callback_ = std::move(callback);
  }

  // Lowers the request limit (tests). Set before the server starts.
  void set_max_request_floats(uint64_t floats) { checks_.set_max_request_floats(floats); }

 private:
  ParameterServerImpl(const JobConfig& config, uint32_t shard, std::string checkpoint_dir);

  using Tables = std::vector<std::unique_ptr<ShardedTable>>;  // indexed by table id
  Tables NewTables() const;
  absl::StatusOr<Tables> LoadTables(const std::string& checkpoint) const;
  // ABORTED unless `generation` is the current one (and, when `worker` is given, it is one of the
  // generation's workers).
  absl::Status CheckGeneration(uint64_t generation, int64_t worker = -1) const;

  const ShardedTable* table(uint32_t id) const ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  // Push's work, with state_mu_ held.
  grpc::Status PushLocked(grpc::ServerContext* context, const PushRequest& request)
      ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  grpc::Status WaitForClock(grpc::ServerContext* context, uint64_t clock, uint64_t generation);
  absl::Status BufferSyncPush(const PushRequest& request) ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  void ApplyClock(const std::vector<std::unique_ptr<PushRequest>>& pushes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_) ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  void ApplyBlock(const RowBlock& block) ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  grpc::Status Reject(grpc::ServerContext* context, const char* op, const absl::Status& status);

  const JobConfig config_;
  const uint32_t shard_;
  const uint32_t num_shards_;
  const std::string checkpoint_dir_;
  const uint64_t incarnation_;
  OptimizerConfig optimizer_;  // resolved
  std::function<void()> shutdown_callback_;
  RequestChecks checks_;

  // Held shared by every request while it reads or writes rows, exclusively by Restore and
  // Checkpoint. Lock order: state_mu_, sync_mu_, a sub-shard's mutex.
  mutable absl::Mutex state_mu_;
  Tables tables_ ABSL_GUARDED_BY(state_mu_);
  absl::Mutex restore_mu_;  // one Restore or Checkpoint at a time, outside state_mu_

  std::atomic<uint64_t> pull_requests_{0};
  std::atomic<uint64_t> push_requests_{0};
  std::atomic<uint64_t> rows_pulled_{0};
  std::atomic<uint64_t> rows_updated_{0};

  // SYNC state. Lock order: sync_mu_, then a sub-shard's mutex.
  mutable absl::Mutex sync_mu_;
  absl::CondVar clock_applied_;  // signalled whenever applied_clock_ grows or shutdown begins
  uint64_t applied_clock_ ABSL_GUARDED_BY(sync_mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(sync_mu_) = 0;
  std::vector<bool> member_ ABSL_GUARDED_BY(sync_mu_);  // by worker id: pushes every SYNC clock
  uint32_t num_members_ ABSL_GUARDED_BY(sync_mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(sync_mu_) = false;
  // clock -> each worker's push of it (null until it arrives), for clocks not yet applied.
  std::map<uint64_t, std::vector<std::unique_ptr<PushRequest>>> pending_ ABSL_GUARDED_BY(sync_mu_);
};

}  // namespace psrec

#endif  // PSREC_PS_SERVER_H_
