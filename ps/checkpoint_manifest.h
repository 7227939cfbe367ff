// A checkpoint's MANIFEST: the text-format psrec.CheckpointManifest (proto/checkpoint.proto) that
// lists one rows file per shard with its size, crc32 and row count, and the job config that wrote
// them. It is written last, by the coordinator, so a checkpoint directory with a MANIFEST is
// complete. Also the names of checkpoint directories, finding the latest one, and which config
// fields a checkpoint and the job restoring it must agree on.
#ifndef PSREC_PS_CHECKPOINT_MANIFEST_H_
#define PSREC_PS_CHECKPOINT_MANIFEST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/checkpoint.pb.h"
#include "proto/config.pb.h"

namespace psrec {

// The format of a checkpoint: its manifest's format_version, and the version in every rows file's
// header (ps/checkpoint_codec.h).
constexpr uint32_t kCheckpointFormatVersion = 1;

// The manifest's file name inside a checkpoint directory.
constexpr char kManifestName[] = "MANIFEST";

// "ckpt-000003" for the checkpoint taken after 3 epochs.
std::string CheckpointName(uint32_t epochs_done);

// Writes <checkpoint>/MANIFEST atomically (text format); the checkpoint is complete from then on.
// A manifest that ReadManifest would refuse (wrong format_version, a file list that is not one
// plain-named file per shard) is not written: InvalidArgument.
absl::Status WriteManifest(const std::string& checkpoint, const CheckpointManifest& manifest);

// Reads and checks <checkpoint>/MANIFEST: parse errors, an unknown format version, or a file list
// that is not one file per shard 0..num_shards-1 (in order, each a plain file name: no '/' or
// "..") are refused with the path in the message: NotFound when it cannot be read, DataLoss
// otherwise.
absl::StatusOr<CheckpointManifest> ReadManifest(const std::string& checkpoint);

// The path of the complete checkpoint (one with a MANIFEST) with the most epochs under `root`.
// NOT_FOUND when there is none (the message names `root`).
absl::StatusOr<std::string> FindLatestCheckpoint(const std::string& root);

// The config fields a checkpoint and the job restoring it must agree on, as "field: a vs b";
// empty when they agree. Cluster shape (num_shards, num_workers, consistency, staleness), epochs
// and data_dir may differ.
std::vector<std::string> CheckpointConfigDifferences(const JobConfig& checkpoint,
                                                     const JobConfig& job);

}  // namespace psrec

#endif  // PSREC_PS_CHECKPOINT_MANIFEST_H_
