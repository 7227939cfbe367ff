#include "common/files.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(WriteFileAtomicallyTest, ReplacesTheFileAndLeavesNoTemporary) {
  const fs::path path = fs::path(::testing::TempDir()) / "atomic.txt";
  ASSERT_TRUE(WriteFileAtomically(path.string(), "first").ok());
  EXPECT_EQ(Read(path), "first");
  ASSERT_TRUE(WriteFileAtomically(path.string(), "").ok());
  EXPECT_EQ(Read(path), "");
  const std::string big(3 << 20, 'x');
  ASSERT_TRUE(WriteFileAtomically(path.string(), big).ok());
  EXPECT_EQ(Read(path), big);
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
  EXPECT_EQ(Read(path), "old");
}

}  // namespace
}  // namespace psrec
