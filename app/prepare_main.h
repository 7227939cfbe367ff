// `psrec prepare`: cuts a ratings file into compact shares once (common/prepare.h).
#ifndef PSREC_APP_PREPARE_MAIN_H_
#define PSREC_APP_PREPARE_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand PrepareSubcommand();

}  // namespace psrec

#endif  // PSREC_APP_PREPARE_MAIN_H_
