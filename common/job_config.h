// The one job configuration: built from flags (and an optional text-format file), validated, and
// then the same for every role.
#ifndef PSREC_COMMON_JOB_CONFIG_H_
#define PSREC_COMMON_JOB_CONFIG_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/cli.h"
#include "common/config_diff.h"  // ConfigDifferences, for the roles that compare configs
#include "proto/config.pb.h"

namespace psrec {

// The names of the flags that define the JobConfig, for `--help` listings.
const char* JobFlagsFile();

// Builds the config: the flags' defaults, then --config=FILE (text format) if given, then every
// flag in `specified` (the flags named on the command line). Derives the tables and validates the
// result.
absl::StatusOr<JobConfig> JobConfigFromFlags(const std::set<std::string>& specified);

// Checks ranges and names the offending field. Requires tables to be filled.
absl::Status ValidateJobConfig(const JobConfig& config);

// Where the ratings are: `flag` if set, else $MOVIELENS_DIR, else data/ml-latest-small, else
// ../shared/data/ml-latest-small. A NotFound error lists every place tried.
absl::StatusOr<std::string> FindDataDir(const std::string& flag);

}  // namespace psrec

#endif  // PSREC_COMMON_JOB_CONFIG_H_
