// The checks a parameter-server shard makes on each request before it touches a row: known tables,
// values that fit the table's width, keys this shard owns, size limits and finite gradients. They
// depend only on the job config and the shard, not on any row or RPC, so a unary handler and a
// streaming one check alike. Every error is INVALID_ARGUMENT and says which block, key or limit.
#ifndef PSREC_PS_REQUEST_CHECKS_H_
#define PSREC_PS_REQUEST_CHECKS_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "proto/config.pb.h"
#include "proto/ps.pb.h"

namespace psrec {

// Immutable once the server starts, so thread-safe.
class RequestChecks {
 public:
  // The most floats one pull may ask for or one push may carry: 256 MiB.
  static constexpr uint64_t kMaxRequestFloats = 1ull << 26;

  // Checks requests to shard `shard` of `config` (config.num_shards() shards; 0 counts as 1). The
  // config's tables must have unique ids (ParameterServerImpl::Create checks them).
  RequestChecks(const JobConfig& config, uint32_t shard);

  // A pull names known tables, carries no values, asks only for keys this shard owns (with more
  // than one shard), and asks for at most max_request_floats() floats in all.
  absl::Status CheckPull(const PullRequest& request) const;

  // A push comes from a worker below num_workers, carries at most max_request_floats() floats, and
  // each block names a known table, has keys × width values, only keys this shard owns and only
  // finite gradients. It says nothing of the generation or clock (SyncBarrier checks those).
  absl::Status CheckPush(const PushRequest& request) const;

  uint64_t max_request_floats() const { return max_request_floats_; }
  // Lowers the limit (tests). Set before the server starts.
  void set_max_request_floats(uint64_t floats) { max_request_floats_ = floats; }

 private:
  // The config's spec of table `id`, or null.
  const TableSpec* spec(uint32_t id) const;
  // `op` ("pull" or "push") block `index` names a known table, has `num_values` = keys × width,
  // and only keys this shard owns.
  absl::Status CheckBlock(const char* op, int index, const RowBlock& block,
                          size_t num_values) const;

  const uint32_t shard_;
  const uint32_t num_shards_;
  const uint32_t num_workers_;
  absl::flat_hash_map<uint32_t, TableSpec> specs_;  // by table id
  uint64_t max_request_floats_ = kMaxRequestFloats;
};

// A checkpoint name from the coordinator becomes a directory under --checkpoint_dir: it must be
// one plain path component (not empty, ".", ".." or containing '/').
absl::Status CheckCheckpointName(const std::string& name);

// A Restore names at least one worker, each below `num_workers` and none twice.
absl::Status CheckRestoreWorkers(const RestoreRequest& request, uint32_t num_workers);

}  // namespace psrec

#endif  // PSREC_PS_REQUEST_CHECKS_H_
