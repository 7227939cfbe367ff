// `psrec train`: the whole job in one command.
#ifndef PSREC_APP_TRAIN_MAIN_H_
#define PSREC_APP_TRAIN_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand TrainSubcommand();

}  // namespace psrec

#endif  // PSREC_APP_TRAIN_MAIN_H_
