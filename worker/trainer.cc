#include "worker/trainer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rng.h"

namespace psrec {

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const JobConfig& config,
                                                         const Dataset* data, ParamStore* store) {
  absl::StatusOr<Model> model = Model::Create(config);
  if (!model.ok()) return model.status();
  if (config.batch_size() == 0) return absl::InvalidArgumentError("batch_size must be at least 1");
  return std::unique_ptr<Trainer>(new Trainer(config, data, store, *std::move(model)));
}

Trainer::Trainer(const JobConfig& config, const Dataset* data, ParamStore* store, Model model)
    : config_(config),
      data_(data),
      store_(store),
      model_(std::move(model)),
      user_stamp_(data->user_ids.size(), 0),
      item_stamp_(data->item_ids.size(), 0),
      user_slot_of_(data->user_ids.size()),
      item_slot_of_(data->item_ids.size()),
      dense_(model_.dense_width()),
      g_dense_(model_.dense_width()) {}

void Trainer::Gather(absl::Span<const uint32_t> rows) {
  if (++batch_stamp_ == 0) {  // wrapped: forget every stamp
    std::fill(user_stamp_.begin(), user_stamp_.end(), 0);
    std::fill(item_stamp_.begin(), item_stamp_.end(), 0);
    batch_stamp_ = 1;
  }
  user_keys_.clear();
  item_keys_.clear();
  user_slot_.resize(rows.size());
  item_slot_.resize(rows.size());
  rating_.resize(rows.size());
  for (size_t e = 0; e < rows.size(); ++e) {
    const Rating& r = data_->ratings[rows[e]];
    if (user_stamp_[r.user] != batch_stamp_) {
      user_stamp_[r.user] = batch_stamp_;
      user_slot_of_[r.user] = static_cast<uint32_t>(user_keys_.size());
      user_keys_.push_back(static_cast<uint64_t>(data_->user_ids[r.user]));
    }
    if (item_stamp_[r.item] != batch_stamp_) {
      item_stamp_[r.item] = batch_stamp_;
      item_slot_of_[r.item] = static_cast<uint32_t>(item_keys_.size());
      item_keys_.push_back(static_cast<uint64_t>(data_->item_ids[r.item]));
    }
    user_slot_[e] = user_slot_of_[r.user];
    item_slot_[e] = item_slot_of_[r.item];
    rating_[e] = r.rating;
  }
  const size_t dim = model_.dim();
  user_emb_.resize(user_keys_.size() * dim);
  item_emb_.resize(item_keys_.size() * dim);
  user_bias_.resize(user_keys_.size());
  item_bias_.resize(item_keys_.size());
}

absl::Status Trainer::PullRows() {
  static const uint64_t kDenseKeys[] = {kDenseKey};
  std::vector<PullBlock> blocks = {
      {kUserEmbeddingTable, user_keys_, absl::MakeSpan(user_emb_)},
      {kItemEmbeddingTable, item_keys_, absl::MakeSpan(item_emb_)},
      {kDenseTable, kDenseKeys, absl::MakeSpan(dense_)},
  };
  if (model_.uses_biases()) {
    blocks.push_back({kUserBiasTable, user_keys_, absl::MakeSpan(user_bias_)});
    blocks.push_back({kItemBiasTable, item_keys_, absl::MakeSpan(item_bias_)});
  }
  return store_->Pull(blocks);
}

ExampleBatch Trainer::Batch() const {
  return ExampleBatch{user_slot_, item_slot_, rating_, static_cast<uint32_t>(user_keys_.size()),
                      static_cast<uint32_t>(item_keys_.size())};
}

ParamView Trainer::Params() const {
  return ParamView{user_emb_.data(), item_emb_.data(), user_bias_.data(), item_bias_.data(),
                   dense_.data()};
}

absl::StatusOr<float> Trainer::Step(absl::Span<const uint32_t> rows, uint64_t step) {
  Gather(rows);
  if (absl::Status s = PullRows(); !s.ok()) return s;
  g_user_emb_.resize(user_emb_.size());
  g_item_emb_.resize(item_emb_.size());
  g_user_bias_.resize(user_bias_.size());
  g_item_bias_.resize(item_bias_.size());
  const GradView grads{g_user_emb_.data(), g_item_emb_.data(), g_user_bias_.data(),
                       g_item_bias_.data(), g_dense_.data()};
  const float loss = model_.TrainStep(Batch(), Params(), HashCombine(config_.seed(), step), grads);
  static const uint64_t kDenseKeys[] = {kDenseKey};
  std::vector<PushBlock> blocks = {
      {kUserEmbeddingTable, user_keys_, g_user_emb_},
      {kItemEmbeddingTable, item_keys_, g_item_emb_},
      {kDenseTable, kDenseKeys, g_dense_},
  };
  if (model_.uses_biases()) {
    blocks.push_back({kUserBiasTable, user_keys_, g_user_bias_});
    blocks.push_back({kItemBiasTable, item_keys_, g_item_bias_});
  }
  if (absl::Status s = store_->Push(blocks); !s.ok()) return s;
  return loss;
}

absl::StatusOr<TrainStats> Trainer::Train(absl::Span<const uint32_t> rows, uint64_t first_step,
                                          const ProgressFn& progress) {
  TrainStats stats;
  const size_t batch = config_.batch_size();
  for (size_t begin = 0; begin < rows.size(); begin += batch) {
    const absl::Span<const uint32_t> part = rows.subspan(begin, batch);
    absl::StatusOr<float> loss = Step(part, first_step + stats.batches);
    if (!loss.ok()) return loss.status();
    stats.loss_sum += static_cast<double>(*loss) * static_cast<double>(part.size());
    stats.examples += part.size();
    ++stats.batches;
    if (progress) progress(stats.examples);
  }
  return stats;
}

absl::Status Trainer::Predict(absl::Span<const uint32_t> rows, absl::Span<float> out) {
  if (out.size() != rows.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Predict: ", rows.size(), " rows but room for ", out.size()));
  }
  // Prediction needs no gradients, so it can take larger bites than training.
  const size_t batch = std::max<size_t>(config_.batch_size(), 4096);
  for (size_t begin = 0; begin < rows.size(); begin += batch) {
    const absl::Span<const uint32_t> part = rows.subspan(begin, batch);
    Gather(part);
    if (absl::Status s = PullRows(); !s.ok()) return s;
    model_.Predict(Batch(), Params(), out.subspan(begin, part.size()));
  }
  return absl::OkStatus();
}

}  // namespace psrec
