#include "worker/genre_side.h"

#include "common/model.h"

namespace psrec {

void GenreSide::Gather(const ItemGenres& genres, uint32_t dim, absl::Span<const uint64_t> item_keys,
                       std::vector<PullBlock>* blocks) {
  links.Link(genres, item_keys);
  const size_t n = links.keys().size();
  emb.resize(n * dim);
  bias.resize(n);
  item_emb.resize(item_keys.size() * dim);
  item_bias.resize(item_keys.size());
  if (n == 0) return;
  blocks->push_back({kGenreEmbeddingTable, links.keys(), absl::MakeSpan(emb)});
  blocks->push_back({kGenreBiasTable, links.keys(), absl::MakeSpan(bias)});
}

void GenreSide::Mix(uint32_t dim, const float* own_emb, const float* own_bias) {
  MixGenres(dim, links, own_emb, own_bias, emb.data(), bias.data(), item_emb.data(),
            item_bias.data());
}

void GenreSide::Backward(uint32_t dim, const float* g_item_emb, const float* g_item_bias,
                         std::vector<PushBlock>* blocks) {
  const size_t n = links.keys().size();
  g_emb.resize(n * dim);
  g_bias.resize(n);
  if (n == 0) return;
  GenreGrads(dim, links, g_item_emb, g_item_bias, g_emb.data(), g_bias.data());
  blocks->push_back({kGenreEmbeddingTable, links.keys(), g_emb});
  blocks->push_back({kGenreBiasTable, links.keys(), g_bias});
}

}  // namespace psrec
