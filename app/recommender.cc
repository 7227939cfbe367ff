#include "app/recommender.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/genres.h"
#include "common/model.h"

namespace psrec {

absl::StatusOr<std::unique_ptr<Recommender>> Recommender::Create(const JobConfig& config,
                                                                 const Dataset& data,
                                                                 const SplitRows& split,
                                                                 ParamStore* store,
                                                                 MovieCatalog movies, int k) {
  absl::StatusOr<Model> model = Model::Create(config);
  if (!model.ok()) return model.status();
  const size_t items = data.item_ids.size();
  std::vector<uint64_t> keys(data.item_ids.begin(), data.item_ids.end());
  CatalogueRows rows;
  rows.item_emb.resize(items * config.dim());
  rows.item_bias.resize(items);
  rows.dense.resize(model->dense_rows().floats());
  const PullBlock blocks[] = {{kItemEmbeddingTable, keys, absl::MakeSpan(rows.item_emb)},
                              {kItemBiasTable, keys, absl::MakeSpan(rows.item_bias)},
                              {kDenseTable, model->dense_rows().keys, absl::MakeSpan(rows.dense)}};
  if (absl::Status s = store->Pull(blocks); !s.ok()) return s;
  if (config.model() == GENRE) {
    if (movies.path.empty()) {
      return absl::FailedPreconditionError(
          "the genre model scores each movie with its genres, and there is no movies file beside "
          "the ratings (movies.csv, movies.dat or u.item)");
    }
    if (absl::Status s = MixCatalogueGenres(config.dim(), ItemGenres(movies), keys, store,
                                            &rows.item_emb, &rows.item_bias);
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<CatalogueScorer> scorer = CatalogueScorer::Create(config, std::move(rows));
  if (!scorer.ok()) return scorer.status();
  RankingData ranking = MakeRankingData(data, split);
  absl::StatusOr<RankingEvaluator> ranker = RankingEvaluator::Create(data.item_ids, k);
  if (!ranker.ok()) return ranker.status();
  absl::StatusOr<RankingEvaluator> popular = RankingEvaluator::Create(ranking.first_rated, k);
  if (!popular.ok()) return popular.status();
  std::unique_ptr<Recommender> r(
      new Recommender(*std::move(scorer), *std::move(ranker), *std::move(popular)));
  r->store_ = store;
  r->ranking_ = std::move(ranking);
  r->movies_ = std::move(movies);
  for (uint32_t u = 0; u < data.user_ids.size(); ++u) r->user_index_.emplace(data.user_ids[u], u);
  r->user_row_.resize(config.dim() + 1);
  r->scores_.resize(items);
  return r;
}

absl::StatusOr<absl::Span<const float>> Recommender::Score(int64_t user_id) {
  const uint64_t key[] = {static_cast<uint64_t>(user_id)};
  const size_t dim = scorer_.dim();
  const PullBlock blocks[] = {{kUserEmbeddingTable, key, absl::MakeSpan(user_row_).first(dim)},
                              {kUserBiasTable, key, absl::MakeSpan(user_row_).subspan(dim, 1)}};
  if (absl::Status s = store_->Pull(blocks); !s.ok()) return s;
  if (absl::Status s = scorer_.Score(absl::MakeConstSpan(user_row_).first(dim), user_row_[dim],
                                     absl::MakeSpan(scores_));
      !s.ok()) {
    return s;
  }
  return absl::Span<const float>(scores_);
}

absl::StatusOr<Recommendation> Recommender::Recommend(int64_t user_id) {
  if (absl::StatusOr<absl::Span<const float>> s = Score(user_id); !s.ok()) return s.status();
  Recommendation out;
  const auto it = user_index_.find(user_id);
  absl::StatusOr<absl::Span<const uint32_t>> top;
  if (it != user_index_.end() && !ranking_.train.of(it->second).empty()) {
    top = ranker_.TopK(scores_, ranking_.train.of(it->second));
  } else {
    out.fallback = absl::StrCat("user ", user_id,
                                it == user_index_.end() ? " is not in the ratings file"
                                                        : " has no training rating in this split",
                                "; these are the ", ranker_.k(), " most-rated training movies");
    top = popular_.TopK(ranking_.train_counts, {});
  }
  if (!top.ok()) return top.status();
  for (const uint32_t item : *top) {
    const int64_t movie_id = ranking_.item_ids[item];
    out.entries.push_back(
        {item, movie_id, scores_[item], ClipRating(scores_[item]), movies_.Find(movie_id)});
  }
  return out;
}

}  // namespace psrec
