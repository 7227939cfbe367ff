#include "app/users_flag.h"

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, users, "",
          "psrec synth: the number of users, each with at least 20 ratings (empty or 0: "
          "--ratings / 154, ml-25m's mean). psrec recommend: a file of MovieLens user ids, one "
          "per line (the first comma-separated field; blank lines, '#' comments and a 'userId' "
          "header are skipped), whose top K go to stdout as CSV.");

namespace psrec {

const char* UsersFlagFile() { return __FILE__; }

std::string UsersFlag() { return absl::GetFlag(FLAGS_users); }

absl::StatusOr<int64_t> UsersCountFlag() {
  const std::string text = UsersFlag();
  int64_t count = 0;
  if (!text.empty() && !absl::SimpleAtoi(text, &count)) {
    return absl::InvalidArgumentError(absl::StrCat("--users=", text, " is not a whole number"));
  }
  return count;
}

}  // namespace psrec
