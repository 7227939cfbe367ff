#include "common/prepare.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/log.h"
#include "common/movielens_scan.h"
#include "common/rng.h"
#include "common/share_files.h"
#include "google/protobuf/text_format.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadBytes = size_t{16} << 20;
constexpr size_t kEndBytes = size_t{1} << 20;  // how much of each end of the source is summed
constexpr Column kShareColumns[] = {Column::kUser, Column::kItem, Column::kRating, Column::kTime,
                                    Column::kPos};

uint64_t HashBytes(absl::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, then mixed
  for (char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return Mix64(h);
}

absl::Status Unavailable(const std::string& path, const char* what, int error) {
  return absl::UnavailableError(absl::StrCat(path, ": ", what, ": ", std::strerror(error)));
}

// The five column files of every share, and what the manifest says of each share.
class ShareWriters {
 public:
  static absl::StatusOr<std::unique_ptr<ShareWriters>> Open(const std::string& dir,
                                                            uint32_t num_shares) {
    auto writers = std::unique_ptr<ShareWriters>(new ShareWriters());
    writers->info_.resize(num_shares);
    for (uint32_t share = 0; share < num_shares; ++share) {
      for (Column column : kShareColumns) {
        absl::StatusOr<ColumnWriter> w =
            ColumnWriter::Create(ShareColumnPath(dir, share, column), column, share);
        if (!w.ok()) return w.status();
        writers->columns_.push_back(*std::move(w));
      }
    }
    return writers;
  }

  void Add(uint32_t share, uint32_t user, uint32_t item, uint8_t half_stars, int64_t time,
           uint32_t pos) {
    ColumnWriter* w = &columns_[size_t{share} * std::size(kShareColumns)];
    w[0].Append(user);
    w[1].Append(item);
    w[2].Append(half_stars);
    w[3].Append(time);
    w[4].Append(pos);
    ShareInfo& info = info_[share];
    if (info.rows() == 0 || time < info.min_time()) info.set_min_time(time);
    if (info.rows() == 0 || time > info.max_time()) info.set_max_time(time);
    info.set_rows(info.rows() + 1);
    info.set_half_stars(info.half_stars() + half_stars);
  }

  absl::Status Finish(SharesManifest* manifest) {
    for (ColumnWriter& w : columns_) {
      if (absl::Status s = w.Finish(); !s.ok()) return s;
    }
    manifest->set_num_shares(static_cast<uint32_t>(info_.size()));
    for (const ShareInfo& info : info_) *manifest->add_shares() = info;
    return absl::OkStatus();
  }

 private:
  ShareWriters() = default;
  std::vector<ColumnWriter> columns_;
  std::vector<ShareInfo> info_;
};

// Ratings into shares: dense indices, half stars, positions.
class Sharder {
 public:
  Sharder(ShareWriters* writers, uint32_t num_shares) : writers_(writers), shares_(num_shares) {}

  void Add(absl::Span<const ScannedRating> batch) {
    for (const ScannedRating& s : batch) {
      if (s.user_id != last_user_id_) {
        last_user_id_ = s.user_id;
        last_user_ = users_.Get(s.user_id, &user_ids_);
        last_share_ = ShareOfUser(s.user_id, shares_);
      }
      const uint32_t item = items_.Get(s.item_id, &item_ids_);
      // The parser has checked that the rating is a whole number of half stars in [0.5, 5].
      const auto half_stars = static_cast<uint8_t>(std::lround(2.0f * s.rating));
      writers_->Add(last_share_, last_user_, item, half_stars, s.timestamp, count_++);
    }
  }

  uint64_t count() const { return count_; }

  absl::Status WriteIds(const std::string& dir, SharesManifest* manifest) const {
    for (const auto& [name, ids] :
         {std::pair{"users.ids", &user_ids_}, {"items.ids", &item_ids_}}) {
      absl::StatusOr<ColumnWriter> w =
          ColumnWriter::Create(JoinPath(dir, name), Column::kIds, kNoShare);
      if (!w.ok()) return w.status();
      w->Append(ids->data(), ids->size());
      if (absl::Status s = w->Finish(); !s.ok()) return s;
    }
    manifest->set_num_users(static_cast<uint32_t>(user_ids_.size()));
    manifest->set_num_items(static_cast<uint32_t>(item_ids_.size()));
    manifest->set_num_ratings(count_);
    return absl::OkStatus();
  }

 private:
  ShareWriters* writers_;
  uint32_t shares_;
  IdIndex users_, items_;
  std::vector<int64_t> user_ids_, item_ids_;
  int64_t last_user_id_ = -1;
  uint32_t last_user_ = 0, last_share_ = 0;
  uint32_t count_ = 0;
};

// Logs how far a long read has got, at most once per `every`.
class ReadProgress {
 public:
  ReadProgress(const std::string& path, uint64_t total, absl::Duration every)
      : path_(path), total_(total), every_(every), start_(absl::Now()), last_(start_) {}
  void Update(uint64_t done, uint64_t ratings) {
    const absl::Time now = absl::Now();
    if (now - last_ < every_ || done == 0) return;
    last_ = now;
    const double secs = absl::ToDoubleSeconds(now - start_);
    PSREC_LOG(INFO) << absl::StrFormat(
        "preparing %s: %.0f%% of %.1f MB, %u ratings, %.2fM ratings/s, about %.0f s left", path_,
        100.0 * static_cast<double>(done) / static_cast<double>(std::max<uint64_t>(total_, 1)),
        static_cast<double>(total_) / 1e6, ratings, static_cast<double>(ratings) / secs / 1e6,
        secs * static_cast<double>(total_ - done) / static_cast<double>(done));
  }

 private:
  std::string path_;
  uint64_t total_;
  absl::Duration every_;
  absl::Time start_, last_;
};

// Streams `file` through the parser into `sharder`.
absl::Status ReadInto(const RatingFile& file, uint64_t size, absl::Duration progress_every,
                      Sharder* sharder) {
  const int fd = open(file.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Unavailable(file.path, "cannot open", errno);
  RatingParser parser(file.layout, file.path, /*half_stars=*/true);
  ReadProgress progress(file.path, size, progress_every);
  std::vector<char> buffer(kReadBytes);
  std::vector<ScannedRating> batch;
  size_t held = 0;  // bytes at the start of buffer not yet parsed
  uint64_t done = 0;
  absl::Status status;
  for (bool last = false; !last && status.ok();) {
    if (held == buffer.size()) buffer.resize(2 * buffer.size());  // a line longer than the buffer
    const ssize_t n = read(fd, buffer.data() + held, buffer.size() - held);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = Unavailable(file.path, "read failed", errno);
      break;
    }
    last = n == 0;
    held += static_cast<size_t>(n);
    done += static_cast<size_t>(n);
    absl::StatusOr<size_t> used =
        parser.Parse(absl::string_view(buffer.data(), held), last, &batch);
    if (!used.ok()) {
      status = used.status();
      break;
    }
    if (sharder->count() + batch.size() > std::numeric_limits<uint32_t>::max()) {
      status = absl::InvalidArgumentError(absl::StrCat(file.path, ": more than 2^32 - 1 ratings"));
      break;
    }
    sharder->Add(batch);
    batch.clear();
    std::memmove(buffer.data(), buffer.data() + *used, held - *used);
    held -= *used;
    progress.Update(done, sharder->count());
  }
  close(fd);
  if (status.ok() && sharder->count() == 0) {
    status = absl::InvalidArgumentError(absl::StrCat(file.path, ": no ratings"));
  }
  return status;
}

// Moves the finished `tmp` to `dir`, replacing what is there.
absl::Status Install(const std::string& tmp, const std::string& dir) {
  std::error_code error;
  const std::string old = absl::StrCat(dir, ".old-", getpid());
  const bool replacing = fs::exists(dir, error);
  if (replacing) fs::rename(dir, old, error);
  if (!error) fs::rename(tmp, dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot move ", tmp, " to ", dir, ": ", error.message()));
  }
  if (replacing) fs::remove_all(old, error);  // a reader that has it mapped keeps its pages
  return FsyncDir(fs::path(dir).parent_path().string());
}

}  // namespace

uint32_t ShareOfUser(int64_t user_id, uint32_t num_shares) {
  return static_cast<uint32_t>(Mix64(static_cast<uint64_t>(user_id) ^ 0x73686172655f6964ULL) %
                               num_shares);
}

std::string SharesDirFor(const std::string& data_dir, const std::string& flag) {
  if (!flag.empty()) return flag;
  struct stat st;
  if (stat(data_dir.c_str(), &st) == 0 && (st.st_mode & S_IWUSR) != 0 &&
      access(data_dir.c_str(), W_OK) == 0) {
    return JoinPath(data_dir, "psrec-shares");
  }
  std::error_code error;
  const std::string absolute = fs::absolute(data_dir, error).lexically_normal().string();
  const char* home = std::getenv("HOME");
  const std::string root = home != nullptr && *home != '\0'
                               ? JoinPath(home, ".cache/psrec/shares")
                               : absl::StrCat("/tmp/psrec-shares-", getuid());
  const std::string name = fs::path(absolute).filename().string();
  return JoinPath(root, absl::StrFormat("%s-%08x", name.empty() ? "data" : name,
                                        HashBytes(absolute) & 0xffffffffULL));
}

absl::StatusOr<SharesManifest> ReadSharesManifest(const std::string& dir) {
  const std::string path = JoinPath(dir, "MANIFEST");
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": no prepared shares here"));
  }
  absl::StatusOr<std::string> text = ReadFileToString(path, 64 << 20);
  if (!text.ok()) return absl::DataLossError(text.status().message());
  SharesManifest manifest;
  if (!google::protobuf::TextFormat::ParseFromString(*text, &manifest)) {
    return absl::DataLossError(absl::StrCat(path, ": not a text-format psrec.SharesManifest"));
  }
  uint64_t rows = 0;
  for (const ShareInfo& share : manifest.shares()) rows += share.rows();
  if (manifest.num_shares() == 0 ||
      manifest.num_shares() != static_cast<uint32_t>(manifest.shares_size()) ||
      rows != manifest.num_ratings()) {
    return absl::DataLossError(absl::StrCat(path, ": lists ", manifest.shares_size(), " of ",
                                            manifest.num_shares(), " shares holding ", rows, " of ",
                                            manifest.num_ratings(), " ratings"));
  }
  return manifest;
}

uint64_t ManifestFingerprint(const SharesManifest& manifest) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(manifest, &text);
  return HashBytes(text);
}

absl::StatusOr<SharesSource> DescribeSource(const RatingFile& file) {
  const int fd = open(file.path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    const int error = errno;
    if (fd >= 0) close(fd);
    return Unavailable(file.path, "cannot read", error);
  }
  SharesSource source;
  source.set_path(file.path);
  source.set_layout(std::string(LayoutName(file.layout)));
  source.set_size(static_cast<uint64_t>(st.st_size));
  source.set_mtime_ns(int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec);
  std::vector<char> buffer(std::min<uint64_t>(kEndBytes, source.size()));
  for (const bool tail : {false, true}) {
    const off_t at = tail ? static_cast<off_t>(source.size() - buffer.size()) : 0;
    const ssize_t n = pread(fd, buffer.data(), buffer.size(), at);
    if (n != static_cast<ssize_t>(buffer.size())) {
      close(fd);
      return Unavailable(file.path, "cannot read", n < 0 ? errno : EIO);
    }
    const uint32_t crc =
        static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(buffer.data()), n));
    tail ? source.set_tail_crc32(crc) : source.set_head_crc32(crc);
  }
  close(fd);
  return source;
}

std::string StaleReason(const SharesSource& recorded, const SharesSource& now) {
  if (recorded.path() != now.path() || recorded.layout() != now.layout()) {
    return absl::StrCat("made from ", recorded.path(), ", not ", now.path());
  }
  if (recorded.size() != now.size()) {
    return absl::StrCat(now.path(), " is ", now.size(), " bytes, was ", recorded.size());
  }
  if (recorded.mtime_ns() != now.mtime_ns()) {
    return absl::StrCat(now.path(), " was modified since");
  }
  if (recorded.head_crc32() != now.head_crc32() || recorded.tail_crc32() != now.tail_crc32()) {
    return absl::StrCat(now.path(), " has other contents");
  }
  return "";
}

absl::StatusOr<SharesManifest> PrepareShares(const std::string& data_dir,
                                             const std::string& shares_dir,
                                             const PrepareOptions& options) {
  const uint32_t num_shares = options.num_shares.value_or(kDefaultShares);
  if (num_shares == 0) return absl::InvalidArgumentError("cannot cut ratings into 0 shares");
  absl::StatusOr<RatingFile> file = FindRatingFile(data_dir);
  if (!file.ok()) return file.status();
  SharesManifest manifest;
  manifest.set_format_version(kShareFormatVersion);
  absl::StatusOr<SharesSource> source = DescribeSource(*file);
  if (!source.ok()) return source.status();
  *manifest.mutable_source() = *source;
  const absl::Time start = absl::Now();
  const std::string tmp = absl::StrCat(shares_dir, ".tmp-", getpid());
  std::error_code error;
  fs::remove_all(tmp, error);
  if (absl::Status s = MakeDurableDir(tmp); !s.ok()) return s;
  absl::Status status = [&]() -> absl::Status {
    absl::StatusOr<std::unique_ptr<ShareWriters>> writers = ShareWriters::Open(tmp, num_shares);
    if (!writers.ok()) return writers.status();
    Sharder sharder(writers->get(), num_shares);
    if (absl::Status s = ReadInto(*file, source->size(), options.progress_every, &sharder);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = sharder.WriteIds(tmp, &manifest); !s.ok()) return s;
    if (absl::Status s = (*writers)->Finish(&manifest); !s.ok()) return s;
    manifest.set_created(absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()));
    std::string text;
    google::protobuf::TextFormat::PrintToString(manifest, &text);
    return WriteFileAtomically(JoinPath(tmp, "MANIFEST"), text);
  }();
  if (status.ok()) status = Install(tmp, shares_dir);
  if (!status.ok()) {
    fs::remove_all(tmp, error);
    return status;
  }
  PSREC_LOG(INFO) << absl::StrFormat("prepared %u ratings of %s into %u shares in %s (%.1f s)",
                                     manifest.num_ratings(), file->path, num_shares, shares_dir,
                                     absl::ToDoubleSeconds(absl::Now() - start));
  return manifest;
}

absl::StatusOr<SharesManifest> EnsurePrepared(const std::string& data_dir,
                                              const std::string& shares_dir,
                                              const PrepareOptions& options) {
  absl::StatusOr<RatingFile> file = FindRatingFile(data_dir);
  if (!file.ok()) return file.status();
  absl::StatusOr<SharesManifest> manifest = ReadSharesManifest(shares_dir);
  if (!manifest.ok() && !absl::IsNotFound(manifest.status())) {
    return absl::DataLossError(
        absl::StrCat(manifest.status().message(), "; delete the directory, or run psrec prepare"));
  }
  std::string why = "there are none yet";
  if (manifest.ok()) {
    absl::StatusOr<SharesSource> now = DescribeSource(*file);
    if (!now.ok()) return now.status();
    why = StaleReason(manifest->source(), *now);
    if (why.empty() && manifest->format_version() != kShareFormatVersion) {
      why = absl::StrCat("they have format version ", manifest->format_version());
    }
    if (why.empty() && options.num_shares && *options.num_shares != manifest->num_shares()) {
      why = absl::StrCat("they are ", manifest->num_shares(), " shares, not ", *options.num_shares);
    }
    if (why.empty()) return manifest;
  }
  PSREC_LOG(INFO) << "preparing the shares of " << file->path << " in " << shares_dir
                  << " (once; later runs map them): " << why;
  return PrepareShares(data_dir, shares_dir, options);
}

}  // namespace psrec
