#include "ps/checkpoint_files.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

fs::path FreshRoot() {
  fs::path root = fs::path(::testing::TempDir()) /
                  absl::StrCat("psrec_checkpoint_files_", ::getpid()) /
                  ::testing::UnitTest::GetInstance()->current_test_info()->name();
  fs::remove_all(root);
  return root;
}

TEST(CheckpointPathTest, JoinsWithOneSlash) {
  EXPECT_EQ(CheckpointPath("a/b", "MANIFEST"), "a/b/MANIFEST");
  EXPECT_EQ(CheckpointPath("a/b/", "MANIFEST"), "a/b/MANIFEST");
  EXPECT_EQ(CheckpointPath("", "MANIFEST"), "MANIFEST");
  EXPECT_EQ(CheckpointPath("/", "x"), "/x");
}

TEST(MakeDurableDirTest, CreatesParentsAndAcceptsAnExistingDirectory) {
  const fs::path root = FreshRoot();
  const std::string dir = (root / "a" / "b").string() + "/";
  ASSERT_TRUE(MakeDurableDir(dir).ok());
  EXPECT_TRUE(fs::is_directory(root / "a" / "b"));
  EXPECT_TRUE(MakeDurableDir(dir).ok());
  // A file where a parent directory should be.
  std::ofstream((root / "file").string()) << "x";
  const absl::Status status = MakeDurableDir((root / "file" / "c").string());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("cannot create"));
  fs::remove_all(root);
}

TEST(FsyncDirTest, NamesAMissingDirectory) {
  const fs::path root = FreshRoot();
  EXPECT_TRUE(FsyncDir("").ok());  // the current directory
  const absl::Status status = FsyncDir((root / "missing").string());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr((root / "missing").string()));
}

TEST(ReadBoundedFileTest, ReadsUpToTheBoundAndRefusesMore) {
  const fs::path root = FreshRoot();
  fs::create_directories(root);
  const std::string path = (root / "f").string();
  std::ofstream(path, std::ios::binary) << std::string("ab\0cd", 5);
  absl::StatusOr<std::string> read = ReadBoundedFile(path, 5);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, std::string("ab\0cd", 5));

  read = ReadBoundedFile(path, 4);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr(path + ": 5 bytes, more than the 4 expected"));

  { std::ofstream empty(path, std::ios::trunc); }
  read = ReadBoundedFile(path, 0);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");

  for (const fs::path& bad : {root / "missing", root}) {  // absent, and a directory
    read = ReadBoundedFile(bad.string(), 100);
    EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound) << bad;
    EXPECT_THAT(read.status().message(), HasSubstr(bad.string() + ": cannot read"));
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace psrec
