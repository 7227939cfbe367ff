// The rating lines of a generated set, one user at a time (common/synth.h). Internal to the
// generator; exposed for its tests. Not thread-safe.
#ifndef PSREC_SYNTH_SYNTH_RATINGS_H_
#define PSREC_SYNTH_SYNTH_RATINGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "synth/file_sink.h"
#include "synth/synth.h"
#include "synth/synth_model.h"

namespace psrec {
namespace synth {

// Sums over the ratings written so far, for synth.json.
struct Tally {
  std::vector<uint64_t> histogram;  // per StarScale bin
  uint64_t ratings = 0;
  double sum = 0;
  double floor_abs = 0, floor_sq = 0;          // against the best predictors (common/synth.h)
  double noiseless_abs = 0, noiseless_sq = 0;  // against the clamped planted score
};

class UserWriter {
 public:
  // Keeps references to all three: they must outlive the writer.
  UserWriter(const SynthOptions& options, const Shape& shape, const Movies& movies,
             const std::vector<uint32_t>& movie_ids);

  // Appends the `count` ratings of user index `u` (userId u + 1) to `out`, in time order, in the
  // options' layout. count <= movies / 2. A pure function of (seed, u, count).
  void Write(uint32_t u, uint32_t count, FileSink* out);

  const Tally& tally() const { return tally_; }
  const StarScale& scale() const { return scale_; }
  // Movies that have at least one rating so far.
  uint32_t MoviesRated() const;

 private:
  void DrawMovies(uint32_t count, Rng* rng);
  void DrawTimes(uint32_t u, uint32_t count);
  // Appends one line and counts it; returns nothing, as FileSink keeps its own errors.
  void WriteRating(uint32_t user_id, uint32_t movie, int64_t timestamp, const User& user,
                   Normal* normal, Rng* rng, FileSink* out);

  const SynthOptions& options_;
  const Shape& shape_;
  const Movies& movies_;
  const std::vector<uint32_t>& movie_ids_;
  const StarScale scale_;
  const ExpectedRating expected_;
  std::string separator_;
  std::vector<std::string> rating_text_;  // per bin, as the layout prints it
  std::vector<uint64_t> taken_;           // this user's movies, a bit each
  std::vector<uint64_t> rated_;           // every user's movies so far, a bit each
  std::vector<uint32_t> picks_;           // this user's movies in draw (= time) order
  std::vector<int64_t> times_;
  Tally tally_;
};

}  // namespace synth
}  // namespace psrec

#endif  // PSREC_SYNTH_SYNTH_RATINGS_H_
