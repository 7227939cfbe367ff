// The genre model's item side (ModelKind GENRE). It is the bias model (common/model.h) run on
// widened item rows:
//
//   item'      = item embedding + (1/n) * (sum of its n genre embeddings)
//   item bias' = item bias      + (1/n) * (sum of its n genre biases)
//
// The mean, not the sum, for both: a movie listed under five genres should not get five times the
// genre pull of a movie listed under one. A movie with no genre ("(no genres listed)") or missing
// from the movies file keeps its own rows unchanged (n = 0). The model's gradient with respect to
// item' is the item rows' gradient as it is, and each genre row gets 1/n of it from each item.
//
// Genre rows live in two tables of their own (kGenreEmbeddingTable, kGenreBiasTable), keyed by a
// hash of the genre's name, so they shard across servers like every other row and a checkpoint's
// genre rows mean the same genre whatever order a movies file lists them in.
//
// MixGenres is the one place the widening is computed: the trainer and the catalogue scorer both
// call it, so a catalogue score stays bit for bit a batch prediction.
#ifndef PSREC_COMMON_GENRES_H_
#define PSREC_COMMON_GENRES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/movies.h"
#include "common/param_store.h"

namespace psrec {

// The key of a genre's rows: a 64-bit hash of its name (FNV-1a, then Mix64).
uint64_t GenreKey(absl::string_view name);

// Each movie's genres, as indices into the genres the movies file names.
class ItemGenres {
 public:
  ItemGenres() = default;
  explicit ItemGenres(const MovieCatalog& movies);

  const std::string& path() const { return path_; }
  size_t num_genres() const { return keys_.size(); }
  size_t num_movies_with_genres() const { return of_movie_.size(); }
  uint64_t key(uint32_t genre) const { return keys_[genre]; }
  const std::string& name(uint32_t genre) const { return names_[genre]; }
  // The genres of `movie`, in the file's order; empty for a movie with none or not in the file.
  absl::Span<const uint32_t> Of(int64_t movie) const;

 private:
  std::string path_;
  std::vector<uint64_t> keys_;      // per genre, in order of first appearance
  std::vector<std::string> names_;  // likewise
  absl::flat_hash_map<int64_t, std::vector<uint32_t>> of_movie_;  // movies with a genre only
};

// The genres of the movies file in `data_dir` (common/movies.h's layouts). Errors: NotFound naming
// the directory and the file names looked for, saying the genre model needs one; ReadMovies'
// errors (file and line) for a malformed file.
absl::StatusOr<ItemGenres> ReadItemGenres(const std::string& data_dir);

// Which genre rows a list of items uses: item i's are rows slot[offset[i] .. offset[i + 1]) of
// `keys`, which holds each genre once, in order of first use.
class GenreLinks {
 public:
  // Links `items` (movie ids, as the item tables key them) to their genres. Reuses its buffers.
  void Link(const ItemGenres& genres, absl::Span<const uint64_t> items);

  absl::Span<const uint64_t> keys() const { return keys_; }
  size_t num_items() const { return offset_.empty() ? 0 : offset_.size() - 1; }
  absl::Span<const uint32_t> slots(size_t item) const {
    return absl::MakeConstSpan(slot_).subspan(offset_[item], offset_[item + 1] - offset_[item]);
  }

 private:
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> offset_;
  std::vector<uint32_t> slot_;
  std::vector<uint32_t> slot_of_;  // per genre index: its slot in keys_, or kNone
};

// The widened rows of links' items: out_emb (items x dim) and out_bias (items) from the items' own
// rows and the genre rows (keys().size() x dim and keys().size(), in keys() order).
void MixGenres(uint32_t dim, const GenreLinks& links, const float* item_emb, const float* item_bias,
               const float* genre_emb, const float* genre_bias, float* out_emb, float* out_bias);

// The genre rows' gradients (keys().size() x dim and keys().size(), overwritten) from the widened
// rows' gradients g_emb and g_bias (laid out like MixGenres' outputs).
void GenreGrads(uint32_t dim, const GenreLinks& links, const float* g_emb, const float* g_bias,
                float* g_genre_emb, float* g_genre_bias);

// Pulls the genre rows of `items` from `store` and widens item_emb and item_bias (their rows, in
// `items` order) in place. The store's errors.
absl::Status MixCatalogueGenres(uint32_t dim, const ItemGenres& genres,
                                absl::Span<const uint64_t> items, ParamStore* store,
                                std::vector<float>* item_emb, std::vector<float>* item_bias);

}  // namespace psrec

#endif  // PSREC_COMMON_GENRES_H_
