#include "common/catalogue_scorer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/model.h"
#include "common/movielens.h"

namespace psrec {
namespace {

using ConstVecMap = Eigen::Map<const Eigen::VectorXf>;
using ConstRowMatMap =
    Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

}  // namespace

float ClipRating(float score) { return std::clamp(score, kMinRating, kMaxRating); }

absl::StatusOr<CatalogueScorer> CatalogueScorer::Create(const JobConfig& config,
                                                        CatalogueRows rows) {
  absl::StatusOr<Model> model = Model::Create(config);
  if (!model.ok()) return model.status();
  const size_t dim = config.dim();
  if (rows.item_emb.size() % dim != 0 || rows.item_bias.size() != rows.item_emb.size() / dim ||
      rows.dense.size() != model->dense_rows().floats()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "catalogue rows do not fit the ", config.dim(), "-wide model: ", rows.item_emb.size(),
        " embedding floats, ", rows.item_bias.size(), " biases, ", rows.dense.size(),
        " dense floats (want ", model->dense_rows().floats(), ")"));
  }
  CatalogueScorer scorer;
  scorer.kind_ = config.model();
  scorer.dim_ = config.dim();
  scorer.hidden_ = config.hidden();
  scorer.offset_ = config.rating_offset();
  scorer.items_ = static_cast<Eigen::Index>(rows.item_bias.size());
  scorer.rows_ = std::move(rows);
  scorer.x_.resize(scorer.items_, scorer.features());
  if (scorer.kind_ != DOT) {
    // Model::BuildFeatures' column dim holds the user's bias (set per user), dim + 1 the item's.
    scorer.x_.col(scorer.dim_ + 1) = ConstVecMap(scorer.rows_.item_bias.data(), scorer.items_);
  }
  return scorer;
}

absl::Status CatalogueScorer::Score(absl::Span<const float> user_emb, float user_bias,
                                    absl::Span<float> scores) {
  if (user_emb.size() != dim_ || scores.size() != size()) {
    return absl::InvalidArgumentError(absl::StrCat("a ", user_emb.size(), "-wide user row and ",
                                                   scores.size(), " scores for a ", dim_,
                                                   "-wide model of ", items_, " items"));
  }
  // The interaction u (.) v for every item at once; each element is the one float product that
  // Model::BuildFeatures computes for that pair.
  const ConstRowMatMap items(rows_.item_emb.data(), items_, dim_);
  const ConstVecMap user(user_emb.data(), dim_);
  x_.leftCols(dim_) = items.array().rowwise() * user.transpose().array();
  if (kind_ != DOT) x_.col(dim_).setConstant(user_bias);
  ForwardDense(kind_, hidden_, offset_, x_, rows_.dense.data(), &fwd_);
  std::copy(fwd_.pred.data(), fwd_.pred.data() + items_, scores.begin());
  return absl::OkStatus();
}

}  // namespace psrec
