// A worker's Prometheus metrics (common/metrics.h; names in deploy/NOTES-for-cpp.md), updated by
// the batch loop: ratings trained (the dashboard plots its rate as ratings/s), the time of a batch
// by phase, and the running training loss.
#ifndef PSREC_WORKER_WORKER_METRICS_H_
#define PSREC_WORKER_WORKER_METRICS_H_

#include "common/metrics.h"

namespace psrec {

struct WorkerMetrics {
  static constexpr char kBatchSeconds[] = "psrec_worker_batch_seconds";
  static constexpr char kBatchHelp[] = "Seconds of a mini-batch by phase: pull, compute, push.";

  Counter ratings = GetCounter("psrec_worker_ratings_total", "Ratings trained.");
  Histogram pull = GetHistogram(kBatchSeconds, kBatchHelp, {{"phase", "pull"}});
  Histogram compute = GetHistogram(kBatchSeconds, kBatchHelp, {{"phase", "compute"}});
  Histogram push = GetHistogram(kBatchSeconds, kBatchHelp, {{"phase", "push"}});
  Gauge loss = GetGauge("psrec_worker_loss", "Running training loss of the current partition.");

  // The process's one set.
  static const WorkerMetrics& Get() {
    static const auto* metrics = new WorkerMetrics();
    return *metrics;
  }
};

}  // namespace psrec

#endif  // PSREC_WORKER_WORKER_METRICS_H_
