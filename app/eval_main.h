// `psrec eval`: the test metrics of a saved checkpoint, without training.
#ifndef PSREC_APP_EVAL_MAIN_H_
#define PSREC_APP_EVAL_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand EvalSubcommand();

}  // namespace psrec

#endif  // PSREC_APP_EVAL_MAIN_H_
