#include "app/cpu_placement.h"

#include <sched.h>

#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, cpu_affinity, "auto",
          "With --ps_shards: auto binds each server and each worker to one of the CPUs this "
          "process may use (workers spread over them; with --consistency=sync each server shares "
          "a worker's CPU, otherwise servers take the CPUs after the workers'); the coordinator "
          "stays unbound, and nothing is bound on fewer than 2 CPUs. none leaves placement to the "
          "kernel.");

namespace psrec {

const char* CpuPlacementFlagsFile() { return __FILE__; }

absl::StatusOr<bool> CpuAffinityFromFlag() {
  const std::string value = absl::GetFlag(FLAGS_cpu_affinity);
  if (value == "auto") return true;
  if (value == "none") return false;
  return absl::InvalidArgumentError(absl::StrCat("--cpu_affinity=", value, ": want auto or none"));
}

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return {};
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

std::vector<int> PlaceChildren(absl::Span<const int> cpus, uint32_t num_servers,
                               uint32_t num_workers, Consistency consistency) {
  std::vector<int> placement(size_t{num_servers} + 1 + num_workers, -1);
  if (cpus.size() < 2) return placement;
  const auto cpu = [&](size_t k) { return cpus[k % cpus.size()]; };
  const size_t first_server_slot = consistency == SYNC ? 0 : num_workers;
  for (uint32_t s = 0; s < num_servers; ++s) placement[s] = cpu(first_server_slot + s);
  for (uint32_t w = 0; w < num_workers; ++w) placement[num_servers + 1 + w] = cpu(w);
  return placement;
}

}  // namespace psrec
