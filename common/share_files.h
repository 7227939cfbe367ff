// The files of prepared shares (common/prepare.h makes them, common/share_set.h reads them). Each
// column of a share, and each table of original ids, is a file of its own, so that a process maps
// only the columns it needs, and only while it needs them (timestamps and file positions are
// needed to split and to order a share, not to train on it).
//
// A column file is a 64-byte header and then `count` elements of a fixed size, little-endian:
//
//    0  char[8]   magic "PSRECCOL"
//    8  u32       format version (kShareFormatVersion)
//   12  u32       element size in bytes
//   16  u64       element count
//   24  u32       zlib crc32 of the elements
//   28  u32       share number, or kNoShare for the id tables
//   32  char[24]  column name, NUL-padded ("user", "item", "rating", "time", "pos", "ids")
//   56  u32       0
//   60  u32       zlib crc32 of bytes 0..59
//   64  the elements
//
// Every check names the file: a reader never trusts a column it has not checked.
#ifndef PSREC_COMMON_SHARE_FILES_H_
#define PSREC_COMMON_SHARE_FILES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace psrec {

constexpr uint32_t kShareFormatVersion = 1;
constexpr uint32_t kNoShare = 0xffffffffu;

enum class Column {
  kUser,    // u32 dense user index
  kItem,    // u32 dense movie index
  kRating,  // u8 rating in half stars, 1..10
  kTime,    // i64 timestamp
  kPos,     // u32 the rating's number in the file, 0-based, increasing within a share
  kIds,     // i64 original id by dense index (users.ids, items.ids)
};

size_t ColumnElementSize(Column column);
absl::string_view ColumnName(Column column);

// "DIR/share-00012.time" for a share's column.
std::string ShareColumnPath(const std::string& dir, uint32_t share, Column column);

// Streams the elements of one column to a new file. Writes are buffered; the first failure is
// kept and returned by Finish. Not thread-safe; move-only.
class ColumnWriter {
 public:
  // Creates (or truncates) `path`. UNAVAILABLE naming the file and the system's reason.
  static absl::StatusOr<ColumnWriter> Create(std::string path, Column column, uint32_t share);
  ColumnWriter(ColumnWriter&& other) noexcept;
  ColumnWriter& operator=(ColumnWriter&&) = delete;
  ~ColumnWriter();

  // Appends `count` elements of the column's size from `data`.
  void Append(const void* data, size_t count);
  template <typename T>
  void Append(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    Append(&value, 1);
  }

  // Writes the buffered elements and the header, fsyncs and closes the file. UNAVAILABLE naming
  // the file for any failure since Create.
  absl::Status Finish();

  uint64_t count() const { return count_; }

 private:
  ColumnWriter(std::string path, Column column, uint32_t share, int fd);
  void Flush();

  std::string path_;
  Column column_;
  uint32_t share_;
  int fd_ = -1;
  uint64_t count_ = 0;
  uint32_t crc_ = 0;
  std::vector<char> buffer_;
  std::string error_;  // the first failure
};

// A column file mapped read-only. Move-only; unmapped when destroyed, which also drops its pages
// from the process's resident memory.
class MappedColumn {
 public:
  // Maps `path` and checks its header against what the caller expects: the column, its element
  // size, `share` and `count` (the manifest's), and the header's crc. With `check_elements` it also
  // reads every element for their crc. NOT_FOUND when the file is missing; DATA_LOSS naming the
  // file and what is wrong for anything else.
  static absl::StatusOr<MappedColumn> Open(const std::string& path, Column column, uint32_t share,
                                           uint64_t count, bool check_elements);
  MappedColumn() = default;
  MappedColumn(MappedColumn&& other) noexcept;
  MappedColumn& operator=(MappedColumn&& other) noexcept;
  ~MappedColumn();

  template <typename T>
  absl::Span<const T> span() const {
    return absl::Span<const T>(reinterpret_cast<const T*>(elements_), count_);
  }
  const std::string& path() const { return path_; }
  uint64_t count() const { return count_; }

  // Drops the pages that hold only elements before `end` from resident memory (they are read from
  // the file again if touched), for a caller that reads the column once from front to back.
  void Release(uint64_t end);

 private:
  void Unmap();

  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const char* elements_ = nullptr;
  uint64_t count_ = 0;
  size_t element_size_ = 0;
};

}  // namespace psrec

#endif  // PSREC_COMMON_SHARE_FILES_H_
