#include "app/ps_main.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/job_config.h"
#include "common/log.h"
#include "common/rpc.h"
#include "common/security.h"
#include "common/service_flags.h"
#include "common/stop_signal.h"
#include "grpcpp/grpcpp.h"
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

// Serves until a Shutdown RPC, SIGTERM or SIGINT, then lets the RPCs in flight finish.
absl::Status Serve(const JobConfig& config, uint32_t shard, const std::string& host, int port) {
  absl::StatusOr<std::unique_ptr<ParameterServerImpl>> service =
      ParameterServerImpl::Create(config, shard, CheckpointDirFlag());
  if (!service.ok()) return service.status();
  StopSignal stop;
  if (absl::Status s = stop.Install(); !s.ok()) return s;
  (*service)->set_shutdown_callback([&stop] { stop.Notify(); });
  absl::StatusOr<StartedServer> started =
      StartServer(host, port, {service->get()}, kMaxMessageBytes);
  if (!started.ok()) return started.status();
  grpc::Server* server = started->server.get();
  const int bound_port = started->port;

  PSREC_LOG(INFO) << "shard " << shard << " of " << config.num_shards() << " listening on "
                  << ListenAddress(host, bound_port) << " (" << config.tables_size() << " tables, "
                  << config.num_workers() << " workers)";
  absl::Status status = WritePortFileIfRequested(bound_port);

  if (status.ok()) stop.Wait();
  PSREC_LOG(INFO) << "shutting down";
  server->GetHealthCheckService()->SetServingStatus(false);
  (*service)->BeginShutdown();
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  server->Wait();
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
  if (num_shards < 1) {
    return Exit("ps", kExitUsage, absl::StrCat("--num_shards=", num_shards, " must be at least 1"));
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
  absl::Status status = Serve(*config, static_cast<uint32_t>(shard), HostFlag(), port);
  if (!status.ok()) {
    return Exit("ps", kExitFailed, status);
  }
  return 0;
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
      "--port_file (useful with --port=0); exits 0 after a Shutdown RPC, SIGTERM or SIGINT.",
      {JobFlagsFile(), ServiceFlagsFile(), PeerFlagsFile(), SecurityFlagsFile(), __FILE__},
      &RunPs,
  };
}

}  // namespace psrec
