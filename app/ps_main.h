// `psrec ps`: see PsSubcommand().usage.
#ifndef PSREC_APP_PS_MAIN_H_
#define PSREC_APP_PS_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand PsSubcommand();

}  // namespace psrec

#endif  // PSREC_APP_PS_MAIN_H_
