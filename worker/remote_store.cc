#include "worker/remote_store.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/security.h"
#include "worker/shard_stream.h"

namespace psrec {

// One shard: its channel, its stream, and the parts of the request being built.
struct RemoteStore::Shard {
  std::string address;
  std::unique_ptr<PeerChannel> peer;
  std::shared_ptr<grpc::Channel> stub_channel;  // the channel of `stub` and of `stream`'s next call
  std::unique_ptr<ParameterServer::Stub> stub;  // GetConfig and Stats
  std::unique_ptr<ShardStream> stream;
  grpc::Slice held_push;           // while push_held_: this shard's part of it
  std::vector<grpc::Slice> parts;  // of the request being sent
  grpc::ByteBuffer answer;         // of the pull being scattered
  AnswerReader reader;             // open on `answer` between TakeAt and Scatter
  std::unique_ptr<grpc::ClientContext> unary_context;
  grpc::Status unary_status;
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
    shard->peer = std::make_unique<PeerChannel>(shard->address, args);
    shard->stub_channel = shard->peer->get();
    shard->stub = ParameterServer::NewStub(shard->stub_channel);
    shard->stream =
        std::make_unique<ShardStream>(static_cast<uint32_t>(i), shard->peer->get(), &store->cq_);
    store->shards_.push_back(std::move(shard));
  }
  store->statuses_.resize(store->shards_.size());
  for (auto& shard : store->shards_) store->readers_.push_back(&shard->reader);
  return store;
}

RemoteStore::~RemoteStore() {
  // Pulls or pushes may still be in flight; they carry deadlines, so these waits end.
  while (pulls_in_flight_ > 0) {
    if (absl::Status s = Wait(); !s.ok()) PSREC_LOG(WARNING) << s.message();
  }
  if (absl::Status s = Flush(); !s.ok()) PSREC_LOG(WARNING) << s.message();
  for (auto& shard : shards_) shard->stream->Cancel(grpc::Status::CANCELLED);
  PumpUntil([this] {
    return std::all_of(shards_.begin(), shards_.end(),
                       [](const auto& shard) { return shard->stream->Quiet(); });
  });
  for (auto& shard : shards_) shard->stream.reset();
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

void RemoteStore::Dispatch(void* tag, bool ok) {
  const ShardStream::Op op = ShardStream::TagOp(tag);
  if (op == ShardStream::kUnary) {
    --unary_in_flight_;
    return;
  }
  shards_[ShardStream::TagShard(tag)]->stream->OnEvent(op, ok);
}

void RemoteStore::Drain() {
  void* tag;
  bool ok;
  while (cq_.AsyncNext(&tag, &ok, std::chrono::system_clock::time_point()) ==
         grpc::CompletionQueue::GOT_EVENT) {
    Dispatch(tag, ok);
  }
}

template <typename Done>
void RemoteStore::PumpUntil(const Done& done) {
  const grpc::Status expired(grpc::StatusCode::DEADLINE_EXCEEDED,
                             absl::StrCat("no answer within ", absl::FormatDuration(deadline_)));
  while (!done()) {
    absl::Time deadline = absl::InfiniteFuture();
    for (const auto& shard : shards_) deadline = std::min(deadline, shard->stream->next_deadline());
    void* tag;
    bool ok;
    // Unary calls carry their own deadlines, which gRPC keeps.
    const grpc::CompletionQueue::NextStatus next =
        deadline == absl::InfiniteFuture() ? (cq_.Next(&tag, &ok) ? grpc::CompletionQueue::GOT_EVENT
                                                                  : grpc::CompletionQueue::SHUTDOWN)
                                           : cq_.AsyncNext(&tag, &ok, absl::ToChronoTime(deadline));
    if (next == grpc::CompletionQueue::GOT_EVENT) {
      Dispatch(tag, ok);
    } else if (next == grpc::CompletionQueue::TIMEOUT) {
      const absl::Time now = absl::Now();
      for (auto& shard : shards_) shard->stream->ExpireBefore(now, expired);
    } else {
      PSREC_CHECK(false) << "completion queue shut down with calls in flight";
    }
  }
}

void RemoteStore::SendAll(Sent sent) {
  Drain();  // writes whose predecessors are done go out now; failed streams finish
  PumpUntil([this] {
    return std::none_of(shards_.begin(), shards_.end(),
                        [](const auto& shard) { return shard->stream->Failing(); });
  });
  const absl::Time deadline = absl::Now() + deadline_;
  for (auto& shard : shards_) {
    if (shard->stream->Ended()) Reconnect(*shard, deadline);
    shard->stream->Send(grpc::ByteBuffer(shard->parts.data(), shard->parts.size()), deadline);
  }
  sent_.push_back(sent);
}

void RemoteStore::SendHeldPush() {
  for (auto& shard : shards_) {
    shard->parts.clear();
    shard->parts.push_back(std::move(shard->held_push));
  }
  push_held_ = false;
  SendAll(Sent::kPush);
}

size_t RemoteStore::PushesInFlight() const {
  return static_cast<size_t>(std::count(sent_.begin(), sent_.end(), Sent::kPush));
}

absl::Status RemoteStore::FirstFailure(const char* rpc,
                                       const std::vector<grpc::Status>& statuses) const {
  absl::Status first;
  size_t failed = 0;
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (statuses[i].ok() || failed++ > 0) continue;
    first = FromGrpcStatus(statuses[i],
                           absl::StrCat(rpc, " to ps shard ", i, " (", shards_[i]->address, ")"));
  }
  if (failed > 1) {
    first = absl::Status(first.code(), absl::StrCat(first.message(), " (", failed, " of ",
                                                    statuses.size(), " shards failed)"));
  }
  return first;
}

absl::Status RemoteStore::TakeAt(size_t index) {
  PumpUntil([this, index] {
    return std::all_of(shards_.begin(), shards_.end(),
                       [index](const auto& shard) { return shard->stream->done(index); });
  });
  const Sent sent = sent_[index];
  // Pulls are answered in order: a pull's slot is its place among the pulls in flight. A push
  // answer carries no rows.
  const Routing* routing = sent == Sent::kPush
                               ? nullptr
                               : &PullInFlight(static_cast<size_t>(std::count_if(
                                                   sent_.begin(), sent_.begin() + index,
                                                   [](Sent s) { return s != Sent::kPush; })))
                                      .routing;
  sent_.erase(sent_.begin() + static_cast<std::ptrdiff_t>(index));
  for (size_t s = 0; s < shards_.size(); ++s) {
    Shard& shard = *shards_[s];
    // A reader left open on the last answer (a failed pull is never scattered or closed) must let
    // go of it before the answer is replaced.
    shard.reader.Reset();
    statuses_[s] = shard.stream->TakeAnswer(index, &shard.answer);
    if (!statuses_[s].ok()) continue;
    size_t floats = 0;
    for (size_t b = 0; routing != nullptr && b < routing->num_blocks; ++b) {
      floats += size_t{routing->count[routing->at(s, b)]} * routing->width[b];
    }
    absl::Status opened = shard.reader.Open(&shard.answer, floats);
    if (opened.ok() && sent == Sent::kPush) opened = shard.reader.Close();
    if (!opened.ok()) statuses_[s] = ToGrpc(opened);
  }
  return FirstFailure(sent == Sent::kPull   ? "Pull"
                      : sent == Sent::kPush ? "Push"
                                            : "Push and pull",
                      statuses_);
}

void RemoteStore::TakePushes(bool behind_pull) {
  for (size_t i = 0; i < sent_.size();) {
    if (sent_[i] != Sent::kPush) {
      if (!behind_pull) return;
      ++i;
      continue;
    }
    if (absl::Status s = TakeAt(i); !s.ok() && push_error_.ok()) push_error_ = s;
  }
}

absl::Status RemoteStore::TakePushError() { return std::exchange(push_error_, absl::OkStatus()); }

absl::Status RemoteStore::Flush() {
  if (push_held_) SendHeldPush();
  TakePushes(/*behind_pull=*/true);
  return TakePushError();
}

void RemoteStore::Reset() {
  if (!sent_.empty()) {
    for (auto& shard : shards_) shard->stream->Cancel(grpc::Status::CANCELLED);
    while (!sent_.empty()) {
      const bool pull = sent_.front() != Sent::kPush;
      (void)TakeAt(0);
      if (pull) oldest_pull_ = (oldest_pull_ + 1) % kMaxPullsInFlight;
    }
  }
  pulls_in_flight_ = 0;
  push_held_ = false;
  push_error_ = absl::OkStatus();
}

bool RemoteStore::WaitForConnected(absl::Time deadline) {
  bool connected = true;
  for (const auto& shard : shards_) {
    connected = connected && shard->peer->WaitForConnected(deadline);
    Adopt(*shard);
  }
  return connected;
}

void RemoteStore::Reconnect(Shard& shard, absl::Time deadline) {
  if (shard.peer->get()->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY) return;
  // Not connected since its stream failed: the addresses it holds may be gone, and its resolver
  // may be backing off. A new channel resolves the name at once.
  shard.peer->Renew();
  shard.peer->WaitForConnected(std::min(absl::Now() + kConnectAttempt, deadline));
  Adopt(shard);
}

void RemoteStore::Adopt(Shard& shard) {
  if (shard.stub_channel == shard.peer->get()) return;
  shard.stub_channel = shard.peer->get();
  shard.stub = ParameterServer::NewStub(shard.stub_channel);
  shard.stream->UseChannel(shard.stub_channel);
}

absl::Status RemoteStore::StartPull(absl::Span<const PullBlock> blocks) {
  PSREC_CHECK(pulls_in_flight_ < kMaxPullsInFlight) << "StartPull with too many pulls in flight";
  for (size_t i = 0; i < blocks.size(); ++i) {
    const PullBlock& b = blocks[i];
    if (absl::Status s = CheckBlock("pull", i, b.table, b.keys.size(), b.values.size(), "values");
        !s.ok()) {
      return s;
    }
  }
  StartedPull& pull = PullInFlight(pulls_in_flight_);
  RoutePull(blocks, width_, num_shards(), &pull.routing);
  const RequestHeader header{clock_, generation_,
                             static_cast<uint64_t>(absl::ToInt64Microseconds(deadline_)), 0};
  // A held push rides in this pull's requests; the server applies it first.
  const bool carries_push = push_held_;
  for (uint32_t s = 0; s < num_shards(); ++s) {
    Shard& shard = *shards_[s];
    shard.parts.assign(1, EncodePull(blocks, pull.routing, s, header));
    if (carries_push) shard.parts.push_back(std::move(shard.held_push));
  }
  push_held_ = false;
  SendAll(carries_push ? Sent::kPushAndPull : Sent::kPull);
  pull.blocks.assign(blocks.begin(), blocks.end());
  ++pulls_in_flight_;
  return absl::OkStatus();
}

absl::Status RemoteStore::Wait() {
  if (pulls_in_flight_ == 0) return absl::OkStatus();
  TakePushes(/*behind_pull=*/false);  // the pushes sent before the pull
  const char* rpc = sent_.front() == Sent::kPull ? "Pull" : "Push and pull";
  absl::Status status = TakeAt(0);
  if (status.ok()) status = Scatter(PullInFlight(0), rpc);
  oldest_pull_ = (oldest_pull_ + 1) % kMaxPullsInFlight;
  --pulls_in_flight_;
  return status;
}

absl::Status RemoteStore::Scatter(const StartedPull& pull, const char* rpc) {
  const bool whole = ScatterRows(pull.blocks, pull.routing, readers_);
  for (size_t s = 0; s < shards_.size(); ++s) {
    absl::Status closed = shards_[s]->reader.Close();
    if (!whole && closed.ok()) closed = absl::InternalError("answer ended early");
    statuses_[s] = ToGrpc(closed);
  }
  return FirstFailure(rpc, statuses_);
}

absl::Status RemoteStore::Pull(absl::Span<const PullBlock> blocks) {
  PSREC_CHECK(pulls_in_flight_ == 0) << "Pull with a started pull not waited for";
  if (absl::Status s = StartPull(blocks); !s.ok()) return s;
  absl::Status pulled = Wait();
  // A push sent beside this pull: its failure is the older news.
  if (absl::Status pushed = Flush(); !pushed.ok()) return pushed;
  return pulled;
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
  if (push_held_) SendHeldPush();
  // Bounds the pushes in flight, collecting the oldest ones' answers.
  while (PushesInFlight() >= kMaxPushesInFlight && sent_.front() == Sent::kPush) {
    if (absl::Status s = TakeAt(0); !s.ok() && push_error_.ok()) push_error_ = s;
  }
  RoutePush(blocks, width_, num_shards(), &push_routing_);
  const RequestHeader header{clock_, generation_,
                             static_cast<uint64_t>(absl::ToInt64Microseconds(deadline_)),
                             *worker_id_};
  for (uint32_t s = 0; s < num_shards(); ++s) {
    shards_[s]->held_push = EncodePush(blocks, push_routing_, s, header);
  }
  push_held_ = true;
  // Without pipelining, or when no pull can follow to carry it, send it now.
  if (!pipeline_ || pulls_in_flight_ == kMaxPullsInFlight) SendHeldPush();
  return pipeline_ ? TakePushError() : Flush();
}

template <typename Start>
absl::Status RemoteStore::FanOut(const char* rpc, bool wait_for_ready, absl::Time until,
                                 const Start& start) {
  const auto deadline = absl::ToChronoTime(until);
  for (size_t i = 0; i < shards_.size(); ++i) {
    Shard& shard = *shards_[i];
    shard.unary_context = std::make_unique<grpc::ClientContext>();
    shard.unary_context->set_deadline(deadline);
    shard.unary_context->set_wait_for_ready(wait_for_ready);
    start(i, shard.unary_context.get(), ShardStream::MakeTag(i, ShardStream::kUnary));
    ++unary_in_flight_;
  }
  PumpUntil([this] { return unary_in_flight_ == 0; });
  for (size_t i = 0; i < shards_.size(); ++i) statuses_[i] = shards_[i]->unary_status;
  return FirstFailure(rpc, statuses_);
}

absl::StatusOr<std::vector<GetConfigResponse>> RemoteStore::GetConfigs() {
  // A shard still starting, or whose name does not resolve yet, is waited for; the calls below
  // report one that does not come.
  const absl::Time deadline = absl::Now() + deadline_;
  WaitForConnected(deadline);
  const GetConfigRequest request;
  std::vector<GetConfigResponse> out(shards_.size());
  absl::Status s = FanOut("GetConfig", /*wait_for_ready=*/true, deadline,
                          [&](size_t i, grpc::ClientContext* context, void* tag) {
                            auto call =
                                shards_[i]->stub->PrepareAsyncGetConfig(context, request, &cq_);
                            call->StartCall();
                            call->Finish(&out[i], &shards_[i]->unary_status, tag);
                          });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<StatsResponse>> RemoteStore::Stats() {
  const StatsRequest request;
  std::vector<StatsResponse> out(shards_.size());
  absl::Status s = FanOut("Stats", /*wait_for_ready=*/false, absl::Now() + deadline_,
                          [&](size_t i, grpc::ClientContext* context, void* tag) {
                            auto call = shards_[i]->stub->PrepareAsyncStats(context, request, &cq_);
                            call->StartCall();
                            call->Finish(&out[i], &shards_[i]->unary_status, tag);
                          });
  if (!s.ok()) return s;
  return out;
}

}  // namespace psrec
