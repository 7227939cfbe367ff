// --users, shared by `psrec synth` (how many users to generate) and `psrec recommend` (a file of
// user ids). absl keeps one flag per name in a binary, so both read this one string flag, each in
// its own sense.
#ifndef PSREC_APP_USERS_FLAG_H_
#define PSREC_APP_USERS_FLAG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace psrec {

const char* UsersFlagFile();

// The flag's text: `psrec recommend`'s file of user ids.
std::string UsersFlag();

// `psrec synth`'s count: 0 when the flag is empty, else its integer value. InvalidArgument naming
// the flag when the text is not an integer.
absl::StatusOr<int64_t> UsersCountFlag();

}  // namespace psrec

#endif  // PSREC_APP_USERS_FLAG_H_
