#include "common/model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/movielens.h"
#include "common/rng.h"
#include "common/sharding.h"

namespace psrec {
namespace {

using ConstVecMap = Eigen::Map<const Eigen::VectorXf>;
using VecMap = Eigen::Map<Eigen::VectorXf>;
using ConstRowMatMap =
    Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
using RowMatMap = Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

constexpr float kHuberDelta = 1.0f;

TableSpec MakeSpec(uint32_t id, const char* name, uint32_t width, InitKind init, float scale,
                   float l2) {
  TableSpec spec;
  spec.set_id(id);
  spec.set_name(name);
  spec.set_width(width);
  spec.set_init(init);
  spec.set_init_scale(scale);
  spec.set_l2(l2);
  return spec;
}

uint32_t DenseWidth(ModelKind kind, uint32_t features, uint32_t hidden) {
  if (kind == MLP) return hidden * features + 2 * hidden + 1;
  return features + 1;
}

}  // namespace

DenseRows SplitDense(uint32_t dense_width) {
  DenseRows rows;
  const uint32_t n = std::max<uint32_t>(1, (dense_width + kDenseRowFloats - 1) / kDenseRowFloats);
  // Several rows: a multiple of 4 floats each, so that the server updates every weight in a SIMD
  // packet, as it does all but the last dense_width % 4 of one row (ps/optimizer.cc).
  rows.width = n == 1 ? dense_width : ((dense_width + n - 1) / n + 3) / 4 * 4;
  rows.keys.reserve(n);
  rows.keys.push_back(kDenseKey);
  const uint32_t first = ShardOf(kDenseTable, kDenseKey, kDenseSpread);
  for (uint32_t j = 1; j < n; ++j) {
    // The next key of residue first + j: past the last key of that residue, or past kDenseKey.
    const uint32_t want = (first + j) % kDenseSpread;
    uint64_t key = (j < kDenseSpread ? kDenseKey : rows.keys[j - kDenseSpread]) + 1;
    while (ShardOf(kDenseTable, key, kDenseSpread) != want) ++key;
    rows.keys.push_back(key);
  }
  return rows;
}

float LossValue(Loss loss, float pred, float target) {
  const float r = pred - target;
  switch (loss) {
    case MSE:
      return r * r;
    case BPR:  // softplus(-r), without overflow for large |r|
      return r > 0 ? std::log1p(std::exp(-r)) : -r + std::log1p(std::exp(r));
    case HUBER: {
      const float a = std::fabs(r);
      return a <= kHuberDelta ? 0.5f * r * r : kHuberDelta * (a - 0.5f * kHuberDelta);
    }
    default:
      return std::fabs(r);
  }
}

float LossGrad(Loss loss, float pred, float target) {
  const float r = pred - target;
  switch (loss) {
    case MSE:
      return 2.0f * r;
    case BPR:  // -sigmoid(-r)
      return -1.0f / (1.0f + std::exp(r));
    case HUBER:
      return std::clamp(r, -kHuberDelta, kHuberDelta);
    default:
      return static_cast<float>((r > 0) - (r < 0));
  }
}

void FillTableSpecs(JobConfig* config) {
  const uint32_t features = config->model() == DOT ? config->dim() : config->dim() + 2;
  const uint32_t fan_out = config->model() == MLP ? config->hidden() : 1;
  // Glorot's uniform limit for the first dense layer; one scale serves the whole dense row.
  const float dense_scale = std::sqrt(6.0f / static_cast<float>(features + fan_out));
  config->clear_tables();
  *config->add_tables() = MakeSpec(kUserEmbeddingTable, "user_embedding", config->dim(), UNIFORM,
                                   config->init_scale(), config->l2());
  *config->add_tables() = MakeSpec(kItemEmbeddingTable, "item_embedding", config->dim(), UNIFORM,
                                   config->init_scale(), config->l2());
  *config->add_tables() = MakeSpec(kUserBiasTable, "user_bias", 1, ZEROS, 0, config->l2());
  *config->add_tables() = MakeSpec(kItemBiasTable, "item_bias", 1, ZEROS, 0, config->l2());
  *config->add_tables() =
      MakeSpec(kDenseTable, "dense",
               SplitDense(DenseWidth(config->model(), features, config->hidden())).width, UNIFORM,
               dense_scale, config->l2_dense());
  if (config->model() == GENRE) {
    *config->add_tables() =
        MakeSpec(kGenreEmbeddingTable, "genre_embedding", config->dim(), ZEROS, 0, config->l2());
    *config->add_tables() = MakeSpec(kGenreBiasTable, "genre_bias", 1, ZEROS, 0, config->l2());
  }
}

absl::StatusOr<Model> Model::Create(const JobConfig& config) {
  if (config.model() != DOT && config.model() != BIAS && config.model() != MLP &&
      config.model() != GENRE) {
    return absl::InvalidArgumentError("model must be dot, bias, mlp or genre");
  }
  if (config.loss() != MAE && config.loss() != MSE && config.loss() != HUBER &&
      config.loss() != BPR) {
    return absl::InvalidArgumentError("loss must be mae, mse, huber or bpr");
  }
  if (config.dim() == 0) return absl::InvalidArgumentError("dim must be at least 1");
  if (config.model() == MLP && config.hidden() == 0) {
    return absl::InvalidArgumentError("hidden must be at least 1 for the mlp model");
  }
  if (!(config.dropout() >= 0 && config.dropout() < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dropout ", config.dropout(), " is not in [0, 1)"));
  }
  Model model;
  model.kind_ = config.model();
  model.loss_ = config.loss();
  model.dim_ = config.dim();
  model.hidden_ = config.hidden();
  model.dropout_ = config.dropout();
  model.offset_ = config.rating_offset();
  model.positive_min_rating_ = config.positive_min_rating();
  model.dense_rows_ = SplitDense(model.dense_width());
  return model;
}

uint32_t Model::dense_width() const { return DenseWidth(kind_, features(), hidden_); }

void Model::BuildFeatures(const ExampleBatch& batch, const ParamView& params) {
  const Eigen::Index n = static_cast<Eigen::Index>(batch.user_slot.size());
  x_.resize(n, features());
  for (Eigen::Index e = 0; e < n; ++e) {
    const uint32_t u = batch.user_slot[e];
    const uint32_t i = batch.item_slot[e];
    x_.row(e).head(dim_) = (ConstVecMap(params.user_emb + size_t{u} * dim_, dim_).array() *
                            ConstVecMap(params.item_emb + size_t{i} * dim_, dim_).array())
                               .transpose();
    if (uses_biases()) {
      x_(e, dim_) = params.user_bias[u];
      x_(e, dim_ + 1) = params.item_bias[i];
    }
  }
}

void Model::ApplyDropout(uint64_t seed) {
  const float keep = 1.0f - dropout_;
  const float scale = 1.0f / keep;
  // One 64-bit draw gives four 16-bit uniforms; the keep probability is resolved to 1/65536.
  const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(keep) * 65536.0);
  mask_.resize(x_.rows(), dim_);
  for (Eigen::Index e = 0; e < x_.rows(); ++e) {
    Rng rng(HashCombine(seed, static_cast<uint64_t>(e)));
    float* row = mask_.row(e).data();
    uint64_t bits = 0;
    for (uint32_t j = 0; j < dim_; ++j) {
      if (j % 4 == 0) bits = rng.Next();
      row[j] = (bits & 0xffff) < threshold ? scale : 0.0f;
      bits >>= 16;
    }
  }
  x_.leftCols(dim_).array() *= mask_.array();
}

void ForwardDense(ModelKind kind, uint32_t hidden, float offset, const RowMatrix& x,
                  const float* dense, DenseScratch* s) {
  const auto f = static_cast<uint32_t>(x.cols());
  if (kind == MLP) {
    ConstRowMatMap w1(dense, hidden, f);
    ConstVecMap b1(dense + size_t{hidden} * f, hidden);
    ConstVecMap w2(dense + size_t{hidden} * f + hidden, hidden);
    const float b2 = dense[size_t{hidden} * f + 2 * hidden];
    s->z.noalias() = x * w1.transpose();
    s->z.rowwise() += b1.transpose();
    s->h = s->z.cwiseMax(0.0f);
    s->pred.noalias() = s->h * w2;
    s->pred.array() += b2 + offset;
  } else {
    ConstVecMap w(dense, f);
    s->pred.noalias() = x * w;
    s->pred.array() += dense[f] + offset;
  }
}

void Model::Backward(const float* dense, float* dense_grad) {
  const uint32_t f = features();
  if (kind_ == MLP) {
    ConstRowMatMap w1(dense, hidden_, f);
    ConstVecMap w2(dense + size_t{hidden_} * f + hidden_, hidden_);
    RowMatMap g_w1(dense_grad, hidden_, f);
    VecMap g_b1(dense_grad + size_t{hidden_} * f, hidden_);
    VecMap g_w2(dense_grad + size_t{hidden_} * f + hidden_, hidden_);
    g_w2.noalias() = fwd_.h.transpose() * d_pred_;
    dense_grad[size_t{hidden_} * f + 2 * hidden_] = d_pred_.sum();
    dh_.noalias() = d_pred_ * w2.transpose();
    dh_.array() *= (fwd_.z.array() > 0.0f).cast<float>();
    g_w1.noalias() = dh_.transpose() * x_;
    g_b1 = dh_.colwise().sum().transpose();
    dx_.noalias() = dh_ * w1;
  } else {
    ConstVecMap w(dense, f);
    VecMap(dense_grad, f).noalias() = x_.transpose() * d_pred_;
    dense_grad[f] = d_pred_.sum();
    dx_.noalias() = d_pred_ * w.transpose();
  }
}

void Model::Scatter(const ExampleBatch& batch, const ParamView& params, const GradView& grads) {
  std::fill_n(grads.user_emb, size_t{batch.num_user_slots} * dim_, 0.0f);
  std::fill_n(grads.item_emb, size_t{batch.num_item_slots} * dim_, 0.0f);
  if (uses_biases()) {
    std::fill_n(grads.user_bias, batch.num_user_slots, 0.0f);
    std::fill_n(grads.item_bias, batch.num_item_slots, 0.0f);
  }
  if (dropout_ > 0) dx_.leftCols(dim_).array() *= mask_.array();
  for (Eigen::Index e = 0; e < dx_.rows(); ++e) {
    const size_t u = batch.user_slot[e];
    const size_t i = batch.item_slot[e];
    const auto d = dx_.row(e).head(dim_).transpose().array();
    VecMap(grads.user_emb + u * dim_, dim_).array() +=
        d * ConstVecMap(params.item_emb + i * dim_, dim_).array();
    VecMap(grads.item_emb + i * dim_, dim_).array() +=
        d * ConstVecMap(params.user_emb + u * dim_, dim_).array();
    if (uses_biases()) {
      grads.user_bias[u] += dx_(e, dim_);
      grads.item_bias[i] += dx_(e, dim_ + 1);
    }
  }
}

float Model::TrainStep(const ExampleBatch& batch, const ParamView& params, uint64_t dropout_seed,
                       const GradView& grads) {
  BuildFeatures(batch, params);
  if (dropout_ > 0) ApplyDropout(dropout_seed);
  ForwardDense(kind_, hidden_, offset_, x_, params.dense, &fwd_);
  const double loss = loss_ == BPR ? PairLoss(batch.rating) : RatingLoss(batch.rating);
  Backward(params.dense, grads.dense);
  std::fill(grads.dense + dense_width(), grads.dense + dense_rows_.floats(), 0.0f);
  Scatter(batch, params, grads);
  return static_cast<float>(loss);
}

double Model::RatingLoss(absl::Span<const float> rating) {
  const Eigen::Index n = fwd_.pred.size();
  d_pred_.resize(n);
  double loss = 0;
  const float scale = 1.0f / static_cast<float>(n);
  for (Eigen::Index e = 0; e < n; ++e) {
    loss += LossValue(loss_, fwd_.pred[e], rating[e]);
    d_pred_[e] = LossGrad(loss_, fwd_.pred[e], rating[e]) * scale;
  }
  return loss / static_cast<double>(n);
}

double Model::PairLoss(absl::Span<const float> rating) {
  const auto n = static_cast<Eigen::Index>(rating.size());
  const Eigen::Index negatives = n == 0 ? 0 : fwd_.pred.size() / n - 1;
  d_pred_.setZero(fwd_.pred.size());
  Eigen::Index positives = 0;
  for (const float r : rating) positives += r >= positive_min_rating_ ? 1 : 0;
  if (positives == 0 || negatives == 0) return 0;
  const Eigen::Index pairs = positives * negatives;
  const float scale = 1.0f / static_cast<float>(pairs);
  double loss = 0;
  for (Eigen::Index e = 0; e < n; ++e) {
    if (rating[e] < positive_min_rating_) continue;
    for (Eigen::Index m = 1; m <= negatives; ++m) {
      const Eigen::Index j = m * n + e;
      loss += LossValue(BPR, fwd_.pred[e], fwd_.pred[j]);
      const float g = LossGrad(BPR, fwd_.pred[e], fwd_.pred[j]) * scale;
      d_pred_[e] += g;
      d_pred_[j] -= g;
    }
  }
  return loss / static_cast<double>(pairs);
}

void Model::Predict(const ExampleBatch& batch, const ParamView& params, absl::Span<float> out) {
  BuildFeatures(batch, params);
  ForwardDense(kind_, hidden_, offset_, x_, params.dense, &fwd_);
  for (size_t e = 0; e < out.size(); ++e) {
    out[e] = std::clamp(fwd_.pred[static_cast<Eigen::Index>(e)], kMinRating, kMaxRating);
  }
}

}  // namespace psrec
