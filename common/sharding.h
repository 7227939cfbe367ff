// Which shard owns a row. Workers and servers must agree, so this is the one definition.
//
// shard = Mix64(HashCombine(table, key)) mod num_shards. MovieLens ids are consecutive and a few
// are very popular; a plain `key % N` would put neighbours together and lets a table's id pattern
// line up with N. Mixing the 64 bits first (SplitMix64's finalizer) spreads consecutive ids evenly,
// and mixing in the table id keeps a popular user's embedding and bias rows from always landing on
// the same shard.
#ifndef PSREC_COMMON_SHARDING_H_
#define PSREC_COMMON_SHARDING_H_

#include <cstdint>

#include "common/rng.h"

namespace psrec {

inline uint32_t ShardOf(uint32_t table, uint64_t key, uint32_t num_shards) {
  return static_cast<uint32_t>(HashCombine(table, key) % num_shards);
}

}  // namespace psrec

#endif  // PSREC_COMMON_SHARDING_H_
