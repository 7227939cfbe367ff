// The training loop over one ParamStore: for each mini-batch, deduplicate its keys, pull their
// rows, run the model forward and backward, and push the gradients. The store may live in this
// process or behind gRPC; the trainer cannot tell.
#ifndef PSREC_WORKER_TRAINER_H_
#define PSREC_WORKER_TRAINER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/job_report.h"  // TrainStats
#include "common/model.h"
#include "common/movielens.h"
#include "common/param_store.h"
#include "common/rating_table.h"
#include "proto/config.pb.h"
#include "worker/genre_side.h"

namespace psrec {

// What differs between the ways a run of batches is trained: the worker's clocks, progress.
struct TrainHooks {
  // Runs before batch b of the call (0-based) pulls its rows; an error stops training with it.
  // SYNC and SSP workers set the store's clock here, and SSP waits for the coordinator's leave.
  // With prefetch on, it runs for batches 0 and 1 first, then for batch b + 2 once batch b has
  // pushed.
  std::function<absl::Status(uint64_t b)> before_batch;
  // Runs after each batch with the totals so far in this call.
  std::function<void(const TrainStats& so_far)> progress;
};

// Not thread-safe. `data` and `store` must outlive the trainer; rows already handed to it must stay
// valid in `data` (a ShareSet's Hold renumbers them: train and predict only the rows it gives).
class Trainer {
 public:
  // The genre model reads each movie's genres from the movies file in config.data_dir
  // (ReadItemGenres' errors: NotFound when there is none).
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const JobConfig& config,
                                                         const RatingTable* data,
                                                         ParamStore* store);
  // The same over a compact copy of `data` that the trainer keeps (for tests and benchmarks).
  // INVALID_ARGUMENT when a rating is not a whole number of half stars.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const JobConfig& config,
                                                         const Dataset* data, ParamStore* store);

  // The one batch loop. Trains on `rows` (row numbers of `data`) in order, config.batch_size
  // at a time; the last batch may be short. For each batch: the hook, gather and deduplicate its
  // keys, pull their rows, forward and backward, push the gradients. Batch b is step
  // first_step + b, which seeds its dropout mask and (BPR) its negatives. Stops at the first error
  // of a hook or the store.
  absl::StatusOr<TrainStats> Train(absl::Span<const uint32_t> rows, uint64_t first_step,
                                   const TrainHooks& hooks = {});

  // Lets Train keep kPrefetch pulls in flight: batches 0 and 1 are pulled first, and batch b + 2
  // once batch b has pushed (a RemoteStore sends the two in one request), so batch b + 1's pull
  // travels while batch b computes and reads rows from before batch b's push. Right for ASYNC;
  // wrong for SYNC (where it would also wait on a clock that the unsent push completes) and for the
  // in-process reference.
  void set_prefetch(bool prefetch) { prefetch_ = prefetch; }

  // Writes the clipped prediction for each of `rows` to `out`.
  absl::Status Predict(absl::Span<const uint32_t> rows, absl::Span<float> out);

 private:
  // One batch's keys, slots, ratings and pulled rows. Two of them let a pull fill one while the
  // other computes.
  struct Batch {
    std::vector<uint64_t> user_keys, item_keys;  // unique, original MovieLens ids
    std::vector<uint32_t> user_slot, item_slot;  // per row: the examples, then BPR's negatives
    std::vector<float> rating;                   // per example
    std::vector<float> user_emb, item_emb, user_bias, item_bias, dense;
    std::vector<PullBlock> blocks;  // over the vectors above
    GenreSide genre;                // GENRE only
  };

  Trainer(const JobConfig& config, const RatingTable* data, ParamStore* store, Model model);

  // Fills `batch` from `rows`, deduplicating users and items, and points its pull blocks at it.
  // Under BPR, a training batch (`negatives_step` set: its step) also gets its sampled negatives.
  void Gather(absl::Span<const uint32_t> rows, std::optional<uint64_t> negatives_step,
              Batch* batch);
  // The slot of item `item` (a dense index) in `batch`, added to its keys on first sight.
  uint32_t ItemSlot(uint32_t item, Batch* batch);
  // Appends the negative rows of a BPR batch (ExampleBatch's layout), keyed by (seed, step).
  void AddNegatives(uint64_t step, Batch* batch);
  // Forward, backward and push for a batch whose rows have arrived; returns its mean loss.
  absl::StatusOr<float> ComputeAndPush(Batch& batch, uint64_t step);
  ExampleBatch Examples(const Batch& batch) const;
  // The batch's pulled rows; for GENRE, with the item rows widened first.
  ParamView Params(Batch& batch) const;

  JobConfig config_;
  std::unique_ptr<RatingTable> owned_data_;  // Create's copy of a Dataset
  const RatingTable* data_;
  ParamStore* store_;
  Model model_;
  std::unique_ptr<ItemGenres> genres_;  // GENRE only
  bool prefetch_ = false;

  // Reused so that no batch allocates once sizes settle.
  uint32_t batch_stamp_ = 0;
  std::vector<uint32_t> user_stamp_, item_stamp_;  // batch_stamp_ when last seen, per dense index
  std::vector<uint32_t> user_slot_of_, item_slot_of_;
  // Batch b's buffer, and batch b + 1's, whose pull is in flight while b computes; batch b + 2
  // takes batch b's once b has pushed.
  static constexpr size_t kPrefetch = ParamStore::kMaxPullsInFlight;
  Batch batches_[kPrefetch];
  std::vector<float> g_user_emb_, g_item_emb_, g_user_bias_, g_item_bias_, g_dense_;
  std::vector<PushBlock> push_blocks_;    // over the gradients above
  std::vector<uint32_t> negative_items_;  // one example's draws (BPR)
};

}  // namespace psrec

#endif  // PSREC_WORKER_TRAINER_H_
