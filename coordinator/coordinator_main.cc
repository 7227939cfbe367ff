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
#include "common/security.h"
#include "common/service_flags.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/job.h"
#include "coordinator/job_config.h"
#include "coordinator/metrics_flag.h"
#include "coordinator/recovery_flags.h"
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

// ShardControl over gRPC: one call per shard, in shard order.
class GrpcShardControl final : public ShardControl {
 public:
  GrpcShardControl(std::vector<std::string> addresses, absl::Duration rpc_timeout,
                   absl::Duration fail_after)
      : addresses_(std::move(addresses)),
        rpc_timeout_(rpc_timeout),
        fail_after_(fail_after),
        incarnation_(addresses_.size(), 0),
        first_failure_(addresses_.size(), absl::InfiniteFuture()) {
    for (const std::string& address : addresses_) {
      stubs_.push_back(ParameterServer::NewStub(CreatePeerChannel(address, QuickReconnect())));
    }
  }

  absl::Status Restore(uint64_t generation, const std::string& checkpoint, bool keep_rows,
                       uint64_t clock, const std::vector<uint32_t>& workers) override {
    RestoreRequest request;
    request.set_generation(generation);
    request.set_checkpoint(checkpoint);
    request.set_keep_rows(keep_rows);
    request.set_clock(clock);
    for (uint32_t w : workers) request.add_workers(w);
    for (size_t i = 0; i < stubs_.size(); ++i) {
      // A server that is restarting is waited for, up to fail_after; any other error is final.
      RestoreResponse response;
      absl::Status s = RetryWhileUnreachable(fail_after_, [&](absl::Time give_up) {
        grpc::ClientContext context;
        context.set_wait_for_ready(true);
        context.set_deadline(absl::ToChronoTime(std::min(absl::Now() + rpc_timeout_, give_up)));
        return FromGrpcStatus(stubs_[i]->Restore(&context, request, &response),
                              absl::StrCat("Restore to ", Name(i)));
      });
      if (!s.ok()) return s;
      if (keep_rows && response.incarnation() != incarnation_[i]) {
        // It restarted since the last Restore: the rows it kept are fresh ones.
        return absl::AbortedError(absl::StrCat(Name(i), " restarted and lost its rows"));
      }
      incarnation_[i] = response.incarnation();
      first_failure_[i] = absl::InfiniteFuture();
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<CheckpointFile>> Checkpoint(const std::string& name,
                                                         uint64_t generation) override {
    CheckpointRequest request;
    request.set_name(name);
    request.set_generation(generation);
    std::vector<CheckpointFile> files;
    for (size_t i = 0; i < stubs_.size(); ++i) {
      grpc::ClientContext context;
      // A shard that stopped answering must not hold the job longer than fail_after.
      context.set_deadline(absl::ToChronoTime(absl::Now() + fail_after_));
      CheckpointResponse response;
      if (absl::Status s = FromGrpcStatus(stubs_[i]->Checkpoint(&context, request, &response),
                                          absl::StrCat("Checkpoint to ", Name(i)));
          !s.ok()) {
        return s;
      }
      files.push_back(response.file());
    }
    return files;
  }

  absl::StatusOr<std::string> Check() override {
    for (size_t i = 0; i < stubs_.size(); ++i) {
      grpc::ClientContext context;
      context.set_deadline(
          absl::ToChronoTime(absl::Now() + std::min(rpc_timeout_, absl::Seconds(1))));
      GetConfigResponse response;
      const grpc::Status status = stubs_[i]->GetConfig(&context, GetConfigRequest(), &response);
      const absl::Time now = absl::Now();
      if (status.ok()) {
        first_failure_[i] = absl::InfiniteFuture();
        if (response.incarnation() != incarnation_[i]) {
          return absl::StrCat(Name(i), " restarted and lost its rows");
        }
        continue;
      }
      // Silence is counted from the first of an unbroken run of failed checks.
      first_failure_[i] = std::min(first_failure_[i], now);
      if (now - first_failure_[i] > fail_after_) {
        return absl::UnavailableError(absl::StrCat(
            Name(i), " has not answered for ", absl::FormatDuration(now - first_failure_[i]),
            " (--fail_after=", absl::FormatDuration(fail_after_),
            "): ", FromGrpcStatus(status, "GetConfig").message()));
      }
    }
    return std::string();
  }

 private:
  std::string Name(size_t i) const {
    return absl::StrCat("ps shard ", i, " (", addresses_[i], ")");
  }

  const std::vector<std::string> addresses_;
  const absl::Duration rpc_timeout_;
  const absl::Duration fail_after_;
  std::vector<std::unique_ptr<ParameterServer::Stub>> stubs_;
  std::vector<uint64_t> incarnation_;      // from the last Restore
  std::vector<absl::Time> first_failure_;  // of the failed checks since the last answer
};

// Tells every parameter server to exit, all at once. A server that does not answer within 2 s is
// only logged: the job's results are already written.
void ShutdownServers(const std::vector<std::string>& addresses) {
  grpc::CompletionQueue cq;
  struct Call {
    std::unique_ptr<ParameterServer::Stub> stub;
    grpc::ClientContext context;
    ShutdownResponse response;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Call>> calls;
  for (const std::string& address : addresses) {
    auto call = std::make_unique<Call>();
    call->stub = ParameterServer::NewStub(CreatePeerChannel(address, grpc::ChannelArguments()));
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    auto rpc = call->stub->AsyncShutdown(&call->context, ShutdownRequest(), &cq);
    rpc->Finish(&call->response, &call->status, call.get());
    calls.push_back(std::move(call));
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    void* tag;
    bool ok;
    if (!cq.Next(&tag, &ok)) break;
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    if (!calls[i]->status.ok()) {
      PSREC_LOG(WARNING) << "Shutdown to ps " << addresses[i]
                         << " failed: " << calls[i]->status.error_message();
    }
  }
}

int RunCoordinator(const std::set<std::string>& specified) {
  SetLogRole("coordinator");
  absl::StatusOr<JobConfig> config = JobConfigFromFlags(specified);
  if (!config.ok()) return Fail(config.status(), 2);
  if (absl::Status s = InitSecurityFromFlags(); !s.ok()) return Fail(s, 2);
  absl::StatusOr<RecoveryOptions> recovery = RecoveryOptionsFromFlags(*config);
  if (!recovery.ok()) return Fail(recovery.status(), 2);
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
  absl::StatusOr<std::unique_ptr<RemoteStore>> store = RemoteStore::Create(
      ps, *config, /*worker_id=*/0, std::min(RpcTimeoutFlag(), recovery->fail_after));
  if (!store.ok()) return Fail(store.status(), 2);
  if (absl::Status s = CheckServers(**store, *config); !s.ok()) {
    return Fail(s, absl::IsFailedPrecondition(s) ? 2 : 1);  // 2: a config the user must fix
  }
  absl::StatusOr<std::unique_ptr<Trainer>> evaluator =
      Trainer::Create(*config, &job->data, store->get());
  if (!evaluator.ok()) return Fail(evaluator.status());

  GrpcShardControl shards(ps, RpcTimeoutFlag(), recovery->fail_after);
  CoordinatorService service(*config, ps, &*job, *recovery, &shards);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string address = ListenAddress(HostFlag(), PortFlag());
  builder.AddListeningPort(address, ServerCredentials(), &port);
  AddAuthCheck(&builder);
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
  auto evaluate = [&](uint64_t generation) -> absl::StatusOr<TestMetrics> {
    (*store)->set_generation(generation);
    if (absl::Status s = (*evaluator)->Predict(job->split.test, absl::MakeSpan(pred)); !s.ok()) {
      (*store)->Reset();
      return s;
    }
    return Score(job->data, job->split.test, pred);
  };
  absl::StatusOr<std::vector<EpochRecord>> records = service.RunJob(
      evaluate, RegisterTimeoutFlag(), absl::GetFlag(FLAGS_epoch_timeout), MetricsOutFlag());
  if (!records.ok()) {
    PSREC_LOG(ERROR) << "the job failed: " << records.status().message();
    // The servers' rows are of no further use: what is worth keeping is in the checkpoints.
    // Stopping them first releases workers waiting in a pull, which then hear ABORTED.
    ShutdownServers(ps);
    service.WaitForWorkersToLeave(absl::Seconds(2));
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    return Fail(records.status());
  }
  std::printf("model=%s split=%s test_mae=%.4f test_rmse=%.4f\n",
              EnumFlagName(config->model()).c_str(), EnumFlagName(config->split()).c_str(),
              records->back().test.mae, records->back().test.rmse);
  std::fflush(stdout);
  service.WaitForWorkersToLeave(absl::Seconds(10));
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
      "exit. Prints 'model=... split=... test_mae=... test_rmse=...' on stdout when done.\n\n"
      "With --checkpoint_dir it has the servers checkpoint between epochs. When a worker's lease\n"
      "runs out, a worker reports a failed server call, or a server restarts, it rolls every "
      "shard\n"
      "back to the last complete checkpoint and the workers still alive redo the work from there.\n"
      "A server silent for --fail_after fails the job, naming it.",
      {JobFlagsFile(), ServiceFlagsFile(), PeerFlagsFile(), MetricsFlagFile(), RecoveryFlagsFile(),
       SecurityFlagsFile(), __FILE__},
      &RunCoordinator,
  };
}

}  // namespace psrec
