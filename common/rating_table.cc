#include "common/rating_table.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace psrec {

struct RatingTable::Owned {
  std::vector<uint32_t> user, item;
  std::vector<uint8_t> half_stars;
  std::vector<int64_t> user_ids, item_ids;
};

absl::StatusOr<std::unique_ptr<RatingTable>> RatingTable::CopyOf(const Dataset& data) {
  auto owned = std::make_shared<Owned>();
  owned->user.reserve(data.ratings.size());
  owned->item.reserve(data.ratings.size());
  owned->half_stars.reserve(data.ratings.size());
  for (size_t i = 0; i < data.ratings.size(); ++i) {
    const Rating& r = data.ratings[i];
    const float half = 2.0f * r.rating;
    if (half != std::round(half) || half < 1 || half > 10) {
      return absl::InvalidArgumentError(absl::StrCat(data.path, ": row ", i, ": rating ", r.rating,
                                                     " is not a whole number of half stars"));
    }
    owned->user.push_back(r.user);
    owned->item.push_back(r.item);
    owned->half_stars.push_back(static_cast<uint8_t>(half));
  }
  owned->user_ids = data.user_ids;
  owned->item_ids = data.item_ids;
  auto table = std::make_unique<RatingTable>();
  table->AddRun(owned->user.data(), owned->item.data(), owned->half_stars.data(),
                owned->user.size());
  table->SetIds(owned->user_ids, owned->item_ids);
  table->owned_ = std::move(owned);
  return table;
}

void RatingTable::Clear() {
  runs_.clear();
  block_run_.clear();
  rows_ = 0;
}

uint32_t RatingTable::AddRun(const uint32_t* user, const uint32_t* item, const uint8_t* half_stars,
                             size_t n) {
  const uint64_t first = uint64_t{block_run_.size()} << kBlockBits;
  const uint64_t blocks = (n + (size_t{1} << kBlockBits) - 1) >> kBlockBits;
  PSREC_CHECK(first + (blocks << kBlockBits) <= std::numeric_limits<uint32_t>::max())
      << "more rows than 32-bit row numbers can name";
  block_run_.insert(block_run_.end(), blocks, static_cast<uint32_t>(runs_.size()));
  runs_.push_back(Run{static_cast<uint32_t>(first), user, item, half_stars});
  rows_ += n;
  return static_cast<uint32_t>(first);
}

}  // namespace psrec
