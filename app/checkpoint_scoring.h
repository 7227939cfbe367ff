// A saved checkpoint loaded into this process for scoring, without a cluster: the config its
// MANIFEST records, the ratings read and split as that run split them, and every row in a
// LocalStore (absent rows read as their seeded initial values, as on the servers).
//
// `psrec recommend` uses it. It holds the whole ratings file (common/ranking_data.h's WholeData):
// ranking needs every rating of a user and every movie. `psrec eval` scores from the prepared
// shares instead (app/eval_main.cc).
#ifndef PSREC_APP_CHECKPOINT_SCORING_H_
#define PSREC_APP_CHECKPOINT_SCORING_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/ranking_data.h"
#include "proto/checkpoint.pb.h"
#include "proto/config.pb.h"
#include "ps/local_store.h"

namespace psrec {

// The checkpoint a --checkpoint flag names, its manifest, and its config with the data directory
// to read.
struct CheckpointSource {
  std::string dir;  // the checkpoint directory
  CheckpointManifest manifest;
  JobConfig config;  // the manifest's, with the data directory used
};

// `checkpoint_flag` names a checkpoint directory (holding a MANIFEST) or a --checkpoint_dir root,
// whose latest complete checkpoint is used. The data directory is `data_flag` if set, else the one
// the manifest records if it has ratings here (the checkpoint may come from another machine), else
// FindDataDir's usual places. NotFound for no checkpoint or no ratings; ReadManifest's errors.
absl::StatusOr<CheckpointSource> FindCheckpointSource(const std::string& checkpoint_flag,
                                                      const std::string& data_flag);

// A LocalStore holding every row of `source`'s checkpoint. Call it once the data has set
// source.config's rating_offset: LoadCheckpoint refuses ratings whose mean differs from the
// training run's, rather than scoring them. LoadCheckpoint's errors for a corrupt checkpoint.
absl::StatusOr<std::unique_ptr<LocalStore>> LoadCheckpointRows(const CheckpointSource& source);

struct ScoringCheckpoint {
  std::string dir;  // the checkpoint directory read
  CheckpointManifest manifest;
  JobConfig config;  // the manifest's, with the data directory used
  WholeData job;
  std::unique_ptr<LocalStore> store;
};

// `checkpoint_flag` names a checkpoint directory (holding a MANIFEST) or a --checkpoint_dir root,
// whose latest complete checkpoint is used. The ratings come from `data_flag` if set, else the
// directory the manifest records, else FindDataDir's usual places. Errors: NotFound for no
// checkpoint or no ratings; the reader's errors (file and line); LoadCheckpoint's for a corrupt or
// mismatched checkpoint, including ratings whose mean differs from the training run's.
absl::StatusOr<ScoringCheckpoint> LoadScoringCheckpoint(const std::string& checkpoint_flag,
                                                        const std::string& data_flag);

}  // namespace psrec

#endif  // PSREC_APP_CHECKPOINT_SCORING_H_
