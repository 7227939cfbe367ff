// `psrec worker`: see WorkerSubcommand().usage.
#ifndef PSREC_APP_WORKER_MAIN_H_
#define PSREC_APP_WORKER_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand WorkerSubcommand();

}  // namespace psrec

#endif  // PSREC_APP_WORKER_MAIN_H_
