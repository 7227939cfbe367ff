// Negatives for the ranking loss (--loss=bpr, common/model.h): for each positive (user, item) of a
// training batch, items drawn uniformly from the catalogue, keyed like a dropout mask by (seed,
// step, example) so that every process that trains that batch draws the same ones without talking
// (a single SYNC worker matches the in-process trainer bitwise).
//
// The catalogue is every item index of the trainer's RatingTable, whose id table is the whole
// ratings file's (common/share_set.h maps one id table for all shares): every worker samples from
// the same catalogue whatever shares it holds, including movies rated only in test, which are thus
// pushed down like any movie without a positive. A draw may be an item the user rated, even the
// positive itself (standard BPR: on ml-latest-small a user rated ~1.7% of the catalogue on average,
// and such a pair only adds noise whose gradient is zero when the two are the same item).
#ifndef PSREC_COMMON_NEGATIVE_SAMPLER_H_
#define PSREC_COMMON_NEGATIVE_SAMPLER_H_

#include <cstdint>

#include "absl/types/span.h"
#include "common/rng.h"

namespace psrec {

constexpr uint32_t kMaxNegatives = 64;

// Fills `out` with the negatives of example `example` of step `step`: catalogue indices in
// [0, num_items), a pure function of (seed, step, example, out.size()) whose first m draws do not
// depend on out.size(). REQUIRES: num_items > 0.
inline void SampleNegatives(uint64_t seed, uint64_t step, uint64_t example, uint32_t num_items,
                            absl::Span<uint32_t> out) {
  constexpr uint64_t kSalt = 0x6270722d6e656773ULL;  // "bpr-negs": not the dropout mask's stream
  Rng rng(HashCombine(HashCombine(HashCombine(seed, kSalt), step), example));
  for (uint32_t& item : out) item = static_cast<uint32_t>(rng.Below(num_items));
}

}  // namespace psrec

#endif  // PSREC_COMMON_NEGATIVE_SAMPLER_H_
