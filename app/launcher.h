// Single-machine multi-process mode: `psrec train --ps_shards=N --workers=M` starts N parameter
// servers, a coordinator and M workers as child processes of this one, on 127.0.0.1 with ports they
// pick themselves, and stops them all when the job ends, when one fails, or on SIGINT/SIGTERM. A
// parameter server that dies is started again on the same port; so is a coordinator killed by a
// signal (or exiting 143 after SIGTERM), with --auto_resume, and the live servers and workers
// rejoin it; a worker killed by a signal is left to the coordinator, which carries on without it.
#ifndef PSREC_APP_LAUNCHER_H_
#define PSREC_APP_LAUNCHER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/config.pb.h"

namespace psrec {

struct ClusterOptions {
  std::string out_dir;      // job.textproto, cluster.json and the children's port files go here
  std::string metrics_out;  // handed to the coordinator; may be empty
  // More flags for each role's children (timeouts, recovery, credentials).
  std::vector<std::string> ps_flags, coordinator_flags, worker_flags;
  // How many times in all a parameter server that died, or a coordinator that was stopped, is
  // started again.
  uint32_t max_restarts = 3;
  // When > 0, child k (in cluster.json's order: servers, coordinator, workers) serves /metrics on
  // port metrics_port + k, and cluster.json gives each one's "metrics" address.
  int32_t metrics_port = 0;
  // Child k (cluster.json's order) is bound to CPU cpus[k] (app/cpu_placement.h), and cluster.json
  // gives it as "cpu"; a child past the end, or given -1, is not bound.
  std::vector<int> cpus;
};

// Runs the job on a local cluster. Child stderr lines are prefixed with the child's role ("[ps0]
// "); the coordinator's stdout passes through unchanged. Writes OUT/cluster.json listing every
// process's role, pid and address (and metrics address, with options.metrics_port). Returns an
// error naming the first child that failed; no child outlives it.
absl::Status RunLocalCluster(const JobConfig& config, const ClusterOptions& options);

}  // namespace psrec

#endif  // PSREC_APP_LAUNCHER_H_
