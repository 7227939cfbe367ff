// One worker of a distributed job: it registers with the coordinator, maps the data shares it is
// assigned (common/share_set.h; never the others), and does the tasks it is handed over them until
// the coordinator says DONE: counting their timestamps and splitting them (so that the coordinator
// can find SEED_TIME's threshold and the mean training rating), training each epoch on their
// training ratings through a RemoteStore, and scoring their test ratings.
//
//   SYNC   batch b of an epoch pulls and pushes at clock first_clock + b; the servers hold the
//          pull until every worker's pushes of the earlier clocks are applied. After its batches
//          the worker pushes empty requests for the epoch's remaining clocks.
//   SSP    before batch b the worker asks the coordinator's Clock(first_clock + b), which answers
//          once the worker is no more than `staleness` clocks ahead of the slowest.
//   ASYNC  batches run back to back.
//
// A worker keeps its lease with a Heartbeat from a thread of its own, from registration on. When a
// parameter-server call fails (the server restarted, is unreachable, or refuses a generation that
// a rollback ended) the worker gives its assignment up, tells the coordinator in its next GetWork,
// and trains whatever the coordinator hands out next. The coordinator being unreachable for
// --fail_after ends the worker with an error naming it.
//
// A coordinator that restarts (a new incarnation, coordinator/coordinator_service.h) answers the
// worker's next call NOT_FOUND, once it is back within --fail_after: the worker then registers
// with it again, as a new worker (perhaps under another id), sets itself up anew (shares, store,
// trainer) and takes the work it is given. The new coordinator restores the servers to its last
// complete checkpoint, so nothing of the old incarnation's unfinished epoch counts.
#ifndef PSREC_WORKER_WORKER_H_
#define PSREC_WORKER_WORKER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/job_data.h"
#include "common/share_set.h"
#include "proto/config.pb.h"
#include "proto/coordinator.grpc.pb.h"
#include "worker/remote_store.h"
#include "worker/trainer.h"

namespace psrec {

struct WorkerOptions {
  std::string coordinator;  // host:port
  std::string name;         // shown in the coordinator's logs
  bool name_given = false;  // --name was set: use it as this process's log role too
  // The deadline of every RPC, and how long registration keeps retrying while the coordinator is
  // not up yet.
  absl::Duration rpc_timeout = absl::Seconds(30);
  // How long registration keeps retrying while the coordinator is not up (it may be loading data).
  absl::Duration register_timeout = absl::Minutes(5);
  // How long the coordinator may stay unreachable before the worker gives up.
  absl::Duration fail_after = absl::Seconds(30);
  // Where the prepared shares are; empty: where the coordinator found them.
  std::string shares_dir;
};

// Not thread-safe, except Leave. Every error names the RPC and its peer; none is retried except a
// Register that finds the coordinator not up yet.
class Worker {
 public:
  // `config` is this worker's own, from its flags; the coordinator compares it when registering.
  Worker(JobConfig config, WorkerOptions options);
  ~Worker();

  enum class Admission { kJoined, kJobIsDone };
  // Registers and adopts the coordinator's config; kJobIsDone when the job has already finished
  // (the worker has nothing to do). Waits while every place is held by a live worker. Errors:
  // FAILED_PRECONDITION when the configs differ (the message is the coordinator's, naming the
  // fields), or the RPC's error.
  absl::StatusOr<Admission> Register();

  // After Register: opens the prepared shares, connects to the shards and does its tasks until the
  // coordinator says DONE. Errors: FAILED_PRECONDITION when the shares are not the coordinator's
  // (another MANIFEST) or a shard answers as another shard; otherwise the first failed RPC, or a
  // data error naming the file (a share that is missing or damaged).
  absl::Status Run();

  // The one call that may come from another thread while Register or Run goes on (a signal
  // watcher): tells the coordinator that this worker is stopping (`reason`, for its log), with a
  // deadline of at most 5 s. OK and no call before Register has admitted the worker. Errors: the
  // RPC's.
  absl::Status Leave(const std::string& reason);

 private:
  absl::Status RegisterWithRetry(const RegisterRequest& request, RegisterResponse* response);
  // After `failed`, a call of the coordinator's: when the coordinator said it restarted
  // (NOT_FOUND), registers with the new incarnation and sets this worker up again (kJoined), or
  // finds the job done. Otherwise `failed` itself.
  absl::StatusOr<Admission> RejoinAfter(const absl::Status& failed);
  absl::Status Setup();
  void StartHeartbeats(absl::Duration every);
  void HeartbeatLoop(absl::Duration every);

  // The tasks (worker_tasks.cc). Each fills `report` for the coordinator.
  absl::Status DoTask(const WorkAssignment& work, ReportRequest* report);
  absl::Status CountTimes(const WorkAssignment& work, ReportRequest* report);
  absl::Status SplitShares(const WorkAssignment& work, ReportRequest* report);
  absl::Status TrainEpoch(const WorkAssignment& work, ReportRequest* report);
  absl::Status Evaluate(const WorkAssignment& work, ReportRequest* report);
  // EVALUATE's ranking of the held users, and the popularity baseline when asked for.
  absl::Status Rank(const WorkAssignment& work, ReportRequest* report);
  // Holds the assignment's shares, split with its threshold, and makes the trainer for its
  // rating_offset (once).
  absl::Status HoldShares(const WorkAssignment& work);
  // The assignment's rows through the trainer's batch loop, with the clock hooks of SYNC and SSP.
  absl::StatusOr<TrainStats> TrainBatches(const WorkAssignment& work,
                                          absl::Span<const uint32_t> rows);
  absl::Status FinishClocks(const WorkAssignment& work, uint64_t batches);
  // After a failed TRAIN or EVALUATE: the store is reset, and a server that restarted is given
  // until fail_after to take connections again.
  void GiveUp(const WorkAssignment& work, const absl::Status& status);
  // Calls `method` on the coordinator with rpc_timeout as its deadline.
  template <typename Request, typename Response>
  absl::Status Call(const char* rpc,
                    grpc::Status (Coordinator::Stub::*method)(grpc::ClientContext*, const Request&,
                                                              Response*),
                    const Request& request, Response* response, absl::Duration timeout);
  // As Call, retrying while the coordinator is unreachable, up to fail_after.
  template <typename Request, typename Response>
  absl::Status CallWithRetry(const char* rpc,
                             grpc::Status (Coordinator::Stub::*method)(grpc::ClientContext*,
                                                                       const Request&, Response*),
                             const Request& request, Response* response);

  JobConfig config_;  // after Register, the coordinator's; rating_offset from the assignments
  const WorkerOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Coordinator::Stub> coordinator_;
  // Read by Leave and the heartbeats on other threads; a rejoin changes them.
  std::atomic<uint32_t> worker_id_{0};
  std::atomic<uint64_t> incarnation_{0};  // the coordinator's, from Register
  std::atomic<bool> admitted_{false};     // worker_id_ is set
  // The coordinator answered a call NOT_FOUND: it restarted, and this worker must register again.
  std::atomic<bool> coordinator_restarted_{false};
  std::vector<std::string> ps_addresses_;
  std::string shares_dir_;         // after Register
  uint64_t data_fingerprint_ = 0;  // the coordinator's
  std::unique_ptr<ShareSet> data_;
  std::unique_ptr<RemoteStore> store_;
  std::unique_ptr<Trainer> trainer_;  // made by the first TRAIN or EVALUATE
  const absl::Time started_ = absl::Now();
  bool trained_a_batch_ = false;
  absl::Notification stop_heartbeats_;
  std::thread heartbeats_;
};

}  // namespace psrec

#endif  // PSREC_WORKER_WORKER_H_
