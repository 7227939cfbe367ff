// `psrec synth`: writes a MovieLens-shaped rating set (common/synth.h).
#ifndef PSREC_APP_SYNTH_MAIN_H_
#define PSREC_APP_SYNTH_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand SynthSubcommand();

}  // namespace psrec

#endif  // PSREC_APP_SYNTH_MAIN_H_
