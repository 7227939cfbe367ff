// `psrec recommend`'s cost per user: loads a checkpoint as the command does, then times
// Recommender::Recommend (pull the user's rows, score the whole catalogue, rank it, leave out the
// training items) for users spread evenly over the ratings file. Results go in bench/RESULTS.md.
//
//   build/bench/recommend_bench --ckpt=DIR [--ratings_dir=DIR] [--sample=500] [--top_k=10]
//                               [--ranking]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "app/checkpoint_scoring.h"
#include "app/recommender.h"
#include "common/allocator.h"
#include "common/ranking.h"
#include "common/ranking_data.h"

ABSL_FLAG(std::string, ckpt, "", "A checkpoint directory, or a --checkpoint_dir root.");
ABSL_FLAG(std::string, ratings_dir, "", "The ratings it was trained on; empty: the MANIFEST's.");
ABSL_FLAG(int32_t, sample, 500, "Users to time, spread evenly over the ratings file's users.");
ABSL_FLAG(int32_t, top_k, 10, "Movies per user.");
ABSL_FLAG(bool, ranking, false,
          "Also rank every user with a relevant test rating, and print the model's Recall@K, "
          "NDCG@K and coverage beside the popularity baseline's (common/ranking.h).");

namespace psrec {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// The model's ranking metrics over every user with a relevant test rating, and popularity's.
int RankAll(Recommender& recommender, const std::vector<int64_t>& user_ids, int k) {
  const RankingData& data = recommender.ranking();
  absl::StatusOr<RankingEvaluator> eval = RankingEvaluator::Create(data.item_ids, k);
  if (!eval.ok()) return 1;
  const Clock::time_point start = Clock::now();
  for (uint32_t u = 0; u < data.relevant.num_users(); ++u) {
    if (data.relevant.of(u).empty()) continue;
    absl::StatusOr<absl::Span<const float>> scores = recommender.Score(user_ids[u]);
    if (!scores.ok() || !eval->AddUser(*scores, data.train.of(u), data.relevant.of(u)).ok()) {
      return 1;
    }
  }
  const double ms = Ms(start);
  absl::StatusOr<RankingSums> popular = EvaluatePopularity(data, k);
  if (!popular.ok()) return 1;
  const RankingSums& model = eval->sums();
  std::printf(
      "ranking over %lld users with a relevant test rating (%.0f ms, %.3f ms per user):\n"
      "  model      Recall@%d %.4f  NDCG@%d %.4f  coverage@%d %.4f\n"
      "  popularity Recall@%d %.4f  NDCG@%d %.4f  coverage@%d %.4f\n",
      static_cast<long long>(model.users), ms, ms / static_cast<double>(model.users), k,
      model.recall(), k, model.ndcg(), k, model.coverage(), k, popular->recall(), k,
      popular->ndcg(), k, popular->coverage());
  return 0;
}

int Run() {
  Clock::time_point start = Clock::now();
  absl::StatusOr<ScoringCheckpoint> ckpt =
      LoadScoringCheckpoint(absl::GetFlag(FLAGS_ckpt), absl::GetFlag(FLAGS_ratings_dir));
  if (!ckpt.ok()) {
    std::fprintf(stderr, "recommend_bench: %s\n", std::string(ckpt.status().message()).c_str());
    return 1;
  }
  const double load_ms = Ms(start);
  start = Clock::now();
  absl::StatusOr<std::unique_ptr<Recommender>> recommender =
      Recommender::Create(ckpt->config, ckpt->job.data, ckpt->job.split, ckpt->store.get(),
                          MovieCatalog{}, absl::GetFlag(FLAGS_top_k));
  if (!recommender.ok()) {
    std::fprintf(stderr, "recommend_bench: %s\n",
                 std::string(recommender.status().message()).c_str());
    return 1;
  }
  const double create_ms = Ms(start);
  const std::vector<int64_t>& users = ckpt->job.data.user_ids;
  const size_t sample = std::min<size_t>(users.size(), absl::GetFlag(FLAGS_sample));
  std::vector<double> ms;
  size_t fallbacks = 0;
  // The first call sizes the scratch; it is timed separately.
  start = Clock::now();
  if (!(*recommender)->Recommend(users[0]).ok()) return 1;
  const double first_ms = Ms(start);
  for (size_t s = 0; s < sample; ++s) {
    const int64_t user = users[s * users.size() / sample];
    start = Clock::now();
    absl::StatusOr<Recommendation> rec = (*recommender)->Recommend(user);
    ms.push_back(Ms(start));
    if (!rec.ok()) return 1;
    fallbacks += rec->fallback.empty() ? 0 : 1;
  }
  std::sort(ms.begin(), ms.end());
  double total = 0;
  for (const double m : ms) total += m;
  const auto at = [&](double q) { return ms[static_cast<size_t>(q * (ms.size() - 1))]; };
  std::printf(
      "%s: %s, model %s, dim %u, %zu movies, %zu users, %zu training ratings\n"
      "load (read + split ratings, load rows) %.0f ms; recommender (pull item rows, group) %.0f "
      "ms; first call %.2f ms\n"
      "per user over %zu users (%zu popular fallbacks), k=%d: mean %.3f ms, p50 %.3f, p90 %.3f, "
      "p99 %.3f, max %.3f\n",
      ckpt->dir.c_str(), ckpt->job.data.path.c_str(), ModelKind_Name(ckpt->config.model()).c_str(),
      ckpt->config.dim(), ckpt->job.data.item_ids.size(), users.size(),
      ckpt->job.split.train.size(), load_ms, create_ms, first_ms, ms.size(), fallbacks,
      absl::GetFlag(FLAGS_top_k), total / ms.size(), at(0.5), at(0.9), at(0.99), ms.back());
  if (!absl::GetFlag(FLAGS_ranking)) return 0;
  return RankAll(**recommender, users, absl::GetFlag(FLAGS_top_k));
}

}  // namespace
}  // namespace psrec

int main(int argc, char** argv) {
  psrec::TuneAllocator();
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_ckpt).empty() || absl::GetFlag(FLAGS_sample) < 1) {
    std::fprintf(stderr, "recommend_bench: --ckpt=DIR is required and --sample must be >= 1\n");
    return 2;
  }
  return psrec::Run();
}
