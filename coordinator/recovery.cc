#include "coordinator/recovery.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "ps/checkpoint.h"

namespace psrec {
namespace {

// Deletes the complete checkpoints under `root` older than `newest`, all but the newest
// `keep_older` of them. Only names CheckpointName makes (ckpt-<digits>, none of them a copy such as
// ckpt-000003.bak) are touched.
void PruneCheckpoints(const std::string& root, const std::string& newest, size_t keep_older) {
  std::error_code error;
  std::vector<std::string> complete;
  for (const auto& entry : std::filesystem::directory_iterator(root, error)) {
    const std::string base = entry.path().filename().string();
    if (base.size() == newest.size() && base.rfind("ckpt-", 0) == 0 &&
        base.find_first_not_of("0123456789", 5) == std::string::npos && base < newest &&
        std::filesystem::exists(entry.path() / "MANIFEST", error)) {
      complete.push_back(entry.path().string());
    }
  }
  std::sort(complete.begin(), complete.end());
  for (size_t i = 0; i + keep_older < complete.size(); ++i) {
    std::filesystem::remove_all(complete[i], error);
  }
}

}  // namespace

Recovery::Recovery(JobConfig config, RecoveryOptions options, ShardControl* shards)
    : config_(std::move(config)), options_(std::move(options)), shards_(shards) {}

absl::StatusOr<RestartPoint> Recovery::Start() {
  last_checkpoint_ = absl::Now();
  const bool resume = options_.resume || options_.auto_resume;
  if (!resume && !options_.checkpoint_dir.empty()) {
    absl::StatusOr<std::string> old = FindLatestCheckpoint(options_.checkpoint_dir);
    if (old.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(options_.checkpoint_dir, " already holds checkpoints (", *old,
                       "): pass --resume (or --auto_resume) to continue that job, or give another "
                       "--checkpoint_dir"));
    }
  }
  if (!resume) return RestartPoint();
  const char* flag = options_.resume ? "--resume" : "--auto_resume";
  absl::StatusOr<RestartPoint> latest = LatestCheckpoint();
  if (!latest.ok()) return latest.status();
  if (latest->checkpoint.empty()) {
    PSREC_LOG(INFO) << flag << ": no complete checkpoint in " << options_.checkpoint_dir
                    << "; starting from the first epoch";
  } else {
    PSREC_LOG(INFO) << flag << ": continuing after epoch " << latest->epochs_done << " from "
                    << options_.checkpoint_dir << "/" << latest->checkpoint;
  }
  return latest;
}

absl::StatusOr<RestartPoint> Recovery::LatestCheckpoint() const {
  if (options_.checkpoint_dir.empty()) return RestartPoint();
  absl::StatusOr<std::string> path = FindLatestCheckpoint(options_.checkpoint_dir);
  if (absl::IsNotFound(path.status())) return RestartPoint();
  if (!path.ok()) return path.status();
  absl::StatusOr<CheckpointManifest> manifest = ReadManifest(*path);
  if (!manifest.ok()) return manifest.status();
  const std::vector<std::string> diff = CheckpointConfigDifferences(manifest->config(), config_);
  if (!diff.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(*path, " was written by a job with another config (checkpoint vs job): ",
                     absl::StrJoin(diff, "; ")));
  }
  if (manifest->epochs_done() > config_.epochs()) {
    return absl::FailedPreconditionError(absl::StrCat(*path, " holds ", manifest->epochs_done(),
                                                      " epochs, more than the job's ",
                                                      config_.epochs()));
  }
  return RestartPoint{std::filesystem::path(*path).filename().string(), manifest->epochs_done()};
}

absl::Status Recovery::CountRollback(const std::string& why) {
  if (++rollbacks_ > options_.max_rollbacks) {
    return absl::AbortedError(absl::StrCat("giving up after ", options_.max_rollbacks,
                                           " rollbacks; the last because ", why));
  }
  return absl::OkStatus();
}

absl::StatusOr<RestartPoint> Recovery::BeginRollback(const std::string& why) {
  if (absl::Status s = CountRollback(why); !s.ok()) return s;
  absl::StatusOr<RestartPoint> latest = LatestCheckpoint();
  if (!latest.ok()) return latest.status();
  PSREC_LOG(WARNING) << "rolling back to "
                     << (latest->checkpoint.empty()
                             ? std::string("fresh rows")
                             : absl::StrCat("checkpoint ", latest->checkpoint))
                     << " (epoch " << latest->epochs_done + 1 << ") because " << why;
  return latest;
}

absl::Status Recovery::Restore(uint64_t generation, const std::string& checkpoint, bool keep_rows,
                               uint64_t clock, const std::vector<uint32_t>& workers) {
  if (absl::Status s = shards_->Restore(generation, checkpoint, keep_rows, clock, workers);
      !s.ok()) {
    return s;
  }
  PSREC_LOG(INFO) << "generation " << generation << ": workers [" << absl::StrJoin(workers, ",")
                  << "], rows "
                  << (keep_rows            ? "kept"
                      : checkpoint.empty() ? "fresh"
                                           : absl::StrCat("from ", checkpoint));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Recovery::CheckShards() { return shards_->Check(); }

bool Recovery::CheckpointDue(bool last) const {
  return enabled() && !options_.checkpoint_dir.empty() &&
         (last || absl::Now() - last_checkpoint_ >= options_.checkpoint_every);
}

absl::StatusOr<std::string> Recovery::Checkpoint(uint32_t epochs_done, uint64_t generation,
                                                 uint64_t clock) {
  const absl::Status s = WriteCheckpoint(epochs_done, generation, clock);
  if (s.ok()) return std::string();
  if (absl::IsDeadlineExceeded(s)) {
    // The call's deadline is fail_after.
    return absl::DeadlineExceededError(absl::StrCat(
        s.message(), " (no answer within --fail_after=", absl::FormatDuration(options_.fail_after),
        ")"));
  }
  if (absl::IsAborted(s) || absl::IsUnavailable(s) || absl::IsCancelled(s)) {
    return absl::StrCat("checkpoint failed: ", s.message());
  }
  // The rows are intact (a full disk, say): train on, and try again after the next epoch; the
  // last complete checkpoint stays the one to roll back to.
  PSREC_LOG(WARNING) << "checkpoint after epoch " << epochs_done
                     << " failed; training goes on: " << s.message();
  return std::string();
}

absl::Status Recovery::WriteCheckpoint(uint32_t epochs_done, uint64_t generation, uint64_t clock) {
  const std::string name = CheckpointName(epochs_done);
  absl::StatusOr<std::vector<CheckpointFile>> files = shards_->Checkpoint(name, generation);
  if (!files.ok()) return files.status();
  CheckpointManifest manifest;
  manifest.set_format_version(kCheckpointFormatVersion);
  *manifest.mutable_config() = config_;
  manifest.set_epochs_done(epochs_done);
  manifest.set_clock(clock);
  manifest.set_num_shards(static_cast<uint32_t>(files->size()));
  for (CheckpointFile& file : *files) *manifest.add_files() = std::move(file);
  manifest.set_created(absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()));
  const std::string dir = absl::StrCat(options_.checkpoint_dir, "/", name);
  if (absl::Status s = WriteManifest(dir, manifest); !s.ok()) return s;
  PSREC_LOG(INFO) << "checkpoint " << dir << " complete (" << files->size() << " shards)";
  // Keep the newest keep_checkpoints complete ones; never the one just written.
  PruneCheckpoints(options_.checkpoint_dir, name, std::max(options_.keep_checkpoints, 1u) - 1);
  last_checkpoint_ = absl::Now();
  return absl::OkStatus();
}

}  // namespace psrec
