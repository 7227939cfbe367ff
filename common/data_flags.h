// The flag that says where prepared shares live (common/prepare.h), for every subcommand that reads
// ratings: train, coordinator, worker, eval and prepare.
#ifndef PSREC_COMMON_DATA_FLAGS_H_
#define PSREC_COMMON_DATA_FLAGS_H_

#include <string>

namespace psrec {

// --help lists the flags of this file.
const char* DataFlagsFile();

// --shares_dir: empty means SharesDirFor's default beside (or for) the data directory.
std::string SharesDirFlag();

}  // namespace psrec

#endif  // PSREC_COMMON_DATA_FLAGS_H_
