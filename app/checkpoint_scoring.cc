#include "app/checkpoint_scoring.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/job_config.h"
#include "common/log.h"
#include "ps/checkpoint.h"

namespace psrec {
namespace {

absl::StatusOr<std::string> ResolveCheckpoint(const std::string& flag) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::filesystem::path(flag) / "MANIFEST", ec)) return flag;
  absl::StatusOr<std::string> latest = FindLatestCheckpoint(flag);
  if (!latest.ok()) {
    return absl::NotFoundError(
        absl::StrCat("--checkpoint=", flag,
                     " has no MANIFEST and is not a checkpoint root: ", latest.status().message()));
  }
  return latest;
}

// The checkpoint may come from another machine, where the recorded directory does not exist.
absl::StatusOr<std::string> ResolveDataDir(const std::string& flag, const std::string& recorded) {
  if (!flag.empty()) return FindDataDir(flag);
  if (!recorded.empty()) {
    absl::StatusOr<std::string> dir = FindDataDir(recorded);
    if (dir.ok()) return dir;
    PSREC_LOG(INFO) << "the checkpoint's data directory " << recorded
                    << " has no ratings here; searching the usual places";
  }
  return FindDataDir("");
}

}  // namespace

absl::StatusOr<CheckpointSource> FindCheckpointSource(const std::string& checkpoint_flag,
                                                      const std::string& data_flag) {
  CheckpointSource out;
  absl::StatusOr<std::string> dir = ResolveCheckpoint(checkpoint_flag);
  if (!dir.ok()) return dir.status();
  out.dir = *dir;
  absl::StatusOr<CheckpointManifest> manifest = ReadManifest(out.dir);
  if (!manifest.ok()) return manifest.status();
  out.manifest = *std::move(manifest);
  out.config = out.manifest.config();
  absl::StatusOr<std::string> data_dir = ResolveDataDir(data_flag, out.config.data_dir());
  if (!data_dir.ok()) return data_dir.status();
  out.config.set_data_dir(*data_dir);
  return out;
}

absl::StatusOr<std::unique_ptr<LocalStore>> LoadCheckpointRows(const CheckpointSource& source) {
  absl::StatusOr<std::unique_ptr<LocalStore>> store =
      LocalStore::Create(source.config.tables(), source.config.optimizer(), source.config.seed());
  if (!store.ok()) return store.status();
  absl::Status insert = absl::OkStatus();
  absl::Status loaded =
      LoadCheckpoint(source.dir, source.config, {},
                     [&](uint32_t table, uint64_t key, uint32_t step,
                         absl::Span<const float> values, absl::Span<const float> state) {
                       if (insert.ok()) {
                         insert = (*store)->InsertRow(table, key, step, values, state);
                       }
                     });
  if (!loaded.ok()) return loaded;
  if (!insert.ok()) return insert;
  return store;
}

absl::StatusOr<ScoringCheckpoint> LoadScoringCheckpoint(const std::string& checkpoint_flag,
                                                        const std::string& data_flag) {
  absl::StatusOr<CheckpointSource> source = FindCheckpointSource(checkpoint_flag, data_flag);
  if (!source.ok()) return source.status();
  ScoringCheckpoint out;
  // ReadWholeData recomputes rating_offset from the data and LoadCheckpointRows compares it with
  // the manifest's, so other ratings than the run's are refused rather than scored.
  absl::StatusOr<WholeData> job = ReadWholeData(&source->config);
  if (!job.ok()) return job.status();
  out.job = *std::move(job);
  absl::StatusOr<std::unique_ptr<LocalStore>> store = LoadCheckpointRows(*source);
  if (!store.ok()) return store.status();
  out.store = *std::move(store);
  out.dir = source->dir;
  out.manifest = std::move(source->manifest);
  out.config = std::move(source->config);
  return out;
}

}  // namespace psrec
