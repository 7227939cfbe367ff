// `psrec synth`: writes a MovieLens-shaped rating set (common/synth.h).
#ifndef PSREC_COORDINATOR_SYNTH_MAIN_H_
#define PSREC_COORDINATOR_SYNTH_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand SynthSubcommand();

}  // namespace psrec

#endif  // PSREC_COORDINATOR_SYNTH_MAIN_H_
