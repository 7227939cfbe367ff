#include "app/prepare_main.h"

#include <cstdio>
#include <optional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/data_flags.h"
#include "common/job_config.h"
#include "common/log.h"
#include "common/prepare.h"

// --data is the job's (common/job_config.cc).
ABSL_DECLARE_FLAG(std::string, data);

ABSL_FLAG(int32_t, shares, psrec::kDefaultShares,
          "How many shares to cut the ratings into. More shares than a job will ever have workers "
          "lets every worker hold several, and a lost worker's be spread over the others.");
ABSL_FLAG(bool, force, false, "Prepare again even when fresh shares are there already.");

namespace psrec {
namespace {

int RunPrepare(const std::set<std::string>& specified) {
  SetLogRole("prepare");
  const int32_t shares = absl::GetFlag(FLAGS_shares);
  if (shares < 1) return Exit("prepare", kExitUsage, absl::StrCat("--shares=", shares, " < 1"));
  absl::StatusOr<std::string> data_dir = FindDataDir(absl::GetFlag(FLAGS_data));
  if (!data_dir.ok()) return Exit("prepare", kExitFailed, data_dir.status());
  const std::string dir = SharesDirFor(*data_dir, SharesDirFlag());
  PrepareOptions options;
  if (specified.count("shares") > 0 || absl::GetFlag(FLAGS_force)) {
    options.num_shares = static_cast<uint32_t>(shares);
  }
  absl::StatusOr<SharesManifest> manifest = absl::GetFlag(FLAGS_force)
                                                ? PrepareShares(*data_dir, dir, options)
                                                : EnsurePrepared(*data_dir, dir, options);
  if (!manifest.ok()) return Exit("prepare", kExitFailed, manifest.status());
  std::printf("shares_dir=%s ratings=%llu users=%u items=%u shares=%u\n", dir.c_str(),
              static_cast<unsigned long long>(manifest->num_ratings()), manifest->num_users(),
              manifest->num_items(), manifest->num_shares());
  return 0;
}

}  // namespace

Subcommand PrepareSubcommand() {
  return Subcommand{
      "prepare",
      "cut a ratings file into compact shares by user, once, for every later run to map",
      "psrec prepare [--data=DIR] [--shares_dir=DIR] [--shares=N] [--force]\n\n"
      "Reads DIR's ratings.csv, ratings.dat or u.data once and writes its ratings, cut into N\n"
      "shares by user, as compact column files: 32-bit user and movie indices, the rating in half\n"
      "stars, and the timestamp and position in the file, which only splitting needs. Every\n"
      "process of a job then maps the shares it holds instead of parsing the file: a worker only\n"
      "its own. psrec train, coordinator and eval do this by themselves when the shares are\n"
      "missing or stale (the ratings file changed size, time or contents at its ends); run it by\n"
      "hand to choose N, to put the shares on a volume every machine mounts, or to pay the time\n"
      "ahead of a job. Without --force, fresh shares are left as they are.\n\n"
      "Prints 'shares_dir=... ratings=N users=U items=I shares=S'. Exit 1: a missing or bad\n"
      "ratings file (the message names file and line; a rating must be a whole number of half\n"
      "stars), or a damaged MANIFEST; exit 2: bad flags.",
      {DataFlagsFile(), __FILE__},
      &RunPrepare,
      {"data"},
  };
}

}  // namespace psrec
