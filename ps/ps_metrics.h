// A parameter server's Prometheus metrics, read from its Stats at each scrape, so that the request
// path carries no extra work: rows and bytes held per table, Pull RPCs served and pushes applied
// (a push riding inside a Pull counts; streamed requests too). The request latency and the rejected
// requests are measured where each request is handled (ps/request_metrics.h).
#ifndef PSREC_PS_PS_METRICS_H_
#define PSREC_PS_PS_METRICS_H_

#include <memory>

#include "common/metrics.h"
#include "proto/ps.pb.h"
#include "ps/server.h"

namespace psrec {

// Updates the ps metrics from `service` before every scrape of `metrics`. `service` must outlive
// `metrics`. Does nothing when `metrics` is null (no --metrics_port).
inline void ExportServerMetrics(ParameterServerImpl* service, MetricsServer* metrics) {
  if (metrics == nullptr) return;
  Counter pulls = GetCounter("psrec_ps_pulls_total", "Pull RPCs served.");
  Counter pushes =
      GetCounter("psrec_ps_pushes_total", "Pushes applied, including those riding in a Pull.");
  metrics->AddRefresh([service, pulls, pushes]() mutable {
    StatsResponse stats;
    service->FillStats(&stats);
    for (const TableStats& table : stats.tables()) {
      const MetricLabels labels = {{"table", table.name()}};
      GetGauge("psrec_ps_rows", "Rows held.", labels).Set(static_cast<double>(table.rows()));
      GetGauge("psrec_ps_bytes", "Bytes of rows and optimizer state.", labels)
          .Set(static_cast<double>(table.bytes()));
    }
    // The server's counts only grow, and these counters follow them.
    pulls.Increment(static_cast<double>(stats.pull_requests()) - pulls.Value());
    pushes.Increment(static_cast<double>(stats.push_requests()) - pushes.Value());
  });
}

}  // namespace psrec

#endif  // PSREC_PS_PS_METRICS_H_
