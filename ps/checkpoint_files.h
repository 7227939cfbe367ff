// The file handling that checkpoint writers and readers share: paths inside a checkpoint
// directory, directories and renames made durable, and whole-file reads with a size bound.
// (A candidate for common/files.h once that has a reader and a path joiner.)
#ifndef PSREC_PS_CHECKPOINT_FILES_H_
#define PSREC_PS_CHECKPOINT_FILES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace psrec {

// `dir`/`name`, with no doubled '/' when `dir` ends in one; `name` alone when `dir` is empty.
std::string CheckpointPath(const std::string& dir, const std::string& name);

// fsyncs directory `dir` ("" is the current one), so that a rename into it survives a crash
// (WriteFileAtomically fsyncs the file but not its directory). UNAVAILABLE with the system's
// reason.
absl::Status FsyncDir(const std::string& dir);

// Creates `dir` and its parents if needed; a new directory's own entry is made durable in its
// parent. UNAVAILABLE naming the directory.
absl::Status MakeDurableDir(const std::string& dir);

// The contents of the regular file `path`, which must hold at most `max_bytes`: NOT_FOUND when it
// cannot be read or is not a regular file, DATA_LOSS when it is larger or changes size while being
// read. Errors start with the path.
absl::StatusOr<std::string> ReadBoundedFile(const std::string& path, uint64_t max_bytes);

}  // namespace psrec

#endif  // PSREC_PS_CHECKPOINT_FILES_H_
