// Fuzzes the rating-file readers (common/movielens.h) and what runs on their output: the three
// splits (common/split.h) and an epoch's order (common/job_data.h).
//
// Input: one byte choosing the layout (csv, dat, u.data: byte % 3), then the file's text.
// Invariants that hold for any file that parses are checked, and a broken one aborts, which
// libFuzzer reports.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/job_data.h"
#include "common/movielens.h"
#include "common/split.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

// Every row in exactly one of train and test, both ascending.
void CheckSplit(const psrec::SplitRows& rows, size_t n) {
  Check(rows.train.size() + rows.test.size() == n);
  std::vector<bool> seen(n, false);
  for (const std::vector<uint32_t>* part : {&rows.train, &rows.test}) {
    for (size_t i = 0; i < part->size(); ++i) {
      const uint32_t row = (*part)[i];
      Check(row < n && !seen[row]);
      Check(i == 0 || (*part)[i - 1] < row);
      seen[row] = true;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  constexpr psrec::Layout kLayouts[] = {psrec::Layout::kCsv, psrec::Layout::kDat,
                                        psrec::Layout::kUData};
  const psrec::Layout layout = kLayouts[data[0] % 3];
  const absl::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  absl::StatusOr<psrec::Dataset> parsed = psrec::ParseRatings(text, layout, "fuzz");
  if (!parsed.ok()) {
    Check(!parsed.status().message().empty());
    return 0;
  }
  const psrec::Dataset& dataset = *parsed;
  Check(!dataset.ratings.empty());
  for (const psrec::Rating& r : dataset.ratings) {
    Check(r.user < dataset.user_ids.size() && r.item < dataset.item_ids.size());
    Check(r.rating >= psrec::kMinRating && r.rating <= psrec::kMaxRating);
  }
  for (psrec::Split split : {psrec::SEED_TIME, psrec::USER_TIME, psrec::RANDOM}) {
    for (double fraction : {0.2, 0.999}) {
      absl::StatusOr<psrec::SplitRows> rows = psrec::SplitDataset(dataset, split, fraction, 7);
      Check(rows.ok());
      CheckSplit(*rows, dataset.ratings.size());
      std::vector<uint32_t> order = psrec::EpochOrder(rows->train, 7, 1);
      Check(order.size() == rows->train.size());
    }
  }
  return 0;
}
