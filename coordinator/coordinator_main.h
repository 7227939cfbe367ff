// `psrec coordinator`: see CoordinatorSubcommand().usage.
#ifndef PSREC_COORDINATOR_COORDINATOR_MAIN_H_
#define PSREC_COORDINATOR_COORDINATOR_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand CoordinatorSubcommand();

}  // namespace psrec

#endif  // PSREC_COORDINATOR_COORDINATOR_MAIN_H_
