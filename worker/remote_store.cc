#include "worker/remote_store.h"

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/security.h"
#include "common/sharding.h"

namespace psrec {

// One shard's channel and the messages of its call in flight, kept between calls so that protobuf
// reuses their repeated fields' capacity.
struct RemoteStore::Shard {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<ParameterServer::Stub> stub;
  // Per slot (kCallSlot, kPushSlot): gRPC wants a fresh context per call.
  std::unique_ptr<grpc::ClientContext> context[2];
  grpc::Status status[2];
  PullRequest pull_request;
  PullResponse pull_response;
  PushRequest push_request;
  PushResponse push_response;
};

RemoteStore::RemoteStore(std::optional<uint32_t> worker_id, absl::Duration deadline)
    : worker_id_(worker_id), deadline_(deadline) {}

absl::StatusOr<std::unique_ptr<RemoteStore>> RemoteStore::Create(std::vector<std::string> addresses,
                                                                 const JobConfig& config,
                                                                 uint32_t worker_id,
                                                                 absl::Duration deadline) {
  return Create(std::move(addresses), config, std::optional<uint32_t>(worker_id), deadline);
}

absl::StatusOr<std::unique_ptr<RemoteStore>> RemoteStore::CreateReader(
    std::vector<std::string> addresses, const JobConfig& config, absl::Duration deadline) {
  return Create(std::move(addresses), config, std::nullopt, deadline);
}

absl::StatusOr<std::unique_ptr<RemoteStore>> RemoteStore::Create(std::vector<std::string> addresses,
                                                                 const JobConfig& config,
                                                                 std::optional<uint32_t> worker_id,
                                                                 absl::Duration deadline) {
  if (addresses.empty() || addresses.size() != config.num_shards()) {
    return absl::InvalidArgumentError(absl::StrCat("RemoteStore: ", addresses.size(),
                                                   " ps addresses for num_shards ",
                                                   config.num_shards(), "; need one per shard"));
  }
  std::unique_ptr<RemoteStore> store(new RemoteStore(worker_id, deadline));
  for (const TableSpec& spec : config.tables()) {
    if (spec.id() >= kMaxTableId || spec.width() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("RemoteStore: table ", spec.id(), " (",
                                                     spec.name(), ") needs an id below ",
                                                     kMaxTableId, " and a width above 0"));
    }
    if (spec.id() >= store->width_.size()) store->width_.resize(spec.id() + 1, 0);
    if (store->width_[spec.id()] != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("RemoteStore: table id ", spec.id(), " is used twice"));
    }
    store->width_[spec.id()] = spec.width();
  }
  grpc::ChannelArguments args = QuickReconnect();
  args.SetMaxReceiveMessageSize(-1);  // a pull answer grows with batch size and width
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (addresses[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("RemoteStore: ps shard ", i, " has no address"));
    }
    auto shard = std::make_unique<Shard>();
    shard->address = std::move(addresses[i]);
    shard->channel = CreatePeerChannel(shard->address, args);
    shard->stub = ParameterServer::NewStub(shard->channel);
    store->shards_.push_back(std::move(shard));
  }
  store->cursor_.resize(store->shards_.size());
  store->part_.resize(store->shards_.size());
  return store;
}

RemoteStore::~RemoteStore() {
  // A pull or a push may still be in flight; they carry deadlines, so these waits end.
  if (absl::Status s = Wait(); !s.ok()) PSREC_LOG(WARNING) << s.message();
  if (absl::Status s = Flush(); !s.ok()) PSREC_LOG(WARNING) << s.message();
  cq_.Shutdown();
  void* tag;
  bool ok;
  while (cq_.Next(&tag, &ok)) {
  }
}

const std::string& RemoteStore::address(uint32_t shard) const { return shards_[shard]->address; }

absl::Status RemoteStore::CheckBlock(const char* op, size_t index, uint32_t table, size_t num_keys,
                                     size_t num_floats, const char* what) const {
  if (table >= width_.size() || width_[table] == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, " block ", index, ": unknown table id ", table));
  }
  const size_t want = num_keys * width_[table];
  if (num_floats != want) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, " block ", index, ": table ", table, " has width ", width_[table], ", so ",
                     num_keys, " keys need ", want, " ", what, ", got ", num_floats));
  }
  return absl::OkStatus();
}

template <typename Block>
void RemoteStore::Route(absl::Span<const Block> blocks, Routing* routing) const {
  const uint32_t n = num_shards();
  routing->count.assign(n * blocks.size(), 0);
  routing->key_shard.clear();
  for (size_t b = 0; b < blocks.size(); ++b) {
    for (const uint64_t key : blocks[b].keys) {
      const uint32_t s = ShardOf(blocks[b].table, key, n);
      routing->key_shard.push_back(s);
      ++routing->count[s * blocks.size() + b];
    }
  }
}

// Every shard's request gets one RowBlock per caller block, even an empty one, so that block b of
// every request and answer is the caller's block b.
template <typename Request, typename Block>
void RemoteStore::BuildRequests(absl::Span<const Block> blocks, Request Shard::*request,
                                Routing* routing) {
  constexpr bool kPush = std::is_same_v<Block, PushBlock>;
  Route(blocks, routing);
  for (auto& shard : shards_) {
    Request& r = (*shard).*request;
    r.Clear();
    r.set_clock(clock_);
    if constexpr (kPush) r.set_worker_id(*worker_id_);
    r.set_generation(generation_);
  }
  size_t k = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    const Block& block = blocks[b];
    const uint32_t width = width_[block.table];
    for (size_t s = 0; s < shards_.size(); ++s) {
      RowBlock* part = ((*shards_[s]).*request).add_blocks();
      part->set_table(block.table);
      const uint32_t count = routing->count[s * blocks.size() + b];
      part->mutable_keys()->Reserve(count);
      if constexpr (kPush) part->mutable_values()->Reserve(count * width);
      part_[s] = part;
    }
    for (size_t i = 0; i < block.keys.size(); ++i, ++k) {
      RowBlock* part = part_[routing->key_shard[k]];
      part->mutable_keys()->AddAlreadyReserved(block.keys[i]);
      if constexpr (kPush) {
        std::memcpy(part->mutable_values()->AddNAlreadyReserved(width), &block.grads[i * width],
                    width * sizeof(float));
      }
    }
  }
}

template <typename Start>
void RemoteStore::StartAll(Slot slot, bool wait_for_ready, const Start& start) {
  const auto deadline = absl::ToChronoTime(absl::Now() + deadline_);
  for (size_t i = 0; i < shards_.size(); ++i) {
    Shard& shard = *shards_[i];
    shard.context[slot] = std::make_unique<grpc::ClientContext>();
    shard.context[slot]->set_deadline(deadline);
    shard.context[slot]->set_wait_for_ready(wait_for_ready);
    // gRPC tags are opaque pointers; the slot number is all this one needs to carry.
    // NOLINTNEXTLINE(performance-no-int-to-ptr)
    void* tag = reinterpret_cast<void*>(static_cast<uintptr_t>(slot));
    start(i, shard.context[slot].get(), tag);
  }
  in_flight_[slot] += shards_.size();
}

absl::Status RemoteStore::Collect(Slot slot, const char* rpc) {
  // Every call carries a deadline, so every one of them completes.
  while (in_flight_[slot] > 0) {
    void* tag;
    bool ok;
    PSREC_CHECK(cq_.Next(&tag, &ok)) << "completion queue shut down with calls in flight";
    --in_flight_[reinterpret_cast<uintptr_t>(tag)];
  }
  absl::Status first;
  size_t failed = 0;
  for (size_t i = 0; i < shards_.size(); ++i) {
    const Shard& shard = *shards_[i];
    if (shard.status[slot].ok() || failed++ > 0) continue;
    first = FromGrpcStatus(shard.status[slot],
                           absl::StrCat(rpc, " to ps shard ", i, " (", shard.address, ")"));
  }
  if (failed > 1) {
    first = absl::Status(first.code(), absl::StrCat(first.message(), " (", failed, " of ",
                                                    shards_.size(), " shards failed)"));
  }
  return first;
}

template <typename Start>
absl::Status RemoteStore::FanOut(const char* rpc, bool wait_for_ready, const Start& start) {
  StartAll(kCallSlot, wait_for_ready, start);
  return Collect(kCallSlot, rpc);
}

void RemoteStore::SendPush() {
  StartAll(kPushSlot, false, [this](size_t i, grpc::ClientContext* context, void* tag) {
    Shard& shard = *shards_[i];
    auto call = shard.stub->PrepareAsyncPush(context, shard.push_request, &cq_);
    call->StartCall();
    call->Finish(&shard.push_response, &shard.status[kPushSlot], tag);
  });
  push_held_ = false;
  push_in_flight_ = true;
}

absl::Status RemoteStore::Flush() {
  if (push_held_) SendPush();
  if (!push_in_flight_) return absl::OkStatus();
  push_in_flight_ = false;
  return Collect(kPushSlot, "Push");
}

void RemoteStore::Reset() {
  if (pull_in_flight_) (void)Collect(kCallSlot, pull_rpc_);
  pull_in_flight_ = false;
  push_held_ = false;
  if (push_in_flight_) (void)Collect(kPushSlot, "Push");
  push_in_flight_ = false;
}

bool RemoteStore::WaitForConnected(absl::Time deadline) {
  for (const auto& shard : shards_) {
    if (!shard->channel->WaitForConnected(absl::ToChronoTime(deadline))) return false;
  }
  return true;
}

absl::Status RemoteStore::StartPull(absl::Span<const PullBlock> blocks) {
  PSREC_CHECK(!pull_in_flight_) << "StartPull twice without Wait";
  for (size_t i = 0; i < blocks.size(); ++i) {
    const PullBlock& b = blocks[i];
    if (absl::Status s = CheckBlock("pull", i, b.table, b.keys.size(), b.values.size(), "values");
        !s.ok()) {
      return s;
    }
  }
  BuildRequests(blocks, &Shard::pull_request, &pull_routing_);
  // A held push rides in this pull's requests; the server applies it first.
  const bool carries_push = push_held_;
  if (carries_push) {
    for (auto& shard : shards_) shard->pull_request.mutable_push()->Swap(&shard->push_request);
    push_held_ = false;
  }
  pull_rpc_ = carries_push ? "Push and pull" : "Pull";
  StartAll(kCallSlot, false, [this](size_t i, grpc::ClientContext* context, void* tag) {
    Shard& shard = *shards_[i];
    auto call = shard.stub->PrepareAsyncPull(context, shard.pull_request, &cq_);
    call->StartCall();
    call->Finish(&shard.pull_response, &shard.status[kCallSlot], tag);
  });
  pulling_.assign(blocks.begin(), blocks.end());
  pull_in_flight_ = true;
  return absl::OkStatus();
}

absl::Status RemoteStore::Wait() {
  if (!pull_in_flight_) return absl::OkStatus();
  pull_in_flight_ = false;
  if (absl::Status s = Collect(kCallSlot, pull_rpc_); !s.ok()) return s;
  const absl::Span<const PullBlock> blocks = pulling_;
  if (absl::Status s = CheckPullResponses(blocks); !s.ok()) return s;
  ScatterPulled(blocks);
  return absl::OkStatus();
}

absl::Status RemoteStore::Pull(absl::Span<const PullBlock> blocks) {
  if (absl::Status s = StartPull(blocks); !s.ok()) return s;
  absl::Status pulled = Wait();
  // The previous push ran beside this pull; its failure is the older news.
  if (absl::Status pushed = Flush(); !pushed.ok()) return pushed;
  return pulled;
}

absl::Status RemoteStore::CheckPullResponses(absl::Span<const PullBlock> blocks) const {
  for (size_t s = 0; s < shards_.size(); ++s) {
    const PullResponse& response = shards_[s]->pull_response;
    const std::string peer = absl::StrCat("Pull to ps shard ", s, " (", shards_[s]->address, ")");
    if (static_cast<size_t>(response.blocks_size()) != blocks.size()) {
      return absl::InternalError(
          absl::StrCat(peer, " answered ", response.blocks_size(), " blocks for ", blocks.size()));
    }
    for (size_t b = 0; b < blocks.size(); ++b) {
      const size_t want =
          size_t{pull_routing_.count[s * blocks.size() + b]} * width_[blocks[b].table];
      const size_t got = response.blocks(static_cast<int>(b)).values_size();
      if (got != want) {
        return absl::InternalError(absl::StrCat(peer, " answered block ", b, " (table ",
                                                blocks[b].table, ") with ", got, " floats for ",
                                                want));
      }
    }
  }
  return absl::OkStatus();
}

void RemoteStore::ScatterPulled(absl::Span<const PullBlock> blocks) {
  size_t k = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    const PullBlock& block = blocks[b];
    const uint32_t width = width_[block.table];
    for (size_t s = 0; s < shards_.size(); ++s) {
      cursor_[s] = shards_[s]->pull_response.blocks(static_cast<int>(b)).values().data();
    }
    for (size_t i = 0; i < block.keys.size(); ++i, ++k) {
      const float*& from = cursor_[pull_routing_.key_shard[k]];
      std::memcpy(&block.values[i * width], from, width * sizeof(float));
      from += width;
    }
  }
}

absl::Status RemoteStore::Push(absl::Span<const PushBlock> blocks) {
  if (!worker_id_.has_value()) {
    return absl::FailedPreconditionError("a reader store (no worker id) cannot push");
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    const PushBlock& b = blocks[i];
    if (absl::Status s = CheckBlock("push", i, b.table, b.keys.size(), b.grads.size(), "grads");
        !s.ok()) {
      return s;
    }
  }
  // The request messages are reused, so an earlier push must be done before they are rebuilt.
  if (absl::Status s = Flush(); !s.ok()) return s;
  BuildRequests(blocks, &Shard::push_request, &push_routing_);
  push_held_ = true;
  // Without pipelining, or when a prefetching trainer's next pull has left already, send it now.
  if (!pipeline_ || pull_in_flight_) SendPush();
  return pipeline_ ? absl::OkStatus() : Flush();
}

absl::StatusOr<std::vector<GetConfigResponse>> RemoteStore::GetConfigs() {
  const GetConfigRequest request;
  std::vector<GetConfigResponse> out(shards_.size());
  absl::Status s = FanOut(
      "GetConfig", /*wait_for_ready=*/true, [&](size_t i, grpc::ClientContext* context, void* tag) {
        auto call = shards_[i]->stub->PrepareAsyncGetConfig(context, request, &cq_);
        call->StartCall();
        call->Finish(&out[i], &shards_[i]->status[kCallSlot], tag);
      });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<StatsResponse>> RemoteStore::Stats() {
  const StatsRequest request;
  std::vector<StatsResponse> out(shards_.size());
  absl::Status s = FanOut("Stats", /*wait_for_ready=*/false,
                          [&](size_t i, grpc::ClientContext* context, void* tag) {
                            auto call = shards_[i]->stub->PrepareAsyncStats(context, request, &cq_);
                            call->StartCall();
                            call->Finish(&out[i], &shards_[i]->status[kCallSlot], tag);
                          });
  if (!s.ok()) return s;
  return out;
}

}  // namespace psrec
