#include "common/files.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using testing_util::ReadFile;

TEST(WriteFileAtomicallyTest, ReplacesTheFileAndLeavesNoTemporary) {
  const fs::path path = fs::path(::testing::TempDir()) / "atomic.txt";
  ASSERT_TRUE(WriteFileAtomically(path.string(), "first").ok());
  EXPECT_EQ(ReadFile(path), "first");
  ASSERT_TRUE(WriteFileAtomically(path.string(), "").ok());
  EXPECT_EQ(ReadFile(path), "");
  const std::string big(3 << 20, 'x');
  ASSERT_TRUE(WriteFileAtomically(path.string(), big).ok());
  EXPECT_EQ(ReadFile(path), big);
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST(WriteFileAtomicallyTest, AFailureNamesTheFileAndKeepsTheOldOne) {
  const fs::path dir = fs::path(::testing::TempDir()) / "atomic_dir";
  fs::create_directories(dir);
  const fs::path path = dir / "kept.txt";
  ASSERT_TRUE(WriteFileAtomically(path.string(), "old").ok());
  const absl::Status missing = WriteFileAtomically((dir / "no" / "such" / "f").string(), "x");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("no/such/f.tmp"), std::string::npos) << missing;
  EXPECT_NE(missing.message().find("No such file"), std::string::npos) << missing;
  // A directory where the file should go: the rename fails, the directory stays.
  fs::create_directories(dir / "adir" / "inner");
  const absl::Status onto_dir = WriteFileAtomically((dir / "adir").string(), "x");
  EXPECT_FALSE(onto_dir.ok());
  EXPECT_TRUE(fs::is_directory(dir / "adir"));
  EXPECT_FALSE(fs::exists((dir / "adir").string() + ".tmp"));
  EXPECT_EQ(ReadFile(path), "old");
}

fs::path FreshRoot() {
  fs::path root = fs::path(::testing::TempDir()) / absl::StrCat("psrec_files_", ::getpid()) /
                  ::testing::UnitTest::GetInstance()->current_test_info()->name();
  fs::remove_all(root);
  return root;
}

TEST(JoinPathTest, JoinsWithOneSlash) {
  EXPECT_EQ(JoinPath("a/b", "MANIFEST"), "a/b/MANIFEST");
  EXPECT_EQ(JoinPath("a/b/", "MANIFEST"), "a/b/MANIFEST");
  EXPECT_EQ(JoinPath("", "MANIFEST"), "MANIFEST");
  EXPECT_EQ(JoinPath("/", "x"), "/x");
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

TEST(ReadFileToStringTest, ReadsUpToTheBoundAndRefusesMore) {
  const fs::path root = FreshRoot();
  fs::create_directories(root);
  const std::string path = (root / "f").string();
  std::ofstream(path, std::ios::binary) << std::string("ab\0cd", 5);
  absl::StatusOr<std::string> read = ReadFileToString(path, 5);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, std::string("ab\0cd", 5));

  read = ReadFileToString(path, 4);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr(path + ": 5 bytes, more than the 4 expected"));

  { std::ofstream empty(path, std::ios::trunc); }
  read = ReadFileToString(path, 0);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");

  read = ReadFileToString((root / "missing").string(), 100);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(read.status().message(), HasSubstr((root / "missing").string() + ": cannot open: "));
  read = ReadFileToString(root.string(), 100);  // a directory
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(read.status().message(), HasSubstr(root.string() + ": cannot read: not a regular"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace psrec
