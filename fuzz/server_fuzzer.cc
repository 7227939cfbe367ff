// Fuzzes the parameter server's request handlers (ps/server.h) in process: the input is a
// serialized psrec.fuzz.ServerFuzzInput (fuzz/server_fuzz.proto), a cluster shape and a sequence of
// Pull, Push and Stats calls made directly on a fresh ParameterServerImpl with a plain
// grpc::ServerContext, and streamed requests taken through the three steps a StreamSession takes
// (StreamAdmit, StreamAwait, StreamRead), whose answers must parse with the right number of rows.
//
// A SYNC pull of a clock not yet applied would wait for other workers' pushes that never come, and
// block the fuzzer: such a pull's clock is lowered to the applied clock (read with Stats first), so
// it takes the same path but never waits. Everything else is called as the fuzzer wrote it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/model.h"
#include "fuzz/server_fuzz.pb.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/server_context.h"
#include "ps/server.h"

namespace {

constexpr int kMaxCalls = 64;

void Check(bool ok) {
  if (!ok) std::abort();
}

// Enums are open in proto3: any number parses. Valid values (1..3 in each of these enums) stay,
// others wrap onto them, and unset takes `unset`.
template <typename Enum>
Enum Pick(Enum value, Enum unset) {
  const uint32_t v = static_cast<uint32_t>(value);
  return v == 0 ? unset : static_cast<Enum>(1 + (v - 1) % 3);
}

psrec::JobConfig ConfigFor(const psrec::fuzz::ServerFuzzInput& input) {
  psrec::JobConfig config;
  config.set_seed(3);
  config.set_model(Pick(input.model(), psrec::BIAS));
  config.set_dim(1 + input.dim() % 8);
  config.set_hidden(3);
  config.set_init_scale(0.1f);
  config.set_l2(1e-3f);
  config.set_num_shards(1 + input.num_shards() % 4);
  config.set_num_workers(1 + input.num_workers() % 4);
  config.set_consistency(Pick(input.consistency(), psrec::ASYNC));
  config.mutable_optimizer()->set_kind(Pick(input.optimizer(), psrec::ADAM));
  config.mutable_optimizer()->set_lr(0.01f);
  psrec::FillTableSpecs(&config);
  return config;
}

uint32_t Width(const psrec::JobConfig& config, uint32_t table) {
  for (const psrec::TableSpec& spec : config.tables()) {
    if (spec.id() == table) return spec.width();
  }
  return 0;
}

uint64_t AppliedClock(psrec::ParameterServerImpl* server) {
  grpc::ServerContext context;
  psrec::StatsRequest request;
  psrec::StatsResponse response;
  Check(server->Stats(&context, &request, &response).ok());
  return response.applied_clock();
}

void CallPull(psrec::ParameterServerImpl* server, const psrec::JobConfig& config,
              const psrec::PullRequest& fuzzed) {
  psrec::PullRequest request = fuzzed;
  if (config.consistency() == psrec::SYNC) {
    const uint64_t applied = AppliedClock(server);
    if (request.clock() > applied) request.set_clock(applied);
  }
  grpc::ServerContext context;
  psrec::PullResponse response;
  if (!server->Pull(&context, &request, &response).ok()) return;
  // An answered pull has a block per request block, each with every requested row.
  Check(response.blocks_size() == request.blocks_size());
  for (int i = 0; i < request.blocks_size(); ++i) {
    const psrec::RowBlock& asked = request.blocks(i);
    const psrec::RowBlock& got = response.blocks(i);
    Check(got.table() == asked.table());
    Check(got.values_size() == asked.keys_size() * static_cast<int>(Width(config, asked.table())));
  }
}

// Parses a streamed answer: OK with every requested row, or an error and no rows.
void CheckAnswer(const psrec::JobConfig& config, const psrec::PullRequest& pull,
                 grpc::ByteBuffer* answer) {
  psrec::StreamResponse response;
  Check(grpc::SerializationTraits<psrec::StreamResponse>::Deserialize(answer, &response).ok());
  if (response.code() != 0) {
    Check(response.values_size() == 0);
    return;
  }
  size_t floats = 0;
  for (const psrec::RowBlock& block : pull.blocks()) {
    floats += block.keys_size() * size_t{Width(config, block.table())};
  }
  Check(static_cast<size_t>(response.values_size()) == floats);
}

void CallStream(psrec::ParameterServerImpl* server, const psrec::JobConfig& config,
                const psrec::StreamRequest& fuzzed) {
  psrec::StreamRequest request = fuzzed;
  psrec::SyncBarrier::Wakeups woken;
  const absl::Status admitted = server->StreamAdmit(&request, "fuzzer", &woken);
  Check(woken.empty());  // nothing parks here, so nothing is woken
  if (!admitted.ok() || !request.has_pull()) return;
  psrec::PullRequest& pull = *request.mutable_pull();
  if (config.consistency() == psrec::SYNC) {
    const uint64_t applied = AppliedClock(server);
    if (pull.clock() > applied) pull.set_clock(applied);
  }
  uint64_t id = 0;
  const absl::StatusOr<bool> ready = server->StreamAwait(
      pull, [](const absl::Status&) { std::abort(); }, &id);
  if (!ready.ok()) return;
  Check(*ready);  // at or below the applied clock: never parked
  absl::StatusOr<grpc::ByteBuffer> answer = server->StreamRead(pull);
  if (answer.ok()) CheckAnswer(config, pull, &*answer);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  psrec::fuzz::ServerFuzzInput input;
  if (!input.ParseFromArray(data, static_cast<int>(size))) return 0;
  const psrec::JobConfig config = ConfigFor(input);
  auto created = psrec::ParameterServerImpl::Create(config, input.shard() % config.num_shards());
  if (!created.ok()) {  // the config is a valid one: this is the fuzzer's bug or the server's
    std::fprintf(stderr, "server_fuzzer: Create failed: %s\n", created.status().ToString().c_str());
    std::abort();
  }
  psrec::ParameterServerImpl* server = created->get();
  for (int i = 0; i < input.calls_size() && i < kMaxCalls; ++i) {
    const psrec::fuzz::ServerCall& call = input.calls(i);
    grpc::ServerContext context;
    switch (call.call_case()) {
      case psrec::fuzz::ServerCall::kPull:
        CallPull(server, config, call.pull());
        break;
      case psrec::fuzz::ServerCall::kPush: {
        psrec::PushResponse response;
        server->Push(&context, &call.push(), &response);
        break;
      }
      case psrec::fuzz::ServerCall::kStats: {
        psrec::StatsResponse response;
        Check(server->Stats(&context, &call.stats(), &response).ok());
        break;
      }
      case psrec::fuzz::ServerCall::kStream:
        CallStream(server, config, call.stream());
        break;
      case psrec::fuzz::ServerCall::CALL_NOT_SET:
        break;
    }
  }
  return 0;
}
