// What the coordinator's tests share: a job config, and a ShardControl that records what the
// coordinator asks of the servers and answers as the test sets it up.
#ifndef PSREC_TESTS_COORDINATOR_COORDINATOR_TEST_UTIL_H_
#define PSREC_TESTS_COORDINATOR_COORDINATOR_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/model.h"
#include "coordinator/shard_control.h"
#include "proto/config.pb.h"

namespace psrec {

// Biases of width 30 over 2 shards, trained by 2 workers in SYNC; the coordinator has filled in
// data_dir and rating_offset.
inline JobConfig TestConfig() {
  JobConfig config;
  config.set_model(BIAS);
  config.set_dim(30);
  config.set_num_shards(2);
  config.set_num_workers(2);
  config.set_consistency(SYNC);
  config.set_data_dir("/a");
  config.set_rating_offset(3.5f);
  FillTableSpecs(&config);
  return config;
}

class FakeShards final : public ShardControl {
 public:
  struct Restored {
    uint64_t generation;
    std::string checkpoint;
    bool keep_rows;
    uint64_t clock;
    std::vector<uint32_t> workers;
  };

  // Restore and Check succeed. Checkpoint gives `checkpoint_error` when it is set, and otherwise
  // one plain file per shard (nothing is written: the coordinator only lists them in the MANIFEST).
  explicit FakeShards(uint32_t num_shards = 2) : num_shards_(num_shards) {}

  absl::Status Restore(uint64_t generation, const std::string& checkpoint, bool keep_rows,
                       uint64_t clock, const std::vector<uint32_t>& workers) override {
    absl::MutexLock lock(&mu);
    restored.push_back({generation, checkpoint, keep_rows, clock, workers});
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<CheckpointFile>> Checkpoint(const std::string& name,
                                                         uint64_t) override {
    absl::MutexLock lock(&mu);
    checkpoints.push_back(name);
    if (!checkpoint_error.ok()) return checkpoint_error;
    std::vector<CheckpointFile> files(num_shards_);
    for (uint32_t i = 0; i < num_shards_; ++i) {
      files[i].set_name(absl::StrFormat("shard-%05u-of-%05u.rows", i, num_shards_));
      files[i].set_shard(i);
    }
    return files;
  }
  absl::StatusOr<std::string> Check() override { return std::string(); }

  absl::Mutex mu;
  std::vector<Restored> restored ABSL_GUARDED_BY(mu);
  std::vector<std::string> checkpoints ABSL_GUARDED_BY(mu);  // the names asked for
  absl::Status checkpoint_error ABSL_GUARDED_BY(mu);

 private:
  const uint32_t num_shards_;
};

}  // namespace psrec

#endif  // PSREC_TESTS_COORDINATOR_COORDINATOR_TEST_UTIL_H_
