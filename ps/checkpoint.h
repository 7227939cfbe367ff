// Checkpoints of the parameter tables (proto/checkpoint.proto has the layout).
//
//   <checkpoint_dir>/ckpt-000003/shard-00000-of-00002.rows   one per shard
//   <checkpoint_dir>/ckpt-000003/MANIFEST                    written last, by the coordinator
//
// A rows file holds every row a shard has created, with its optimizer state and step count, so a
// restored row continues exactly where it stopped; absent rows read as their initial value, which
// depends only on the seed. Every file is written to a temporary name, fsynced and renamed. Loading
// checks the manifest, each file's size and crc32 and the tables against the job's config before it
// hands out any row, so a corrupt, truncated or mismatched checkpoint is refused whole.
//
// This is the face the other roles include: it writes and loads shards, and brings the manifest's
// functions (ps/checkpoint_manifest.h) and the row sink (ps/checkpoint_codec.h) with it.
#ifndef PSREC_PS_CHECKPOINT_H_
#define PSREC_PS_CHECKPOINT_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "proto/checkpoint.pb.h"
#include "proto/config.pb.h"
#include "ps/checkpoint_codec.h"     // IWYU pragma: export
#include "ps/checkpoint_manifest.h"  // IWYU pragma: export

namespace psrec {

class ShardedTable;  // ps/sharded_table.h

// Writes shard `shard`'s rows of `tables` (null entries skipped) to
// <checkpoint>/shard-SSSSS-of-NNNNN.rows atomically, creating the directory `checkpoint` if
// needed. Returns the file's manifest entry. Errors name the file.
absl::StatusOr<CheckpointFile> WriteShardCheckpoint(const std::string& checkpoint, uint32_t shard,
                                                    uint32_t num_shards,
                                                    absl::Span<const ShardedTable* const> tables);

// Loads checkpoint `checkpoint` for a job with `config`: checks the manifest against the config
// (CheckpointConfigDifferences), reads every shard's file and checks its size, crc32 and contents,
// and only then calls `sink` for every row with keep(table, key) true (all rows when keep is
// empty). On error `sink` has not been called. Errors name the file and what is wrong:
// FailedPrecondition for a config that differs, NotFound for a missing file, DataLoss for a file
// whose size, crc32, header, tables or rows are wrong (a row count that does not fit the file, a
// repeated key, a key that belongs to another shard, a non-finite value or optimizer state).
// Every file is read and checked in memory first, so memory use is about the checkpoint's size
// whatever the files claim. `sink` runs on the calling thread; its spans live for the call.
absl::Status LoadCheckpoint(const std::string& checkpoint, const JobConfig& config,
                            const std::function<bool(uint32_t table, uint64_t key)>& keep,
                            const RowSink& sink);

}  // namespace psrec

#endif  // PSREC_PS_CHECKPOINT_H_
