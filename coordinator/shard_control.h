// The coordinator's side of the parameter servers: checking at start that every shard serves its
// place with the job's config, the calls that run the job's recovery (Restore, Checkpoint, a health
// check), and telling every server to exit at the end.
#ifndef PSREC_COORDINATOR_SHARD_CONTROL_H_
#define PSREC_COORDINATOR_SHARD_CONTROL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/process_stats.h"
#include "common/rpc.h"
#include "proto/checkpoint.pb.h"
#include "proto/config.pb.h"
#include "proto/ps.grpc.pb.h"

namespace psrec {

// What the coordinator asks of the parameter servers. GrpcShardControl implements it over gRPC;
// tests fake it.
class ShardControl {
 public:
  virtual ~ShardControl() = default;
  // RestoreRequest to every shard, retried while a shard is unreachable, for up to fail_after.
  // ABORTED when keep_rows finds a shard restarted since the last Restore.
  virtual absl::Status Restore(uint64_t generation, const std::string& checkpoint, bool keep_rows,
                               uint64_t clock, const std::vector<uint32_t>& workers) = 0;
  // CheckpointRequest to every shard; their files, by shard.
  virtual absl::StatusOr<std::vector<CheckpointFile>> Checkpoint(const std::string& name,
                                                                 uint64_t generation) = 0;
  // Looks at every shard once. Empty when all are the processes last restored; a description of
  // the first that is not (it restarted) otherwise. An error when a shard has failed every check
  // for fail_after: the job cannot go on.
  virtual absl::StatusOr<std::string> Check() = 0;
  // Every answering shard's process figures (Stats), by shard, its rows and bytes per row in the
  // note. A shard that does not answer within a second is left out. None by default (fakes).
  virtual std::vector<ProcessReport> Processes() { return {}; }
};

// ShardControl over gRPC: one call per shard, in shard order. Channels carry the job's credentials
// (common/security.h), and a shard's channel is made anew after it failed (PeerChannel), so that a
// server made again at a new address under the same name is found within about a second.
class GrpcShardControl final : public ShardControl {
 public:
  GrpcShardControl(std::vector<std::string> addresses, absl::Duration rpc_timeout,
                   absl::Duration fail_after);

  // Every shard must be serving (waited for up to rpc_timeout), hold the shard it is listed as,
  // and share `config` as RegistrationDifferences compares it. FAILED_PRECONDITION naming the
  // shard and the differing fields, or the RPC's error.
  absl::Status CheckServers(const JobConfig& config);

  absl::Status Restore(uint64_t generation, const std::string& checkpoint, bool keep_rows,
                       uint64_t clock, const std::vector<uint32_t>& workers) override;
  absl::StatusOr<std::vector<CheckpointFile>> Checkpoint(const std::string& name,
                                                         uint64_t generation) override;
  absl::StatusOr<std::string> Check() override;
  std::vector<ProcessReport> Processes() override;

  // Tells every server to exit, all at once. A server that does not answer within 2 s is only
  // logged.
  void ShutdownServers();

 private:
  std::string Name(size_t i) const;
  std::unique_ptr<ParameterServer::Stub> Stub(size_t i) const;

  const std::vector<std::string> addresses_;
  const absl::Duration rpc_timeout_;
  const absl::Duration fail_after_;
  std::vector<PeerChannel> peers_;         // by shard
  std::vector<uint64_t> incarnation_;      // from the last Restore
  std::vector<absl::Time> first_failure_;  // of the failed checks since the last answer
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_SHARD_CONTROL_H_
