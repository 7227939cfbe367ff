// `psrec recommend`: a user's top K movies, with titles, from a saved checkpoint.
#ifndef PSREC_APP_RECOMMEND_MAIN_H_
#define PSREC_APP_RECOMMEND_MAIN_H_

#include "common/cli.h"

namespace psrec {

Subcommand RecommendSubcommand();

}  // namespace psrec

#endif  // PSREC_APP_RECOMMEND_MAIN_H_
