// The in-process job: the ratings prepared into shares if they are not yet (common/prepare.h),
// every share held and split, every epoch trained with the parameter tables in this process and
// evaluated after each. It is one worker holding every share, and the reference every distributed
// run must reproduce.
#ifndef PSREC_APP_LOCAL_JOB_H_
#define PSREC_APP_LOCAL_JOB_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_report.h"
#include "common/param_store.h"
#include "common/share_set.h"
#include "proto/config.pb.h"

namespace psrec {

// The shares of config->data_dir, prepared first where needed (in --shares_dir or its default),
// all held and split as the config says; sets config->rating_offset. Logs what it holds and how
// long it took.
absl::StatusOr<std::unique_ptr<ShareSet>> HoldJobData(JobConfig* config);

// The popularity baseline over every user of `data` (which holds every share), when the config
// ranks at all; unranked otherwise.
absl::StatusOr<RankingMetrics> PopularityBaseline(const JobConfig& config, ShareSet& data);
// The ranking metrics of the model in `store` over every user of `data`, when the config ranks
// after 1-based `epoch` (RanksAfterEpoch); unranked otherwise.
absl::StatusOr<RankingMetrics> RankAfterEpoch(const JobConfig& config, uint32_t epoch,
                                              const ShareSet& data, ParamStore* store);

// Trains config.epochs epochs in this process and evaluates after each. `metrics_out` may be empty.
// Ends by logging the process's peak memory and CPU time (also in the metrics file).
absl::StatusOr<std::vector<EpochRecord>> RunLocalJob(JobConfig config,
                                                     const std::string& metrics_out);

}  // namespace psrec

#endif  // PSREC_APP_LOCAL_JOB_H_
