#include "common/data_flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, shares_dir, "",
          "Where the prepared shares of the ratings live (made once from the ratings file, then "
          "mapped by every process; see psrec prepare --help). Empty: DATA/psrec-shares when the "
          "data directory is writable, else ~/.cache/psrec/shares/NAME-HASH. A worker given none "
          "reads the coordinator's.");

namespace psrec {

const char* DataFlagsFile() { return __FILE__; }

std::string SharesDirFlag() { return absl::GetFlag(FLAGS_shares_dir); }

}  // namespace psrec
