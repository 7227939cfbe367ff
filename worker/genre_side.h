// The genre model's part of a trainer batch (common/genres.h): which genre rows the batch's items
// use, the pulled genre rows, the widened item rows the model sees, and the genre gradients.
// Trainer holds one per batch buffer when config.model is GENRE and none otherwise.
#ifndef PSREC_WORKER_GENRE_SIDE_H_
#define PSREC_WORKER_GENRE_SIDE_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "common/genres.h"
#include "common/param_store.h"

namespace psrec {

struct GenreSide {
  GenreLinks links;
  std::vector<float> emb, bias;            // pulled genre rows, in links.keys() order
  std::vector<float> item_emb, item_bias;  // the batch's item rows, widened
  std::vector<float> g_emb, g_bias;        // the genre rows' gradients

  // Links the batch's items (movie ids) to their genres and appends the genre rows' pull blocks
  // (none when no item has a genre) to `blocks`, over this side's buffers.
  void Gather(const ItemGenres& genres, uint32_t dim, absl::Span<const uint64_t> item_keys,
              std::vector<PullBlock>* blocks);
  // Once the pull has landed: widens the batch's own item rows into item_emb and item_bias.
  void Mix(uint32_t dim, const float* own_emb, const float* own_bias);
  // From the widened rows' gradients, the genre rows' (into g_emb and g_bias), and appends their
  // push blocks to `blocks`, over this side's buffers.
  void Backward(uint32_t dim, const float* g_item_emb, const float* g_item_bias,
                std::vector<PushBlock>* blocks);
};

}  // namespace psrec

#endif  // PSREC_WORKER_GENRE_SIDE_H_
