#include "coordinator/coordinator_main.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/service_flags.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/job.h"
#include "coordinator/job_config.h"
#include "coordinator/metrics_flag.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "proto/ps.grpc.pb.h"
#include "worker/ps_client.h"
#include "worker/trainer.h"

ABSL_FLAG(std::string, ps, "",
          "Comma-separated host:port of the parameter servers, shard 0 first.");
ABSL_FLAG(absl::Duration, epoch_timeout, absl::Hours(2), "How long one epoch may take.");

namespace psrec {
namespace {

int Fail(const absl::Status& status, int code = 1) {
  PSREC_LOG(ERROR) << status.message();
  std::fprintf(stderr, "psrec coordinator: %s\n", std::string(status.message()).c_str());
  return code;
}

// Every shard must be serving, hold the shard it is listed as, and share our config.
absl::Status CheckServers(RemoteStore& store, const JobConfig& config) {
  absl::StatusOr<std::vector<GetConfigResponse>> configs = store.GetConfigs();
  if (!configs.ok()) return configs.status();
  for (uint32_t shard = 0; shard < configs->size(); ++shard) {
    const GetConfigResponse& answer = (*configs)[shard];
    if (answer.shard() != shard) {
      return absl::FailedPreconditionError(absl::StrCat("ps ", store.address(shard),
                                                        " is listed as shard ", shard,
                                                        " but serves shard ", answer.shard()));
    }
    const std::vector<std::string> diff = RegistrationDifferences(config, answer.config());
    if (!diff.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "ps shard ", shard, " (", store.address(shard),
          ") has a different config (coordinator vs ps): ", absl::StrJoin(diff, "; ")));
    }
  }
  return absl::OkStatus();
}

// Tells every parameter server to exit. A server that does not answer is only logged: the job's
// results are already written.
void ShutdownServers(const std::vector<std::string>& addresses) {
  for (const std::string& address : addresses) {
    auto stub =
        ParameterServer::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ShutdownResponse response;
    const grpc::Status status = stub->Shutdown(&context, ShutdownRequest(), &response);
    if (!status.ok()) {
      PSREC_LOG(WARNING) << "Shutdown to ps " << address << " failed: " << status.error_message();
    }
  }
}

int RunCoordinator(const std::set<std::string>& specified) {
  SetLogRole("coordinator");
  absl::StatusOr<JobConfig> config = JobConfigFromFlags(specified);
  if (!config.ok()) return Fail(config.status(), 2);
  const std::vector<std::string> ps =
      absl::StrSplit(absl::GetFlag(FLAGS_ps), ',', absl::SkipWhitespace());
  if (ps.empty()) return Fail(absl::InvalidArgumentError("--ps lists no parameter servers"), 2);
  config->set_num_shards(static_cast<uint32_t>(ps.size()));
  absl::StatusOr<std::string> data_dir = FindDataDir(config->data_dir());
  if (!data_dir.ok()) return Fail(data_dir.status());
  config->set_data_dir(*data_dir);
  absl::StatusOr<JobData> job = PrepareData(&*config);
  if (!job.ok()) return Fail(job.status());

  // Shard and worker ids are the only things the evaluator's store needs; it never pushes.
  absl::StatusOr<std::unique_ptr<RemoteStore>> store =
      RemoteStore::Create(ps, *config, /*worker_id=*/0, RpcTimeoutFlag());
  if (!store.ok()) return Fail(store.status(), 2);
  if (absl::Status s = CheckServers(**store, *config); !s.ok()) {
    return Fail(s, absl::IsFailedPrecondition(s) ? 2 : 1);  // 2: a config the user must fix
  }
  absl::StatusOr<std::unique_ptr<Trainer>> evaluator =
      Trainer::Create(*config, &job->data, store->get());
  if (!evaluator.ok()) return Fail(evaluator.status());

  CoordinatorService service(*config, ps, &*job);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string address = ListenAddress(HostFlag(), PortFlag());
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return Fail(absl::UnavailableError(absl::StrCat("cannot listen on ", address)));
  }
  PSREC_LOG(INFO) << "listening on " << ListenAddress(HostFlag(), port) << ", " << ps.size()
                  << " parameter servers, " << config->num_workers() << " workers, "
                  << EnumFlagName(config->consistency());
  if (absl::Status s = WritePortFileIfRequested(port); !s.ok()) return Fail(s);

  std::vector<float> pred(job->split.test.size());
  auto evaluate = [&]() -> absl::StatusOr<TestMetrics> {
    if (absl::Status s = (*evaluator)->Predict(job->split.test, absl::MakeSpan(pred)); !s.ok()) {
      return s;
    }
    return Score(job->data, job->split.test, pred);
  };
  absl::StatusOr<std::vector<EpochRecord>> records = service.RunJob(
      evaluate, RegisterTimeoutFlag(), absl::GetFlag(FLAGS_epoch_timeout), MetricsOutFlag());
  service.WaitForWorkersToLeave(absl::Seconds(10));
  if (!records.ok()) {
    // Without checkpoints a failed job's rows are of no further use: stop the servers too.
    ShutdownServers(ps);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    return Fail(records.status());
  }
  std::printf("model=%s split=%s test_mae=%.4f test_rmse=%.4f\n",
              EnumFlagName(config->model()).c_str(), EnumFlagName(config->split()).c_str(),
              records->back().test.mae, records->back().test.rmse);
  std::fflush(stdout);
  ShutdownServers(ps);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace

Subcommand CoordinatorSubcommand() {
  return Subcommand{
      "coordinator",
      "schedule a distributed job: admit workers, assign partitions, evaluate each epoch",
      "Checks that every parameter server in --ps serves its shard with the same config, waits "
      "for\n"
      "--workers workers to register, hands each a partition of every epoch, evaluates the test "
      "split\n"
      "after each epoch by pulling rows from the servers, and at the end tells workers and servers "
      "to\n"
      "exit. Prints 'model=... split=... test_mae=... test_rmse=...' on stdout when done.",
      {JobFlagsFile(), ServiceFlagsFile(), MetricsFlagFile(), __FILE__},
      &RunCoordinator,
  };
}

}  // namespace psrec
