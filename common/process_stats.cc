#include "common/process_stats.h"

#include <sys/resource.h>

namespace psrec {

uint64_t PeakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports kilobytes
}

double CpuSeconds() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

ProcessReport SelfReport(const std::string& role, const std::string& name) {
  return ProcessReport{role, name, PeakRssBytes(), CpuSeconds(), ""};
}

}  // namespace psrec
