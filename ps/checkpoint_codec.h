// The rows file of one checkpoint shard: its byte layout, its encoding from a shard's tables, and
// its decoding, which checks the whole file before any row is handed out. Bytes only: reading and
// writing the files is ps/checkpoint.h's.
//
// Layout, all little-endian:
//   header:  magic[8] "PSRECKPT", u32 format version, u32 shard, u32 num_shards, u32 tables
//   tables:  u32 id, u32 width, u32 state floats per row, u64 rows, then the rows sorted by key:
//            u64 key, u32 step, f32 values[width], f32 state[state floats per row]
// The format version is kCheckpointFormatVersion (ps/checkpoint_manifest.h).
#ifndef PSREC_PS_CHECKPOINT_CODEC_H_
#define PSREC_PS_CHECKPOINT_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "proto/checkpoint.pb.h"

namespace psrec {

class ShardedTable;  // ps/sharded_table.h

// One restored row: `values` has the table's width floats, `state` its optimizer state.
using RowSink = std::function<void(uint32_t table, uint64_t key, uint32_t step,
                                   absl::Span<const float> values, absl::Span<const float> state)>;

// The rows file of shard `shard` of `num_shards` holding every row of `tables`, which must be
// sorted by id, without nulls or repeated ids. Rows are sorted by key, so equal contents give
// equal bytes. Sets *rows to the number of rows written. The tables must not change meanwhile.
std::string EncodeRows(uint32_t shard, uint32_t num_shards,
                       absl::Span<const ShardedTable* const> tables, uint64_t* rows);

// zlib's crc32 of `data`, as a manifest records it for each rows file.
uint32_t Crc32(absl::string_view data);

// What the job's config says each table must look like: id -> (width, state floats per row).
using TableShapes = absl::flat_hash_map<uint32_t, std::pair<uint32_t, uint64_t>>;

// A rows file decoded and checked whole. Holds the file's bytes; rows are read from them.
class DecodedRows {
 public:
  // Where one table's rows lie in the bytes: `rows` records from byte `offset` on.
  struct TableBlock {
    uint32_t id = 0;
    uint32_t width = 0;
    uint32_t state_width = 0;
    uint64_t rows = 0;
    size_t offset = 0;
  };

  // Checks `contents` as the rows file `entry` describes in a checkpoint of `num_shards` shards,
  // for a job whose tables are `shapes`: the header (magic, version, entry's shard and
  // num_shards), exactly the tables of `shapes` once each with their shapes, row counts that fit
  // the bytes and add up to entry.rows(), keys unique and owned by the shard, values and state
  // finite, and nothing after the last table. DATA_LOSS saying what is wrong, without the file's
  // path (the caller adds it). entry's size and crc32 are the caller's to check.
  static absl::StatusOr<DecodedRows> Decode(std::string contents, const CheckpointFile& entry,
                                            uint32_t num_shards, const TableShapes& shapes);

  // Calls `sink` for every row for which keep(table, key) is true (every row when `keep` is
  // empty), in file order. The spans live for the call.
  void ForEachRow(const std::function<bool(uint32_t table, uint64_t key)>& keep,
                  const RowSink& sink) const;

 private:
  DecodedRows(std::string contents, std::vector<TableBlock> tables)
      : contents_(std::move(contents)), tables_(std::move(tables)) {}

  std::string contents_;
  std::vector<TableBlock> tables_;
};

}  // namespace psrec

#endif  // PSREC_PS_CHECKPOINT_CODEC_H_
