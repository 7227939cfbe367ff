// What an evaluation's ranking costs (common/held_ranking.h): holds every share of --data as the
// in-process job does, then times grouping the users, the popularity baseline, and the model's
// ranking of a sample of the users with a relevant test rating over the whole catalogue, from
// freshly initialised rows (the cost does not depend on the values). Results go in
// bench/RESULTS.md.
//
//   build/bench/ranking_bench --data=DIR [--split=user_time] [--model=bias] [--dim=30]
//                             [--sample_users=2000]
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "absl/flags/flag.h"
#include "app/local_job.h"
#include "bench/bench_main.h"
#include "common/held_ranking.h"
#include "common/job_config.h"
#include "ps/local_store.h"

ABSL_FLAG(int32_t, sample_users, 2000,
          "Users to rank, spread evenly over those with a relevant test rating; 0: all.");

namespace psrec {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Every `step`-th user of `held`, with their items.
HeldUsers Sample(const HeldUsers& held, size_t step) {
  HeldUsers out;
  out.train.offsets = {0};
  out.relevant.offsets = {0};
  for (uint32_t slot = 0; slot < held.users.size(); slot += static_cast<uint32_t>(step)) {
    out.users.push_back(held.users[slot]);
    for (auto [from, to] :
         {std::pair{&held.train, &out.train}, std::pair{&held.relevant, &out.relevant}}) {
      const absl::Span<const uint32_t> items = from->of(slot);
      to->items.insert(to->items.end(), items.begin(), items.end());
      to->offsets.push_back(to->items.size());
    }
  }
  return out;
}

}  // namespace

int BenchMain() {
  absl::StatusOr<JobConfig> config = JobConfigFromFlags({});
  if (!config.ok()) return std::fprintf(stderr, "%s\n", config.status().ToString().c_str()), 2;
  absl::StatusOr<std::unique_ptr<ShareSet>> data = HoldJobData(&*config);
  if (!data.ok()) return std::fprintf(stderr, "%s\n", data.status().ToString().c_str()), 1;
  const RatingTable& table = (*data)->table();
  auto start = Clock::now();
  const HeldUsers held = GroupHeldUsers(table, (*data)->train_rows(), (*data)->test_rows());
  const double group_s = Seconds(start);

  start = Clock::now();
  absl::StatusOr<RankingMetrics> popularity = PopularityBaseline(*config, **data);
  if (!popularity.ok())
    return std::fprintf(stderr, "%s\n", popularity.status().ToString().c_str()), 1;
  const double popularity_s = Seconds(start);

  const size_t want = static_cast<size_t>(absl::GetFlag(FLAGS_sample_users));
  const size_t step = want == 0 || want >= held.users.size() ? 1 : held.users.size() / want;
  const HeldUsers sample = Sample(held, step);
  absl::StatusOr<std::unique_ptr<LocalStore>> store =
      LocalStore::Create(config->tables(), config->optimizer(), config->seed());
  if (!store.ok()) return std::fprintf(stderr, "%s\n", store.status().ToString().c_str()), 1;
  start = Clock::now();
  absl::StatusOr<RankingSums> model =
      RankHeldUsers(*config, table, sample, store->get(), kRankingK);
  if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().ToString().c_str()), 1;
  const double model_s = Seconds(start);
  const double per_user_ms = 1e3 * model_s / static_cast<double>(sample.users.size());
  std::printf(
      "%zu users x %zu items (%zu users with a relevant test rating), model %s dim %u\n"
      "group users: %.2f s; popularity baseline (all users): %.2f s, %s\n"
      "model ranking of %zu users: %.2f s, %.3f ms per user; all %zu users: %.0f s (estimated)\n",
      table.num_users(), table.num_items(), held.users.size(),
      ModelKind_Name(config->model()).c_str(), config->dim(), group_s, popularity_s,
      RankingText(*popularity).c_str(), sample.users.size(), model_s, per_user_ms,
      held.users.size(), per_user_ms * static_cast<double>(held.users.size()) / 1e3);
  return 0;
}

}  // namespace psrec
