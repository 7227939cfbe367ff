#include "ps/checkpoint_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace psrec {

namespace fs = std::filesystem;

std::string CheckpointPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : absl::StrCat(dir, "/", name);
}

absl::Status FsyncDir(const std::string& dir) {
  const std::string path = dir.empty() ? "." : dir;
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot fsync directory ", path, ": ", std::strerror(error)));
  }
  ::close(fd);
  return absl::OkStatus();
}

absl::Status MakeDurableDir(const std::string& dir) {
  std::error_code ec;
  const bool created = fs::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  if (!created) return absl::OkStatus();
  fs::path path = fs::path(dir).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();  // "a/b/" names b, whose parent is a
  return FsyncDir(path.parent_path().string());
}

absl::StatusOr<std::string> ReadBoundedFile(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::is_regular_file(status)) {
    return absl::NotFoundError(absl::StrCat(
        path, ": cannot read: ", ec ? ec.message() : std::string("not a regular file")));
  }
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(path, ": cannot read: ", ec.message()));
  if (size > max_bytes) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", size, " bytes, more than the ", max_bytes, " expected"));
  }
  std::string contents(size, '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(contents.data(), static_cast<std::streamsize>(size)) ||
      in.peek() != std::ifstream::traits_type::eof()) {
    return absl::DataLossError(absl::StrCat(path, ": changed size while being read"));
  }
  return contents;
}

}  // namespace psrec
