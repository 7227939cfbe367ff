// The gRPC client to the sharded parameter servers: a ParamStore whose rows live in num_shards
// `psrec ps` processes. Every Pull or Push sends exactly one request to every shard, all at once,
// each carrying that shard's part of every block (ps/sharding.h decides the part), and waits for
// all the answers. A shard with no keys still gets its (empty) request: in SYNC mode the servers
// count one push per worker per clock.
#ifndef PSREC_WORKER_REMOTE_STORE_H_
#define PSREC_WORKER_REMOTE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/param_store.h"
#include "common/rpc.h"  // FromGrpcStatus, for the callers that name this store's errors
#include "grpcpp/grpcpp.h"
#include "proto/config.pb.h"
#include "proto/ps.grpc.pb.h"

namespace psrec {

// Not thread-safe: one call at a time, like the Trainer that owns it.
class RemoteStore : public ParamStore {
 public:
  // `addresses[i]` ("host:port") serves shard i; there must be config.num_shards() of them. Row
  // widths come from config.tables(). Channels connect lazily, so a shard that is down fails the
  // first call, not this one. Errors: INVALID_ARGUMENT for a wrong address count, an empty address,
  // or a table id used twice. Every RPC is cancelled after `deadline`.
  static absl::StatusOr<std::unique_ptr<RemoteStore>> Create(
      std::vector<std::string> addresses, const JobConfig& config, uint32_t worker_id,
      absl::Duration deadline = absl::Seconds(30));

  // A store for pulls alone, that is no worker (the coordinator's evaluation): its pulls carry no
  // worker id, and Push fails with FAILED_PRECONDITION.
  static absl::StatusOr<std::unique_ptr<RemoteStore>> CreateReader(
      std::vector<std::string> addresses, const JobConfig& config,
      absl::Duration deadline = absl::Seconds(30));

  ~RemoteStore() override;

  // Errors: INVALID_ARGUMENT for an unknown table or a values size other than keys * width (checked
  // here, before anything is sent); otherwise the first failed shard's error with its code, as
  // "Pull to ps shard 1 (host:port) failed: DEADLINE_EXCEEDED: ...". A malformed answer is
  // INTERNAL.
  absl::Status Pull(absl::Span<const PullBlock> blocks) override;

  // As Pull, in two halves; errors come from whichever half finds them. Pull and StartPull must not
  // be called while a started pull has not been waited for.
  absl::Status StartPull(absl::Span<const PullBlock> blocks) override;
  absl::Status Wait() override;

  // Sends the gradients. When pipelining (the default) it returns before they are applied: if no
  // pull is in flight the push is held and rides in the next pull's requests (one round trip per
  // mini-batch instead of two), otherwise it is sent at once; a following Push or Flush sends a
  // held push on its own. Its failure is reported by the call that collects it (the next Pull,
  // Wait, Push or Flush). That is right in every mode: a SYNC server applies the push before it
  // serves the pull that carries it. When one shard fails the others may already have applied their
  // part.
  absl::Status Push(absl::Span<const PushBlock> blocks) override;

  // Sends a held push, waits for any push in flight, and returns its status.
  absl::Status Flush() override;

  // With false, Push waits for its answers before returning.
  void set_pipeline(bool pipeline) { pipeline_ = pipeline; }

  // The clock sent with every following Pull and Push (PullRequest.clock, PushRequest.clock).
  void set_clock(uint64_t clock) { clock_ = clock; }

  // The generation sent with every following Pull and Push (PullRequest.generation).
  void set_generation(uint64_t generation) { generation_ = generation; }

  // Gives up whatever is under way after a failed call: waits for the calls in flight (they carry
  // deadlines) and ignores their answers, and drops a held push. The store is then idle.
  void Reset();

  // Waits until every shard's channel is connected, or `deadline`. False if one is not: after a
  // shard restarts, the channel reconnects with backoff, and calls fail at once until it has.
  bool WaitForConnected(absl::Time deadline);

  uint32_t num_shards() const { return static_cast<uint32_t>(shards_.size()); }
  const std::string& address(uint32_t shard) const;

  // Each shard's GetConfig answer, index = shard. Waits for a shard that is not up yet, up to the
  // deadline, so it doubles as "wait until every shard is serving".
  absl::StatusOr<std::vector<GetConfigResponse>> GetConfigs();

  // Each shard's Stats answer, index = shard.
  absl::StatusOr<std::vector<StatsResponse>> Stats();

 private:
  struct Shard;

  static absl::StatusOr<std::unique_ptr<RemoteStore>> Create(std::vector<std::string> addresses,
                                                             const JobConfig& config,
                                                             std::optional<uint32_t> worker_id,
                                                             absl::Duration deadline);
  RemoteStore(std::optional<uint32_t> worker_id, absl::Duration deadline);

  // Checks a block against its table's width; `what` names the float array.
  absl::Status CheckBlock(const char* op, size_t index, uint32_t table, size_t num_keys,
                          size_t num_floats, const char* what) const;
  // Where a call's keys went: key_shard for every block's keys, concatenated, and count indexed by
  // shard * blocks + block. A pull in flight and a push keep one each.
  struct Routing {
    std::vector<uint32_t> key_shard;
    std::vector<uint32_t> count;
  };
  template <typename Block>
  void Route(absl::Span<const Block> blocks, Routing* routing) const;
  // Fills every shard's `request` with its part of `blocks`.
  template <typename Request, typename Block>
  void BuildRequests(absl::Span<const Block> blocks, Request Shard::*request, Routing* routing);
  absl::Status CheckPullResponses(absl::Span<const PullBlock> blocks) const;
  void ScatterPulled(absl::Span<const PullBlock> blocks);
  // Calls of the two slots can be in flight at once: a push beside the next pull (or GetConfig,
  // Stats).
  enum Slot { kCallSlot = 0, kPushSlot = 1 };
  // Runs start(shard, context, tag) for every shard on `slot`.
  template <typename Start>
  void StartAll(Slot slot, bool wait_for_ready, const Start& start);
  // Waits for every call on `slot` and returns the first failure (in shard order) as
  // "<rpc> to ps shard i (address) failed: ...".
  absl::Status Collect(Slot slot, const char* rpc);
  // Sends the push built in the shards' push_request.
  void SendPush();
  // StartAll then Collect on kCallSlot.
  template <typename Start>
  absl::Status FanOut(const char* rpc, bool wait_for_ready, const Start& start);

  const std::optional<uint32_t> worker_id_;  // none for a reader
  const absl::Duration deadline_;
  std::vector<uint32_t> width_;  // indexed by table id; 0 for no such table
  uint64_t clock_ = 0;
  uint64_t generation_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
  grpc::CompletionQueue cq_;
  size_t in_flight_[2] = {0, 0};   // calls started and not yet taken off cq_, per slot
  bool push_in_flight_ = false;    // a push's answers are yet to be collected
  bool push_held_ = false;         // shard push_requests hold a push not yet sent
  const char* pull_rpc_ = "Pull";  // names the call in flight on kCallSlot in errors
  bool pipeline_ = true;
  // Per-call scratch, kept between calls so that a call allocates nothing once sizes settle.
  Routing pull_routing_, push_routing_;
  std::vector<PullBlock> pulling_;  // the blocks of the pull in flight
  bool pull_in_flight_ = false;
  std::vector<RowBlock*> part_;       // per shard: the request block being filled
  std::vector<const float*> cursor_;  // per shard: the next pulled row to hand out
};

}  // namespace psrec

#endif  // PSREC_WORKER_REMOTE_STORE_H_
