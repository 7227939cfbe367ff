// `psrec train`: the whole job in one command.
#ifndef PSREC_COORDINATOR_TRAIN_MAIN_H_
#define PSREC_COORDINATOR_TRAIN_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand TrainSubcommand();

}  // namespace psrec

#endif  // PSREC_COORDINATOR_TRAIN_MAIN_H_
