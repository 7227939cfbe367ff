// Scores one user against every item of a catalogue at once: the model's forward pass
// (common/model.h) over a batch whose rows are the whole catalogue, with the same Eigen
// expressions, so that a score clipped to [kMinRating, kMaxRating] is what Model::Predict gives for
// that (user, item) pair in a batch laid out the same way (tests/common/catalogue_scorer_test.cc
// checks it bit for bit).
//
// Scores are left unclipped: a ranking must tell apart two items that both predict above 5 stars.
#ifndef PSREC_COMMON_CATALOGUE_SCORER_H_
#define PSREC_COMMON_CATALOGUE_SCORER_H_

#include <cstdint>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model.h"
#include "proto/config.pb.h"

namespace psrec {

// The rows of every catalogue item, packed in catalogue order, and the dense row.
struct CatalogueRows {
  std::vector<float> item_emb;   // items x dim
  std::vector<float> item_bias;  // items (read by the bias and mlp models only)
  std::vector<float> dense;      // Model::dense_rows().floats() floats, as pulled
};

// Owns the item rows and the scratch of one user's pass. Not thread-safe: one per thread.
class CatalogueScorer {
 public:
  // InvalidArgument for a config Model::Create refuses, or rows whose sizes do not fit it.
  static absl::StatusOr<CatalogueScorer> Create(const JobConfig& config, CatalogueRows rows);

  size_t size() const { return static_cast<size_t>(items_); }
  uint32_t dim() const { return dim_; }

  // Writes to `scores` (size() floats) the unclipped prediction, rating offset included, of the
  // user with these rows for every item. InvalidArgument when a size is wrong.
  absl::Status Score(absl::Span<const float> user_emb, float user_bias, absl::Span<float> scores);

 private:
  CatalogueScorer() = default;
  uint32_t features() const { return kind_ == DOT ? dim_ : dim_ + 2; }

  ModelKind kind_ = MODEL_UNSPECIFIED;
  uint32_t dim_ = 0;
  uint32_t hidden_ = 0;
  float offset_ = 0;
  Eigen::Index items_ = 0;
  CatalogueRows rows_;
  // Scratch, as Model's: x_ is items x features, its bias columns filled once by Create.
  RowMatrix x_;
  DenseScratch fwd_;
};

// A score as Model::Predict reports it: clipped to [kMinRating, kMaxRating].
float ClipRating(float score);

}  // namespace psrec

#endif  // PSREC_COMMON_CATALOGUE_SCORER_H_
