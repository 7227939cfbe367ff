// A user's top K movies from a trained model: every catalogue movie the user did not rate in
// training, scored at once (CatalogueScorer) and ranked as the ranking metrics rank them
// (RankingEvaluator::TopK: ties to the smaller movie id). A user with no training rating gets the
// K most-rated training movies instead, ties broken as the popularity baseline breaks them
// (common/ranking_data.h).
#ifndef PSREC_APP_RECOMMENDER_H_
#define PSREC_APP_RECOMMENDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/catalogue_scorer.h"
#include "common/movielens.h"
#include "common/movies.h"
#include "common/param_store.h"
#include "common/ranking.h"
#include "common/ranking_data.h"
#include "common/split.h"
#include "proto/config.pb.h"

namespace psrec {

struct Recommendation {
  struct Entry {
    uint32_t item;  // catalogue (dense item) index
    int64_t movie_id;
    float score;         // the unclipped model output the ranking used
    float predicted;     // the rating Model::Predict gives: the score clipped to [0.5, 5]
    const Movie* movie;  // title and genres; nullptr without a movies file or when it lacks the id
  };
  // Empty when the model ranked; else why the popular movies were given instead.
  std::string fallback;
  std::vector<Entry> entries;  // best first; fewer than k when fewer movies are left
};

// Not thread-safe: one per thread.
class Recommender {
 public:
  // Pulls every catalogue movie's rows and the dense row from `store` (which must outlive the
  // recommender) for the model of `config`; `data` and `split` are the run's, `movies` may be
  // empty except for the genre model, whose item rows are widened by their genres' rows
  // (common/genres.h), as in training. Errors: the store's, Model::Create's, InvalidArgument for
  // k < 1, and FailedPrecondition for the genre model without a movies file.
  static absl::StatusOr<std::unique_ptr<Recommender>> Create(const JobConfig& config,
                                                             const Dataset& data,
                                                             const SplitRows& split,
                                                             ParamStore* store, MovieCatalog movies,
                                                             int k);

  // The top K for the user with MovieLens id `user_id`. Errors are the store's.
  absl::StatusOr<Recommendation> Recommend(int64_t user_id);

  // The user's unclipped score for every catalogue movie (by dense item index), valid until the
  // next call. Errors are the store's.
  absl::StatusOr<absl::Span<const float>> Score(int64_t user_id);

  // What the ranking metrics need of the run's split.
  const RankingData& ranking() const { return ranking_; }

  const MovieCatalog& movies() const { return movies_; }
  size_t catalogue_size() const { return scorer_.size(); }

 private:
  Recommender(CatalogueScorer scorer, RankingEvaluator ranker, RankingEvaluator popular)
      : scorer_(std::move(scorer)), ranker_(std::move(ranker)), popular_(std::move(popular)) {}

  ParamStore* store_ = nullptr;
  CatalogueScorer scorer_;
  RankingEvaluator ranker_;   // ties to the smaller movie id
  RankingEvaluator popular_;  // ties to the first rated (RankingData::first_rated)
  RankingData ranking_;
  MovieCatalog movies_;
  absl::flat_hash_map<int64_t, uint32_t> user_index_;  // MovieLens user id -> dense index
  std::vector<float> user_row_;                        // dim embedding floats, then the bias
  std::vector<float> scores_;
};

}  // namespace psrec

#endif  // PSREC_APP_RECOMMENDER_H_
