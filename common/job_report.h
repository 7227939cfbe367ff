// What a job reports: the training statistics of a run of batches, one record per epoch, the log
// line that ends an epoch, and the metrics file. The in-process job and the coordinator report the
// same way.
#ifndef PSREC_COMMON_JOB_REPORT_H_
#define PSREC_COMMON_JOB_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/job_data.h"
#include "common/process_stats.h"
#include "common/ranking.h"
#include "proto/config.pb.h"

namespace psrec {

struct TrainStats {
  double loss_sum = 0;    // sum over batches of (batch mean loss * batch size)
  uint64_t examples = 0;  // ratings trained on
  uint64_t batches = 0;
  double mean_loss() const { return examples == 0 ? 0 : loss_sum / static_cast<double>(examples); }
};

// Ranking metrics at K = 10 (common/held_ranking.h), when an evaluation ranked.
struct RankingMetrics {
  bool ranked = false;
  double recall = 0, ndcg = 0, coverage = 0;
  int64_t users = 0;  // users with a relevant test rating

  static RankingMetrics Of(const RankingSums& sums) {
    return RankingMetrics{true, sums.recall(), sums.ndcg(), sums.coverage(), sums.users};
  }
};

// "Recall@10 0.0484 NDCG@10 0.0749 coverage@10 0.0010 (592 users)", or "" when not ranked.
std::string RankingText(const RankingMetrics& m);

struct EpochRecord {
  uint32_t epoch = 0;  // 1-based
  double train_loss = 0;
  TestMetrics test;
  double seconds = 0;        // the whole epoch, evaluation included
  double train_seconds = 0;  // training alone
  uint64_t examples = 0;     // ratings trained on
  RankingMetrics ranking;    // when this epoch's evaluation ranked
};

// Logs one line with the epoch's loss, test metrics (ranking's too, when it ranked) and training
// speed. Fails, naming the epoch, if
// the loss or a metric is not finite: the run diverged, and its numbers must not be reported.
absl::Status FinishEpoch(const EpochRecord& record, uint32_t epochs);

// Writes {"config": ..., "epochs": [...], "processes": [...], "baseline": {"popularity": {...}},
// "final": {"test_mae", "test_rmse", "recall_at_10", "ndcg_at_10", "coverage_at_10"}} to `path`
// through a temporary file and a rename, so a reader never sees half a file. An epoch whose
// evaluation ranked has the three ranking fields too, and "final" has them when the last epoch
// ranked; "baseline" (recall_at_10, ndcg_at_10, coverage_at_10 and users of the popularity
// baseline) is there when `popularity` ranked. Each process is {"role", "name",
// "peak_rss_bytes", "cpu_seconds"} (and "note" when it has one).
// `s` as a JSON string literal, quotes included: '"' and '\' escaped, control characters as \u00XX.
std::string JsonString(absl::string_view s);

absl::Status WriteMetricsJson(const std::string& path, const JobConfig& config,
                              absl::Span<const EpochRecord> epochs,
                              absl::Span<const ProcessReport> processes = {},
                              const RankingMetrics& popularity = {});

// The processes as a table for people, one line each, with a header:
//   process      role          peak RSS    CPU s  note
//   worker0      worker        231.4 MB    12.31
std::string ProcessTable(absl::Span<const ProcessReport> processes);

}  // namespace psrec

#endif  // PSREC_COMMON_JOB_REPORT_H_
