// `psrec ps`: see PsSubcommand().usage.
#ifndef PSREC_PS_PS_MAIN_H_
#define PSREC_PS_PS_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand PsSubcommand();

}  // namespace psrec

#endif  // PSREC_PS_PS_MAIN_H_
