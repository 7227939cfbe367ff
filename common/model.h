// The seed's three models, forward and backward by hand over a batch, with Eigen.
//
//   DOT:  x = dropout(u (.) v)                 p = w.x + b
//   BIAS: x = [dropout(u (.) v), bu, bi]       p = w.x + b
//   MLP:  x = [dropout(u (.) v), bu, bi]       p = w2.relu(W1 x + b1) + b2
//
// and every prediction adds config.rating_offset. Under --loss=bpr the same forward pass scores a
// positive (u, i) and its sampled negatives (u, j) (common/negative_sampler.h), and the loss is
// -log sigmoid(s(u, i) - s(u, j)): a ranking, whose scores are not ratings (the head's bias and the
// offset cancel). The seed put dropout in DOT only; here it
// regularizes the interaction in all three (set --dropout=0 for the seed's BIAS and MLP), which is
// what lets the bias and mlp models beat plain L2-regularized factorization on the time splits. The
// parameters live in five tables keyed by (table, id): user and item embeddings (dim wide), user
// and item biases (1 wide), and the dense weights (one row, or several when large: DenseRows).
// The model never sees a table: the trainer pulls a batch's rows into packed buffers, hands them
// over as a ParamView, and pushes back the GradView this computes.
//
// GENRE is BIAS over item rows widened by their genres' rows (common/genres.h): the trainer and the
// catalogue scorer widen them, and the model sees only the widened rows.
#ifndef PSREC_COMMON_MODEL_H_
#define PSREC_COMMON_MODEL_H_

#include <cstdint>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "proto/config.pb.h"

namespace psrec {

// Table ids.
constexpr uint32_t kUserEmbeddingTable = 0;
constexpr uint32_t kItemEmbeddingTable = 1;
constexpr uint32_t kUserBiasTable = 2;
constexpr uint32_t kItemBiasTable = 3;
constexpr uint32_t kDenseTable = 4;
constexpr uint64_t kDenseKey = 0;  // the dense table's first row (its only one when small)
// GENRE only (common/genres.h): a row per genre, keyed by GenreKey(name).
constexpr uint32_t kGenreEmbeddingTable = 5;
constexpr uint32_t kGenreBiasTable = 6;

// Sets config->tables to the tables `config.model` needs, in id order. The bias tables exist for
// every model (DOT leaves them untouched) so that all models share one key space; GENRE adds its
// two genre tables (both starting at zero, so an untrained genre model is the bias model).
void FillTableSpecs(JobConfig* config);

// How the dense weights are stored: a model's dense_width() weights, in order, over keys.size()
// rows of the dense table, `width` floats each; the last row ends with padding (fewer than
// 4 * keys.size() floats, never read, pushed as zero gradients). Pulling every key into one buffer
// of floats() floats therefore gives the weights followed by the padding.
//
// Why: every batch pulls and pushes all the dense weights, so as one row they load one shard
// (docs/scaling.md: the hot key, 17,409 floats at --hidden=512). Rows of at most kDenseRowFloats
// spread them over the shards; a dense part of at most kDenseRowFloats floats (dot, bias, genre,
// the default mlp) stays the one row kDenseKey, as before. The optimizers work element by element
// (ps/optimizer.h) and every row is pushed with every batch, so each row's Adam step count is the
// one row's. What a split does change: the initial values (a row's are drawn from its key), and
// the last dense_width % 4 weights, which one row updated with a scalar square root and the split
// rows update in a SIMD packet (ps/optimizer.cc: a few ulp apart).
struct DenseRows {
  uint32_t width = 0;          // floats per row: the dense table's width
  std::vector<uint64_t> keys;  // row j holds weights [j * width, (j + 1) * width)
  size_t floats() const { return size_t{width} * keys.size(); }
};
constexpr uint32_t kDenseRowFloats = 512;
// The keys cycle through the residues of ShardOf(kDenseTable, key, kDenseSpread), starting at
// kDenseKey's, so that for any shard count dividing kDenseSpread (1, 2, 3, 4, 5, 6, 8, 10, 12, 15,
// 16, ...) the rows go round-robin over the shards: shards hold row counts that differ by one at
// most, whatever the hash does with the first few keys.
constexpr uint32_t kDenseSpread = 240;
// The layout of `dense_width` (> 0) weights: n = ceil(dense_width / kDenseRowFloats) rows, of
// dense_width floats if n is 1, else of ceil(dense_width / n) rounded up to a multiple of 4.
DenseRows SplitDense(uint32_t dense_width);

// A batch of examples. Example e uses user row user_slot[e] and item row item_slot[e] of the pulled
// buffers; rating is read by TrainStep only. Under BPR the batch has n = rating.size() examples and
// (1 + negatives) * n rows of slots: rows [0, n) are the positives, and row m * n + e (m = 1 ..
// negatives) pairs example e's user with its m-th negative item. Otherwise rows and examples agree.
struct ExampleBatch {
  absl::Span<const uint32_t> user_slot;
  absl::Span<const uint32_t> item_slot;
  absl::Span<const float> rating;
  uint32_t num_user_slots = 0;
  uint32_t num_item_slots = 0;
};

// Pulled rows: user_emb holds num_user_slots * dim floats, user_bias num_user_slots, likewise for
// items, dense holds dense_rows().floats() floats (the dense_width() weights, then padding).
struct ParamView {
  const float* user_emb;
  const float* item_emb;
  const float* user_bias;
  const float* item_bias;
  const float* dense;
};

// Gradients, laid out like ParamView. TrainStep overwrites all of them.
struct GradView {
  float* user_emb;
  float* item_emb;
  float* user_bias;
  float* item_bias;
  float* dense;
};

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The dense layers' scratch: z and h (MLP only: pre-activation and activation, rows x hidden) and
// the predictions.
struct DenseScratch {
  RowMatrix z;
  RowMatrix h;
  Eigen::VectorXf pred;
};

// The dense layers over features x (rows x features, the bias columns included for BIAS and MLP),
// with the dense row `dense`: s->pred = head(x) + offset, unclipped. Model and CatalogueScorer both
// run this one expression, so that a catalogue score is bit for bit a batch prediction.
void ForwardDense(ModelKind kind, uint32_t hidden, float offset, const RowMatrix& x,
                  const float* dense, DenseScratch* s);

// One model with its scratch space. Not thread-safe: use one per thread.
class Model {
 public:
  // GENRE runs as BIAS: the caller widens the item rows (common/genres.h).
  // Fails on an unspecified model or loss, dim 0, hidden 0 for MLP, or dropout outside [0, 1).
  static absl::StatusOr<Model> Create(const JobConfig& config);

  uint32_t dim() const { return dim_; }
  uint32_t dense_width() const;
  // Where the dense weights live: pull and push these keys of kDenseTable.
  const DenseRows& dense_rows() const { return dense_rows_; }
  bool uses_biases() const { return kind_ != DOT; }

  // Forward and backward for the batch's mean loss (the dense padding's gradients are zero).
  // Returns the mean loss (BPR: over the pairs of the examples rated at least positive_min_rating;
  // 0 when there are none). `dropout_seed` picks the dropout mask, which is a pure function of
  // (dropout_seed, row index, element).
  float TrainStep(const ExampleBatch& batch, const ParamView& params, uint64_t dropout_seed,
                  const GradView& grads);

  // Predictions clipped to [kMinRating, kMaxRating]; out.size() == batch size. No dropout. (Under
  // BPR these are scores squeezed into the rating range, not ratings.)
  void Predict(const ExampleBatch& batch, const ParamView& params, absl::Span<float> out);

 private:
  Model() = default;
  uint32_t features() const { return uses_biases() ? dim_ + 2 : dim_; }
  void BuildFeatures(const ExampleBatch& batch, const ParamView& params);
  void ApplyDropout(uint64_t seed);
  // Sets d_pred_ from fwd_.pred and returns the mean loss: one rating per row, or BPR's pairs.
  double RatingLoss(absl::Span<const float> rating);
  double PairLoss(absl::Span<const float> rating);
  // d_pred_ -> dense grads and dx_.
  void Backward(const float* dense, float* dense_grad);
  void Scatter(const ExampleBatch& batch, const ParamView& params, const GradView& grads);

  ModelKind kind_ = MODEL_UNSPECIFIED;
  Loss loss_ = LOSS_UNSPECIFIED;
  uint32_t dim_ = 0;
  uint32_t hidden_ = 0;
  float dropout_ = 0;
  float offset_ = 0;
  float positive_min_rating_ = 0;  // BPR
  DenseRows dense_rows_;

  // Scratch, sized to the last batch.
  RowMatrix x_;       // batch x features
  RowMatrix mask_;    // batch x dim, DOT dropout scale (0 or 1/keep)
  RowMatrix dx_;      // batch x features
  RowMatrix dh_;      // batch x hidden
  DenseScratch fwd_;  // z, h and pred of the last Forward
  Eigen::VectorXf d_pred_;
};

// Loss of one prediction and its derivative with respect to the prediction. For BPR, `pred` is a
// positive's score and `target` its negative's: -log sigmoid(pred - target), and the derivative is
// with respect to pred (minus that with respect to target).
float LossValue(Loss loss, float pred, float target);
float LossGrad(Loss loss, float pred, float target);

}  // namespace psrec

#endif  // PSREC_COMMON_MODEL_H_
