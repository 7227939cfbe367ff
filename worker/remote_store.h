// The gRPC client to the sharded parameter servers: a ParamStore whose rows live in num_shards
// `psrec ps` processes. Every Pull or Push sends exactly one request to every shard, all at once,
// each carrying that shard's part of every block (ps/sharding.h decides the part), and waits for
// all the answers. A shard with no keys still gets its (empty) request: in SYNC mode the servers
// count one push per worker per clock.
//
// Pulls and pushes travel on one long-lived Stream per shard (worker/shard_stream.h), answered in
// order, written straight from and read straight into the caller's buffers
// (worker/stream_codec.h). Pushes are not waited for: up to kMaxPushesInFlight per shard travel
// while the caller computes, and their answers are collected by later calls. GetConfig and Stats
// are unary calls.
#ifndef PSREC_WORKER_REMOTE_STORE_H_
#define PSREC_WORKER_REMOTE_STORE_H_

#include <array>
#include <cstdint>
#include <deque>
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
#include "worker/stream_codec.h"

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

  // As Pull, in two halves; errors come from whichever half finds them. StartPull must not be
  // called with kMaxPullsInFlight pulls not waited for, nor Pull with any.
  absl::Status StartPull(absl::Span<const PullBlock> blocks) override;
  absl::Status Wait() override;

  // Sends the gradients. When pipelining (the default) it returns before they are applied: with
  // fewer than kMaxPullsInFlight pulls in flight the push is held and rides in the next pull's
  // requests (one request per mini-batch instead of two: a SYNC trainer pulls next, a prefetching
  // one starts its next pull but one), otherwise it is sent at once; a following Push or Flush
  // sends a held push on its own. Its failure is reported by the call that collects it (the next
  // Pull, Wait, Push or Flush). That is right in every mode: a SYNC server applies the push before
  // it serves the pull that carries it. When one shard fails the others may already have applied
  // their part.
  absl::Status Push(absl::Span<const PushBlock> blocks) override;

  // Sends a held push, waits for any push in flight, and returns its status.
  absl::Status Flush() override;

  // With false, Push waits for its answers before returning.
  void set_pipeline(bool pipeline) { pipeline_ = pipeline; }

  // The clock sent with every following Pull and Push (PullRequest.clock, PushRequest.clock).
  void set_clock(uint64_t clock) { clock_ = clock; }

  // The generation sent with every following Pull and Push (PullRequest.generation).
  void set_generation(uint64_t generation) { generation_ = generation; }

  // Gives up whatever is under way after a failed call: cancels the streams that have requests in
  // flight and ignores their answers, and drops a held push. The store is then idle; the next call
  // opens new streams.
  void Reset();

  // Waits until every shard's channel is connected, or `deadline`. False if one is not: after a
  // shard restarts, calls fail at once until its channel has reconnected. A channel that failed is
  // made anew (PeerChannel), so a shard back at a new address under the same name is found.
  bool WaitForConnected(absl::Time deadline);

  // How long a stream that failed waits, before its next request, for its shard's channel (made
  // anew unless it is still connected) to connect. The request goes out when this passes, and
  // fails as before when the shard is still away.
  static constexpr absl::Duration kConnectAttempt = absl::Seconds(2);

  uint32_t num_shards() const { return static_cast<uint32_t>(shards_.size()); }
  const std::string& address(uint32_t shard) const;

  // Each shard's GetConfig answer, index = shard. Waits for a shard that is not up yet, up to the
  // deadline, so it doubles as "wait until every shard is serving".
  absl::StatusOr<std::vector<GetConfigResponse>> GetConfigs();

  // Each shard's Stats answer, index = shard.
  absl::StatusOr<std::vector<StatsResponse>> Stats();

  // Pushes in flight per shard before a Push waits for the oldest one's answer.
  static constexpr size_t kMaxPushesInFlight = 4;

 private:
  struct Shard;
  // What each request in flight is, oldest first; every shard's stream holds the same sequence.
  enum class Sent { kPull, kPush, kPushAndPull };
  // A pull between StartPull and Wait: its blocks, and how their keys went to the shards.
  struct StartedPull {
    Routing routing;
    std::vector<PullBlock> blocks;
  };

  static absl::StatusOr<std::unique_ptr<RemoteStore>> Create(std::vector<std::string> addresses,
                                                             const JobConfig& config,
                                                             std::optional<uint32_t> worker_id,
                                                             absl::Duration deadline);
  RemoteStore(std::optional<uint32_t> worker_id, absl::Duration deadline);

  // Checks a block against its table's width; `what` names the float array.
  absl::Status CheckBlock(const char* op, size_t index, uint32_t table, size_t num_keys,
                          size_t num_floats, const char* what) const;
  // Sends every shard's `parts` (the slices of one StreamRequest) to it.
  void SendAll(Sent sent);
  // Before a failed stream starts again: a new channel for its shard unless the old one is
  // connected, waited for up to kConnectAttempt but not past `deadline`.
  void Reconnect(Shard& shard, absl::Time deadline);
  // Points the shard's stub and its stream's next call at its PeerChannel's current channel.
  void Adopt(Shard& shard);
  void SendHeldPush();
  // Takes request `index`'s answers (0: the oldest in flight) from every shard, waiting for them;
  // returns the first failure (in shard order) as "<rpc> to ps shard i (address) failed: ...". A
  // pull's answers are left open in the shards' readers for Scatter.
  absl::Status TakeAt(size_t index);
  // Takes the answers of every push in flight before the first pull (all of them with
  // `behind_pull`, waiting for those behind it too), keeping the first failure in push_error_.
  void TakePushes(bool behind_pull);
  // Waits for completions until `done()` or the earliest deadline of a request in flight.
  template <typename Done>
  void PumpUntil(const Done& done);
  // Handles the completions that are ready, without waiting.
  void Drain();
  void Dispatch(void* tag, bool ok);
  absl::Status TakePushError();
  // Writes the oldest pull's answers, left open by TakeAt, into its blocks.
  absl::Status Scatter(const StartedPull& pull, const char* rpc);
  size_t PushesInFlight() const;
  // Runs start(shard, context, tag) for every shard, then waits for the unary calls' answers,
  // which are due by `until`.
  template <typename Start>
  absl::Status FanOut(const char* rpc, bool wait_for_ready, absl::Time until, const Start& start);
  // "<rpc> to ps shard i (address) failed: ..." for the first failure, and how many failed.
  absl::Status FirstFailure(const char* rpc, const std::vector<grpc::Status>& statuses) const;

  const std::optional<uint32_t> worker_id_;  // none for a reader
  const absl::Duration deadline_;
  std::vector<uint32_t> width_;  // indexed by table id; 0 for no such table
  uint64_t clock_ = 0;
  uint64_t generation_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
  grpc::CompletionQueue cq_;
  std::deque<Sent> sent_;  // requests in flight, oldest first
  size_t unary_in_flight_ = 0;
  bool push_held_ = false;   // shards' held_push hold a push not yet sent
  absl::Status push_error_;  // the first failure of a collected push, not yet reported
  bool pipeline_ = true;
  // Per-call scratch, kept between calls so that a call allocates nothing once sizes settle.
  Routing push_routing_;
  // The pulls started and not yet waited for, oldest first from pulls_[oldest_pull_]; the slots
  // are reused in turn.
  std::array<StartedPull, kMaxPullsInFlight> pulls_;
  size_t oldest_pull_ = 0, pulls_in_flight_ = 0;
  StartedPull& PullInFlight(size_t k) { return pulls_[(oldest_pull_ + k) % kMaxPullsInFlight]; }
  std::vector<grpc::Status> statuses_;
  std::vector<AnswerReader*> readers_;
};

}  // namespace psrec

#endif  // PSREC_WORKER_REMOTE_STORE_H_
