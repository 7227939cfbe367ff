#include "common/share_files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/files.h"

namespace psrec {
namespace {

constexpr size_t kHeaderBytes = 64;
constexpr char kMagic[8] = {'P', 'S', 'R', 'E', 'C', 'C', 'O', 'L'};
constexpr size_t kBufferBytes = size_t{64} << 10;
constexpr size_t kNameBytes = 24;

uint32_t Crc32(uint32_t crc, const void* data, size_t bytes) {
  return static_cast<uint32_t>(
      crc32_z(crc, static_cast<const Bytef*>(data), static_cast<z_size_t>(bytes)));
}

// The header's fields, in the order of the layout in share_files.h.
struct Header {
  uint32_t version = 0;
  uint32_t element_size = 0;
  uint64_t count = 0;
  uint32_t crc = 0;
  uint32_t share = 0;
  std::string name;
};

void Put32(char* at, uint32_t v) { std::memcpy(at, &v, 4); }
void Put64(char* at, uint64_t v) { std::memcpy(at, &v, 8); }
uint32_t Get32(const char* at) {
  uint32_t v;
  std::memcpy(&v, at, 4);
  return v;
}
uint64_t Get64(const char* at) {
  uint64_t v;
  std::memcpy(&v, at, 8);
  return v;
}

void EncodeHeader(const Header& h, char* out) {
  std::memset(out, 0, kHeaderBytes);
  std::memcpy(out, kMagic, sizeof(kMagic));
  Put32(out + 8, h.version);
  Put32(out + 12, h.element_size);
  Put64(out + 16, h.count);
  Put32(out + 24, h.crc);
  Put32(out + 28, h.share);
  h.name.copy(out + 32, kNameBytes);  // NUL-padded by the memset, not NUL-terminated
  Put32(out + 60, Crc32(0, out, 60));
}

// Checks the header's own integrity; the caller compares its fields with what it expects.
absl::StatusOr<Header> DecodeHeader(const char* in, const std::string& path) {
  if (std::memcmp(in, kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError(absl::StrCat(path, ": not a psrec share column (bad magic)"));
  }
  if (Get32(in + 60) != Crc32(0, in, 60)) {
    return absl::DataLossError(absl::StrCat(path, ": header checksum mismatch"));
  }
  Header h;
  h.version = Get32(in + 8);
  h.element_size = Get32(in + 12);
  h.count = Get64(in + 16);
  h.crc = Get32(in + 24);
  h.share = Get32(in + 28);
  h.name.assign(in + 32, strnlen(in + 32, kNameBytes));
  return h;
}

std::string ShareName(uint32_t share) {
  return share == kNoShare ? std::string("none") : absl::StrCat(share);
}

// A column's name (its files' extension) and the bytes of one element, in one switch so that a new
// column cannot miss either.
struct ColumnFacts {
  absl::string_view name;
  size_t element_size;
};

ColumnFacts FactsOf(Column column) {
  switch (column) {
    case Column::kUser:
      return {"user", 4};
    case Column::kItem:
      return {"item", 4};
    case Column::kRating:
      return {"rating", 1};
    case Column::kTime:
      return {"time", 8};
    case Column::kPos:
      return {"pos", 4};
    case Column::kIds:
      return {"ids", 8};
  }
  return {"unknown", 0};
}

}  // namespace

size_t ColumnElementSize(Column column) { return FactsOf(column).element_size; }

absl::string_view ColumnName(Column column) { return FactsOf(column).name; }

std::string ShareColumnPath(const std::string& dir, uint32_t share, Column column) {
  return JoinPath(dir, absl::StrFormat("share-%05u.%s", share, ColumnName(column)));
}

ColumnWriter::ColumnWriter(std::string path, Column column, uint32_t share, int fd)
    : path_(std::move(path)), column_(column), share_(share), fd_(fd) {
  buffer_.reserve(kBufferBytes);
}

ColumnWriter::ColumnWriter(ColumnWriter&& other) noexcept
    : path_(std::move(other.path_)),
      column_(other.column_),
      share_(other.share_),
      fd_(std::exchange(other.fd_, -1)),
      count_(other.count_),
      crc_(other.crc_),
      buffer_(std::move(other.buffer_)),
      error_(std::move(other.error_)) {}

ColumnWriter::~ColumnWriter() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<ColumnWriter> ColumnWriter::Create(std::string path, Column column, uint32_t share) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(path, ": cannot create: ", std::strerror(errno)));
  }
  ColumnWriter writer(std::move(path), column, share, fd);
  // The header is written last, over these zeros, once the count and crc are known.
  const std::vector<char> zeros(kHeaderBytes, 0);
  writer.buffer_.insert(writer.buffer_.end(), zeros.begin(), zeros.end());
  return writer;
}

void ColumnWriter::Append(const void* data, size_t count) {
  const size_t bytes = count * ColumnElementSize(column_);
  const char* p = static_cast<const char*>(data);
  crc_ = Crc32(crc_, p, bytes);
  count_ += count;
  if (buffer_.size() + bytes > kBufferBytes) Flush();
  if (bytes >= kBufferBytes) {
    buffer_.insert(buffer_.end(), p, p + bytes);
    Flush();
    return;
  }
  buffer_.insert(buffer_.end(), p, p + bytes);
}

void ColumnWriter::Flush() {
  size_t done = 0;
  while (done < buffer_.size() && error_.empty()) {
    const ssize_t n = write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = absl::StrCat("write failed: ", std::strerror(n < 0 ? errno : EIO));
      break;
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

absl::Status ColumnWriter::Finish() {
  Flush();
  Header h;
  h.version = kShareFormatVersion;
  h.element_size = static_cast<uint32_t>(ColumnElementSize(column_));
  h.count = count_;
  h.crc = crc_;
  h.share = share_;
  h.name = std::string(ColumnName(column_));
  char header[kHeaderBytes];
  EncodeHeader(h, header);
  if (error_.empty() &&
      pwrite(fd_, header, kHeaderBytes, 0) != static_cast<ssize_t>(kHeaderBytes)) {
    error_ = absl::StrCat("header write failed: ", std::strerror(errno));
  }
  if (error_.empty() && fsync(fd_) != 0) {
    error_ = absl::StrCat("fsync failed: ", std::strerror(errno));
  }
  if (close(std::exchange(fd_, -1)) != 0 && error_.empty()) {
    error_ = absl::StrCat("close failed: ", std::strerror(errno));
  }
  if (!error_.empty()) return absl::UnavailableError(absl::StrCat(path_, ": ", error_));
  return absl::OkStatus();
}

MappedColumn::MappedColumn(MappedColumn&& other) noexcept { *this = std::move(other); }

MappedColumn& MappedColumn::operator=(MappedColumn&& other) noexcept {
  if (this != &other) {
    Unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    elements_ = std::exchange(other.elements_, nullptr);
    count_ = std::exchange(other.count_, 0);
    element_size_ = other.element_size_;
  }
  return *this;
}

MappedColumn::~MappedColumn() { Unmap(); }

void MappedColumn::Unmap() {
  if (map_ != nullptr) munmap(map_, map_bytes_);
  map_ = nullptr;
  elements_ = nullptr;
  count_ = 0;
}

void MappedColumn::Release(uint64_t end) {
  if (map_ == nullptr) return;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t bytes = kHeaderBytes + std::min(end, count_) * element_size_;
  const size_t whole = bytes / page * page;
  if (whole > 0) madvise(map_, whole, MADV_DONTNEED);  // a hint: errors are ignored
}

absl::StatusOr<MappedColumn> MappedColumn::Open(const std::string& path, Column column,
                                                uint32_t share, uint64_t count,
                                                bool check_elements) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(message) : absl::DataLossError(message);
  }
  struct stat st;
  const bool sized = fstat(fd, &st) == 0;
  const size_t element_size = ColumnElementSize(column);
  const uint64_t want = kHeaderBytes + count * element_size;
  if (!sized || static_cast<uint64_t>(st.st_size) != want) {
    close(fd);
    return absl::DataLossError(absl::StrCat(path, ": ", sized ? st.st_size : -1, " bytes, but ",
                                            count, " ", ColumnName(column), " elements take ",
                                            want));
  }
  MappedColumn mapped;
  mapped.path_ = path;
  mapped.map_bytes_ = want;
  void* map = mmap(nullptr, want, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    return absl::DataLossError(absl::StrCat(path, ": cannot map: ", std::strerror(errno)));
  }
  mapped.map_ = map;
  const char* bytes = static_cast<const char*>(map);
  absl::StatusOr<Header> h = DecodeHeader(bytes, path);
  if (!h.ok()) return h.status();
  if (h->version != kShareFormatVersion) {
    return absl::DataLossError(absl::StrCat(path, ": format version ", h->version, ", expected ",
                                            kShareFormatVersion, " (prepare the data again)"));
  }
  if (h->name != ColumnName(column) || h->element_size != element_size || h->count != count ||
      h->share != share) {
    return absl::DataLossError(absl::StrCat(
        path, ": holds column '", h->name, "' of share ", ShareName(h->share), ", ", h->count,
        " elements of ", h->element_size, " bytes; expected '", ColumnName(column), "' of share ",
        ShareName(share), ", ", count, " of ", element_size));
  }
  mapped.elements_ = bytes + kHeaderBytes;
  mapped.count_ = count;
  mapped.element_size_ = element_size;
  if (check_elements) {
    madvise(map, want, MADV_SEQUENTIAL);
    if (Crc32(0, mapped.elements_, count * element_size) != h->crc) {
      return absl::DataLossError(absl::StrCat(path, ": checksum mismatch: the file is damaged"));
    }
    madvise(map, want, MADV_NORMAL);
  }
  return mapped;
}

}  // namespace psrec
