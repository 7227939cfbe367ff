// The coordinator's Prometheus metrics (common/metrics.h; names in deploy/NOTES-for-cpp.md): the
// job's progress and recovery, set by the job runner at the points where they change.
#ifndef PSREC_COORDINATOR_COORDINATOR_METRICS_H_
#define PSREC_COORDINATOR_COORDINATOR_METRICS_H_

#include <cstdint>

#include "common/metrics.h"

namespace psrec {

struct CoordinatorMetrics {
  Gauge epoch = GetGauge("psrec_coordinator_epoch", "Epochs done.");
  Gauge test_mae = GetGauge("psrec_coordinator_test_mae", "Test MAE after the last epoch.");
  Gauge test_rmse = GetGauge("psrec_coordinator_test_rmse", "Test RMSE after the last epoch.");
  Gauge generation = GetGauge("psrec_coordinator_generation", "The current generation.");
  Counter rollbacks = GetCounter("psrec_coordinator_rollbacks_total", "Rollbacks.");
  Gauge workers_alive = GetGauge("psrec_coordinator_workers_alive",
                                 "Workers holding a lease, as of the last generation or expiry.");

  void EpochDone(uint32_t done, double mae, double rmse) const {
    epoch.Set(done);
    test_mae.Set(mae);
    test_rmse.Set(rmse);
  }

  // The process's one set.
  static const CoordinatorMetrics& Get() {
    static const auto* metrics = new CoordinatorMetrics();
    return *metrics;
  }
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_COORDINATOR_METRICS_H_
