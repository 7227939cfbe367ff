#include "worker/trainer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/negative_sampler.h"
#include "common/rng.h"
#include "worker/worker_metrics.h"

namespace psrec {

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const JobConfig& config,
                                                         const RatingTable* data,
                                                         ParamStore* store) {
  absl::StatusOr<Model> model = Model::Create(config);
  if (!model.ok()) return model.status();
  if (config.batch_size() == 0) return absl::InvalidArgumentError("batch_size must be at least 1");
  std::unique_ptr<Trainer> trainer(new Trainer(config, data, store, *std::move(model)));
  if (config.model() == GENRE) {
    absl::StatusOr<ItemGenres> genres = ReadItemGenres(config.data_dir());
    if (!genres.ok()) return genres.status();
    PSREC_LOG(INFO) << genres->path() << ": " << genres->num_genres() << " genres over "
                    << genres->num_movies_with_genres()
                    << " movies; a movie with none listed there keeps its own rows";
    trainer->genres_ = std::make_unique<ItemGenres>(*std::move(genres));
  }
  return trainer;
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const JobConfig& config,
                                                         const Dataset* data, ParamStore* store) {
  absl::StatusOr<std::unique_ptr<RatingTable>> table = RatingTable::CopyOf(*data);
  if (!table.ok()) return table.status();
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = Create(config, table->get(), store);
  if (trainer.ok()) (*trainer)->owned_data_ = *std::move(table);
  return trainer;
}

Trainer::Trainer(const JobConfig& config, const RatingTable* data, ParamStore* store, Model model)
    : config_(config),
      data_(data),
      store_(store),
      model_(std::move(model)),
      user_stamp_(data->num_users(), 0),
      item_stamp_(data->num_items(), 0),
      user_slot_of_(data->num_users()),
      item_slot_of_(data->num_items()),
      g_dense_(model_.dense_rows().floats()) {
  for (Batch& batch : batches_) batch.dense.resize(model_.dense_rows().floats());
}

uint32_t Trainer::ItemSlot(uint32_t item, Batch* batch) {
  if (item_stamp_[item] != batch_stamp_) {
    item_stamp_[item] = batch_stamp_;
    item_slot_of_[item] = static_cast<uint32_t>(batch->item_keys.size());
    batch->item_keys.push_back(static_cast<uint64_t>(data_->item_id(item)));
  }
  return item_slot_of_[item];
}

void Trainer::AddNegatives(uint64_t step, Batch* batch) {
  const size_t n = batch->rating.size();
  const size_t negatives = config_.negatives();
  const auto num_items = static_cast<uint32_t>(data_->num_items());
  batch->user_slot.resize(n * (1 + negatives));
  batch->item_slot.resize(n * (1 + negatives));
  negative_items_.resize(negatives);
  for (size_t e = 0; e < n; ++e) {
    SampleNegatives(config_.seed(), step, e, num_items, absl::MakeSpan(negative_items_));
    for (size_t m = 1; m <= negatives; ++m) {
      batch->user_slot[m * n + e] = batch->user_slot[e];
      batch->item_slot[m * n + e] = ItemSlot(negative_items_[m - 1], batch);
    }
  }
}

void Trainer::Gather(absl::Span<const uint32_t> rows, std::optional<uint64_t> negatives_step,
                     Batch* batch) {
  if (++batch_stamp_ == 0) {  // wrapped: forget every stamp
    std::fill(user_stamp_.begin(), user_stamp_.end(), 0);
    std::fill(item_stamp_.begin(), item_stamp_.end(), 0);
    batch_stamp_ = 1;
  }
  batch->user_keys.clear();
  batch->item_keys.clear();
  batch->user_slot.resize(rows.size());
  batch->item_slot.resize(rows.size());
  batch->rating.resize(rows.size());
  for (size_t e = 0; e < rows.size(); ++e) {
    const RatingTable::Row r = data_->Get(rows[e]);
    if (user_stamp_[r.user] != batch_stamp_) {
      user_stamp_[r.user] = batch_stamp_;
      user_slot_of_[r.user] = static_cast<uint32_t>(batch->user_keys.size());
      batch->user_keys.push_back(static_cast<uint64_t>(data_->user_id(r.user)));
    }
    batch->user_slot[e] = user_slot_of_[r.user];
    batch->item_slot[e] = ItemSlot(r.item, batch);
    batch->rating[e] = r.rating;
  }
  if (negatives_step.has_value() && config_.loss() == BPR) AddNegatives(*negatives_step, batch);
  const size_t dim = model_.dim();
  batch->user_emb.resize(batch->user_keys.size() * dim);
  batch->item_emb.resize(batch->item_keys.size() * dim);
  batch->user_bias.resize(batch->user_keys.size());
  batch->item_bias.resize(batch->item_keys.size());
  batch->blocks = {
      {kUserEmbeddingTable, batch->user_keys, absl::MakeSpan(batch->user_emb)},
      {kItemEmbeddingTable, batch->item_keys, absl::MakeSpan(batch->item_emb)},
      {kDenseTable, model_.dense_rows().keys, absl::MakeSpan(batch->dense)},
  };
  if (model_.uses_biases()) {
    batch->blocks.push_back({kUserBiasTable, batch->user_keys, absl::MakeSpan(batch->user_bias)});
    batch->blocks.push_back({kItemBiasTable, batch->item_keys, absl::MakeSpan(batch->item_bias)});
  }
  if (genres_ != nullptr) {
    batch->genre.Gather(*genres_, model_.dim(), batch->item_keys, &batch->blocks);
  }
}

ExampleBatch Trainer::Examples(const Batch& batch) const {
  return ExampleBatch{batch.user_slot, batch.item_slot, batch.rating,
                      static_cast<uint32_t>(batch.user_keys.size()),
                      static_cast<uint32_t>(batch.item_keys.size())};
}

ParamView Trainer::Params(Batch& batch) const {
  if (genres_ != nullptr) {
    batch.genre.Mix(model_.dim(), batch.item_emb.data(), batch.item_bias.data());
    return ParamView{batch.user_emb.data(), batch.genre.item_emb.data(), batch.user_bias.data(),
                     batch.genre.item_bias.data(), batch.dense.data()};
  }
  return ParamView{batch.user_emb.data(), batch.item_emb.data(), batch.user_bias.data(),
                   batch.item_bias.data(), batch.dense.data()};
}

absl::StatusOr<float> Trainer::ComputeAndPush(Batch& batch, uint64_t step) {
  g_user_emb_.resize(batch.user_emb.size());
  g_item_emb_.resize(batch.item_emb.size());
  g_user_bias_.resize(batch.user_bias.size());
  g_item_bias_.resize(batch.item_bias.size());
  const GradView grads{g_user_emb_.data(), g_item_emb_.data(), g_user_bias_.data(),
                       g_item_bias_.data(), g_dense_.data()};
  const float loss = Timed(WorkerMetrics::Get().compute, [&] {
    return model_.TrainStep(Examples(batch), Params(batch), HashCombine(config_.seed(), step),
                            grads);
  });
  push_blocks_.clear();  // keeps its capacity: no allocation per batch
  push_blocks_.push_back({kUserEmbeddingTable, batch.user_keys, g_user_emb_});
  push_blocks_.push_back({kItemEmbeddingTable, batch.item_keys, g_item_emb_});
  push_blocks_.push_back({kDenseTable, model_.dense_rows().keys, g_dense_});
  if (model_.uses_biases()) {
    push_blocks_.push_back({kUserBiasTable, batch.user_keys, g_user_bias_});
    push_blocks_.push_back({kItemBiasTable, batch.item_keys, g_item_bias_});
  }
  if (genres_ != nullptr) {
    batch.genre.Backward(model_.dim(), g_item_emb_.data(), g_item_bias_.data(), &push_blocks_);
  }
  // A store may defer the push into the next pull (ParamStore::Push), whose time then holds it.
  const auto push = [&] { return store_->Push(push_blocks_); };
  if (absl::Status s = Timed(WorkerMetrics::Get().push, push); !s.ok()) return s;
  return loss;
}

absl::StatusOr<TrainStats> Trainer::Train(absl::Span<const uint32_t> rows, uint64_t first_step,
                                          const TrainHooks& hooks) {
  const size_t size = config_.batch_size();
  const size_t num_batches = (rows.size() + size - 1) / size;
  // The hook, then batch b's keys gathered into its buffer and its pull sent (and, without
  // prefetch, answered).
  auto start = [&](size_t b) -> absl::Status {
    if (hooks.before_batch) {
      if (absl::Status s = hooks.before_batch(b); !s.ok()) return s;
    }
    Batch& batch = batches_[b % kPrefetch];
    Gather(rows.subspan(b * size, size), first_step + b, &batch);
    if (prefetch_) return store_->StartPull(batch.blocks);
    return Timed(WorkerMetrics::Get().pull, [&] { return store_->Pull(batch.blocks); });
  };
  // With prefetch, the pulls of the next kPrefetch batches travel while this one computes.
  size_t started = 0;
  const auto start_ahead = [&](size_t b) -> absl::Status {
    for (; prefetch_ && started < std::min(num_batches, b + kPrefetch); ++started) {
      if (absl::Status s = start(started); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  // After a failure: the pulls still in flight land before their buffers go.
  const auto fail = [&](size_t waited, absl::Status status) {
    for (size_t k = waited; prefetch_ && k < started; ++k) (void)store_->Wait();
    return status;
  };
  TrainStats stats;
  if (absl::Status s = start_ahead(0); !s.ok()) return fail(0, s);
  for (size_t b = 0; b < num_batches; ++b) {
    if (prefetch_) {
      const auto wait = [&] { return store_->Wait(); };
      if (absl::Status s = Timed(WorkerMetrics::Get().pull, wait); !s.ok()) return fail(b + 1, s);
    } else if (absl::Status s = start(b); !s.ok()) {
      return s;
    }
    Batch& batch = batches_[b % kPrefetch];
    absl::StatusOr<float> loss = ComputeAndPush(batch, first_step + b);
    if (!loss.ok()) return fail(b + 1, loss.status());
    stats.loss_sum += static_cast<double>(*loss) * static_cast<double>(batch.rating.size());
    stats.examples += batch.rating.size();
    ++stats.batches;
    WorkerMetrics::Get().ratings.Increment(static_cast<double>(batch.rating.size()));
    WorkerMetrics::Get().loss.Set(stats.mean_loss());
    if (hooks.progress) hooks.progress(stats);
    // Batch b's buffer is free once its push is made: batch b + kPrefetch takes it.
    if (absl::Status s = start_ahead(b + 1); !s.ok()) return fail(b + 1, s);
  }
  return stats;
}

absl::Status Trainer::Predict(absl::Span<const uint32_t> rows, absl::Span<float> out) {
  if (out.size() != rows.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Predict: ", rows.size(), " rows but room for ", out.size()));
  }
  // Prediction needs no gradients, so it can take larger bites than training.
  const size_t size = std::max<size_t>(config_.batch_size(), 4096);
  Batch& batch = batches_[0];
  for (size_t begin = 0; begin < rows.size(); begin += size) {
    const absl::Span<const uint32_t> part = rows.subspan(begin, size);
    Gather(part, std::nullopt, &batch);
    if (absl::Status s = store_->Pull(batch.blocks); !s.ok()) return s;
    model_.Predict(Examples(batch), Params(batch), out.subspan(begin, part.size()));
  }
  return absl::OkStatus();
}

}  // namespace psrec
