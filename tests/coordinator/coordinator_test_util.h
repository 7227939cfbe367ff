// What the coordinator's tests share: a job config, the data shares it runs on, a fake worker's
// report for every kind of task, and a ShardControl that records what the coordinator asks of the
// servers and answers as the test sets it up.
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
#include "coordinator/job_runner.h"
#include "coordinator/shard_control.h"
#include "proto/config.pb.h"
#include "proto/coordinator.pb.h"

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

// Every test share holds this many ratings, all of them training ratings but one test rating more.
constexpr uint64_t kRowsPerShare = 4;

// `num_shares` shares of kRowsPerShare ratings each, as the coordinator learns them from the
// MANIFEST.
inline JobDataInfo Shares(uint32_t num_shares) {
  JobDataInfo data;
  data.shares_dir = "/shares";
  data.manifest.set_num_shares(num_shares);
  data.manifest.set_num_ratings(num_shares * (kRowsPerShare + 1));
  for (uint32_t i = 0; i < num_shares; ++i) {
    ShareInfo* share = data.manifest.add_shares();
    share->set_rows(kRowsPerShare + 1);
    share->set_min_time(0);
    share->set_max_time(100);
  }
  data.fingerprint = 7;
  return data;
}

// What a worker that does `work` at once reports: each share splits into kRowsPerShare training
// ratings of 3.5 stars and one test rating; training takes every training rating of its shares;
// evaluation finds no error.
inline ReportRequest FakeReport(uint32_t id, const WorkAssignment& work) {
  ReportRequest report;
  report.set_worker_id(id);
  report.set_epoch(work.epoch());
  report.set_generation(work.generation());
  report.set_task(work.task());
  const uint64_t rows = kRowsPerShare * static_cast<uint64_t>(work.shares_size());
  switch (work.kind()) {
    case WorkAssignment::SPLIT:
      for (const uint32_t share : work.shares()) {
        ShareSplit* split = report.add_splits();
        split->set_share(share);
        split->set_train(kRowsPerShare);
        split->set_test(1);
        split->set_train_half_stars(7 * kRowsPerShare);
      }
      break;
    case WorkAssignment::TRAIN:
      report.set_examples(rows);
      report.set_loss_sum(0.5 * static_cast<double>(rows));
      break;
    case WorkAssignment::EVALUATE:
      report.mutable_errors()->set_count(static_cast<uint64_t>(work.shares_size()));
      break;
    case WorkAssignment::COUNT_TIMES:
      for (const TimeRange& range : work.ranges()) {
        for (uint32_t i = 0; i < range.count(); ++i) report.add_time_counts(0);
      }
      break;
    default:
      break;
  }
  report.mutable_process()->set_role("worker");
  report.mutable_process()->set_name(absl::StrFormat("w%u", id));
  return report;
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
