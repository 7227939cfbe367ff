// What a process of a job has used: its peak resident memory and its CPU time, as every role
// reports them for the run's table (common/job_report.h).
#ifndef PSREC_COMMON_PROCESS_STATS_H_
#define PSREC_COMMON_PROCESS_STATS_H_

#include <cstdint>
#include <string>

namespace psrec {

struct ProcessReport {
  std::string role;  // train, coordinator, ps, worker
  std::string name;  // ps0, worker1, ...: how the logs name it
  uint64_t peak_rss_bytes = 0;
  double cpu_seconds = 0;  // user + system
  std::string note;        // a role's own figures, e.g. a server's rows and bytes per row
};

// This process's peak resident set (getrusage's ru_maxrss) in bytes.
uint64_t PeakRssBytes();
// This process's user plus system CPU time so far, in seconds.
double CpuSeconds();
// This process, as `role` and `name`.
ProcessReport SelfReport(const std::string& role, const std::string& name);

}  // namespace psrec

#endif  // PSREC_COMMON_PROCESS_STATS_H_
