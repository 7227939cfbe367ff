#include "common/ranking.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace psrec {
namespace {

constexpr uint8_t kExcluded = 1;
constexpr uint8_t kRelevant = 2;

int64_t ToUnits(double value) {
  return static_cast<int64_t>(std::llround(value / RankingSums::kRankingUnit));
}

// NaN below every number, so that the order stays a strict weak ordering.
float RankKey(float score) { return std::isnan(score) ? -INFINITY : score; }

}  // namespace

absl::Status RankingSums::Merge(const RankingSums& other) {
  if (other.catalogue_size == 0) return absl::OkStatus();
  if (catalogue_size != 0 && catalogue_size != other.catalogue_size) {
    return absl::InvalidArgumentError(absl::StrCat("ranking sums over catalogues of ",
                                                   catalogue_size, " and ", other.catalogue_size,
                                                   " items cannot be merged"));
  }
  catalogue_size = other.catalogue_size;
  recommended.resize(other.recommended.size(), 0);
  for (size_t w = 0; w < other.recommended.size(); ++w) recommended[w] |= other.recommended[w];
  users += other.users;
  hits += other.hits;
  relevant += other.relevant;
  recall_units += other.recall_units;
  ndcg_units += other.ndcg_units;
  return absl::OkStatus();
}

double RankingSums::recall() const {
  return users == 0 ? 0 : static_cast<double>(recall_units) * kRankingUnit / users;
}

double RankingSums::ndcg() const {
  return users == 0 ? 0 : static_cast<double>(ndcg_units) * kRankingUnit / users;
}

double RankingSums::coverage() const {
  if (catalogue_size == 0) return 0;
  int64_t distinct = 0;
  for (const uint64_t word : recommended) distinct += __builtin_popcountll(word);
  return static_cast<double>(distinct) / static_cast<double>(catalogue_size);
}

RankingEvaluator::RankingEvaluator(std::vector<int64_t> tie_keys, int k)
    : ids_(std::move(tie_keys)), k_(k), mark_(ids_.size(), 0) {
  discount_.resize(static_cast<size_t>(k_));
  for (int r = 0; r < k_; ++r) discount_[r] = 1.0 / std::log2(r + 2.0);
  sums_.catalogue_size = ids_.size();
  sums_.recommended.assign((ids_.size() + 63) / 64, 0);
}

absl::StatusOr<RankingEvaluator> RankingEvaluator::Create(std::vector<int64_t> tie_keys, int k) {
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("k=", k, " must be at least 1"));
  return RankingEvaluator(std::move(tie_keys), k);
}

bool RankingEvaluator::Better(absl::Span<const float> scores, uint32_t a, uint32_t b) const {
  const float sa = RankKey(scores[a]), sb = RankKey(scores[b]);
  return sa > sb || (sa == sb && ids_[a] < ids_[b]);
}

absl::Status RankingEvaluator::CheckIndices(absl::Span<const uint32_t> items,
                                            const char* what) const {
  for (const uint32_t i : items) {
    if (i >= ids_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(what, " item index ", i, " is outside the ",
                                                     ids_.size(), "-item catalogue"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Span<const uint32_t>> RankingEvaluator::TopK(
    absl::Span<const float> scores, absl::Span<const uint32_t> exclude) {
  if (scores.size() != ids_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(scores.size(), " scores for a catalogue of ", ids_.size(), " items"));
  }
  if (absl::Status s = CheckIndices(exclude, "excluded"); !s.ok()) return s;
  for (const uint32_t i : exclude) mark_[i] |= kExcluded;
  // A heap of the best k so far whose top is the worst of them: one pass, and most items are
  // turned away by a single comparison with the top.
  const auto worse_first = [&](uint32_t a, uint32_t b) { return Better(scores, a, b); };
  top_.clear();
  const size_t k = static_cast<size_t>(k_);
  for (uint32_t i = 0; i < ids_.size(); ++i) {
    if ((mark_[i] & kExcluded) != 0) continue;
    if (top_.size() < k) {
      top_.push_back(i);
      std::push_heap(top_.begin(), top_.end(), worse_first);
    } else if (Better(scores, i, top_.front())) {
      std::pop_heap(top_.begin(), top_.end(), worse_first);
      top_.back() = i;
      std::push_heap(top_.begin(), top_.end(), worse_first);
    }
  }
  std::sort_heap(top_.begin(), top_.end(), worse_first);
  for (const uint32_t i : exclude) mark_[i] &= static_cast<uint8_t>(~kExcluded);
  return absl::Span<const uint32_t>(top_);
}

absl::StatusOr<bool> RankingEvaluator::AddUser(absl::Span<const float> scores,
                                               absl::Span<const uint32_t> train,
                                               absl::Span<const uint32_t> relevant) {
  if (absl::Status s = CheckIndices(relevant, "relevant"); !s.ok()) return s;
  absl::StatusOr<absl::Span<const uint32_t>> top = TopK(scores, train);
  if (!top.ok()) return top.status();
  // Relevant items, less repeats and training items: TopK has cleared its marks, so mark the
  // training items again to leave them out.
  for (const uint32_t i : train) mark_[i] |= kExcluded;
  int64_t num_relevant = 0;
  for (const uint32_t i : relevant) {
    if (mark_[i] == 0) {
      mark_[i] = kRelevant;
      ++num_relevant;
    }
  }
  int64_t hits = 0;
  double dcg = 0;
  for (size_t r = 0; r < top->size(); ++r) {
    if (mark_[(*top)[r]] == kRelevant) {
      ++hits;
      dcg += discount_[r];
    }
  }
  for (const uint32_t i : train) mark_[i] = 0;
  for (const uint32_t i : relevant) mark_[i] = 0;
  if (num_relevant == 0) return false;
  double ideal = 0;
  for (int64_t r = 0; r < std::min<int64_t>(k_, num_relevant); ++r) ideal += discount_[r];
  sums_.users += 1;
  sums_.hits += hits;
  sums_.relevant += num_relevant;
  sums_.recall_units += ToUnits(static_cast<double>(hits) / static_cast<double>(num_relevant));
  sums_.ndcg_units += ToUnits(dcg / ideal);
  for (const uint32_t i : *top) sums_.recommended[i / 64] |= uint64_t{1} << (i % 64);
  return true;
}

}  // namespace psrec
