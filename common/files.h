// Writing a file so that a reader sees the old contents or the new, never half of either.
#ifndef PSREC_COMMON_FILES_H_
#define PSREC_COMMON_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace psrec {

// Writes `contents` to PATH.tmp, flushes it to disk (fsync), and renames it over `path`. On failure
// `path` is untouched, PATH.tmp is removed, and the error names the file and the system's reason.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

}  // namespace psrec

#endif  // PSREC_COMMON_FILES_H_
