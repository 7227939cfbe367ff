// The parameter server of one shard: the ParameterServer gRPC service (proto/ps.proto) over the
// rows this shard owns. `psrec ps` (ps/ps_main.cc) puts it in a grpc::Server and handles signals.
//
// Rows live in one store per table, split into kSubShards sub-shards by a hash of the key that is
// independent of ShardOf's; each sub-shard is a Table behind its own mutex, so pulls and pushes of
// different rows proceed in parallel and no lock covers the whole store. Each request is checked
// first (ps/request_checks.h). In SYNC mode pushes are buffered per clock by the SyncBarrier
// (ps/sync_barrier.h) and applied, as the per-key mean over the generation's workers, once every
// one of them has pushed that clock. The handlers here only tie those together.
//
// Recovery: the coordinator numbers the job's generations. Restore starts a new one (fresh rows, a
// checkpoint's rows or the same rows, and a new set of workers and clock); requests of any other
// generation are refused with ABORTED. Checkpoint writes the rows to --checkpoint_dir. Both are
// only sent between epochs, but Restore is also safe while requests are in flight: it takes
// state_mu_ exclusively, which every request holds shared while it touches rows.
//
// The data path: workers pull and push over Stream, one long-lived stream per worker and shard
// (ps/stream_session.h runs each), whose requests go through the Stream* methods below: the same
// checks, barrier and rows as Pull and Push, with a SYNC pull parked in the barrier rather than on
// a thread, and its rows written straight from the tables into the answer's buffer. Pull and Push
// stay as unary calls for other clients and tests.
#ifndef PSREC_PS_SERVER_H_
#define PSREC_PS_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
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
#include "ps/stream_session.h"
#include "ps/sync_barrier.h"

namespace psrec {

class ShardedTable;  // ps/sharded_table.h

// Thread-safe: gRPC calls every method from its own threads. Errors are those of proto/ps.proto,
// plus INVALID_ARGUMENT for a key that another shard owns or a pull or push of more than
// kMaxRequestFloats floats (or the limit set_max_request_floats gave), FAILED_PRECONDITION for a
// SYNC push of an already applied clock, a second push of one clock by one worker, or a clock
// kMaxClockLead or more ahead of the applied one, and UNAVAILABLE for a SYNC pull still waiting
// when the server shuts down. A rejected request changes nothing and is logged with its peer.
class ParameterServerImpl final
    : public ParameterServer::WithRawCallbackMethod_Stream<ParameterServer::Service> {
 public:
  // The most floats one pull may ask for or one push may carry: 256 MiB. (gRPC refuses a message
  // over the server's receive limit, 512 MiB, with RESOURCE_EXHAUSTED before it reaches here.)
  static constexpr uint64_t kMaxRequestFloats = RequestChecks::kMaxRequestFloats;
  // SYNC clocks buffered ahead of the applied one.
  static constexpr uint64_t kMaxClockLead = SyncBarrier::kMaxClockLead;
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
  // What Stats answers, without counting a request: for the metrics refresh (ps/ps_metrics.h),
  // so that scrapes do not show up as Stats requests.
  void FillStats(StatsResponse* response);
  grpc::Status GetConfig(grpc::ServerContext* context, const GetConfigRequest* request,
                         GetConfigResponse* response) override;
  grpc::Status Checkpoint(grpc::ServerContext* context, const CheckpointRequest* request,
                          CheckpointResponse* response) override;
  grpc::Status Restore(grpc::ServerContext* context, const RestoreRequest* request,
                       RestoreResponse* response) override;
  // Calls BeginShutdown, then the callback given to set_shutdown_callback (if any), and answers.
  grpc::Status Shutdown(grpc::ServerContext* context, const ShutdownRequest* request,
                        ShutdownResponse* response) override;

  // Starts a StreamSession (ps/stream_session.h), which deletes itself when the stream ends.
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Stream(
      grpc::CallbackServerContext* context) override;

  // Wakes every waiting SYNC pull, which then answers UNAVAILABLE, as will later ones that would
  // wait, and cancels every open stream. Pushes and non-waiting pulls are still served. Idempotent.
  void BeginShutdown();

  // --- One streamed request, in three steps (StreamSession calls them; so does the fuzzer). ---
  //
  // 1. StreamAdmit takes the request in: it restores delta-encoded keys, checks the pull part (its
  //    generation and RequestChecks::CheckPull) and then handles the push part exactly as Push. An
  //    error is the request's answer: nothing was applied. Parked pulls whose clock the push
  //    completes go to `woken`, to be run by the caller once it holds no lock.
  absl::Status StreamAdmit(StreamRequest* request, const std::string& peer,
                           SyncBarrier::Wakeups* woken);
  // 2. For an admitted pull: true when it may be read now, false when it waits for its SYNC clock
  //    (parked under *id; `wake` runs once, as SyncBarrier::AwaitClock says). ABORTED or
  //    UNAVAILABLE as Pull.
  absl::StatusOr<bool> StreamAwait(const PullRequest& pull, SyncBarrier::WakeFn wake, uint64_t* id);
  bool StreamCancelAwait(uint64_t id) { return barrier_.CancelAwait(id); }
  absl::Status StreamTimedOut(uint64_t clock) const { return barrier_.TimedOutError(clock); }
  // 3. The answer to an admitted pull whose clock is applied: a serialized StreamResponse whose
  //    values are the rows, written by the tables into the buffer. ABORTED if the generation moved
  //    on since StreamAdmit.
  absl::StatusOr<grpc::ByteBuffer> StreamRead(const PullRequest& pull);

  // `callback` runs on the Shutdown RPC's thread and must not block; it should make the owner of
  // the grpc::Server shut it down from another thread. Set before the server starts.
  void set_shutdown_callback(std::function<void()> callback) {
    shutdown_callback_ = std::move(callback);
  }

  // Lowers the request limit (tests). Set before the server starts.
  void set_max_request_floats(uint64_t floats) { checks_.set_max_request_floats(floats); }

 private:
  ParameterServerImpl(const JobConfig& config, uint32_t shard, std::string checkpoint_dir,
                      const OptimizerConfig& optimizer);

  using Tables = std::vector<std::unique_ptr<ShardedTable>>;  // indexed by table id
  Tables NewTables() const;
  absl::StatusOr<Tables> LoadTables(const std::string& checkpoint) const;
  // The rows a Restore that does not keep them starts from: fresh ones, or the named checkpoint's.
  // Sets *source to what they are, for the log.
  absl::StatusOr<Tables> RestoreTables(const RestoreRequest& request, std::string* source) const;

  // Push's work, with state_mu_ held; rejections are logged naming `peer`.
  absl::Status PushLocked(const PushRequest& request, const std::string& peer,
                          SyncBarrier::Wakeups* woken) ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  // Checks a pull's generation and blocks, with state_mu_ held.
  absl::Status CheckPullLocked(const PullRequest& request, const std::string& peer)
      ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  void ApplyBlock(const RowBlock& block) ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  // Answers a checked pull with its rows.
  void ReadRows(const PullRequest& request, PullResponse* response)
      ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  uint64_t CountRows() const ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  // Logs a rejected request with its peer, and returns `status`.
  absl::Status Reject(const std::string& peer, const char* op, const absl::Status& status);
  grpc::Status Reject(grpc::ServerContext* context, const char* op, const absl::Status& status) {
    return ToGrpcStatus(Reject(context->peer(), op, status));
  }
  static grpc::Status ToGrpcStatus(const absl::Status& status);

  const JobConfig config_;
  const uint32_t shard_;
  const uint32_t num_shards_;
  const std::string checkpoint_dir_;
  const uint64_t incarnation_;
  const OptimizerConfig optimizer_;  // resolved
  std::function<void()> shutdown_callback_;
  RequestChecks checks_;

  // Held shared by every request while it reads or writes rows, exclusively by Restore and
  // Checkpoint. Lock order: state_mu_, the barrier's mutex, a sub-shard's mutex.
  mutable absl::Mutex state_mu_;
  Tables tables_ ABSL_GUARDED_BY(state_mu_);
  absl::Mutex restore_mu_;  // one Restore or Checkpoint at a time, outside state_mu_

  std::atomic<uint64_t> pull_requests_{0};
  std::atomic<uint64_t> push_requests_{0};
  std::atomic<uint64_t> rows_pulled_{0};
  std::atomic<uint64_t> rows_updated_{0};

  // The generation, its workers and, in SYNC mode, the clocks. Thread-safe itself.
  SyncBarrier barrier_;

  // Open streams, so that shutdown can cancel them.
  StreamRegistry streams_;
};

}  // namespace psrec

#endif  // PSREC_PS_SERVER_H_
