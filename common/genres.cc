#include "common/genres.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/model.h"
#include "common/rng.h"

namespace psrec {
namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

}  // namespace

uint64_t GenreKey(absl::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a's offset basis and prime
  for (const char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return Mix64(h);
}

ItemGenres::ItemGenres(const MovieCatalog& movies) : path_(movies.path) {
  absl::flat_hash_map<std::string, uint32_t> index;
  for (const Movie& movie : movies.movies) {
    if (movie.genres.empty()) continue;
    std::vector<uint32_t>& of = of_movie_[movie.id];
    for (const std::string& name : movie.genres) {
      const auto [it, added] = index.emplace(name, static_cast<uint32_t>(keys_.size()));
      if (added) {
        keys_.push_back(GenreKey(name));
        names_.push_back(name);
      }
      if (std::find(of.begin(), of.end(), it->second) == of.end()) of.push_back(it->second);
    }
  }
}

absl::Span<const uint32_t> ItemGenres::Of(int64_t movie) const {
  const auto it = of_movie_.find(movie);
  if (it == of_movie_.end()) return {};
  return it->second;
}

absl::StatusOr<ItemGenres> ReadItemGenres(const std::string& data_dir) {
  absl::StatusOr<MovieCatalog> movies = ReadMovies(data_dir);
  if (absl::IsNotFound(movies.status())) {
    return absl::NotFoundError(
        absl::StrCat("the genre model reads each movie's genres from the "
                     "movies file beside the ratings: ",
                     movies.status().message()));
  }
  if (!movies.ok()) return movies.status();
  return ItemGenres(*movies);
}

void GenreLinks::Link(const ItemGenres& genres, absl::Span<const uint64_t> items) {
  slot_of_.assign(genres.num_genres(), kNone);
  keys_.clear();
  slot_.clear();
  offset_.resize(items.size() + 1);
  offset_[0] = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    for (const uint32_t g : genres.Of(static_cast<int64_t>(items[i]))) {
      if (slot_of_[g] == kNone) {
        slot_of_[g] = static_cast<uint32_t>(keys_.size());
        keys_.push_back(genres.key(g));
      }
      slot_.push_back(slot_of_[g]);
    }
    offset_[i + 1] = static_cast<uint32_t>(slot_.size());
  }
}

void MixGenres(uint32_t dim, const GenreLinks& links, const float* item_emb, const float* item_bias,
               const float* genre_emb, const float* genre_bias, float* out_emb, float* out_bias) {
  for (size_t i = 0; i < links.num_items(); ++i) {
    const absl::Span<const uint32_t> slots = links.slots(i);
    const float* own = item_emb + i * dim;
    float* out = out_emb + i * dim;
    if (slots.empty()) {
      std::copy_n(own, dim, out);
      out_bias[i] = item_bias[i];
      continue;
    }
    const float inv = 1.0f / static_cast<float>(slots.size());
    for (uint32_t j = 0; j < dim; ++j) {
      float sum = 0;
      for (const uint32_t s : slots) sum += genre_emb[size_t{s} * dim + j];
      out[j] = own[j] + sum * inv;
    }
    float sum = 0;
    for (const uint32_t s : slots) sum += genre_bias[s];
    out_bias[i] = item_bias[i] + sum * inv;
  }
}

void GenreGrads(uint32_t dim, const GenreLinks& links, const float* g_emb, const float* g_bias,
                float* g_genre_emb, float* g_genre_bias) {
  std::fill_n(g_genre_emb, links.keys().size() * dim, 0.0f);
  std::fill_n(g_genre_bias, links.keys().size(), 0.0f);
  for (size_t i = 0; i < links.num_items(); ++i) {
    const absl::Span<const uint32_t> slots = links.slots(i);
    if (slots.empty()) continue;
    const float inv = 1.0f / static_cast<float>(slots.size());
    for (const uint32_t s : slots) {
      float* g = g_genre_emb + size_t{s} * dim;
      for (uint32_t j = 0; j < dim; ++j) g[j] += g_emb[i * dim + j] * inv;
      g_genre_bias[s] += g_bias[i] * inv;
    }
  }
}

absl::Status MixCatalogueGenres(uint32_t dim, const ItemGenres& genres,
                                absl::Span<const uint64_t> items, ParamStore* store,
                                std::vector<float>* item_emb, std::vector<float>* item_bias) {
  GenreLinks links;
  links.Link(genres, items);
  std::vector<float> genre_emb(links.keys().size() * dim);
  std::vector<float> genre_bias(links.keys().size());
  if (!links.keys().empty()) {
    const PullBlock blocks[] = {{kGenreEmbeddingTable, links.keys(), absl::MakeSpan(genre_emb)},
                                {kGenreBiasTable, links.keys(), absl::MakeSpan(genre_bias)}};
    if (absl::Status s = store->Pull(blocks); !s.ok()) return s;
  }
  std::vector<float> own_emb = *item_emb;
  std::vector<float> own_bias = *item_bias;
  MixGenres(dim, links, own_emb.data(), own_bias.data(), genre_emb.data(), genre_bias.data(),
            item_emb->data(), item_bias->data());
  return absl::OkStatus();
}

}  // namespace psrec
