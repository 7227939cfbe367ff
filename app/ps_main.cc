#include "app/ps_main.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/job_config.h"
#include "common/log.h"
#include "common/ops_flags.h"
#include "common/rpc.h"
#include "common/security.h"
#include "common/service_flags.h"
#include "common/stop_signal.h"
#include "grpcpp/grpcpp.h"
#include "ps/ps_metrics.h"
#include "ps/server.h"

ABSL_FLAG(int32_t, shard, 0,
          "This server's shard: it owns the rows with ShardOf(table, key) == shard.");
ABSL_FLAG(int32_t, num_shards, 1,
          "Number of parameter-server shards in the job. Overrides num_shards of --config.");

namespace psrec {
namespace {

// Requests may carry a whole large batch's gradients; gRPC's default limit is 4 MiB.
constexpr int kMaxMessageBytes = 512 << 20;
// How long in-flight RPCs get to finish once shutdown starts; then they are cancelled. Kept short
// because gRPC also waits here for clients to close their connections, and an idle client channel
// only notices the server's GOAWAY when its backup poller runs, every 5 s by default. Pulls waiting
// for a SYNC clock are released at once (BeginShutdown), so only short RPCs are left to finish.
constexpr auto kShutdownGrace = std::chrono::seconds(2);

// What a stopped server loses: its rows live only in memory, and the coordinator rolls the job
// back to its last complete checkpoint when this shard comes back.
void LogRowsHeld(ParameterServerImpl* service) {
  StatsResponse stats;
  service->FillStats(&stats);
  uint64_t rows = 0;
  for (const TableStats& table : stats.tables()) rows += table.rows();
  PSREC_LOG(INFO) << "exiting on SIGTERM with " << rows << " rows held after "
                  << stats.push_requests() << " pushes; the rows not in a complete checkpoint "
                  << "are redone after the coordinator's rollback";
}

// Serves until a Shutdown RPC, SIGTERM or SIGINT, then lets the RPCs in flight finish. The signal
// that stopped it, or 0, goes to `*signal`.
absl::Status Serve(const JobConfig& config, uint32_t shard, const std::string& host, int port,
                   OpsEndpoints& ops, int* signal) {
  absl::StatusOr<std::unique_ptr<ParameterServerImpl>> service =
      ParameterServerImpl::Create(config, shard, CheckpointDirFlag());
  if (!service.ok()) return service.status();
  StopSignal stop;
  if (absl::Status s = stop.Install(); !s.ok()) return s;
  (*service)->set_shutdown_callback([&stop] { stop.Notify(); });
  absl::StatusOr<StartedServer> started =
      StartServer(host, port, {service->get()}, kMaxMessageBytes);
  if (!started.ok()) return started.status();
  ExportServerMetrics(service->get(), ops.metrics.get());
  SetReady(ops.health.get(), true);
  grpc::Server* server = started->server.get();
  const int bound_port = started->port;

  PSREC_LOG(INFO) << "shard " << shard << " of " << config.num_shards() << " listening on "
                  << ListenAddress(host, bound_port) << " (" << config.tables_size() << " tables, "
                  << config.num_workers() << " workers)";
  absl::Status status = WritePortFileIfRequested(bound_port);

  if (status.ok()) stop.Wait();
  *signal = stop.signal();
  PSREC_LOG(INFO) << "shutting down" << (*signal == SIGTERM ? " on SIGTERM" : "");
  SetStopping(ops.health.get());
  server->GetHealthCheckService()->SetServingStatus(false);
  (*service)->BeginShutdown();
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  server->Wait();
  ops.metrics.reset();  // its scrapes read *service, which goes when this returns
  if (*signal == SIGTERM) LogRowsHeld(service->get());
  return status;
}

int RunPs(const std::set<std::string>& specified) {
  const int32_t shard = absl::GetFlag(FLAGS_shard);
  const int32_t num_shards = absl::GetFlag(FLAGS_num_shards);
  const int port = PortFlag();
  SetLogRole(absl::StrCat("ps", shard));
  if (absl::Status s = InitSecurityFromFlags(); !s.ok()) {
    return Exit("ps", kExitUsage, s);
  }
  absl::StatusOr<JobConfig> config = JobConfigFromFlags(specified);
  if (!config.ok()) {
    return Exit("ps", kExitUsage, config.status());
  }
  if (absl::Status s = FlagAtLeast("num_shards", num_shards, 1); !s.ok()) {
    return Exit("ps", kExitUsage, s);
  }
  if (specified.count("num_shards") > 0 || config->num_shards() == 0) {
    config->set_num_shards(num_shards);
  }
  if (config->num_shards() < 1 || shard < 0 ||
      static_cast<uint32_t>(shard) >= config->num_shards()) {
    return Exit(
        "ps", kExitUsage,
        absl::StrCat("--shard=", shard, " is not in [0, num_shards=", config->num_shards(), ")"));
  }
  if (port < 0 || port > 65535) {
    return Exit("ps", kExitUsage, absl::StrCat("--port=", port, " is not in [0, 65535]"));
  }
  absl::StatusOr<OpsEndpoints> ops = StartOpsEndpointsFromFlags();
  if (!ops.ok()) {
    return Exit("ps", absl::IsInvalidArgument(ops.status()) ? kExitUsage : kExitFailed,
                ops.status());
  }
  int signal = 0;
  absl::Status status =
      Serve(*config, static_cast<uint32_t>(shard), HostFlag(), port, *ops, &signal);
  if (!status.ok()) {
    return Exit("ps", kExitFailed, status);
  }
  // 128 + SIGTERM, as if killed: the launcher and Kubernetes restart it, and the coordinator rolls
  // the job back, where an exit 0 would read as "done" (deploy/NOTES-for-cpp.md, "SIGTERM").
  return signal == SIGTERM ? kExitSigterm : 0;
}

}  // namespace

Subcommand PsSubcommand() {
  return Subcommand{
      "ps",
      "serve one shard of the parameter tables over gRPC",
      "Owns the rows whose ShardOf(table, key, num_shards) is --shard, creating them lazily from\n"
      "the job's seed, and applies pushed gradients with the job's optimizer (SYNC: the mean over\n"
      "all workers of each clock). Every role must be given the same job flags or --config. "
      "Writes\n"
      "and restores checkpoints under --checkpoint_dir when the coordinator asks, and refuses\n"
      "requests of a generation the coordinator has ended. Writes the port it listens on to\n"
      "--port_file (useful with --port=0); exits 0 after a Shutdown RPC or SIGINT, and 143 after\n"
      "SIGTERM, so that a supervisor restarts it and the coordinator rolls the job back.",
      {JobFlagsFile(), ServiceFlagsFile(), PeerFlagsFile(), SecurityFlagsFile(), OpsFlagsFile(),
       __FILE__},
      &RunPs,
  };
}

}  // namespace psrec
