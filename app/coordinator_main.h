// `psrec coordinator`: see CoordinatorSubcommand().usage.
#ifndef PSREC_APP_COORDINATOR_MAIN_H_
#define PSREC_APP_COORDINATOR_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand CoordinatorSubcommand();

}  // namespace psrec

#endif  // PSREC_APP_COORDINATOR_MAIN_H_
