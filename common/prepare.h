// Prepared shares: a ratings file read once and cut into shares by user, in compact columns that
// every role maps instead of parsing the file again (the columns: common/share_files.h; reading
// them: common/share_set.h).
//
//   DIR/MANIFEST            text-format psrec.SharesManifest (proto/shares.proto), written last
//   DIR/users.ids           original user id of each dense user index
//   DIR/items.ids           original movie id of each dense movie index
//   DIR/share-00012.user    share 12's user indices (u32), in file order
//   DIR/share-00012.item    its movie indices (u32)
//   DIR/share-00012.rating  its ratings in half stars (u8)
//   DIR/share-00012.time    its timestamps (i64)
//   DIR/share-00012.pos     each rating's number in the file (u32)
//
// A user's ratings are all in one share (ShareOfUser), so each split can be computed within a
// share. The manifest records the source file's size, modification time and the crc32 of its first
// and last MiB; shares whose source no longer matches are stale and are prepared again.
#ifndef PSREC_COMMON_PREPARE_H_
#define PSREC_COMMON_PREPARE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/movielens.h"
#include "proto/shares.pb.h"

namespace psrec {

constexpr uint32_t kDefaultShares = 64;

// The share that holds user `user_id`'s ratings: a hash of the original id, so that it does not
// depend on the order of the file.
uint32_t ShareOfUser(int64_t user_id, uint32_t num_shares);

// Where the shares of the ratings in `data_dir` live: `flag` when it is set; else
// DATA/psrec-shares when data_dir's permissions let its owner write (even when running as root,
// a directory marked read-only is left alone); else $HOME/.cache/psrec/shares/NAME-HASH, HASH
// naming data_dir's absolute path.
std::string SharesDirFor(const std::string& data_dir, const std::string& flag);

// Reads DIR/MANIFEST. NOT_FOUND when there is none; DATA_LOSS naming the file when it does not
// parse or does not add up (share count, rows).
absl::StatusOr<SharesManifest> ReadSharesManifest(const std::string& dir);

// A digest of everything the manifest says, so that two processes can tell whether they read the
// same prepared data.
uint64_t ManifestFingerprint(const SharesManifest& manifest);

// `file` as it is now: size, modification time and the crc32 of its ends. UNAVAILABLE naming the
// file when it cannot be read.
absl::StatusOr<SharesSource> DescribeSource(const RatingFile& file);

// Why shares made from `recorded` do not fit the file described by `now` ("size 10 vs 12"), or ""
// when they do.
std::string StaleReason(const SharesSource& recorded, const SharesSource& now);

struct PrepareOptions {
  // Shares to cut the ratings into. EnsurePrepared: nullopt accepts fresh shares of any count and
  // prepares kDefaultShares.
  std::optional<uint32_t> num_shares;
  absl::Duration progress_every = absl::Seconds(5);  // how often progress is logged
};

// Reads the ratings in `data_dir` once (in pieces of 16 MiB, so memory stays small) and writes
// their shares to `shares_dir`, replacing what is there: everything goes to a temporary directory
// beside it first and is renamed into place, so a reader sees the old shares or the new ones.
// Refuses what ReadMovieLens refuses, and a rating that is not a whole number of half stars, naming
// file and line. Returns the new manifest.
absl::StatusOr<SharesManifest> PrepareShares(const std::string& data_dir,
                                             const std::string& shares_dir,
                                             const PrepareOptions& options);

// The manifest of the shares of `data_dir` in `shares_dir`, preparing them first (logged, with the
// reason) when there are none, when they are stale, or when options.num_shares asks for another
// count. A MANIFEST that is there but damaged is refused (DATA_LOSS naming it), not overwritten.
absl::StatusOr<SharesManifest> EnsurePrepared(const std::string& data_dir,
                                              const std::string& shares_dir,
                                              const PrepareOptions& options);

}  // namespace psrec

#endif  // PSREC_COMMON_PREPARE_H_
