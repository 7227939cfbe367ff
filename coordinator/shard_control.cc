#include "coordinator/shard_control.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/rpc.h"
#include "common/security.h"
#include "coordinator/membership.h"  // RegistrationDifferences
#include "grpcpp/grpcpp.h"

namespace psrec {
namespace {

// How long a Restore waits for a shard's channel to connect before it logs the shard as
// unreachable and tries again.
constexpr absl::Duration kConnectAttempt = absl::Seconds(2);

}  // namespace

GrpcShardControl::GrpcShardControl(std::vector<std::string> addresses, absl::Duration rpc_timeout,
                                   absl::Duration fail_after)
    : addresses_(std::move(addresses)),
      rpc_timeout_(rpc_timeout),
      fail_after_(fail_after),
      incarnation_(addresses_.size(), 0),
      first_failure_(addresses_.size(), absl::InfiniteFuture()) {
  peers_.reserve(addresses_.size());
  for (const std::string& address : addresses_) peers_.emplace_back(address, QuickReconnect());
}

std::unique_ptr<ParameterServer::Stub> GrpcShardControl::Stub(size_t i) const {
  return ParameterServer::NewStub(peers_[i].get());
}

std::string GrpcShardControl::Name(size_t i) const {
  return absl::StrCat("ps shard ", i, " (", addresses_[i], ")");
}

absl::Status GrpcShardControl::CheckServers(const JobConfig& config) {
  for (uint32_t shard = 0; shard < peers_.size(); ++shard) {
    // A server still starting, or whose name does not resolve yet, is waited for.
    const absl::Time deadline = absl::Now() + std::min(rpc_timeout_, fail_after_);
    peers_[shard].WaitForConnected(deadline);
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(absl::ToChronoTime(deadline));
    GetConfigResponse answer;
    if (absl::Status s = FromGrpcStatus(Stub(shard)->GetConfig(&context, {}, &answer),
                                        absl::StrCat("GetConfig to ", Name(shard)));
        !s.ok()) {
      return s;
    }
    if (answer.shard() != shard) {
      return absl::FailedPreconditionError(absl::StrCat("ps ", addresses_[shard],
                                                        " is listed as shard ", shard,
                                                        " but serves shard ", answer.shard()));
    }
    const std::vector<std::string> diff = RegistrationDifferences(config, answer.config());
    if (!diff.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          Name(shard), " has a different config (coordinator vs ps): ", absl::StrJoin(diff, "; ")));
    }
  }
  return absl::OkStatus();
}

absl::Status GrpcShardControl::Restore(uint64_t generation, const std::string& checkpoint,
                                       bool keep_rows, uint64_t clock,
                                       const std::vector<uint32_t>& workers) {
  RestoreRequest request;
  request.set_generation(generation);
  request.set_checkpoint(checkpoint);
  request.set_keep_rows(keep_rows);
  request.set_clock(clock);
  for (uint32_t w : workers) request.add_workers(w);
  for (size_t i = 0; i < peers_.size(); ++i) {
    // A server that is restarting is waited for, up to fail_after; any other error is final. The
    // call is made only on a connected channel: one that has failed may wait out gRPC's growing
    // back-off before it finds the server again, where a new one finds it at once.
    RestoreResponse response;
    absl::Status s = RetryWhileUnreachable(fail_after_, [&](absl::Time give_up) {
      const std::string what = absl::StrCat("Restore to ", Name(i));
      if (!peers_[i].WaitForConnected(std::min(absl::Now() + kConnectAttempt, give_up))) {
        return absl::UnavailableError(absl::StrCat(what,
                                                   " failed: UNAVAILABLE: not connected within ",
                                                   absl::FormatDuration(kConnectAttempt)));
      }
      grpc::ClientContext context;
      context.set_wait_for_ready(true);
      context.set_deadline(absl::ToChronoTime(std::min(absl::Now() + rpc_timeout_, give_up)));
      return FromGrpcStatus(Stub(i)->Restore(&context, request, &response), what);
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

absl::StatusOr<std::vector<CheckpointFile>> GrpcShardControl::Checkpoint(const std::string& name,
                                                                         uint64_t generation) {
  CheckpointRequest request;
  request.set_name(name);
  request.set_generation(generation);
  std::vector<CheckpointFile> files;
  for (size_t i = 0; i < peers_.size(); ++i) {
    peers_[i].Refresh();
    grpc::ClientContext context;
    // A shard that stopped answering must not hold the job longer than fail_after.
    context.set_deadline(absl::ToChronoTime(absl::Now() + fail_after_));
    CheckpointResponse response;
    if (absl::Status s = FromGrpcStatus(Stub(i)->Checkpoint(&context, request, &response),
                                        absl::StrCat("Checkpoint to ", Name(i)));
        !s.ok()) {
      return s;
    }
    files.push_back(response.file());
  }
  return files;
}

absl::StatusOr<std::string> GrpcShardControl::Check() {
  for (size_t i = 0; i < peers_.size(); ++i) {
    peers_[i].Refresh();  // a shard whose checks fail is looked for on a new channel
    grpc::ClientContext context;
    context.set_deadline(
        absl::ToChronoTime(absl::Now() + std::min(rpc_timeout_, absl::Seconds(1))));
    GetConfigResponse response;
    const grpc::Status status = Stub(i)->GetConfig(&context, GetConfigRequest(), &response);
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

std::vector<ProcessReport> GrpcShardControl::Processes() {
  std::vector<ProcessReport> out;
  for (size_t i = 0; i < peers_.size(); ++i) {
    grpc::ClientContext context;
    context.set_deadline(
        absl::ToChronoTime(absl::Now() + std::min(rpc_timeout_, absl::Seconds(1))));
    StatsResponse stats;
    if (!Stub(i)->Stats(&context, StatsRequest(), &stats).ok()) continue;
    uint64_t rows = 0, memory = 0;
    for (const TableStats& table : stats.tables()) {
      rows += table.rows();
      memory += table.memory_bytes();
    }
    std::string note = absl::StrCat(rows, " rows");
    if (rows > 0) {
      absl::StrAppend(&note, ", ", absl::SixDigits(static_cast<double>(memory) / rows),
                      " B per row");
    }
    out.push_back(ProcessReport{"ps", absl::StrCat("ps", i), stats.peak_rss_bytes(),
                                stats.cpu_seconds(), std::move(note)});
  }
  return out;
}

void GrpcShardControl::ShutdownServers() {
  const std::vector<std::string>& addresses = addresses_;
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

}  // namespace psrec
